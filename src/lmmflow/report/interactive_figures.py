"""The chapter's figures as plotly figures: the trajectories (and their animation), the fitted
lines of the mixed model vs the separate regressions, the scatter of per-group coefficients.

Built from a setting's prepared data and ``coefficients.csv``, with the static figures' palette,
line styles and highlighted groups (``lmmflow.outputs.figures``), so both versions show the same thing.
Every hover names the group; data are plain lists (``as_list``) so they read back as JSON numbers.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lmmflow.inference.shrinkage import MIXED, SEPARATE
from lmmflow.outputs.figures import (
    BACKGROUND_COLOR,
    ESTIMATE_STYLE,
    HIGHLIGHT_COLORS,
    HIGHLIGHT_LINESTYLES,
    PALETTE,
    TREND_STYLE,
)
from lmmflow.report.interactive import HEIGHT, as_list

DASH = {"-": "solid", "--": "dash", "-.": "dashdot", ":": "dot"}  # matplotlib -> plotly
LAYOUT = {"template": "simple_white", "height": HEIGHT, "hovermode": "closest", "margin": {"t": 60, "r": 20}}
FRAME_MS = 600


class Setting:
    """What a setting's figures need: its columns and labels, data and coefficients by group."""

    def __init__(self, spec: dict, data: pd.DataFrame, coefficients: pd.DataFrame):
        from lmmflow.inference.shrinkage import setting_variables

        columns = setting_variables(spec)
        self.group, self.x, self.y = columns["group"], columns["predictor"], columns["response"]
        self.xlabel, self.ylabel = spec.get("xlabel", self.x), spec.get("ylabel", self.y)
        self.title = spec.get("label", "")
        self.data = data  # as prepared: the static figures' choices (highlights) are made on it
        self.labels = data[self.group].astype(str)
        self.coefficients = coefficients.set_index(coefficients.columns[0])
        self.coefficients.index = self.coefficients.index.astype(str)

    def hover(self, extra: str) -> str:
        return f"{self.group.capitalize()} %{{customdata[0]}}<br>{extra}<extra></extra>"

    def path(self, label: str) -> pd.DataFrame:
        return self.data.loc[self.labels == label, [self.x, self.y]].sort_values(self.x, kind="stable")


def gapped(pieces: list[tuple[str, list, list, list]]) -> dict:
    """Many lines as one trace: each piece's points then a gap; customdata per point."""
    x, y, custom = [], [], []
    for label, xs, ys, extra in pieces:
        x += [*xs, None]
        y += [*ys, None]
        custom += [[label, *extra]] * len(xs) + [[None] * (1 + len(extra))]
    return {"x": as_list(x), "y": as_list(y), "customdata": custom}


def slopes_of(setting: Setting, label: str) -> list[float]:
    row = setting.coefficients.loc[label]
    return [float(row[f"slope_{SEPARATE}"]), float(row[f"slope_{MIXED}"])]


def path_pieces(setting: Setting, labels) -> list[tuple[str, list, list, list]]:
    return [
        (label, *(setting.path(label)[c].tolist() for c in (setting.x, setting.y)), slopes_of(setting, label))
        for label in labels
    ]


def trajectory_trace(setting: Setting, labels, **style) -> go.Scatter:
    hover = setting.hover(
        f"{setting.xlabel} %{{x}}: {setting.ylabel} %{{y}}<br>own slope %{{customdata[1]:+.3f}}"
        "<br>mixed model slope %{customdata[2]:+.3f}"
    )
    return go.Scatter(**gapped(path_pieces(setting, labels)), hovertemplate=hover, **style)


def background(setting: Setting) -> go.Scatter:
    labels = list(setting.coefficients.index)
    return trajectory_trace(
        setting,
        labels,
        mode="lines",
        line={"color": BACKGROUND_COLOR, "width": 1},
        opacity=0.45,
        name=f"All {len(labels)} {setting.group}s",
    )


