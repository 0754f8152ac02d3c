"""Preparing data sets: rename, recode, factors, the data dictionary and the CSV round trip."""

import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import CONFIG, MIRROR

from lmmflow.data.prepare import (
    PrepareError,
    _as_factor,
    check_finite,
    check_spec,
    list_columns,
    prepare_dataset,
    read_prepared,
    read_raw,
    write_prepared,
)


def config_spec(name):
    return CONFIG["datasets"][name]


@pytest.fixture
def raw_csv(tmp_path):
    """A small raw table: numeric ids, text, a numeric code to recode, one missing value."""
    path = tmp_path / "toy.csv"
    pd.DataFrame(
        {
            "id": [10.0, 2.0, 2.0, 1.0],
            "town": ["b", "a", "c", None],
            "code": [1, 2, 3, 3],
            "y": [0.1, 0.2, 0.3, 1 / 3],
        }
    ).to_csv(path, index=False)
    return path


def toy(**spec):
    return {"source": {"path": "toy.csv"}, **spec}


def levels(values):
    return list(values.cat.categories)


def test_pupils_ses_is_recoded_with_low_as_reference():
    data, _ = prepare_dataset("pupils", MIRROR / "pupils.RData", config_spec("pupils"))
    assert levels(data["ses"]) == ["low", "mid", "high"]
    assert data["ses"].value_counts(sort=False).to_dict() == {"low": 303, "mid": 554, "high": 143}
    assert "student" in data and "PUPIL" not in data
    assert levels(data["primary_school_id"])[:3] == ["1", "2", "3"]
    assert len(levels(data["primary_school_id"])) == 50


def test_gpa_students_keep_their_order():
    data, dictionary = prepare_dataset("gpa", MIRROR / "gpa.RData", config_spec("gpa"))
    assert len(data) == 1200 == dictionary["rows"]
    assert levels(data["student"]) == [str(i) for i in range(1, 201)]
    # job has levels nobody uses in the raw factor; they are dropped
    assert levels(data["job"]) == ["1 hour", "2 hours", "3 hours"]


def test_sleepstudy_subjects_in_numeric_order():
    data, _ = prepare_dataset("sleepstudy", MIRROR / "sleepstudy.csv", config_spec("sleepstudy"))
    assert len(data) == 180
    assert levels(data["Subject"])[:3] == ["308", "309", "310"]
    assert len(levels(data["Subject"])) == 18


def test_factors_numeric_order_and_text_sorted(raw_csv):
    data, _ = prepare_dataset("toy", raw_csv, toy(factors=["id"]))
    assert levels(data["id"]) == ["1", "2", "10"]
    assert levels(data["town"]) == ["a", "b", "c"]
    assert data["y"].dtype == float


def test_recode_maps_numbers_by_their_label_in_config_order(raw_csv):
    data, _ = prepare_dataset("toy", raw_csv, toy(recode={"code": {"hi": [3], "lo": ["1", "2"]}}))
    assert levels(data["code"]) == ["hi", "lo"]
    assert list(data["code"]) == ["lo", "lo", "hi", "hi"]


def test_data_dictionary(raw_csv):
    _, dictionary = prepare_dataset("toy", raw_csv, toy(factors=["id"]))
    assert dictionary["dataset"] == "toy"
    assert dictionary["rows"] == 4
    assert dictionary["source"]["file"] == "toy.csv"
    assert len(dictionary["source"]["sha256"]) == 64
    town = next(c for c in dictionary["columns"] if c["name"] == "town")
    assert town == {"name": "town", "type": "categorical", "levels": ["a", "b", "c"], "missing": 1}
    assert {"name": "y", "type": "numeric", "missing": 0} in dictionary["columns"]


