"""Snakemake script: the many-regressions table, its statistics and negative-slope counts of an observed setting."""

import sys

from lmmflow.inference.shrinkage import observed_tables, read_coefficients
from lmmflow.outputs import io
from lmmflow.pipeline.scripting import send_stderr_to_log

send_stderr_to_log(snakemake.log[0])

tables = observed_tables(read_coefficients(snakemake.input.coefficients))
io.write_csv(tables["coefficients"], snakemake.output.coefficients)
io.write_csv(tables["coefficient_statistics"], snakemake.output.coefficient_statistics)
io.write_csv(tables["negative_slopes"], snakemake.output.negative_slopes)
print(tables["negative_slopes"].to_string(index=False), file=sys.stderr)
