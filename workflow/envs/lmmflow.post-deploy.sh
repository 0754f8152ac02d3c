#!/usr/bin/env bash
# Snakemake runs this inside the new conda environment, from the directory snakemake runs in,
# which must be the lmmflow checkout (the default): the locked Python packages, then lmmflow.
set -euo pipefail
pip install -r requirements/lock.txt
pip install --no-deps --no-build-isolation .
