#!/usr/bin/env bash
# Snakemake runs this inside the new conda environment, from the directory snakemake runs in,
# which must be the lmmflow checkout (the default); the dependencies come from lmmflow.yaml.
set -euo pipefail
pip install --no-deps --no-build-isolation .