def highlight_style(i: int) -> dict:
    color, dash = HIGHLIGHT_COLORS[i % len(HIGHLIGHT_COLORS)], DASH[HIGHLIGHT_LINESTYLES[i % len(HIGHLIGHT_LINESTYLES)]]
    return {"mode": "lines+markers", "line": {"color": color, "dash": dash, "width": 3}, "marker": {"size": 7}}


def axes(fig: go.Figure, setting: Setting, title: str) -> go.Figure:
    ticks = sorted(setting.data[setting.x].dropna().unique())
    fig.update_layout(**LAYOUT, title=title)
    fig.update_xaxes(title=setting.xlabel, tickvals=as_list(ticks) if len(ticks) <= 12 else None)
    fig.update_yaxes(title=setting.ylabel)
    return fig


def trajectories(setting: Setting, highlight: list[str]) -> go.Figure:
    """Every group's observed path in grey, the static figure's highlighted groups on top."""
    fig = go.Figure(background(setting))
    for i, label in enumerate(highlight):
        own = slopes_of(setting, label)[0]
        fig.add_trace(
            trajectory_trace(
                setting,
                [label],
                name=f"{setting.group.capitalize()} {label} (own slope {own:+.2f})",
                **highlight_style(i),
            )
        )
    return axes(fig, setting, f"{setting.title}: trajectories by {setting.group} (hover for names and slopes)")


def animation(setting: Setting) -> go.Figure:
    """The trajectories with one group highlighted after another, from the lowest own slope to the
    highest (the chapter's animation), with play/pause and a slider naming the group."""
    order = list(setting.coefficients.sort_values(f"slope_{SEPARATE}", kind="stable").index)
    frames = [
        go.Frame(data=[trajectory_trace(setting, [label], **highlight_style(0))], traces=[1], name=label)
        for label in order
    ]
    fig = go.Figure(
        [
            background(setting),
            trajectory_trace(setting, order[:1], name=f"Highlighted {setting.group}", **highlight_style(0)),
        ],
        frames=frames,
    )
    play = {"frame": {"duration": FRAME_MS, "redraw": False}, "fromcurrent": True, "transition": {"duration": 0}}
    pause = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}
    fig.update_layout(
        updatemenus=[
            {
                "type": "buttons",
                "direction": "left",
                "x": 0,
                "y": -0.2,
                "xanchor": "left",
                "showactive": False,
                "buttons": [
                    {"label": "Play", "method": "animate", "args": [None, play]},
                    {"label": "Pause", "method": "animate", "args": [[None], pause]},
                ],
            }
        ],
        sliders=[
            {
                "x": 0.15,
                "len": 0.85,
                "y": -0.12,
                "currentvalue": {"prefix": f"{setting.group.capitalize()} "},
                "steps": [{"label": label, "method": "animate", "args": [[label], pause]} for label in order],
            }
        ],
    )
    fig = axes(fig, setting, f"{setting.title}: one {setting.group} after another, by own slope")
    fig.update_layout(height=HEIGHT + 80, margin={"b": 130})
    return fig


def line_pieces(setting: Setting, estimate: str, mask, ends: list[float]) -> list:
    rows = setting.coefficients[mask]
    a, b = rows[f"intercept_{estimate}"], rows[f"slope_{estimate}"]
    return [(label, ends, [a[label] + b[label] * x for x in ends], [a[label], b[label]]) for label in rows.index]


