"""The rule graph picture in the README (lmmflow.pipeline.rulegraph)."""

import random
import re

from conftest import ROOT

from lmmflow.pipeline.rulegraph import normalize_dot, snakemake_rulegraph


def test_rulegraph_normalization_ignores_numbering_colours_and_order():
    dot = (
        'digraph snakemake_dag {\n\t0[label = "all", color = "0.1 0.6 0.85", style="rounded"];\n'
        '\t1[label = "fit", color = "0.2 0.6 0.85", style="rounded"];\n'
        '\t2[label = "prepare", color = "0.3 0.6 0.85", style="rounded"];\n\t1 -> 0\n\t2 -> 1\n\t2 -> 0\n}\n'
    )
    lines = dot.splitlines()
    body = lines[1:-1]
    random.Random(1).shuffle(body)
    renumbered = "\n".join([lines[0], *body, lines[-1]]).replace('"0.1', '"0.9').replace("2", "7")
    assert normalize_dot(dot) == normalize_dot(renumbered)
    assert '"prepare" -> "all"' not in normalize_dot(dot)  # implied by prepare -> fit -> all
    assert '"prepare" -> "fit";' in normalize_dot(dot) and '"fit" -> "all";' in normalize_dot(dot)


def test_committed_rulegraph_matches_the_workflow():
    committed = (ROOT / "docs" / "rulegraph.dot").read_text()
    assert normalize_dot(snakemake_rulegraph(ROOT)) == committed, (
        "docs/rulegraph.dot is out of date: run `python -m lmmflow.pipeline.rulegraph` and commit docs/"
    )
    svg = (ROOT / "docs" / "rulegraph.svg").read_text()
    for rule in re.findall(r'^    "(\w+)";$', committed, re.MULTILINE):
        assert f">{rule}</text>" in svg, f"docs/rulegraph.svg lacks {rule}: run `python -m lmmflow.pipeline.rulegraph`"
    assert "docs/rulegraph.svg" in (ROOT / "README.md").read_text()