@pytest.mark.parametrize(
    "spec, key, column",
    [
        (toy(rename={"idd": "x"}), "datasets.toy.rename", "idd"),
        (toy(recode={"cod": {"a": [1]}}), "datasets.toy.recode", "cod"),
        (toy(factors=["ids"]), "datasets.toy.factors", "ids"),
        (toy(rename={"id": "y"}), "datasets.toy.rename", "y"),
        (toy(rename={"id": "key"}, factors=["id"]), "datasets.toy.factors", "id"),
    ],
    ids=["rename", "recode", "factor", "rename-collision", "factor-of-renamed"],
)
def test_missing_columns_are_named(raw_csv, spec, key, column):
    with pytest.raises(PrepareError) as error:
        prepare_dataset("toy", raw_csv, spec)
    assert key in str(error.value) and f"'{column}'" in str(error.value)


def test_unmapped_value_is_named(raw_csv):
    with pytest.raises(PrepareError) as error:
        prepare_dataset("toy", raw_csv, toy(recode={"code": {"lo": [1, 2]}}))
    assert "datasets.toy.recode.code" in str(error.value) and "'3'" in str(error.value)


def test_value_under_two_levels_is_refused():
    with pytest.raises(PrepareError, match="'2' is listed under both 'lo' and 'hi'"):
        check_spec("toy", toy(recode={"code": {"lo": [1, 2], "hi": ["2"]}}), "toy.csv")


def test_unsupported_file_type_is_refused():
    with pytest.raises(PrepareError, match="toy.xlsx"):
        check_spec("toy", toy(), "toy.xlsx")


