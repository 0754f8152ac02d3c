"""Rendering: Quarto when asked for, or when it is on PATH and the renderer is ``auto``; otherwise
the pandoc bundled with pypandoc-binary. ``build_report`` fills the template and renders it."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from lmmflow.outputs import io
from lmmflow.report.interactive import embed_library, with_library
from lmmflow.report.provenance import run_context
from lmmflow.report.results import ReportError, Results
from lmmflow.report.template import fill_template, front_matter

RENDERERS = ("auto", "quarto", "pandoc")


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
    index = Results(results, config=config, figures_dir=build / "figures")
    filled, left_out = fill_template(text, index, run_context(repo, label))
    qmd = build / template.name
    qmd.write_text(with_library(filled))
    shutil.copyfile(css, build / css.name)
    title = str(front_matter(text).get("title", "lmmflow report"))
    rendered = render(chosen, executable, build, qmd.name, css.name, title, log=log)
    with io.atomic_path(html) as temporary:
        Path(temporary).write_text(embed_library(Path(rendered).read_text(encoding="utf-8")), encoding="utf-8")
    summary = {
        "renderer": label,
        "left_out": left_out,
        "seconds": round(time.perf_counter() - started, 2),
        "bytes": Path(html).stat().st_size,
    }
    if log is not None:
        print(json.dumps(summary, indent=2), file=log)
    return summary


def select_renderer(choice: str, which=shutil.which) -> tuple[str, str]:
    """(renderer, executable): Quarto if asked for, or found on PATH under ``auto``; else pandoc."""
    if choice not in RENDERERS:
        raise ReportError(f"report.renderer {choice!r}: expected one of {', '.join(RENDERERS)}")
    quarto = which("quarto")
    if choice == "quarto" and quarto is None:
        raise ReportError("report.renderer is 'quarto' but no `quarto` is on PATH; use 'auto' or 'pandoc'")
    if choice in ("auto", "quarto") and quarto is not None:
        return "quarto", quarto
    import pypandoc  # only when pandoc renders

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
