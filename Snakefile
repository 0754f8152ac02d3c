# lmmflow: linear mixed models, lme4-identical, on statsmodels.
# Configuration: config.yaml (schema: workflow/schemas/config.schema.yaml).


from lmmflow.cluster import check_jobs as check_slurm_jobs


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/shrinkage.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/intervals.smk"
include: "workflow/rules/report.smk"


# Light rules run in the submitting snakemake process, never as cluster jobs (README, "Cluster
# execution"): fetching (compute nodes may be offline), preparing or simulating data, aggregating,
# small tables, figures and the report. Every other rule (fits, shrinkage settings, profile
# intervals, bootstrap chunks) is a cluster job.
localrules:
    all,
    fetch_raw,
    prepare_dataset,
    compare_models,
    focus_group,
    coefficient_check,
    shrinkage_summary,
    shrinkage_observed_tables,
    figure_trajectories,
    figure_coefficient_densities,
    figure_effects,
    figure_shrinkage_settings,
    figure_scatter,
    aggregate_bootstrap,
    simulate_dataset,
    render_report,


onstart:
    # Under `--executor slurm`, before anything is submitted: the SLURM commands are there and
    # every partition and account the jobs ask for exists (lmmflow.cluster, the preflight check).
    if getattr(workflow.executor_plugin, "name", None) == "slurm":
        for note in check_slurm_jobs(
            workflow.dag.needrun_jobs(), workflow.executor_settings.status_command
        ):
            print(f"SLURM preflight: {note}")


rule all:
    default_target: True
    input:
        get_final_outputs(),
