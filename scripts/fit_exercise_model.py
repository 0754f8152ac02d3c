"""Snakemake script: fit one model of the simulation exercise; its fit.json and main tables."""

from lmmflow import extract, io
from lmmflow.fit import fit_model
from lmmflow.design import build_design
from lmmflow.prepare import read_prepared
from lmmflow.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

formula = snakemake.params.formula
design = build_design(formula, read_prepared(snakemake.input.data, snakemake.input.schema))
fit = fit_model(design, "fast")
io.write_json(extract.fit_summary(design, fit, dataset="simulated_exercise", formula=formula), snakemake.output.fit)
io.write_csv(extract.fixed_effects(design, fit), snakemake.output.fixed_effects)
io.write_csv(extract.variance_components(design, fit), snakemake.output.variance_components)
