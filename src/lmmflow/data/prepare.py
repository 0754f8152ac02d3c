"""Turn a raw data file into an analysis-ready table plus its data dictionary.

Order of operations: read, rename, recode, factors. Every categorical column of the result
carries only the levels it uses, in a defined order, so that the reference (first) level
and thus the fitted contrasts are the same on every run.
"""

import json
import os
import re
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from lmmflow.data.acquire import sha256_of
from lmmflow.model.labels import single_factor, value_label, value_labels
from lmmflow.outputs.io import atomic_path, json_text

R_SUFFIXES = (".rdata", ".rda")
SUPPORTED_SUFFIXES = (*R_SUFFIXES, ".rds", ".csv", ".parquet")
# Only the empty field is missing: a level literally called "NA" must survive a round trip.
CSV_MISSING = {"keep_default_na": False, "na_values": [""]}
# `source.read` of a .csv: R's read.csv2 files are {sep: ";", decimal: ","}.
CSV_DIALECT = {"sep": ",", "decimal": "."}
# A header that reads as one name holding one of these was split with the wrong separator.
LIKELY_SEPARATORS = (";", "\t", ",", "|")
DECIMAL_COMMA_NUMBER = re.compile(r"[+-]?\d*,\d+([eE][+-]?\d+)?")


class PrepareError(ValueError):
    """The configuration does not fit the data set it describes."""


# --- checks of the configuration, run at workflow start-up and again before preparing ---


def check_spec(dataset: str, spec: dict, file_name: str) -> None:
    """Problems visible in the configuration alone, without the data."""
    key = f"datasets.{dataset}"
    if Path(file_name).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise PrepareError(
            f"{key}.source: cannot read '{file_name}'; supported file types are {', '.join(SUPPORTED_SUFFIXES)}"
        )
    _check_read_options(key, spec["source"].get("read"), file_name)
    targets = list(spec.get("rename", {}).values())
    for target in targets:
        if targets.count(target) > 1:
            raise PrepareError(f"{key}.rename: several columns are renamed to '{target}'")
    for column, levels in spec.get("recode", {}).items():
        _recode_lookup(levels, f"{key}.recode.{column}")


def _check_read_options(key: str, read: dict | None, file_name: str) -> None:
    if read is None:
        return
    if Path(file_name).suffix.lower() != ".csv":
        raise PrepareError(f"{key}.source.read: read options apply to .csv files only, not to '{file_name}'")
    dialect = {**CSV_DIALECT, **read}
    if dialect["sep"] == dialect["decimal"]:
        raise PrepareError(f"{key}.source.read: the separator and the decimal mark are both {dialect['sep']!r}")


def check_columns(dataset: str, spec: dict, columns: list[str]) -> None:
    """Every column the configuration names exists at the step that uses it."""
    key = f"datasets.{dataset}"
    rename = spec.get("rename", {})
    for old in rename:
        if old not in columns:
            raise PrepareError(_missing_column(f"{key}.rename", old, columns, ""))
    renamed = [rename.get(column, column) for column in columns]
    for column in renamed:
        if renamed.count(column) > 1:
            raise PrepareError(f"{key}.rename: after renaming, two columns are called '{column}'")
    for step in ("recode", "factors"):
        for column in spec.get(step, []):
            if column not in renamed:
                raise PrepareError(_missing_column(f"{key}.{step}", column, renamed, " after rename"))


def _missing_column(key: str, column: str, columns: list[str], when: str) -> str:
    return f"{key}: column '{column}' is not in the data{when}; its columns are {', '.join(columns)}"


# --- reading raw files ---


def list_columns(path: str | os.PathLike, r_object: str | None = None, read: dict | None = None) -> list[str]:
    """The columns of a raw file, read from its header or metadata where the format allows.

    ``r_object`` and ``read`` are the source's ``object`` and ``read`` settings."""
    path = Path(path)
    with _reading(path):
        return _list_columns(path, r_object, read)


