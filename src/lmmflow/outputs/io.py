"""Atomic, deterministic output: a reader never sees a half-written file, reruns give the same bytes."""

from __future__ import annotations

import glob
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # tables are written by their own method: no pandas import for fetching or JSON
    import pandas as pd

_UMASK = os.umask(0)
os.umask(_UMASK)
FLOAT_FORMAT = "%.15g"  # 15 significant digits: full double precision less the last, noisiest digit


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A writer killed (kill -9) between mkstemp and rename leaves its temporary behind; Snakemake
    # never runs two jobs writing the same output, so any such file is stale: remove it.
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp creates 0600; outputs are meant to be shared
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``table`` without its index, floats as FLOAT_FORMAT and missing values empty, atomically."""
    with atomic_path(path) as temporary:
        _with_formatted_floats(table).to_csv(temporary, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def _with_formatted_floats(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its float columns already written as text, the same text as pandas'
    ``float_format``: pandas formats a value through three Python calls, which made writing a
    20,000-group model's tables (440,000 numbers) take a second."""
    import numpy as np  # loaded with the table's pandas: no import cost for jobs writing JSON only

    positions = [i for i, dtype in enumerate(table.dtypes) if isinstance(dtype, np.dtype) and dtype.kind == "f"]
    if not positions:
        return table
    formatted = table.copy(deep=False)
    for position in positions:
        values = table.iloc[:, position].to_numpy().tolist()
        formatted.isetitem(position, [FLOAT_FORMAT % value if value == value else "" for value in values])
    return formatted


def write_json(content: dict, path: str | os.PathLike) -> None:
    """Write ``content`` as strict JSON (see ``json_text``), atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(json_text(content), encoding="ascii")


def json_text(content: dict) -> str:
    """Strict JSON (RFC 8259), as R's jsonlite and JavaScript parse it: NaN and +-Inf, which
    Python's json would write as the invalid tokens NaN/Infinity, become null; floats are
    rounded to FLOAT_FORMAT, so JSON is as stable as the CSV tables; ASCII only, so any reader
    decodes it whatever its locale."""
    return json.dumps(_json_ready(content), indent=2, allow_nan=False) + "\n"


def _json_ready(value):
    if isinstance(value, float):
        return float(FLOAT_FORMAT % value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value
