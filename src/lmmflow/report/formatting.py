"""Numbers, tables and markup as the report prints them (markdown both renderers read)."""

from __future__ import annotations

import math
import re

import pandas as pd


def number(value, digits: int = 3) -> str:
    """A table/prose number: integers as such, floats to ``digits`` decimals, no ``-0.000``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 10**digits):
        return f"{int(value)}"
    text = f"{float(value):.{digits}f}"
    return text[1:] if re.fullmatch(r"-0\.0*", text) else text


def p_value(value: float) -> str:
    return "<0.001" if value < 0.001 else number(value)


def cell(value, digits: int = 3) -> str:
    if isinstance(value, str):
        return value.replace("|", "\\|")
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    return number(value, digits)


def pipe_table(table: pd.DataFrame, caption: str = "", digits: int = 3) -> str:
    """A pipe table (numbers right-aligned) with an optional caption line, as both renderers read it."""
    numeric = [pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c]) for c in table]
    table = table.copy()
    for column, is_number in zip(table.columns, numeric):
        values = table[column].dropna()
        if is_number and pd.api.types.is_float_dtype(table[column]) and len(values) and (values % 1 == 0).all():
            table[column] = pd.Series(
                [v if pd.isna(v) else int(v) for v in table[column]], index=table.index, dtype=object
            )
    header = [str(c).replace("|", "\\|") for c in table.columns]
    body = [[cell(v, digits) for v in row] for row in table.itertuples(index=False)]
    # A wide table gets relative column widths from the dashes: make them follow the content.
    widths = [min(40, max(3, *map(len, name.split()), *(len(row[j]) for row in body))) for j, name in enumerate(header)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|"
        + "|".join("-" * (w - 1) + ":" if right else ":" + "-" * (w - 1) for w, right in zip(widths, numeric))
        + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    text = "\n".join(lines)
    return f"{text}\n\n: {caption}" if caption else text


def code(text: str) -> str:
    return f"`{text}`"


def callout(kind: str, text: str) -> str:
    """A Quarto callout; pandoc renders the same div, styled by reports/report.css."""
    return f"::: {{.callout-{kind}}}\n{text}\n:::"


def listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
