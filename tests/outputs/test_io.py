"""Atomic writers: a failed write leaves the old file (or none), a killed writer's leftovers go."""

import json

import numpy as np
import pandas as pd
import pytest
from workflow_helpers import strict_json

from lmmflow.outputs import io


def test_failed_write_keeps_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "table.csv"
    io.write_csv(pd.DataFrame({"a": [1.5]}), target)
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as temporary:
            temporary.write_text("a\n2")
            raise RuntimeError("killed half-way")
    assert target.read_text() == "a\n1.5\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):  # not JSON serializable
        io.write_json({"x": object()}, tmp_path / "sub" / "fit.json")
    assert list((tmp_path / "sub").iterdir()) == []


def test_stale_temporary_of_a_killed_writer_is_removed(tmp_path):
    stale = tmp_path / ".fit.json.abc123.tmp"
    stale.write_text('{"trunc')
    other = tmp_path / ".other.json.abc123.tmp"
    other.write_text("")
    io.write_json({"logLik": -1.25}, tmp_path / "fit.json")
    assert json.loads((tmp_path / "fit.json").read_text()) == {"logLik": -1.25}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.abc123.tmp", "fit.json"]


def test_non_finite_numbers_are_written_as_null(tmp_path):
    content = {"logLik": float("nan"), "bounds": [float("inf"), -float("inf"), 1.5], "n": 3}
    io.write_json(content, tmp_path / "fit.json")
    assert strict_json((tmp_path / "fit.json").read_text()) == {"logLik": None, "bounds": [None, None, 1.5], "n": 3}


def test_json_is_ascii_whatever_the_text(tmp_path):
    io.write_json({"level": "Müller"}, tmp_path / "fit.json")
    raw = (tmp_path / "fit.json").read_bytes()
    assert raw.isascii() and strict_json(raw.decode("ascii")) == {"level": "Müller"}


def test_csv_floats_are_written_as_pandas_float_format_writes_them(tmp_path):
    table = pd.DataFrame(
        {
            "name": ["a", "b,c", "", None, "e", "f"],
            "x": [1.5, float("nan"), float("inf"), -float("inf"), -0.0, 1 / 3],
            "n": [1, 2, 3, 4, 5, 6],
            "small": np.array([1e-300, 2.5e-17, 123456789012345678.0, 0.1 + 0.2, -7.0, 1e16], dtype=float),
            "single": np.array([0.1, 1 / 3, float("nan"), 2.0, -1.5, 3e38], dtype=np.float32),
        }
    )
    table.columns = ["name", "x", "n", "small", "x"]  # a repeated name keeps its position
    before = table.copy()
    io.write_csv(table, tmp_path / "fast.csv")
    table.to_csv(tmp_path / "pandas.csv", index=False, float_format=io.FLOAT_FORMAT, lineterminator="\n")
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
    pd.testing.assert_frame_equal(table, before)  # the caller's table is not changed


def test_a_lone_missing_value_is_written_as_pandas_writes_it(tmp_path):
    table = pd.DataFrame({"x": [float("nan"), 2.0]})
    io.write_csv(table, tmp_path / "fast.csv")
    table.to_csv(tmp_path / "pandas.csv", index=False, float_format=io.FLOAT_FORMAT, lineterminator="\n")
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