def _list_columns(path: Path, r_object: str | None, read: dict | None) -> list[str]:
    import pyarrow.parquet
    import pyreadr

    suffix = path.suffix.lower()
    if suffix == ".csv":
        return list(_read_csv(path, read, nrows=0).columns)
    if suffix == ".parquet":
        schema = pyarrow.parquet.read_schema(path)
        index = (schema.pandas_metadata or {}).get("index_columns", [])
        return [name for name in schema.names if name not in index]
    objects = {entry["object_name"]: entry["columns"] for entry in pyreadr.list_objects(path)}
    return list(objects[_r_object_name(path, list(objects), r_object)])


def read_raw(path: str | os.PathLike, r_object: str | None = None, read: dict | None = None) -> pd.DataFrame:
    """The table in a raw file; ``r_object`` and ``read`` as for ``list_columns``."""
    path = Path(path)
    with _reading(path):
        return _read_raw(path, r_object, read)


@contextmanager
def _reading(path: Path):
    """A file that cannot be parsed (empty, truncated, malformed) is reported by its name."""
    # pyreadr and pyarrow.parquet (~0.2 s) are imported where a raw file is read, not by the
    # many jobs that read prepared tables through this module
    import pyarrow
    import pyreadr.custom_errors

    try:
        yield
    except PrepareError:
        raise
    except (
        ValueError,
        OSError,
        pyreadr.custom_errors.PyreadrError,
        pyreadr.custom_errors.LibrdataError,
        pyarrow.ArrowException,
    ) as error:
        raise PrepareError(
            f"{path.name}: cannot read this {path.suffix} file ({type(error).__name__}: "
            f"{str(error).strip()}); is it empty, truncated or not of that format?"
        ) from error


def _read_raw(path: Path, r_object: str | None, read: dict | None) -> pd.DataFrame:
    import pyreadr

    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, read)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".rds":
        return pyreadr.read_r(path)[None]
    names = [entry["object_name"] for entry in pyreadr.list_objects(path)]
    name = _r_object_name(path, names, r_object)
    return pyreadr.read_r(path, use_objects=[name])[name]


def _read_csv(path: Path, read: dict | None, nrows: int | None = None) -> pd.DataFrame:
    dialect = {**CSV_DIALECT, **(read or {})}
    data = pd.read_csv(path, sep=dialect["sep"], decimal=dialect["decimal"], nrows=nrows)
    _check_separator(path, list(data.columns), dialect["sep"])
    return data


def _check_separator(path: Path, columns: list[str], sep: str) -> None:
    """A file read with the wrong separator is one column named after the whole header: refuse
    it rather than guess the dialect (a guess cannot tell the decimal mark) and garble the data."""
    if len(columns) != 1:
        return
    found = [other for other in LIKELY_SEPARATORS if other != sep and other in str(columns[0])]
    if found:
        raise PrepareError(
            f"{path.name}: read with separator {json.dumps(sep)}, its header is the one column "
            f"{columns[0]!r}; it looks {json.dumps(found[0])}-separated: set "
            f'source.read: {{sep: {json.dumps(found[0])}}} (with decimal: "," if numbers are written 1,5)'
        )


def _r_object_name(path: Path, names: list, r_object: str | None) -> str | None:
    """The object to read: the configured one, or the only one in the file (always, for .rds)."""
    if path.suffix.lower() not in R_SUFFIXES:
        return names[0]
    if r_object is None and len(names) == 1:
        return names[0]
    if r_object not in names:
        raise PrepareError(
            f"{path.name}: holds the R objects {', '.join(map(str, names))}; "
            f"set source.object to one of them (got {r_object!r})"
        )
    return r_object


# --- preparation ---


