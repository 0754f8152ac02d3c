"""The Snakemake workflow's support: configuration checks, cluster preflight, environment, scripts."""
