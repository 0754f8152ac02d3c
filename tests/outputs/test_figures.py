"""The shrinkage figures and the scatter plot are written (PNG + SVG), non-empty and identical on reruns."""

import numpy as np
import pytest

from lmmflow.data.simulate import simulate_random_slopes
from lmmflow.inference import shrinkage
from lmmflow.outputs import figures

NAMES = ("trajectories", "densities", "coefficient_scatter", "settings", "effects", "scatter")


@pytest.fixture(scope="module")
def small():
    data = simulate_random_slopes(30, 5, 2.6, 0.11, 0.2, 0.067, -0.1, 0.25, np.random.default_rng(3))
    coefficients, _, _ = shrinkage.analyze(data, group="student", predictor="occasion", response="y")
    return data, coefficients


def draw_all(directory, data, coefficients):
    paths = {name: (directory / f"{name}.png", directory / f"{name}.svg") for name in NAMES}
    highlight = figures.pick_highlights(data, "student", "occasion", "y", n=3)
    figures.trajectories(
        data,
        group="student",
        x="occasion",
        y="y",
        highlight=highlight,
        png=paths["trajectories"][0],
        svg=paths["trajectories"][1],
    )
    figures.coefficient_densities(coefficients, png=paths["densities"][0], svg=paths["densities"][1])
    figures.coefficient_scatter(coefficients, png=paths["coefficient_scatter"][0], svg=paths["coefficient_scatter"][1])
    figures.shrinkage_settings(
        {"a": coefficients, "b": coefficients},
        labels={"a": "Setting A"},
        png=paths["settings"][0],
        svg=paths["settings"][1],
    )
    pooled = shrinkage.pooled_ols(data, "occasion", "y")["value"].to_numpy()
    figures.effects(
        coefficients,
        {"intercept": pooled[0], "slope": pooled[1]},
        x_values=range(5),
        png=paths["effects"][0],
        svg=paths["effects"][1],
    )
    figures.scatter(data, x="occasion", y="y", png=paths["scatter"][0], svg=paths["scatter"][1], title="y on x")
    return paths


@pytest.fixture(scope="module")
def drawn(tmp_path_factory, small):
    """Every figure drawn once into a folder of its own: (folder, name -> (png, svg))."""
    folder = tmp_path_factory.mktemp("figures")
    return folder, draw_all(folder, *small)


def test_figures_are_written_and_not_empty(drawn):
    folder, paths = drawn
    for png, svg in paths.values():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        text = svg.read_text()
        assert text.startswith("<?xml") and text.rstrip().endswith("</svg>") and len(text) > 10_000
    assert not list(folder.glob(".*.tmp")), "temporary files left behind"


def test_figures_are_byte_identical_on_rerun(tmp_path, small, drawn):
    _, first = drawn
    second = draw_all(tmp_path / "second", *small)
    for name in NAMES:
        for a, b in zip(first[name], second[name]):
            assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between runs"


def test_highlights_span_the_slopes(small):
    data, _ = small
    chosen = figures.pick_highlights(data, "student", "occasion", "y", n=3)
    slopes = shrinkage.per_group_ols(data, "student", "occasion", "y").set_index("student")["slope"]
    assert len(chosen) == 3
    assert slopes[chosen[0]] == slopes.min() and slopes[chosen[-1]] == slopes.max()


def test_one_palette_styles_differ_by_line_style_too():
    mixed, separate = figures.ESTIMATE_STYLE["mixed"], figures.ESTIMATE_STYLE["separate"]
    assert mixed["linestyle"] != separate["linestyle"] and mixed["label"] != separate["label"]
    up, down = figures.TREND_STYLE["upward"], figures.TREND_STYLE["downward"]
    assert up["linestyle"] != down["linestyle"]
    used = [s["color"] for s in (mixed, separate, up, down)] + list(figures.HIGHLIGHT_COLORS)
    assert set(used) <= set(figures.PALETTE.values())