def prepare_dataset(dataset: str, raw_path: str | os.PathLike, spec: dict) -> tuple[pd.DataFrame, dict]:
    """Read, rename, recode and make factors; return the table and its data dictionary."""
    raw_path = Path(raw_path)
    check_spec(dataset, spec, raw_path.name)
    # R row names (pyreadr puts them in the index) are labels, not data, as in lme4
    source = spec["source"]
    data = read_raw(raw_path, source.get("object"), source.get("read")).reset_index(drop=True)
    check_columns(dataset, spec, list(data.columns))
    data = data.rename(columns=spec.get("rename", {}))
    for column, levels in spec.get("recode", {}).items():
        data[column] = _recode(data[column], levels, f"datasets.{dataset}.recode.{column}")
    factors = set(spec.get("factors", []))
    if raw_path.suffix.lower() == ".csv":
        _check_decimal_mark(f"datasets.{dataset}", data.drop(columns=[*factors, *spec.get("recode", {})]), source)
    data = r_factors(data, factors)
    if data.empty:
        raise PrepareError(f"datasets.{dataset}: {raw_path.name} gives a table with no rows")
    check_finite(data, data.columns, f"datasets.{dataset} ({raw_path.name})")
    return data, data_dictionary(dataset, data, {"file": raw_path.name, "sha256": sha256_of(raw_path)})


def _check_decimal_mark(key: str, data: pd.DataFrame, source: dict) -> None:
    """Numbers written with a decimal comma read as text, and would silently become a factor."""
    if source.get("read", {}).get("decimal") == ",":
        return
    for column in data.columns:
        values = data[column].dropna()
        if _is_plain_numeric(data[column]) or values.empty:
            continue
        if values.astype(str).str.fullmatch(DECIMAL_COMMA_NUMBER).all():
            raise PrepareError(
                f"{key}: column '{column}' holds numbers with a decimal comma ({values.iloc[0]!r}); "
                'set source.read.decimal: "," to read them as numbers, or list the column under '
                "factors to keep it as text"
            )


