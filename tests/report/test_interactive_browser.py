"""The report's interactive figures in headless Chromium, offline, over the DevTools protocol:
plotly draws every figure (its SVG plot layers exist after the scripts ran), the animation has a
frame per student and plays, nothing is logged as an error, and the page requests nothing but
itself and its embedded data: URLs."""

import pytest
from browser_helpers import CHROMIUM, SKIP_REASON, DevTools, errors, requests

pytestmark = pytest.mark.workflow
if CHROMIUM is None:
    pytest.skip(SKIP_REASON, allow_module_level=True)

FIGURES = ["trajectories", "animation", "effects", "coefficient_scatter"]
DRAWN = """Array.from(document.querySelectorAll('.js-plotly-plot')).map(function (d) {
  return [d.id, d.querySelectorAll('.main-svg').length, d.querySelectorAll('.scatterlayer .trace').length];
})"""
ANIMATION = "document.getElementById('lmmflow-gpa-animation')"


@pytest.fixture(scope="module")
def rendered(completed_workflow):
    return completed_workflow / "results" / "report" / "report.html"


@pytest.fixture(scope="module")
def browser(rendered, tmp_path_factory):
    """The report open in a tab: (DevTools, session)."""
    devtools = DevTools(tmp_path_factory.mktemp("chromium") / "profile")
    try:
        yield devtools, devtools.open_page(rendered.as_uri())
    finally:
        devtools.close()


def test_every_interactive_figure_is_drawn(browser):
    devtools, session = browser
    drawn = {name: (svgs, traces) for name, svgs, traces in devtools.evaluate(DRAWN, session)}
    assert set(drawn) == {f"lmmflow-gpa-{figure}" for figure in FIGURES}
    for name, (svgs, traces) in drawn.items():
        assert svgs >= 2 and traces >= 2, (name, svgs, traces)


def test_the_animation_plays(browser):
    devtools, session = browser
    assert devtools.evaluate(f"{ANIMATION}._transitionData._frames.length", session) == 200
    buttons = devtools.evaluate(
        f"Array.from({ANIMATION}.querySelectorAll('.updatemenu-button')).map(function (b) {{ return b.textContent; }})",
        session,
    )
    assert buttons == ["Play", "Pause"]
    assert devtools.evaluate(f"{ANIMATION}._fullLayout.sliders[0].active", session) == 0
    devtools.evaluate(
        f"{ANIMATION}.querySelector('.updatemenu-button').dispatchEvent(new MouseEvent('click', {{bubbles: true}}))",
        session,
    )
    devtools.wait_for("Never.sent", 1.5)  # two frames of the animation
    assert devtools.evaluate(f"{ANIMATION}._fullLayout.sliders[0].active", session) >= 1


def test_no_error_is_logged(browser):
    devtools, _ = browser
    assert errors(devtools.events) == []


def test_the_page_requests_nothing_over_the_network(browser, rendered):
    devtools, _ = browser
    urls = requests(devtools.events)
    assert urls and urls[0] == rendered.as_uri()
    assert [url for url in urls[1:] if not url.startswith("data:")] == []
