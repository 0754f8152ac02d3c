"""Fit one configured model and write its fit.json, attempts.csv and tables."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from lmmflow.fit import fit_and_write  # noqa: E402
from lmmflow.prepare import read_prepared  # noqa: E402

fit_and_write(
    read_prepared(snakemake.input.data, snakemake.input.schema),
    dataset=snakemake.params.dataset,
    formula=snakemake.params.formula,
    engine=snakemake.params.engine,
    outputs=dict(snakemake.output.items()),
)
