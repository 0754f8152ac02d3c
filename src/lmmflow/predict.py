"""Conditional predictions (fixed + random parts) for the rows a model was fitted to."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmmflow.design import Design
from lmmflow.estimates import Estimates


def conditional_fitted(design: Design, fit: Estimates) -> np.ndarray:
    """X beta + sum over blocks of Z b[level], as lme4's ``fitted``/``predict`` with all random effects."""
    fitted = design.X @ fit.beta
    for block, modes in zip(design.blocks, fit.modes):
        fitted += np.einsum("ij,ij->i", block.Z, modes[block.level_codes])
    return fitted


def group_predictions(data: pd.DataFrame, design: Design, fit: Estimates, group: str, by: str) -> pd.DataFrame:
    """Predictions for one top-level group at each level of ``by`` present in it (the chapter's
    school-10 table): one row per distinct ``by`` value, from the data rows themselves."""
    used = data.iloc[design.rows].reset_index(drop=True)
    in_group = np.asarray(design.group_levels)[design.group_codes] == group
    if not in_group.any():
        raise ValueError(f"group {group!r} not found in {design.group_var!r} (levels: {design.group_levels[:10]} ...)")
    if by not in used.columns:
        raise ValueError(f"column {by!r} not found in data (columns: {list(used.columns)})")
    rows = pd.DataFrame({by: used.loc[in_group, by], "prediction": conditional_fitted(design, fit)[in_group]})
    first = rows.drop_duplicates(subset=by).sort_values(by, kind="stable")
    return pd.DataFrame({design.group_var: group, by: first[by].astype(str), "prediction": first["prediction"]}).reset_index(
        drop=True
    )
