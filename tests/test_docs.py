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
    # glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial): lme4's
    # tight optimum (tolPwrss = 1e-12) logLik, and anova(g0, g)'s Chisq (25.6099) and Df
    assert abs(namespace["g"].loglik - -92.0262818745091) < 1e-4
    assert "Generalized linear mixed model fit by maximum likelihood (Laplace Approximation)" in printed
    anova = namespace["lmmflow"].anova(namespace["g0"], namespace["g"])
    assert abs(anova["Chisq"].iloc[1] - 25.6099375959153) < 2e-3 and anova["Df"].iloc[1] == 3


def test_readme_example_runs(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    namespace = run_page("README.md")
    printed = capsys.readouterr().out
    assert abs(namespace["m"].loglik - -871.814135979976) < 1e-6  # lme4's
    assert "Linear mixed model fit by REML" in printed and "Chisq" in printed
