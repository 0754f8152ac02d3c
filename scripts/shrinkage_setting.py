"""Snakemake script: one shrinkage setting - data (observed or simulated), mixed fit, per-group fits."""

import sys

from lmmflow.data.prepare import read_prepared
from lmmflow.inference.shrinkage import run_setting, setting_data
from lmmflow.outputs import io
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

name = snakemake.wildcards.setting
setting = snakemake.params.setting
observed = read_prepared(snakemake.input.data, snakemake.input.schema) if hasattr(snakemake.input, "data") else None
results = run_setting(name, setting, setting_data(setting, observed))
io.write_csv(results["coefficients"], snakemake.output.coefficients)
io.write_csv(results["sd_summary"], snakemake.output.sd_summary)
io.write_csv(results["variance_components"], snakemake.output.variance_components)
io.write_json(results["fit"], snakemake.output.fit)
print(f"setting {name}: {results['fit']['n_obs']} observations", file=sys.stderr)
print(results["sd_summary"].to_string(index=False), file=sys.stderr)