def effects(setting: Setting, population: dict) -> go.Figure:
    """(a) the mixed model's line per group, (b) each group's own OLS line; downward slopes in the
    static figure's vermillion dashes, the standard regression line in black."""
    ends = [float(setting.data[setting.x].min()), float(setting.data[setting.x].max())]
    names = {MIXED: "Mixed model", SEPARATE: "Own OLS"}
    fig = make_subplots(
        1,
        2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[
            f"(a) Mixed model: line per {setting.group}",
            f"(b) Separate regressions: OLS line per {setting.group}",
        ],
    )
    hover = setting.hover("intercept %{customdata[1]:.3f}, slope %{customdata[2]:+.3f}")
    for column, estimate in enumerate((MIXED, SEPARATE), start=1):
        slopes = setting.coefficients[f"slope_{estimate}"]
        for trend, mask in (("upward", slopes >= 0), ("downward", slopes < 0)):
            style = TREND_STYLE[trend]
            fig.add_trace(
                go.Scatter(
                    **gapped(line_pieces(setting, estimate, mask, ends)),
                    mode="lines",
                    hovertemplate=hover,
                    line={
                        "color": style["color"],
                        "dash": DASH[style["linestyle"]],
                        "width": 1 if trend == "upward" else 2,
                    },
                    opacity=0.35 if trend == "upward" else 0.9,
                    name=f"{names[estimate]}, {trend} slope: {int(mask.sum())} {setting.group}s",
                ),
                1,
                column,
            )
        line = [population["intercept"] + population["slope"] * x for x in ends]
        fig.add_trace(
            go.Scatter(
                x=ends,
                y=line,
                mode="lines",
                line={"color": PALETTE["black"], "width": 3},
                showlegend=column == 1,
                name=f"Standard regression: {population['intercept']:.2f} + {population['slope']:.3f} × {setting.x}",
                hovertemplate="standard regression<extra></extra>",
            ),
            1,
            column,
        )
    fig = axes(fig, setting, f"{setting.title}: predicted trends (hover names the {setting.group})")
    fig.update_yaxes(title=None, col=2)
    fig.update_layout(legend={"orientation": "h", "y": -0.3}, height=HEIGHT + 60, margin={"b": 130})
    return fig


def coefficient_scatter(setting: Setting) -> go.Figure:
    """Each group's mixed-model coefficient against its own regression's, intercepts and slopes;
    points below/above the diagonal were pulled toward the population effect (shrinkage)."""
    fig = make_subplots(1, 2, subplot_titles=["Intercepts", f"Slopes ({setting.x})"], horizontal_spacing=0.1)
    for column, coefficient in enumerate(("intercept", "slope"), start=1):
        rows = setting.coefficients[[f"{coefficient}_{SEPARATE}", f"{coefficient}_{MIXED}"]].dropna()
        own, mixed = rows.iloc[:, 0], rows.iloc[:, 1]
        fig.add_trace(
            go.Scatter(
                x=as_list(own),
                y=as_list(mixed),
                mode="markers",
                customdata=[[label] for label in rows.index],
                marker={"color": ESTIMATE_STYLE[MIXED]["color"], "size": 6, "opacity": 0.7},
                showlegend=False,
                name=coefficient,
                hovertemplate=setting.hover(f"{coefficient}: own regression %{{x:.3f}}, mixed model %{{y:.3f}}"),
            ),
            1,
            column,
        )
        low, high = float(min(own.min(), mixed.min())), float(max(own.max(), mixed.max()))
        fig.add_trace(
            go.Scatter(
                x=[low, high],
                y=[low, high],
                mode="lines",
                hoverinfo="skip",
                showlegend=column == 1,
                line={"color": PALETTE["black"], "dash": "dash", "width": 1},
                name="No shrinkage (mixed = own)",
            ),
            1,
            column,
        )
        fig.update_xaxes(title=f"Own regression's {coefficient}", row=1, col=column)
        fig.update_yaxes(title=f"Mixed model's {coefficient}", row=1, col=column)
    fig.update_layout(
        **LAYOUT, title=f"{setting.title}: per-{setting.group} coefficients, mixed model vs own regression"
    )
    fig.update_layout(legend={"orientation": "h", "y": -0.2})
    return fig


def _trajectories(setting: Setting) -> go.Figure:
    from lmmflow.outputs.figures import pick_highlights

    return trajectories(setting, pick_highlights(setting.data, setting.group, setting.x, setting.y))


def _effects(setting: Setting) -> go.Figure:
    from lmmflow.inference.shrinkage import population_line

    return effects(setting, population_line(setting.data, setting.x, setting.y))


# The report's ``lmmflow:interactive plot=NAME``: what each figure is made of is decided here, as
# the static figure's script decides it (same highlighted groups, same population line).
INTERACTIVE = {
    "trajectories": _trajectories,
    "animation": animation,
    "effects": _effects,
    "coefficient_scatter": coefficient_scatter,
}
