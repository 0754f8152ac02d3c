"""R's labels of data values and the integer codes of one grouping column.

Kept apart from ``lmmflow.model.design`` (formulaic, the engines' design matrices): preparing data,
per-group regressions and figures label groups as lme4 does without importing the model machinery.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def single_factor(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and R labels of one grouping column, levels present only: a categorical's
    level order, otherwise sorted values (numbers in numeric order)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.cat.remove_unused_categories()
        return values.cat.codes.to_numpy(dtype=np.int64), [value_label(c) for c in values.cat.categories]
    levels, codes = np.unique(values.to_numpy(), return_inverse=True)
    return codes.astype(np.int64), [value_label(v) for v in levels]


def value_label(value) -> str:
    """R's label of a value: 1.0 -> "1", 1234567.0 -> "1234567", True -> "TRUE", text as it is."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float, np.number)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def value_labels(values: pd.Series) -> pd.Series:
    """R's label of each value (``value_label``), missing values kept missing."""
    return values.astype(object).map(value_label, na_action="ignore")
