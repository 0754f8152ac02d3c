"""The chapter's random-slope figures: trajectories, shrinkage densities and fitted lines.

Matplotlib (Agg) only. One palette for every figure (Okabe-Ito, colour-blind safe); whenever two
series are compared, line style and legend labels carry the difference as well as colour. Every
figure is written as PNG and SVG through ``lmmflow.outputs.io.atomic_path``, without dates or version
strings and with a fixed SVG hash salt, so reruns give identical bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from lmmflow.inference.shrinkage import MIXED, SEPARATE, per_group_ols, population_line  # noqa: E402
from lmmflow.model.labels import single_factor  # noqa: E402
from lmmflow.outputs.io import atomic_path  # noqa: E402

# --- the one palette (Okabe-Ito) and the styles built from it --------------------------------
PALETTE = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#A0A0A0",
}
ESTIMATE_STYLE = {
    MIXED: {"color": PALETTE["blue"], "linestyle": "-", "label": "Mixed model"},
    SEPARATE: {"color": PALETTE["orange"], "linestyle": "--", "label": "Separate regressions"},
}
POPULATION_STYLE = {"color": PALETTE["black"], "linestyle": "-", "linewidth": 2.5}
TREND_STYLE = {
    "upward": {"color": PALETTE["green"], "linestyle": "-", "label": "Upward"},
    "downward": {"color": PALETTE["vermillion"], "linestyle": "--", "label": "Downward"},
}
HIGHLIGHT_COLORS = (PALETTE["blue"], PALETTE["vermillion"], PALETTE["green"], PALETTE["purple"])
HIGHLIGHT_LINESTYLES = ("-", "--", "-.", ":")
BACKGROUND_COLOR = PALETTE["grey"]

DPI = 150
RC = {
    "svg.hashsalt": "lmmflow",  # fixed ids in the SVG: identical bytes on reruns
    "svg.fonttype": "path",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "figure.dpi": DPI,
}
PNG_METADATA = {"Software": None}
SVG_METADATA = {"Date": None, "Creator": "lmmflow"}
COEFFICIENT_LABELS = {"intercept": "Intercept", "slope": "Slope"}


def save_figure(fig: plt.Figure, png: str | os.PathLike, svg: str | os.PathLike) -> None:
    """Write ``fig`` as PNG and SVG, each atomically and without run-dependent metadata."""
    with atomic_path(png) as temporary:
        fig.savefig(temporary, format="png", dpi=DPI, metadata=PNG_METADATA)
    with atomic_path(svg) as temporary:
        fig.savefig(temporary, format="svg", metadata=SVG_METADATA)
    plt.close(fig)


# --- 1. observed trajectories ----------------------------------------------------------------
def pick_highlights(data: pd.DataFrame, group: str, x: str, y: str, n: int = 4) -> list[str]:
    """``n`` groups spread over the range of their own OLS slopes (lowest to highest)."""
    ols = per_group_ols(data, group, x, y).dropna(subset=["slope"])
    ordered = ols.sort_values(["slope", group], kind="stable").reset_index(drop=True)
    positions = np.unique(np.round(np.linspace(0, len(ordered) - 1, n)).astype(int))
    return list(ordered.loc[positions, group])


def trajectories(
    data: pd.DataFrame,
    *,
    group: str,
    x: str,
    y: str,
    highlight: Sequence[str],
    png: str | os.PathLike,
    svg: str | os.PathLike,
    xlabel: str = "Occasion",
    ylabel: str | None = None,
    title: str = "Observed trajectories",
) -> None:
    """Every group's observed path in grey, a few highlighted groups on top, in colour."""
    codes, names = single_factor(data[group])
    labels = pd.Series(np.asarray(names, dtype=object)[codes], index=data.index)
    ols = per_group_ols(data, group, x, y).set_index(group)
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
        ax.add_collection(
            LineCollection(_paths(data, labels, x, y), colors=BACKGROUND_COLOR, linewidths=0.7, alpha=0.35, zorder=1)
        )
        handles = [Line2D([], [], color=BACKGROUND_COLOR, linewidth=1, label=f"All {labels.nunique()} {group}s")]
        for i, label in enumerate(highlight):
            rows = data[labels == str(label)].sort_values(x)
            (line,) = ax.plot(
                rows[x],
                rows[y],
                color=HIGHLIGHT_COLORS[i % len(HIGHLIGHT_COLORS)],
                linestyle=HIGHLIGHT_LINESTYLES[i % len(HIGHLIGHT_LINESTYLES)],
                marker="o",
                markersize=4,
                linewidth=2,
                zorder=3,
                label=f"{group.capitalize()} {label} (own slope {ols.loc[str(label), 'slope']:+.2f})",
            )
            handles.append(line)
        ax.autoscale_view()
        ticks = np.unique(data[x])
        if len(ticks) <= 12:
            ax.set_xticks(ticks)
        ax.set(xlabel=xlabel, ylabel=ylabel or y, title=title)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        save_figure(fig, png, svg)


