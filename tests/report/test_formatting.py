"""The report's numbers and pipe tables."""

import re

import pandas as pd

from lmmflow.report.formatting import listing, number, p_value, pipe_table


def test_numbers_as_the_chapter_prints_them():
    assert number(2.5992142) == "2.599"
    assert number(-0.0001) == "0.000"
    assert number(150) == "150"
    assert number(float("nan")) == "–"
    assert p_value(5.9e-73) == "<0.001"


def test_pipe_table_aligns_numbers_and_keeps_integers():
    table = pd.DataFrame({"model": ["a|b", "c"], "K": [10.0, float("nan")], "AICc": [2352.6696, 1.0]})
    text = pipe_table(table, "Caption.")
    lines = text.splitlines()
    assert lines[0] == "| model | K | AICc |"
    assert re.fullmatch(r"\|:-+\|-+:\|-+:\|", lines[1])
    assert lines[2] == "| a\\|b | 10 | 2352.670 |" and lines[3] == "| c | – | 1.000 |"
    assert lines[-1] == ": Caption."


def test_listing():
    assert listing(["a"]) == "a" and listing(["a", "b", "c"]) == "a, b and c"
