"""The workflow's HTML report: fill reports/report.qmd from the results, then render it.

The template is standard Quarto/pandoc markdown with placeholders written as HTML comments,
invisible when a renderer sees them unfilled::

    <!-- lmmflow:fixed_effects model=gpa_mixed columns=short -->   a block (a table, a figure)
    the slope is <!-- lmmflow:value model=gpa_mixed quantity=fixef.occasion -->   inline text

Every number comes from a results file handed to the job (``snakemake.input``), found by its path
below ``results/``. Text between ``<!-- lmmflow:section -->`` and ``<!-- lmmflow:end -->`` is left
out when a placeholder in it needs a result that is not among the inputs (not configured); a
placeholder outside a section needs its results. Rendering: Quarto when asked for, or when it is
on PATH and the renderer is ``auto``; otherwise the pandoc bundled with pypandoc-binary. Either
way the page is one self-contained HTML file.
"""

from __future__ import annotations

import json
import math
import platform
import re
import shlex
import shutil
import subprocess
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from lmmflow import io

RENDERERS = ("auto", "quarto", "pandoc")
PACKAGES = ("statsmodels", "numpy", "scipy", "pandas", "matplotlib", "snakemake")
DIRECTIVE = re.compile(r"<!--\s*lmmflow:(\w+)(.*?)-->", re.DOTALL)
SECTION = re.compile(r"<!--\s*lmmflow:section\s*-->(.*?)<!--\s*lmmflow:end\s*-->\n?", re.DOTALL)
TIE = 1e-6  # AICc differences below this are ties (the tables keep 10 significant digits)


class MissingResult(LookupError):
    """A placeholder needs a results file that is not among the job's inputs."""


class ReportError(RuntimeError):
    """The report cannot be built or rendered; the message says why."""


# --------------------------------------------------------------------------------------------
# results handed to the job


class Results:
    """The job's input files, looked up by their path below ``results/``."""

    def __init__(self, paths, config: dict | None = None, figures_dir: Path | None = None):
        self.paths: dict[str, Path] = {}
        for path in paths:
            posix = Path(path).as_posix()
            key = posix.split("results/", 1)[1] if "results/" in posix else posix
            self.paths[key] = Path(path)
        self.config = config or {}
        self.figures_dir = figures_dir  # where figures are copied for the renderer

    def path(self, key: str) -> Path:
        if key not in self.paths:
            raise MissingResult(f"results/{key}")
        return self.paths[key]

    def has(self, key: str) -> bool:
        return key in self.paths

    def keys(self, pattern: str) -> list[str]:
        """Keys matching a regular expression, in input order."""
        return [key for key in self.paths if re.fullmatch(pattern, key)]

    def csv(self, key: str, **kwargs) -> pd.DataFrame:
        return pd.read_csv(self.path(key), **kwargs)

    def json(self, key: str) -> dict:
        return json.loads(self.path(key).read_text())

    def model_dir(self, model: str) -> str:
        folder = f"models/{model}"
        if not self.has(f"{folder}/fit.json"):
            raise MissingResult(f"results/{folder}/fit.json")
        return folder

    def fit(self, model: str) -> dict:
        return self.json(f"{self.model_dir(model)}/fit.json")


# --------------------------------------------------------------------------------------------
# formatting


