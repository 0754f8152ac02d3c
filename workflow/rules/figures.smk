# Figures of the random-slopes chapter: PNG and SVG of each, byte-identical on reruns.


# An observed setting's four figures in one job: each is milliseconds of drawing around the
# same second of imports (matplotlib, pandas) and reads the same data and coefficients.
rule setting_figures:
    input:
        unpack(get_shrinkage_setting_data),
        coefficients="results/shrinkage/{setting}/coefficients.csv",
    output:
        trajectories_png=report(
            "results/figures/{setting}_trajectories.png",
            caption="../report/figure_trajectories.rst",
            category="Figures",
            subcategory="{setting}",
        ),
        trajectories_svg="results/figures/{setting}_trajectories.svg",
        coefficient_densities_png=report(
            "results/figures/{setting}_coefficient_densities.png",
            caption="../report/figure_coefficient_densities.rst",
            category="Figures",
            subcategory="{setting}",
        ),
        coefficient_densities_svg="results/figures/{setting}_coefficient_densities.svg",
        coefficient_scatter_png=report(
            "results/figures/{setting}_coefficient_scatter.png",
            caption="../report/figure_coefficient_scatter.rst",
            category="Figures",
            subcategory="{setting}",
        ),
        coefficient_scatter_svg="results/figures/{setting}_coefficient_scatter.svg",
        effects_png=report(
            "results/figures/{setting}_effects.png",
            caption="../report/figure_effects.rst",
            category="Figures",
            subcategory="{setting}",
        ),
        effects_svg="results/figures/{setting}_effects.svg",
    log:
        "logs/figures/{setting}.log",
    benchmark:
        "results/benchmarks/figures/{setting}.tsv"
    wildcard_constraints:
        setting=name_pattern(OBSERVED_SETTINGS),
    conda:
        "../envs/lmmflow.yaml"
    params:
        setting=lookup(dpath="{setting}", within=SHRINKAGE_SETTINGS),
    script:
        "../../scripts/setting_figures.py"


rule figure_shrinkage_settings:
    input:
        coefficients=expand("results/shrinkage/{setting}/coefficients.csv", setting=SHRINKAGE_SETTINGS),
    output:
        png=report(
            "results/figures/shrinkage_settings.png",
            caption="../report/figure_shrinkage_settings.rst",
            category="Figures",
        ),
        svg="results/figures/shrinkage_settings.svg",
    log:
        "logs/figures/shrinkage_settings.log",
    benchmark:
        "results/benchmarks/figures/shrinkage_settings.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        settings=list(SHRINKAGE_SETTINGS),
        labels=get_shrinkage_labels(),
    script:
        "../../scripts/figure_shrinkage_settings.py"


rule figure_scatter:
    input:
        unpack(get_scatter_data),
    output:
        png=report(
            "results/figures/{plot}_scatter.png",
            caption="../report/figure_scatter.rst",
            category="Figures",
        ),
        svg="results/figures/{plot}_scatter.svg",
    log:
        "logs/figures/{plot}_scatter.log",
    benchmark:
        "results/benchmarks/figures/{plot}_scatter.tsv"
    conda:
        "../envs/lmmflow.yaml"
    params:
        plot=lookup(dpath="scatter_plots/{plot}", within=config),
    script:
        "../../scripts/figure_scatter.py"
