# lmmflow: mixed models with lme4's numbers, fitted by lmmflow's engines and verified independently.
# Configuration: config.yaml (schema: workflow/schemas/config.schema.yaml).


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/glmm.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/lrt.smk"
include: "workflow/rules/shrinkage.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/intervals.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/cluster.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
