"""Rendering the report: the renderer chosen and its command line, and whole builds with a stand-in
Quarto and with the bundled pandoc."""

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from lmmflow.report import ReportError, build_report
from lmmflow.report.render import pandoc_command, quarto_command, select_renderer


def test_quarto_command_line():
    assert quarto_command("/opt/quarto/bin/quarto", "report.qmd", "/w/results/report/build/_rendered") == [
        "/opt/quarto/bin/quarto",
        "render",
        "report.qmd",
        "--to",
        "html",
        "--output-dir",
        "/w/results/report/build/_rendered",
    ]


def test_pandoc_command_line():
    command = pandoc_command("/p/pandoc", "report.qmd", "report.html", "report.css", "More Random Effects")
    assert command == [
        "/p/pandoc",
        "report.qmd",
        "--from",
        "markdown",
        "--to",
        "html5",
        "--standalone",
        "--embed-resources",
        "--toc",
        "--number-sections",
        "--css",
        "report.css",
        "--metadata",
        "title=More Random Effects",
        "--output",
        "report.html",
    ]


@pytest.mark.parametrize(
    "choice, on_path, expected",
    [("auto", True, "quarto"), ("auto", False, "pandoc"), ("quarto", True, "quarto"), ("pandoc", True, "pandoc")],
)
def test_renderer_selection(choice, on_path, expected):
    def which(name):
        return "/fake/quarto" if on_path and name == "quarto" else None

    assert select_renderer(choice, which=which)[0] == expected


def test_asking_for_quarto_without_quarto_is_refused():
    with pytest.raises(ReportError, match="no `quarto` is on PATH"):
        select_renderer("quarto", which=lambda name: None)
    with pytest.raises(ReportError, match="expected one of"):
        select_renderer("word", which=lambda name: None)


FAKE_QUARTO = """#!{python}
# A stand-in for quarto: records its arguments, writes <output-dir>/<name>.html.
import json, os, pathlib, sys
if sys.argv[1:] == ["--version"]:
    print("9.9.9")
    sys.exit(0)
pathlib.Path(os.environ["FAKE_QUARTO_LOG"]).write_text(json.dumps({{"argv": sys.argv, "cwd": os.getcwd()}}))
source = pathlib.Path(sys.argv[2])
out = pathlib.Path(sys.argv[sys.argv.index("--output-dir") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / (source.stem + ".html")).write_text("<html><body>fake quarto\\n" + source.read_text() + "</body></html>")
"""


@pytest.fixture
def fake_quarto(tmp_path, monkeypatch):
    """A `quarto` on PATH that records how it was called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    quarto = bin_dir / "quarto"
    quarto.write_text(FAKE_QUARTO.format(python=sys.executable))
    quarto.chmod(quarto.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "quarto.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_QUARTO_LOG", str(log))
    return quarto, log


def build(tmp_path, renderer):
    template = tmp_path / "report.qmd"
    template.write_text(
        "---\ntitle: Test report\nformat:\n  html:\n    embed-resources: true\n---\n\n# One\n\nText.\n\n"
        "<!-- lmmflow:section -->\n# Gone\n<!-- lmmflow:diagnostics -->\n<!-- lmmflow:end -->\n\n"
        "# Provenance\n\n<!-- lmmflow:provenance -->\n"
    )
    css = tmp_path / "report.css"
    css.write_text("body { color: #111; }\n")
    html, build_dir = tmp_path / "out" / "report.html", tmp_path / "out" / "build"
    summary = build_report(
        template=template,
        css=css,
        results=[],
        config={"report": {"renderer": renderer}},
        renderer=renderer,
        repo=ROOT,
        html=html,
        build=build_dir,
    )
    return summary, html, build_dir


def test_auto_renders_with_quarto_when_it_is_on_path(tmp_path, fake_quarto):
    quarto, log = fake_quarto
    summary, html, build_dir = build(tmp_path, "auto")
    call = json.loads(log.read_text())
    assert call["argv"][1:] == [
        "render",
        "report.qmd",
        "--to",
        "html",
        "--output-dir",
        str((build_dir / "_rendered").resolve()),
    ]
    assert Path(call["cwd"]) == build_dir.resolve()  # the copy in the job's own folder is rendered
    assert summary["renderer"] == "Quarto 9.9.9"
    text = html.read_text()
    assert "fake quarto" in text and "Renderer: Quarto 9.9.9" in text
    assert "embed-resources: true" in (build_dir / "report.qmd").read_text()


def test_pandoc_when_asked_even_with_quarto_on_path(tmp_path, fake_quarto):
    quarto, log = fake_quarto
    summary, html, _ = build(tmp_path, "pandoc")
    assert not log.exists()
    assert summary["renderer"].startswith("pandoc ") and summary["renderer"].endswith("(pypandoc-binary)")
    assert summary["left_out"] == ["results/models/<model>/fit.json"]
    text = html.read_text()
    assert "<title>Test report</title>" in text and 'id="TOC"' in text
    assert 'class="header-section-number">1</span>' in text and "color: #111" in text  # css embedded
    assert "lmmflow:" not in text and "Gone" not in text
    assert "Renderer: pandoc" in text and "Configuration as used" in text