def test_empty_data_is_refused(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("id,y\n")
    with pytest.raises(PrepareError, match="datasets.empty: empty.csv gives a table with no rows"):
        prepare_dataset("empty", path, toy())


def test_unknown_r_object_is_named():
    spec = {"source": {"path": "pupils.RData", "object": "pupil"}}
    with pytest.raises(PrepareError, match="pupils.RData: holds the R objects pupils"):
        prepare_dataset("pupils", MIRROR / "pupils.RData", spec)


def write(data, dictionary, folder):
    folder.mkdir()
    write_prepared(data, dictionary, folder / "t.csv", folder / "t.schema.json")
    return folder / "t.csv", folder / "t.schema.json"


def test_round_trip_restores_levels_and_missing_values(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_text("g,y\na,1.5\nb,\n,0.1\nNA,2\n")  # raw "NA" is R's missing value
    data, dictionary = prepare_dataset("t", path, toy(recode={"g": {"zz": ["b"], "aa": ["a"]}}))
    csv, schema = write(data, dictionary, tmp_path / "out")
    back = read_prepared(csv, schema)
    pd.testing.assert_frame_equal(back, data, check_categorical=True, check_dtype=False)
    assert levels(back["g"]) == ["zz", "aa"]
    assert back["g"].isna().sum() == 2 and back["y"].isna().sum() == 1


def test_round_trip_keeps_a_level_called_NA(tmp_path):
    data = pd.DataFrame({"g": pd.Categorical(["NA", "b", None], categories=["b", "NA"]), "y": [1.0, 2.5, 0.1]})
    dictionary = {
        "dataset": "t",
        "rows": 3,
        "source": {"file": "x", "sha256": "0" * 64},
        "columns": [
            {"name": "g", "type": "categorical", "levels": ["b", "NA"], "missing": 1},
            {"name": "y", "type": "numeric", "missing": 0},
        ],
    }
    back = read_prepared(*write(data, dictionary, tmp_path / "out"))
    pd.testing.assert_frame_equal(back, data, check_dtype=False)
    assert levels(back["g"]) == ["b", "NA"]


def test_output_is_byte_identical_across_runs(tmp_path):
    first = write(*prepare_dataset("gpa", MIRROR / "gpa.RData", config_spec("gpa")), tmp_path / "a")
    second = write(*prepare_dataset("gpa", MIRROR / "gpa.RData", config_spec("gpa")), tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["t.csv", "t.schema.json"]


def test_read_prepared_refuses_a_value_outside_the_levels(tmp_path, raw_csv):
    csv, schema = write(*prepare_dataset("toy", raw_csv, toy()), tmp_path / "out")
    csv.write_text(csv.read_text().replace(",a,", ",q,"))
    with pytest.raises(PrepareError, match=r"column 'town' has values \['q'\]"):
        read_prepared(csv, schema)
    csv.write_text(csv.read_text() + "1,a,1,0.5\n")
    with pytest.raises(PrepareError, match="does not match its data dictionary"):
        read_prepared(csv, schema)


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.csv", b"", "EmptyDataError"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5,6\n", "Expected 2 fields in line 3"),
        ("truncated.RData", (MIRROR / "gpa.RData").read_bytes()[:300], "LibrdataError"),
    ],
    ids=["empty", "ragged", "truncated"],
)
def test_unreadable_raw_file_is_named(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(PrepareError, match=rf"^{re.escape(name)}: cannot read .*{reason}"):
        read_raw(path)


@pytest.mark.parametrize("suffix", [".parquet", ".rds"])
def test_parquet_and_rds_prepare_like_csv(tmp_path, suffix):
    import pyreadr

    # without the CSV's row-name column: pyreadr reads R row names into the index, not a column
    table = pd.read_csv(MIRROR / "sleepstudy.csv").drop(columns="rownames")
    table.to_csv(tmp_path / "sleepstudy.csv", index=False)
    path = tmp_path / f"sleepstudy{suffix}"
    if suffix == ".parquet":
        table.to_parquet(path)
    else:
        pyreadr.write_rds(path, table)
    spec = {"source": {"path": path.name}, "factors": ["Subject"]}
    from_csv, _ = prepare_dataset("sleepstudy", tmp_path / "sleepstudy.csv", spec)
    prepared, dictionary = prepare_dataset("sleepstudy", path, spec)
    pd.testing.assert_frame_equal(prepared, from_csv, check_dtype=False)
    assert dictionary["source"]["file"] == path.name


# --- non-finite values ---


def test_infinite_values_are_refused_naming_data_set_column_and_rows(tmp_path):
    path = tmp_path / "inf.csv"
    path.write_text("g,y,x\na,1.5,Inf\nb,-inf,1\nc,NaN,2\nd,2,inf\n")
    with pytest.raises(PrepareError) as error:
        prepare_dataset("inf", path, toy())
    message = str(error.value)
    assert message.startswith("datasets.inf (inf.csv): column 'y' has 1 infinite value (data rows 2, counted from 1)")
    assert "column 'x' has 2 infinite values (data rows 1, 4, counted from 1)" in message
    assert "NA/NaN/Inf in 'y'" in message


def test_nan_is_a_missing_value_not_refused(tmp_path):
    path = tmp_path / "nan.csv"
    path.write_text("g,y\na,NaN\nb,1\n")
    data, dictionary = prepare_dataset("nan", path, toy())
    assert data["y"].isna().sum() == 1
    assert {"name": "y", "type": "numeric", "missing": 1} in dictionary["columns"]


def test_check_finite_skips_categorical_columns_and_missing_values():
    data = pd.DataFrame({"g": pd.Categorical(["inf", "a"]), "y": [1.0, float("inf")]})
    check_finite(data, ["g"], "t")
    check_finite(pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}), ["n"], "t")
    with pytest.raises(PrepareError, match="^t: column 'y' has 1 infinite value"):
        check_finite(data, ["g", "y"], "t")


def test_read_prepared_refuses_an_infinite_value(tmp_path, raw_csv):
    csv, schema = write(*prepare_dataset("toy", raw_csv, toy()), tmp_path / "out")
    csv.write_text(csv.read_text().replace("0.2", "inf"))
    with pytest.raises(PrepareError, match=f"^{re.escape(str(csv))}: column 'y' has 1 infinite value"):
        read_prepared(csv, schema)


# --- CSV dialects ---


def sleep_head(path: Path, **dialect) -> Path:
    pd.read_csv(MIRROR / "sleepstudy.csv").head(4).to_csv(path, index=False, **dialect)
    return path


@pytest.fixture
def csv2(tmp_path):
    """A file as R's write.csv2 writes it: ';' between fields, ',' as decimal mark."""
    return sleep_head(tmp_path / "sleep2.csv", sep=";", decimal=",")


