"""The rendered report in headless Chromium: every image loads, the AICc table and the provenance
appendix are there, no Quarto-only syntax shows as text; a screenshot is saved."""

import html
import json
import re
import subprocess
from pathlib import Path

import pytest
from browser_helpers import CHROMIUM, HEADLESS, SKIP_REASON

pytestmark = pytest.mark.workflow

if CHROMIUM is None:
    pytest.skip(SKIP_REASON, allow_module_level=True)

RAW_SYNTAX = ["{{<", "{#fig-", "@fig-", "lmmflow:"]
# Runs in the page after it has loaded; its verdict is appended to the DOM that --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.from(document.images);
  var text = document.body.innerText;
  var verdict = {
    images: images.length,
    broken: images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                  .map(function (i) { return i.alt || i.src.slice(0, 80); }),
    raw: RAW.filter(function (s) { return text.indexOf(s) >= 0; }),
    headings: Array.from(document.querySelectorAll("h1, h2")).map(function (h) { return h.textContent.trim(); }),
    tables: Array.from(document.querySelectorAll("table")).map(function (t) {
      return Array.from(t.querySelectorAll("th")).map(function (th) { return th.textContent.trim(); });
    }),
    text: text
  };
  var out = document.createElement("pre");
  out.id = "lmmflow-probe";
  out.textContent = JSON.stringify(verdict);
  document.body.appendChild(out);
});
</script>"""


def chromium(user_data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, *HEADLESS, f"--user-data-dir={user_data_dir}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def rendered(completed_workflow):
    return completed_workflow / "results" / "report" / "report.html"


@pytest.fixture(scope="module")
def verdict(rendered, tmp_path_factory):
    """What the page looks like to a browser, after its scripts ran (a probed copy of the page)."""
    folder = tmp_path_factory.mktemp("browser")
    probed = folder / "probed.html"
    page = rendered.read_text()
    probe = PROBE.replace("RAW", json.dumps(RAW_SYNTAX))
    probed.write_text(page.replace("</body>", probe + "\n</body>") if "</body>" in page else page + probe)
    result = chromium(folder / "profile", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    match = re.search(r'<pre id="lmmflow-probe">(.*?)</pre>', result.stdout, re.DOTALL)
    assert match, f"no probe verdict in the dumped DOM:\n{result.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


def test_every_image_loads(verdict):
    assert verdict["images"] >= 4
    assert verdict["broken"] == []


def test_no_quarto_only_syntax_is_visible(verdict):
    assert verdict["raw"] == []


def test_the_aicc_comparison_and_its_verdict_are_shown(verdict):
    headers = [h for h in verdict["tables"] if "AICc" in h]
    assert ["model", "K", "AICc", "delta_AICc", "n_random_effects", "singular"] in headers
    text = verdict["text"]
    assert "Preferred model" in text and "AIC policy" in text
    assert "same data and the same fixed effects" in text


def test_the_provenance_appendix_is_there(verdict):
    assert any("provenance" in heading.lower() for heading in verdict["headings"])
    text = verdict["text"]
    for expected in (
        "SHA-256",
        "2fe359f22de7ecb919ed7a848ca21b4c096baa322b94dc443bef98f7f54d2b18",
        "statsmodels",
        "snakemake",
        "Workflow commit",
        "Renderer",
        "Configuration as used",
    ):
        assert expected in text, expected


def test_sections_are_numbered_with_a_table_of_contents(rendered):
    page = rendered.read_text()
    assert 'id="TOC"' in page
    assert "header-section-number" in page


def test_screenshot(rendered, tmp_path_factory):
    folder = tmp_path_factory.mktemp("screenshot")
    screenshot = rendered.parent / "report-screenshot.png"
    result = chromium(
        folder / "profile",
        "--hide-scrollbars",
        "--window-size=1280,2400",
        f"--screenshot={screenshot}",
        rendered.as_uri(),
    )
    assert screenshot.exists() and screenshot.stat().st_size > 50_000, result.stderr[-2000:]
    print(f"screenshot: {screenshot}")
