# Cluster execution: which rules stay in the submitting process, and a SLURM preflight.

from lmmflow.pipeline.cluster import check_jobs as check_slurm_jobs


# Light rules run in the submitting snakemake process, never as cluster jobs (README, "Cluster
# execution"): fetching (compute nodes may be offline), preparing or simulating data, aggregating
# (bootstrap chunks are aggregated from their CSVs and the fit's solution.json, no fitting),
# small tables, figures and the report. Every other rule (fits, shrinkage settings, profile
# intervals, bootstrap chunks) is a cluster job.
localrules:
    all,
    fetch_raw,
    prepare_dataset,
    compare_models,
    aggregate_bootstrap,
    focus_group,
    coefficient_check,
    shrinkage_summary,
    shrinkage_observed_tables,
    setting_figures,
    figure_shrinkage_settings,
    figure_scatter,
    simulate_dataset,
    render_report,


onstart:
    # Under `--executor slurm`, before anything is submitted: the SLURM commands are there and
    # every partition and account the jobs ask for exists (lmmflow.pipeline.cluster, the preflight check).
    if getattr(workflow.executor_plugin, "name", None) == "slurm":
        for note in check_slurm_jobs(workflow.dag.needrun_jobs(), workflow.executor_settings.status_command):
            print(f"SLURM preflight: {note}")
