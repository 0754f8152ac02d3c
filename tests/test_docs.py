"""The examples of docs/ and the README run: every ```python block of a page, in order, in one
namespace, from the repository's root (the data mirror is ../shared/data)."""

import re

from conftest import ROOT

BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def run_page(name: str) -> dict:
    namespace: dict = {}
    for number, code in enumerate(BLOCK.findall((ROOT / name).read_text()), start=1):
        exec(compile(code, f"{name}, block {number}", "exec"), namespace)
    return namespace


def test_api_examples_run(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    namespace = run_page("docs/api.md")
    printed = capsys.readouterr().out
    assert abs(namespace["m"].loglik - -871.814135979976) < 1e-6  # lme4's
    assert "-871.8141 1755.63" in printed
    assert "grouping factor 'Subject': ['999']" in printed
    assert "Linear mixed model fit by REML" in printed


def test_readme_example_runs(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    namespace = run_page("README.md")
    printed = capsys.readouterr().out
    assert abs(namespace["m"].loglik - -871.814135979976) < 1e-6  # lme4's
    assert "Linear mixed model fit by REML" in printed and "Chisq" in printed
