# Data stage: fetch each raw file once (verified), then prepare each data set; or simulate it.


rule fetch_raw:
    input:
        get_local_source,
    output:
        "resources/raw/{raw_file}",
    log:
        "logs/data/fetch_raw/{raw_file}.log",
    benchmark:
        "results/benchmarks/data/fetch_raw/{raw_file}.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        source=get_raw_source,
    script:
        "../../scripts/fetch_raw.py"


rule prepare_dataset:
    input:
        raw=get_dataset_raw_file,
    output:
        csv="results/data/{dataset}.csv",
        schema="results/data/{dataset}.schema.json",
    log:
        "logs/data/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/data/prepare_dataset/{dataset}.tsv"
    wildcard_constraints:
        dataset=name_pattern(RAW_DATASETS),
    conda:
        "../envs/lmmflow.yaml"
    params:
        spec=lookup(dpath="datasets/{dataset}", within=config),
    script:
        "../../scripts/prepare_dataset.py"


rule simulate_dataset:
    output:
        csv="results/data/{dataset}.csv",
        schema="results/data/{dataset}.schema.json",
    log:
        "logs/data/simulate_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/data/simulate_dataset/{dataset}.tsv"
    wildcard_constraints:
        dataset=name_pattern(SIMULATED_DATASETS),
    conda:
        "../envs/lmmflow.yaml"
    params:
        spec=lookup(dpath="datasets/{dataset}", within=config),
    script:
        "../../scripts/simulate_dataset.py"