def test_read_options_read_a_semicolon_file_with_decimal_commas(csv2, tmp_path):
    spec = {"source": {"path": csv2.name, "read": {"sep": ";", "decimal": ","}}, "factors": ["Subject"]}
    data, _ = prepare_dataset("sleep2", csv2, spec)
    comma = sleep_head(tmp_path / "sleep.csv")
    expected, _ = prepare_dataset("sleep", comma, {"source": {"path": comma.name}, "factors": ["Subject"]})
    pd.testing.assert_frame_equal(data, expected)
    assert data["Reaction"].iloc[1] == 258.7047
    assert list_columns(csv2, read=spec["source"]["read"]) == ["rownames", "Reaction", "Days", "Subject"]


@pytest.mark.parametrize("sep, named", [(";", '";"'), ("\t", '"\\t"')], ids=["semicolon", "tab"])
def test_a_file_read_as_one_column_is_refused_naming_it_and_the_fix(tmp_path, sep, named):
    path = sleep_head(tmp_path / "other.csv", sep=sep)
    for read in (lambda: list_columns(path), lambda: prepare_dataset("other", path, toy())):
        with pytest.raises(PrepareError) as error:
            read()
        message = str(error.value)
        assert message.startswith('other.csv: read with separator ",", its header is the one column ')
        assert repr(sep.join(["rownames", "Reaction", "Days", "Subject"])) in message
        assert f"source.read: {{sep: {named}}}" in message


def test_decimal_commas_read_as_text_are_refused(csv2):
    spec = {"source": {"path": csv2.name, "read": {"sep": ";"}}}
    with pytest.raises(PrepareError, match="^datasets.sleep2: column 'Reaction' holds numbers with a decimal comma"):
        prepare_dataset("sleep2", csv2, spec)
    data, _ = prepare_dataset("sleep2", csv2, {**spec, "factors": ["Reaction"]})
    assert levels(data["Reaction"])[:2] == ["249,56", "250,8006"]


@pytest.mark.parametrize(
    "read, file_name, message",
    [
        ({"sep": ";"}, "gpa.RData", "datasets.toy.source.read: read options apply to .csv files only"),
        ({"decimal": ","}, "toy.csv", "datasets.toy.source.read: the separator and the decimal mark are both ','"),
        ({"sep": ";", "decimal": ";"}, "toy.csv", "the separator and the decimal mark are both ';'"),
    ],
    ids=["not-csv", "default-decimal", "both-set"],
)
def test_contradictory_read_options_are_refused(read, file_name, message):
    spec = {"source": {"path": file_name, "read": read}}
    with pytest.raises(PrepareError, match=re.escape(message)):
        check_spec("toy", spec, file_name)


def test_failed_dictionary_write_leaves_neither_file(tmp_path, raw_csv):
    data, dictionary = prepare_dataset("toy", raw_csv, toy())
    dictionary["source"]["seed"] = object()  # not JSON serializable
    with pytest.raises(TypeError):
        write(data, dictionary, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("values", "levels", "labels"),
    [
        ([3, 1, 2, 1], ["1", "2", "3"], ["3", "1", "2", "1"]),
        ([2.5, None, 10.0, 2.5], ["2.5", "10"], ["2.5", None, "10", "2.5"]),  # numeric, not text, order
        ([True, False, True], ["FALSE", "TRUE"], ["TRUE", "FALSE", "TRUE"]),
        ([1234567.0, -1.0, 0.1], ["-1", "0.1", "1234567"], ["1234567", "-1", "0.1"]),
        (pd.Categorical(["b", "a", None, "b"], categories=["c", "b", "a"]), ["b", "a"], ["b", "a", None, "b"]),
        (pd.Categorical([2, None, 10], categories=[10, 2, 5]), ["10", "2"], ["2", None, "10"]),
        (["b", "a10", None, "a9"], ["a10", "a9", "b"], ["b", "a10", None, "a9"]),  # text: sorted as text
    ],
)
def test_factor_has_r_labels_in_r_order(values, levels, labels):
    factor = _as_factor(pd.Series(values))
    assert list(factor.categories) == levels
    assert [None if pd.isna(label) else label for label in factor] == labels