def _paths(data: pd.DataFrame, labels: pd.Series, x: str, y: str) -> list[np.ndarray]:
    ordered = data.assign(_label=labels).sort_values(["_label", x], kind="stable")
    return [rows[[x, y]].to_numpy(dtype=float) for _, rows in ordered.groupby("_label", sort=True)]


# --- 2./3. densities of mixed vs separate coefficients --------------------------------------
def density_curve(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian kernel density (scipy, Scott's bandwidth); zeros when the values do not vary."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2 or np.ptp(values) == 0:
        return np.zeros_like(grid)
    from scipy import stats  # ~1 s to import: only the density figures pay for it

    return stats.gaussian_kde(values)(grid)


def _density_panel(ax: plt.Axes, coefficients: pd.DataFrame, coefficient: str) -> None:
    columns = {kind: coefficients[f"{coefficient}_{kind}"].to_numpy(dtype=float) for kind in (MIXED, SEPARATE)}
    every = np.concatenate(list(columns.values()))
    every = every[np.isfinite(every)]
    low, high = every.min(), every.max()
    pad = 0.15 * (high - low if high > low else 1.0)
    grid = np.linspace(low - pad, high + pad, 512)
    top = 0.0
    for kind in (MIXED, SEPARATE):  # the dashed series on top, so identical curves both show
        style = ESTIMATE_STYLE[kind]
        density = density_curve(columns[kind], grid)
        ax.plot(grid, density, color=style["color"], linestyle=style["linestyle"], linewidth=2, label=style["label"])
        ax.fill_between(grid, density, color=style["color"], alpha=0.12, linewidth=0)
        top = max(top, density.max())
    ax.set_ylim(0, 1.3 * top if top > 0 else 1.0)  # headroom for the SD note
    ax.set_xlim(grid[0], grid[-1])


def _sd_note(ax: plt.Axes, coefficients: pd.DataFrame, coefficient: str) -> None:
    sd = {kind: coefficients[f"{coefficient}_{kind}"].std(ddof=1) for kind in (MIXED, SEPARATE)}
    ax.text(
        0.02,
        0.97,
        f"SD mixed {sd[MIXED]:.3f}\nSD separate {sd[SEPARATE]:.3f}",
        transform=ax.transAxes,
        va="top",
        ha="left",
        fontsize=8,
    )


def _estimate_legend_handles() -> list[Line2D]:
    return [
        Line2D([], [], color=s["color"], linestyle=s["linestyle"], linewidth=2, label=s["label"])
        for s in (ESTIMATE_STYLE[MIXED], ESTIMATE_STYLE[SEPARATE])
    ]


def coefficient_densities(
    coefficients: pd.DataFrame,
    *,
    png: str | os.PathLike,
    svg: str | os.PathLike,
    predictor: str = "occasion",
    title: str = "Per-student coefficients: mixed model vs separate regressions",
) -> None:
    """1 x 2: densities of the intercepts and of the slopes, mixed model vs separate regressions."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
        for ax, coefficient in zip(axes, ("intercept", "slope")):
            _density_panel(ax, coefficients, coefficient)
            _sd_note(ax, coefficients, coefficient)
            name = "Intercept" if coefficient == "intercept" else f"Slope of {predictor}"
            ax.set(
                xlabel=name,
                ylabel="Density",
                title=f"{name}s" if coefficient == "intercept" else f"Slopes ({predictor})",
            )
        fig.suptitle(title)
        fig.legend(handles=_estimate_legend_handles(), loc="outside lower center", ncols=2)
        save_figure(fig, png, svg)


def _setting_subtitle(coefficients: pd.DataFrame) -> str:
    n = coefficients["n"].to_numpy()
    per_group = f"{n[0]} obs. each" if np.all(n == n[0]) else f"{n.min()}-{n.max()} obs. each"
    return f"{len(n)} groups, {per_group}"


def shrinkage_settings(
    settings: Mapping[str, pd.DataFrame],
    *,
    labels: Mapping[str, str],
    png: str | os.PathLike,
    svg: str | os.PathLike,
    title: str = "Shrinkage of per-group coefficients under different data settings",
) -> None:
    """2 rows (intercepts, slopes) x one column per setting; one legend for the figure."""
    names = list(settings)
    with plt.rc_context(RC):
        fig, axes = plt.subplots(2, len(names), figsize=(3.3 * len(names), 6.2), layout="constrained", squeeze=False)
        for column, name in enumerate(names):
            for row, coefficient in enumerate(("intercept", "slope")):
                ax = axes[row, column]
                _density_panel(ax, settings[name], coefficient)
                _sd_note(ax, settings[name], coefficient)
                ax.set_xlabel(COEFFICIENT_LABELS[coefficient])
                ax.tick_params(labelsize=8)
                ax.locator_params(axis="x", nbins=4)
                if column == 0:
                    ax.set_ylabel(f"{COEFFICIENT_LABELS[coefficient]}s\nDensity")
            axes[0, column].set_title(f"{labels.get(name, name)}\n{_setting_subtitle(settings[name])}", fontsize=10)
        fig.suptitle(title)
        fig.legend(handles=_estimate_legend_handles(), loc="outside lower center", ncols=2)
        save_figure(fig, png, svg)


def coefficient_scatter(
    coefficients: pd.DataFrame,
    *,
    png: str | os.PathLike,
    svg: str | os.PathLike,
    group_label: str = "student",
    predictor: str = "occasion",
    title: str = "Per-student coefficients: mixed model vs own regression",
) -> None:
    """1 x 2: each group's mixed-model intercept and slope against its own regression's, with the
    diagonal of no shrinkage (the static version of the report's interactive scatter)."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), layout="constrained")
        for ax, coefficient in zip(axes, ("intercept", "slope")):
            rows = coefficients[[f"{coefficient}_{SEPARATE}", f"{coefficient}_{MIXED}"]].dropna().to_numpy(dtype=float)
            ax.scatter(rows[:, 0], rows[:, 1], s=12, alpha=0.6, color=ESTIMATE_STYLE[MIXED]["color"])
            ends = [rows.min(), rows.max()]
            ax.plot(ends, ends, color=PALETTE["black"], linestyle="--", linewidth=1, label="No shrinkage (mixed = own)")
            name = COEFFICIENT_LABELS[coefficient] if coefficient == "intercept" else f"Slope of {predictor}"
            ax.set(
                xlabel=f"{name}: own regression",
                ylabel=f"{name}: mixed model",
                title=f"{name}s, one point per {group_label}",
            )
        axes[0].legend(loc="upper left")
        fig.suptitle(title)
        save_figure(fig, png, svg)


# --- 4. fitted lines -------------------------------------------------------------------------
def effects(
    coefficients: pd.DataFrame,
    population: Mapping[str, float],
    *,
    x_values: Sequence[float],
    png: str | os.PathLike,
    svg: str | os.PathLike,
    xlabel: str = "Occasion",
    ylabel: str = "Predicted value",
    group_label: str = "student",
    predictor: str = "occasion",
) -> None:
    """(a) the population line with each group's conditional mixed-model line; (b) each group's
    own OLS line, upward vs downward, with the population line.

    ``population`` has ``intercept`` and ``slope`` of the standard (pooled) regression.
    """
    x = np.array([min(x_values), max(x_values)], dtype=float)

    def segments(intercepts: np.ndarray, slopes: np.ndarray) -> np.ndarray:
        return np.stack([np.column_stack([x, a + b * x]) for a, b in zip(intercepts, slopes)])

    mixed_slopes = coefficients[f"slope_{MIXED}"].to_numpy()
    mixed = segments(coefficients[f"intercept_{MIXED}"].to_numpy(), mixed_slopes)
    separate_slopes = coefficients[f"slope_{SEPARATE}"].to_numpy()
    separate = segments(coefficients[f"intercept_{SEPARATE}"].to_numpy(), separate_slopes)
    population_y = population["intercept"] + population["slope"] * x
    population_label = f"Standard regression: {population['intercept']:.2f} + {population['slope']:.3f} × {predictor}"
    every = np.concatenate([mixed[..., 1].ravel(), separate[..., 1][np.isfinite(separate[..., 1])]])
    limits = np.array([every.min(), every.max()])
    limits += np.array([-0.04, 0.25]) * np.ptp(limits)  # headroom for the legends

    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, 2, figsize=(11, 5), layout="constrained", sharey=True)
        panels = (
            (axes[0], mixed, mixed_slopes, "Mixed model", 0.3, f"(a) Mixed model: conditional line per {group_label}"),
            (
                axes[1],
                separate,
                separate_slopes,
                "Own OLS",
                0.35,
                f"(b) Separate regressions: OLS line per {group_label}",
            ),
        )
        for ax, lines, slopes, name, alpha, title in panels:
            handles = []
            for trend, mask in (("upward", slopes >= 0), ("downward", slopes < 0)):
                style = TREND_STYLE[trend]
                # the few downward lines above the many upward ones, and more opaque
                ax.add_collection(
                    LineCollection(
                        lines[mask],
                        colors=style["color"],
                        linestyles=style["linestyle"],
                        linewidths=0.8 if trend == "upward" else 1.2,
                        alpha=alpha if trend == "upward" else 0.75,
                        zorder=1 if trend == "upward" else 2,
                    )
                )
                handles.append(
                    Line2D(
                        [],
                        [],
                        color=style["color"],
                        linestyle=style["linestyle"],
                        linewidth=1.5,
                        label=f"{name}, {style['label'].lower()} slope: {int(mask.sum())} {group_label}s",
                    )
                )
            ax.plot(x, population_y, **POPULATION_STYLE, zorder=3)
            handles.append(Line2D([], [], **POPULATION_STYLE, label=population_label))
            ax.legend(handles=handles, loc="upper left", fontsize=8)
            ax.set(title=title, xlabel=xlabel, xlim=(x[0], x[1]), ylim=tuple(limits))
            ticks = np.unique(np.asarray(x_values, dtype=float))
            if len(ticks) <= 12:
                ax.set_xticks(ticks)
        axes[0].set_ylabel(ylabel)
        save_figure(fig, png, svg)


# --- 5. scatter of a response on a predictor -------------------------------------------------
def scatter(
    data: pd.DataFrame,
    *,
    x: str,
    y: str,
    png: str | os.PathLike,
    svg: str | os.PathLike,
    title: str,
) -> None:
    """Points of ``y`` on ``x`` with the pooled least-squares line (the simulation exercise's plot)."""
    line = population_line(data, x, y)
    intercept, slope = line["intercept"], line["slope"]
    grid = np.array([data[x].min(), data[x].max()])
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
        ax.scatter(data[x], data[y], s=14, alpha=0.6, color=PALETTE["blue"], label="Observations")
        ax.plot(
            grid, intercept + slope * grid, **POPULATION_STYLE, label=f"Pooled OLS: {intercept:.2f} + {slope:.2f} × {x}"
        )
        ax.set(xlabel=x, ylabel=y, title=title)
        ax.legend(loc="upper left")
        save_figure(fig, png, svg)