def check_finite(data: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    """Refuse +-Inf in the numeric ``columns`` of ``data``, as lme4 does ("NA/NaN/Inf in 'y'");
    ``where`` names the data (data set or file) in the message. NA and NaN are missing values,
    dropped per model, and are not refused."""
    problems = []
    for column in columns:
        values = data[column]
        if not _is_plain_numeric(values):
            continue
        rows = np.flatnonzero(np.isinf(values.to_numpy(dtype=float, na_value=np.nan))) + 1
        if len(rows):
            shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
            count = "1 infinite value" if len(rows) == 1 else f"{len(rows)} infinite values"
            problems.append(f"column '{column}' has {count} (data rows {shown}, counted from 1)")
    if problems:
        raise PrepareError(
            f"{where}: {'; '.join(problems)}. lme4 refuses infinite values (\"NA/NaN/Inf in 'y'\"); replace "
            "each by a finite value, or by an empty field to make it missing (the row is then dropped "
            "from the models that use the column)"
        )


def _is_plain_numeric(values: pd.Series) -> bool:
    return is_numeric_dtype(values.dtype) and not is_bool_dtype(values.dtype)


def r_factors(data: pd.DataFrame, factors: Iterable[str] = ()) -> pd.DataFrame:
    """``data`` with the ``factors`` columns and every column that is not plain numeric (text,
    booleans, categoricals) as R factors (``_as_factor``), as lme4's model frame has them."""
    data = data.copy()
    for column in data.columns:
        if column in factors or not _is_plain_numeric(data[column]):
            data[column] = _as_factor(data[column])
    return data


def _as_factor(values: pd.Series) -> pd.Categorical:
    """Categorical with R's labels: existing level order kept, numbers in numeric order,
    text in sorted order; unused levels dropped."""
    if isinstance(values.dtype, pd.CategoricalDtype) or is_numeric_dtype(values.dtype):
        # labelled once per level, not per row (lmmflow.model.labels): an ID column has many rows
        present = values.notna().to_numpy()
        present_codes, levels = single_factor(values[present])
        codes = np.full(len(values), -1, dtype=np.int64)
        codes[present] = present_codes
        return pd.Categorical.from_codes(codes, categories=levels)
    labels = value_labels(values)
    return pd.Categorical(labels, categories=sorted(labels.dropna().unique()))


def _recode_lookup(levels: dict, key: str) -> dict[str, str]:
    """old value (as its R label) -> new level; an old value may belong to one level only."""
    lookup = {}
    for new, olds in levels.items():
        for old in map(value_label, olds):
            if old in lookup:
                raise PrepareError(f"{key}: value '{old}' is listed under both '{lookup[old]}' and '{new}'")
            lookup[old] = new
    return lookup


def _recode(values: pd.Series, levels: dict, key: str) -> pd.Categorical:
    """Map values by their R label to new levels, ordered as in the configuration."""
    lookup = _recode_lookup(levels, key)
    labels = value_labels(values)
    unmapped = sorted(set(labels.dropna()) - set(lookup))
    if unmapped:
        raise PrepareError(
            f"{key}: the values {', '.join(map(repr, unmapped))} of column '{values.name}' "
            f"are not mapped to any level; add them under one of {', '.join(levels)}"
        )
    return pd.Categorical(labels.map(lookup), categories=list(levels)).remove_unused_categories()


def data_dictionary(dataset: str, data: pd.DataFrame, source: dict) -> dict:
    """``source``: the raw file and its digest, or the simulation's generator, seed and parameters."""
    return {
        "dataset": dataset,
        "rows": len(data),
        "source": source,
        "columns": [_describe(name, data[name]) for name in data.columns],
    }


def _describe(name: str, values: pd.Series) -> dict:
    if isinstance(values.dtype, pd.CategoricalDtype):
        kind = {"type": "categorical", "levels": [str(level) for level in values.cat.categories]}
    else:
        kind = {"type": "numeric"}
    return {"name": name, **kind, "missing": int(values.isna().sum())}


# --- prepared files ---


def write_prepared(data: pd.DataFrame, dictionary: dict, csv_path, schema_path) -> None:
    """Write the table and its dictionary atomically: both are complete before either is
    renamed into place, so a failure leaves neither (never a truncated file)."""
    with atomic_path(csv_path) as table, atomic_path(schema_path) as schema:
        # pandas writes floats with repr, the shortest exact form: byte-identical reruns.
        data.to_csv(table, index=False, lineterminator="\n")
        schema.write_text(json_text(dictionary), encoding="ascii")


def read_prepared(csv_path: str | os.PathLike, schema_path: str | os.PathLike) -> pd.DataFrame:
    """Read a prepared table back, categorical columns with their level order restored."""
    csv_path = Path(csv_path)
    dictionary = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    levels = {c["name"]: c["levels"] for c in dictionary["columns"] if c["type"] == "categorical"}
    data = pd.read_csv(csv_path, dtype={name: str for name in levels}, **CSV_MISSING)
    expected = [c["name"] for c in dictionary["columns"]]
    if list(data.columns) != expected or len(data) != dictionary["rows"]:
        raise PrepareError(
            f"{csv_path}: does not match its data dictionary: {len(data)} rows of "
            f"{list(data.columns)}, expected {dictionary['rows']} rows of {expected}"
        )
    for name, order in levels.items():
        data[name] = _restore_levels(data[name], order, csv_path)
    # prepared before infinite values were refused, or edited since
    check_finite(data, data.columns, str(csv_path))
    return data


def _restore_levels(values: pd.Series, order: list[str], csv_path: Path) -> pd.Categorical:
    # A value outside the recorded levels would otherwise silently become missing.
    unknown = sorted(set(values.dropna()) - set(order))
    if unknown:
        raise PrepareError(
            f"{csv_path}: column '{values.name}' has values {unknown} that are not among "
            f"its levels {order} in the data dictionary"
        )
    return pd.Categorical(values, categories=order)