def number(value, digits: int = 3) -> str:
    """A table/prose number: integers as such, floats to ``digits`` decimals, no ``-0.000``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 10**digits):
        return f"{int(value)}"
    text = f"{float(value):.{digits}f}"
    return text[1:] if re.fullmatch(r"-0\.0*", text) else text


def p_value(value: float) -> str:
    return "<0.001" if value < 0.001 else number(value)


def cell(value, digits: int = 3) -> str:
    if isinstance(value, str):
        return value.replace("|", "\\|")
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    return number(value, digits)


def pipe_table(table: pd.DataFrame, caption: str = "", digits: int = 3) -> str:
    """A pipe table (numbers right-aligned) with an optional caption line, as both renderers read it."""
    numeric = [pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c]) for c in table]
    table = table.copy()
    for column, is_number in zip(table.columns, numeric):
        values = table[column].dropna()
        if is_number and pd.api.types.is_float_dtype(table[column]) and len(values) and (values % 1 == 0).all():
            table[column] = pd.Series(
                [v if pd.isna(v) else int(v) for v in table[column]], index=table.index, dtype=object
            )
    header = [str(c).replace("|", "\\|") for c in table.columns]
    body = [[cell(v, digits) for v in row] for row in table.itertuples(index=False)]
    # A wide table gets relative column widths from the dashes: make them follow the content.
    widths = [min(40, max(3, *map(len, name.split()), *(len(row[j]) for row in body))) for j, name in enumerate(header)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|"
        + "|".join("-" * (w - 1) + ":" if right else ":" + "-" * (w - 1) for w, right in zip(widths, numeric))
        + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    text = "\n".join(lines)
    return f"{text}\n\n: {caption}" if caption else text


def code(text: str) -> str:
    return f"`{text}`"


def callout(kind: str, text: str) -> str:
    """A Quarto callout; pandoc renders the same div, styled by reports/report.css."""
    return f"::: {{.callout-{kind}}}\n{text}\n:::"


def listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------------------------
# per-model tables


def singular_note(results: Results, model: str) -> str:
    fit = results.fit(model)
    if not fit.get("singular"):
        return ""
    return callout(
        "warning",
        f"**Singular fit:** {code(model)} is singular (as lme4's `isSingular`): a random-effect "
        "variance is zero or a correlation is ±1, so some of its variance components sit on the "
        "boundary of the parameter space.",
    )


def with_note(results: Results, model: str, block: str) -> str:
    note = singular_note(results, model)
    return f"{note}\n\n{block}" if note else block


def fixed_effects(results: Results, model: str, columns: str = "full", caption: str = "", note: str = "yes") -> str:
    table = results.csv(f"{results.model_dir(model)}/fixed_effects.csv")
    if columns == "short":
        table = table[["term", "value", "se", "lower_2.5", "upper_97.5"]]
    else:
        table = table.copy()
        table["p_value"] = table["p_value"].map(p_value)
    caption = caption or f"Fixed effects of {code(model)} (REML; Wald 95% intervals)."
    table = pipe_table(table, caption)
    return with_note(results, model, table) if note == "yes" else table


def variance_components(results: Results, model: str, caption: str = "", note: str = "yes") -> str:
    table = results.csv(f"{results.model_dir(model)}/variance_components.csv", keep_default_na=False)
    caption = caption or f"Variance components of {code(model)}; var_prop is each variance's share of their sum."
    table = pipe_table(table, caption)
    return with_note(results, model, table) if note == "yes" else table


def correlation_matrix(results: Results, model: str, caption: str = "") -> str:
    """The random-effect correlation matrix of each grouping factor with correlated effects."""
    pairs = results.csv(f"{results.model_dir(model)}/re_correlations.csv")
    if pairs.empty:
        return f"{code(model)} estimates no correlations between random effects."
    blocks = []
    for group, rows in pairs.groupby("group", sort=False):
        effects = list(dict.fromkeys([*rows["effect_1"], *rows["effect_2"]]))
        matrix = pd.DataFrame(1.0, index=effects, columns=effects)
        for row in rows.itertuples(index=False):
            matrix.loc[row.effect_1, row.effect_2] = matrix.loc[row.effect_2, row.effect_1] = row.correlation
        table = matrix.reset_index(names="effect")
        blocks.append(
            pipe_table(table, caption or f"Correlations of the random effects of {code(model)} by {code(group)}.")
        )
    return "\n\n".join(blocks)


def value(results: Results, model: str, quantity: str, digits: str = "3") -> str:
    """One number (or phrase) computed from a model's tables, for the prose.

    ``formula``, ``n_obs``, ``n_groups``, ``fixef.TERM``, ``sd.EFFECT``, ``variance.EFFECT``,
    ``cor.E1.E2``, ``cor_reading.E1.E2`` (which way the correlation goes), ``low.TERM`` and
    ``high.TERM`` (the fixed effect -+ 2 random-effect SDs: where most groups' effects lie),
    ``sd_ratio.TERM`` (random-effect SD / fixed effect).
    """
    digits = int(digits)
    folder = results.model_dir(model)
    kind, _, rest = quantity.partition(".")
    if kind == "formula":
        return code(results.fit(model)["formula"])
    if kind in ("n_obs", "K"):
        return number(results.fit(model)[kind])
    if kind == "n_groups":
        return number(sum(results.fit(model)["n_groups"].values()))
    if kind in ("cor", "cor_reading"):
        first, second = rest.split(".")
        pairs = results.csv(f"{folder}/re_correlations.csv")
        match = pairs[
            ((pairs["effect_1"] == first) & (pairs["effect_2"] == second))
            | ((pairs["effect_1"] == second) & (pairs["effect_2"] == first))
        ]
        if match.empty:
            raise ReportError(f"{model}: no correlation of {first} and {second}")
        correlation = float(match["correlation"].iloc[0])
        if kind == "cor":
            return number(correlation, digits)
        return f"lower {first} values go with {'larger' if correlation < 0 else 'smaller'} {second} effects"
    fixed = results.csv(f"{folder}/fixed_effects.csv").set_index("term")["value"]
    components = results.csv(f"{folder}/variance_components.csv", keep_default_na=False)
    components = components[components["group"] != "Residual"]

    def fixef(term: str) -> float:
        if term not in fixed.index:
            raise ReportError(f"{model}: {quantity}: no fixed effect {term!r} in fixed_effects.csv")
        return fixed[term]

    def component(effect: str) -> pd.Series:
        rows = components[components["effect"] == effect]
        if len(rows) != 1:
            raise ReportError(
                f"{model}: {quantity}: {len(rows)} random effects named {effect!r} in "
                f"variance_components.csv (groups {list(rows['group'])}); expected exactly one"
            )
        return rows.iloc[0]

    quantities = {
        "fixef": fixef,
        "sd": lambda effect: component(effect)["sd"],
        "variance": lambda effect: component(effect)["variance"],
        "low": lambda term: fixef(term) - 2 * component(term)["sd"],
        "high": lambda term: fixef(term) + 2 * component(term)["sd"],
        "sd_ratio": lambda term: component(term)["sd"] / fixef(term),
    }
    if kind not in quantities:
        raise ReportError(f"value: unknown quantity {quantity!r}")
    return number(float(quantities[kind](rest)), digits)


def model_summary(results: Results, model: str, level: str = "3") -> str:
    """A model's formula, variance components, random-effect correlations and fixed effects."""
    hashes = "#" * int(level)
    fit = results.fit(model)
    parts = [
        f"{hashes} {model}",
        f"{code(fit['formula'])}, {number(fit['n_obs'])} observations.",
        singular_note(results, model),
        variance_components(results, model, note="no"),
        correlation_matrix(results, model),
        fixed_effects(results, model, note="no"),
    ]
    return "\n\n".join(part for part in parts if part)


# --------------------------------------------------------------------------------------------
# comparisons, focus groups, exercises


def _names(results: Results, pattern: str, name: str | None) -> list[str]:
    found = [re.fullmatch(pattern, key).group(1) for key in results.keys(pattern)]
    if name is not None:
        if name not in found:
            raise MissingResult(pattern.replace("(\\w+)", name))
        return [name]
    return found


def comparison_models(results: Results, name: str | None = None, level: str = "3") -> str:
    blocks = []
    for comparison in _names(results, r"comparisons/(\w+)\.csv", name):
        models = results.csv(f"comparisons/{comparison}.csv")["model"]
        blocks += [
            model_summary(results, model, level) for model in results.config["comparisons"].get(comparison, models)
        ]
    return "\n\n".join(blocks)


def comparison(results: Results, name: str | None = None) -> str:
    """The AICc table of each comparison, the preferred model, and the check that makes it valid."""
    blocks = []
    for comparison in _names(results, r"comparisons/(\w+)\.csv", name):
        table = results.csv(f"comparisons/{comparison}.csv")
        table = table[["model", "K", "AICc", "delta_AICc", "n_random_effects"]].copy()
        fits = {model: results.fit(model) for model in table["model"]}
        table["singular"] = [fits[m]["singular"] for m in table["model"]]
        best = table[table["delta_AICc"] < TIE]["model"].tolist()
        first = fits[table["model"].iloc[0]]
        shared = (
            f"All {len(fits)} models are fitted to the same {number(first['n_obs'])} observations of "
            f"{code(first['dataset'])} with the same fixed effects ({', '.join(map(code, first['fixed_effects']))}), "
            "so their REML criteria are comparable."
        )
        if len(best) == 1:
            verdict = f"**Preferred model: {code(best[0])}**, with the lowest AICc"
        else:
            verdict = (
                f"**Preferred models: {listing([code(m) for m in best])}**, tied at the lowest AICc "
                f"(ΔAICc below {TIE:g}): the same fit, differently parameterized"
            )
        runner_up = table[table["delta_AICc"] >= TIE]
        if not runner_up.empty:
            row = runner_up.iloc[0]
            verdict += f"; the next, {code(row['model'])}, is {number(row['delta_AICc'])} AICc units worse."
        else:
            verdict += "."
        blocks.append(
            "\n\n".join(
                [
                    shared,
                    pipe_table(
                        table,
                        f"Comparison {code(comparison)} by REML AICc; K counts fixed effects, "
                        "variance/covariance parameters and the residual variance.",
                    ),
                    verdict,
                ]
            )
        )
    return "\n\n".join(blocks)


def focus_random_effects(results: Results, name: str | None = None) -> str:
    blocks = []
    for focus in _names(results, r"tables/(\w+)_random_effects\.csv", name):
        if not results.has(f"tables/{focus}_predictions.csv"):
            continue
        table = results.csv(f"tables/{focus}_random_effects.csv", dtype={"group": str})
        for model, rows in table.groupby("model", sort=False):
            rows = rows.drop(columns="model")
            blocks.append(
                with_note(results, model, pipe_table(rows, f"Random effects of {code(model)} for this group."))
            )
    if not blocks:
        raise MissingResult("results/tables/<focus>_random_effects.csv")
    return "\n\n".join(blocks)


def focus_predictions(results: Results, name: str | None = None) -> str:
    blocks = []
    for focus in _names(results, r"tables/(\w+)_predictions\.csv", name):
        table = results.csv(f"tables/{focus}_predictions.csv", dtype=str)
        for column in table.columns[2:]:
            table[column] = table[column].astype(float)
        blocks.append(pipe_table(table, "Conditional predictions (fixed + random effects), one column per model."))
    return "\n\n".join(blocks)


def coefficient_check(results: Results, model: str) -> str:
    """lme4's coef beside fixef + ranef: one row per group, coef and difference per effect."""
    table = results.csv(f"tables/{model}_coefficient_check.csv", dtype={"group": str})
    wide = table.pivot(index="group", columns="effect", values="coef")
    wide = wide[list(dict.fromkeys(table["effect"]))]
    effects = list(wide.columns)
    group_var = table["group_var"].iloc[0]
    check = table.pivot(index="group", columns="effect", values="fixef_plus_ranef")[effects]
    wide.columns = [f"coef {e}" for e in effects]
    for effect in effects:
        wide[f"fixef + ranef {effect}"] = check[effect]
    wide = wide.loc[list(dict.fromkeys(table["group"]))].reset_index(names=group_var)
    largest = table["difference"].abs().max()
    return (
        pipe_table(wide, f"{code(model)}: lme4's coef per {code(group_var)} and fixed + random effects.")
        + f"\n\nThe largest absolute difference between coef and fixef + ranef is {largest:.1e} "
        "(the tables' rounding): the random coefficients are the fixed effects plus each "
        f"{code(group_var)}'s random effects."
    )


def intervals(results: Results, model: str, digits: str = "3") -> str:
    table = results.csv(f"intervals/{model}/profile.csv")
    table = table[["parameter", "estimate", "lower_2.5", "upper_97.5"]]
    return pipe_table(
        table, f"Profile-likelihood 95% intervals of {code(model)} (lme4's `confint`).", digits=int(digits)
    )


def aic(results: Results, name: str) -> str:
    """A comparison read as lme4's ``AIC`` (REML log-likelihood); lower is better."""
    table = results.csv(f"comparisons/{name}.csv")
    table = table[["model", "K", "logLik", "AIC"]].sort_values("AIC", kind="stable", ignore_index=True)
    table["singular"] = [results.fit(m)["singular"] for m in table["model"]]
    formulas = "\n".join(f"- {code(m)}: {code(results.fit(m)['formula'])}" for m in table["model"])
    return (
        f"{formulas}\n\n"
        + pipe_table(table, f"AIC of the models of {code(name)} (REML log-likelihood, as lme4's `AIC`).")
        + f"\n\n**Lower AIC is better: {code(table['model'].iloc[0])}**, by "
        f"{number(float(table['AIC'].iloc[-1] - table['AIC'].iloc[0]))} AIC units."
    )


# --------------------------------------------------------------------------------------------
# shrinkage and figures


def setting_label(results: Results, setting: str) -> str:
    return results.config.get("shrinkage", {}).get("settings", {}).get(setting, {}).get("label", setting)


def many_regressions(results: Results, setting: str) -> str:
    """Separate regressions vs the mixed model's coefficients: spread and range of each."""
    table = results.csv(f"tables/{setting}_coefficients.csv")
    rows = []
    for coefficient in ("intercept", "slope"):
        for estimate in ("separate", "mixed"):
            values = table[f"{coefficient}_{estimate}"]
            rows.append(
                {
                    "coefficient": coefficient,
                    "estimate": "separate regressions" if estimate == "separate" else "mixed model",
                    "mean": values.mean(),
                    "sd": values.std(),
                    "min": values.min(),
                    "max": values.max(),
                }
            )
    return pipe_table(
        pd.DataFrame(rows),
        f"{setting_label(results, setting)}: per-group coefficients of {number(len(table))} groups, "
        "separate regressions vs the mixed model.",
    )


def shrinkage_sd(results: Results) -> str:
    table = results.csv("shrinkage/sd_summary.csv")
    table.insert(0, "setting", table.pop("setting").map(lambda s: setting_label(results, s)))
    return pipe_table(
        table, "SD of the per-group coefficients: separate regressions vs mixed model (sd_ratio = mixed / separate)."
    )


def shrinkage_settings(results: Results) -> str:
    """The settings as configured: observed data or simulation parameters."""
    rows = []
    for name, spec in results.config.get("shrinkage", {}).get("settings", {}).items():
        if not results.has(f"shrinkage/{name}/coefficients.csv"):
            continue
        simulate = spec.get("simulate", {})
        rows.append(
            {
                "setting": spec.get("label", name),
                "data": f"observed ({spec['dataset']})" if "dataset" in spec else f"simulated, seed {spec['seed']}",
                "groups": simulate.get("n_groups", float("nan")),
                "occasions": simulate.get("n_per_group", float("nan")),
                "sd_intercept": simulate.get("sd_intercept", float("nan")),
                "sd_slope": simulate.get("sd_slope", float("nan")),
                "sd_residual": simulate.get("sd_residual", float("nan")),
                "dropout": "yes" if "dropout" in simulate else "no",
            }
        )
    return pipe_table(pd.DataFrame(rows), "Shrinkage settings (simulations: GPA-like parameters).")


def negative_slopes(results: Results, setting: str | None = None, estimate: str | None = None) -> str:
    """Inline count (``setting`` and ``estimate``) or the table across all settings."""
    table = results.csv("shrinkage/negative_slopes.csv")
    if setting is not None:
        row = table[(table["setting"] == setting) & (table["estimate"] == estimate)]
        if row.empty:
            raise MissingResult(f"results/shrinkage/negative_slopes.csv: {setting}/{estimate}")
        return number(int(row["n_negative_slopes"].iloc[0]))
    wide = table.pivot(index="setting", columns="estimate", values="n_negative_slopes")
    wide = wide.loc[list(dict.fromkeys(table["setting"]))]
    wide = wide.reset_index()
    wide["setting"] = wide["setting"].map(lambda s: setting_label(results, s))
    wide = wide.rename(columns={"separate": "separate regressions", "mixed": "mixed model"})
    wide["groups"] = table.drop_duplicates("setting")["n_groups"].to_numpy()
    return pipe_table(wide, "Number of negative per-group slopes.")


def figure(results: Results, file: str, caption: str) -> str:
    """Copy a results figure beside the filled template; a captioned image in its own paragraph."""
    source = results.path(file)
    target = results.figures_dir / Path(file).name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return f"![{caption}]({target.parent.name}/{target.name})"


# --------------------------------------------------------------------------------------------
# diagnostics and provenance


def diagnostics(results: Results) -> str:
    """Per fitted model: data, fitting path, optimizer attempts, convergence, singularity, warnings."""
    rows, warnings = [], []
    folders = results.keys(r"models/\w+/fit\.json") + results.keys(r"shrinkage/\w+/fit\.json")
    for key in folders:
        folder = key.rsplit("/", 1)[0]
        fit = results.json(key)
        name = folder.split("/")[-1]
        if folder.startswith("shrinkage/"):
            name = f"shrinkage: {name}"
        attempts = "–"
        if results.has(f"{folder}/attempts.csv"):
            tried = results.csv(f"{folder}/attempts.csv")
            attempts = ", ".join(
                (f"**{row.optimizer}**" if row.optimizer == fit["optimizer"] else row.optimizer)
                + ("" if row.converged else " (failed)")
                for row in tried.itertuples()
            )
        rows.append(
            {
                "model": name,
                "data": fit["dataset"],
                "n": fit["n_obs"],
                "path": fit["path"],
                "optimizers tried (kept in bold)": attempts if attempts != "–" else f"**{fit['optimizer']}**",
                "REML criterion": -2 * fit["logLik"],
                "converged": "yes" if fit["converged"] else "**no**",
                "singular": "**yes**" if fit["singular"] else "no",
                "warnings": str(len(fit["warnings"])),
            }
        )
        warnings += [f"- {code(name)}: {w}" for w in fit["warnings"]]
    if not rows:
        raise MissingResult("results/models/<model>/fit.json")
    table = pipe_table(
        pd.DataFrame(rows),
        "Fitting path (fast: vectorized profiled REML verified by statsmodels' MixedLM.loglike; "
        "statsmodels: robust multi-optimizer fit), the optimizers tried (bold: the solution kept) "
        "(REML criterion = -2 REML log-likelihood), and the checks.",
    )
    singular = [r["model"] for r in rows if r["singular"] != "no"]
    notes = [
        f"Singular fits: {listing([code(m) for m in singular])}." if singular else "No fit is singular.",
        "All fits converged." if all(r["converged"] == "yes" for r in rows) else "**Some fits did not converge.**",
    ]
    notes.append("Warnings:\n\n" + "\n".join(warnings) if warnings else "No fit reported a warning.")
    return table + "\n\n" + "\n\n".join(notes)


def git_state(repo: str | Path) -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout

    try:
        return {"commit": git("rev-parse", "HEAD").strip(), "dirty": bool(git("status", "--porcelain").strip())}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict[str, str]:
    versions = {"Python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def provenance(results: Results, context: dict) -> str:
    rows, simulated = [], []
    for key in results.keys(r"data/(\w+)\.schema\.json"):
        schema = results.json(key)
        source = results.config.get("datasets", {}).get(schema["dataset"], {}).get("source", {})
        recorded = schema["source"]
        if "sha256" not in recorded:  # simulated: generator, seed and parameters
            simulated.append(f"- {code(schema['dataset'])}: {code(json.dumps(recorded))}")
            continue
        where = f"<{source['url']}>" if "url" in source else code(source.get("path", "–"))
        rows.append(
            f"- **{recorded['file']}** (data set {code(schema['dataset'])}, {number(schema['rows'])} rows "
            f"prepared)\n  - source: {where}\n  - SHA-256 (verified): {code(recorded['sha256'])}"
        )
    git = context["git"]
    commit = "not a git checkout" if git["commit"] is None else code(git["commit"])
    tree = (
        ""
        if git["dirty"] is None
        else (" (working tree **dirty**: uncommitted changes)" if git["dirty"] else " (clean working tree)")
    )
    versions = pd.DataFrame(list(context["versions"].items()), columns=["software", "version"])
    config = yaml.safe_dump(results.config, sort_keys=False, width=100, default_flow_style=None).rstrip()
    return "\n\n".join(
        [
            "## Raw data",
            "Each raw file's pinned source and the SHA-256 verified when it was fetched:\n\n"
            + "\n".join(rows)
            + ("\n\nSimulated data sets (no raw file):\n\n" + "\n".join(simulated) if simulated else ""),
            "## Software",
            pipe_table(versions, "Versions in the environment that rendered this report."),
            "## Run",
            f"- Workflow commit: {commit}{tree}\n"
            f"- Rendered: {context['date']}\n"
            f"- Renderer: {context['renderer_label']}",
            "## Configuration as used",
            f"```yaml\n{config}\n```",
        ]
    )


# --------------------------------------------------------------------------------------------
# filling the template

BLOCKS = {
    "fixed_effects": fixed_effects,
    "variance_components": variance_components,
    "correlation_matrix": correlation_matrix,
    "singular_note": singular_note,
    "value": value,
    "model_summary": model_summary,
    "comparison_models": comparison_models,
    "comparison": comparison,
    "focus_random_effects": focus_random_effects,
    "focus_predictions": focus_predictions,
    "coefficient_check": coefficient_check,
    "intervals": intervals,
    "aic": aic,
    "many_regressions": many_regressions,
    "shrinkage_sd": shrinkage_sd,
    "shrinkage_settings": shrinkage_settings,
    "negative_slopes": negative_slopes,
    "figure": figure,
    "diagnostics": diagnostics,
}


def _arguments(text: str) -> dict[str, str]:
    arguments = {}
    for token in shlex.split(text):
        key, sep, val = token.partition("=")
        if not sep:
            raise ReportError(f"placeholder argument {token!r}: expected key=value")
        arguments[key] = val
    return arguments


def _fill(text: str, results: Results, context: dict) -> str:
    def replace(match: re.Match) -> str:
        name, arguments = match.group(1), _arguments(match.group(2))
        if name == "provenance":
            return provenance(results, context)
        if name not in BLOCKS:
            raise ReportError(f"unknown placeholder lmmflow:{name}; known: {', '.join([*BLOCKS, 'provenance'])}")
        try:
            return BLOCKS[name](results, **arguments)
        except TypeError as error:
            raise ReportError(f"placeholder lmmflow:{name}: {error}") from None

    return DIRECTIVE.sub(replace, text)


def fill_template(text: str, results: Results, context: dict) -> tuple[str, list[str]]:
    """The filled markdown, and the results whose absence left sections out."""
    left_out = []

    def section(match: re.Match) -> str:
        try:
            return _fill(match.group(1), results, context)
        except MissingResult as missing:
            left_out.append(str(missing))
            return ""

    text = SECTION.sub(section, text)
    try:
        text = _fill(text, results, context)
    except MissingResult as missing:
        raise ReportError(f"the report needs {missing}, which is not among the job's inputs") from None
    return re.sub(r"\n{3,}", "\n\n", text), left_out


def front_matter(text: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    return yaml.safe_load(match.group(1)) if match else {}


# --------------------------------------------------------------------------------------------
# rendering


def select_renderer(choice: str, which=shutil.which) -> tuple[str, str]:
    """(renderer, executable): Quarto if asked for, or found on PATH under ``auto``; else pandoc."""
    if choice not in RENDERERS:
        raise ReportError(f"report.renderer {choice!r}: expected one of {', '.join(RENDERERS)}")
    quarto = which("quarto")
    if choice == "quarto" and quarto is None:
        raise ReportError("report.renderer is 'quarto' but no `quarto` is on PATH; use 'auto' or 'pandoc'")
    if choice in ("auto", "quarto") and quarto is not None:
        return "quarto", quarto
    import pypandoc

    return "pandoc", pypandoc.get_pandoc_path()


def quarto_command(quarto: str, qmd: str, output_dir: str) -> list[str]:
    """Render one file to HTML into ``output_dir`` (embed-resources comes from its front matter)."""
    return [quarto, "render", qmd, "--to", "html", "--output-dir", output_dir]


def pandoc_command(pandoc: str, source: str, html: str, css: str, title: str) -> list[str]:
    return [
        pandoc,
        source,
        "--from",
        "markdown",
        "--to",
        "html5",
        "--standalone",
        "--embed-resources",
        "--toc",
        "--number-sections",
        "--css",
        css,
        "--metadata",
        f"title={title}",
        "--output",
        html,
    ]


def renderer_version(executable: str) -> str:
    try:
        result = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=60)
    except OSError:
        return "unknown version"
    first = (result.stdout.strip().splitlines() or ["unknown version"])[0]
    return first.removeprefix("pandoc ").strip()


def render(renderer: str, executable: str, build: Path, qmd: str, css: str, title: str, log=None) -> Path:
    """Render ``build/qmd``; return the HTML file written inside ``build``."""
    if renderer == "quarto":
        output_dir = build / "_rendered"
        command = quarto_command(executable, qmd, str(output_dir.resolve()))
        html = output_dir / (Path(qmd).stem + ".html")
    else:
        html = build / (Path(qmd).stem + ".html")
        command = pandoc_command(executable, qmd, html.name, css, title)
    if log is not None:
        print("render:", shlex.join(command), file=log)
    result = subprocess.run(command, cwd=build, capture_output=True, text=True)
    if log is not None:
        print(result.stdout, result.stderr, sep="\n", file=log)
    if result.returncode != 0:
        raise ReportError(f"{renderer} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    if not html.exists():
        raise ReportError(f"{renderer} reported success but wrote no {html}")
    return html


def build_report(
    *,
    template: str | Path,
    css: str | Path,
    results: list[str],
    config: dict,
    renderer: str,
    repo: str | Path,
    html: str | Path,
    build: str | Path,
    log=None,
) -> dict:
    """Fill the template from ``results`` into ``build/``, render it, write ``html`` atomically."""
    started = time.perf_counter()
    build = Path(build)
    build.mkdir(parents=True, exist_ok=True)
    template, css = Path(template), Path(css)
    text = template.read_text()
    chosen, executable = select_renderer(renderer)
    version = renderer_version(executable)
    label = f"Quarto {version}" if chosen == "quarto" else f"pandoc {version} (pypandoc-binary)"
    context = {
        "git": git_state(repo),
        "versions": package_versions(),
        "date": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        "renderer_label": label,
    }
    index = Results(results, config=config, figures_dir=build / "figures")
    filled, left_out = fill_template(text, index, context)
    qmd = build / template.name
    qmd.write_text(filled)
    shutil.copyfile(css, build / css.name)
    title = str(front_matter(text).get("title", "lmmflow report"))
    rendered = render(chosen, executable, build, qmd.name, css.name, title, log=log)
    with io.atomic_path(html) as temporary:
        shutil.copyfile(rendered, temporary)
    summary = {
        "renderer": label,
        "left_out": left_out,
        "seconds": round(time.perf_counter() - started, 2),
        "bytes": Path(html).stat().st_size,
    }
    if log is not None:
        print(json.dumps(summary, indent=2), file=log)
    return summary
