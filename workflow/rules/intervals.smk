# Confidence intervals (issue 4, part 7): lme4's profile-likelihood intervals per model and a
# parametric bootstrap split into seeded chunk jobs; the chapter's simulation exercise.


wildcard_constraints:
    interval_model=name_pattern(INTERVAL_MODELS),
    exercise_model=name_pattern(EXERCISE_MODELS),
    chunk=name_pattern([str(chunk) for chunk in range(BOOTSTRAP["chunks"])]),


rule profile_intervals:
    input:
        unpack(get_interval_data),
    output:
        report(
            "results/intervals/{interval_model}/profile.csv",
            caption="../report/profile_intervals.rst",
            category="Intervals",
            subcategory="{interval_model}",
        ),
    log:
        "logs/intervals/{interval_model}/profile.log",
    benchmark:
        "results/benchmarks/intervals/{interval_model}_profile.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        formula=get_interval_formula,
        engine=get_interval_engine,
    script:
        "../../scripts/profile_intervals.py"


rule bootstrap_chunk:
    input:
        unpack(get_interval_data),
    output:
        "results/intervals/{interval_model}/bootstrap_chunk_{chunk}.csv",
    log:
        "logs/intervals/{interval_model}/bootstrap_chunk_{chunk}.log",
    benchmark:
        "results/benchmarks/intervals/{interval_model}_bootstrap_chunk_{chunk}.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        formula=get_interval_formula,
        engine=get_interval_engine,
        bootstrap=BOOTSTRAP,
    script:
        "../../scripts/bootstrap_chunk.py"


rule aggregate_bootstrap:
    input:
        unpack(get_interval_data),
        chunks=get_bootstrap_chunks,
    output:
        "results/intervals/{interval_model}/bootstrap.csv",
    log:
        "logs/intervals/{interval_model}/bootstrap.log",
    conda:
        "../envs/lmmflow.yaml"
    params:
        formula=get_interval_formula,
        engine=get_interval_engine,
    script:
        "../../scripts/aggregate_bootstrap.py"


rule simulate_exercise:
    output:
        csv="results/exercise/data.csv",
        schema="results/exercise/data.schema.json",
    log:
        "logs/exercise/simulate.log",
    conda:
        "../envs/lmmflow.yaml"
    params:
        exercise=EXERCISE,
    script:
        "../../scripts/simulate_exercise.py"


rule fit_exercise_model:
    input:
        data="results/exercise/data.csv",
        schema="results/exercise/data.schema.json",
    output:
        fit="results/exercise/models/{exercise_model}/fit.json",
        fixed_effects="results/exercise/models/{exercise_model}/fixed_effects.csv",
        variance_components="results/exercise/models/{exercise_model}/variance_components.csv",
    log:
        "logs/exercise/fit/{exercise_model}.log",
    conda:
        "../envs/lmmflow.yaml"
    params:
        formula=get_exercise_formula,
    script:
        "../../scripts/fit_exercise_model.py"


rule exercise_aic:
    input:
        get_exercise_fits,
    output:
        report(
            "results/exercise/aic.csv",
            caption="../report/exercise_aic.rst",
            category="Simulation exercise",
        ),
    log:
        "logs/exercise/aic.log",
    conda:
        "../envs/lmmflow.yaml"
    script:
        "../../scripts/exercise_aic.py"
