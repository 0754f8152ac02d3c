"""Filling the template: placeholders (HTML comments) replaced by blocks; sections whose results
are not among the job's inputs left out."""

from __future__ import annotations

import re
import shlex

import yaml

from lmmflow.report.blocks import BLOCKS
from lmmflow.report.provenance import provenance
from lmmflow.report.results import MissingResult, ReportError, Results

DIRECTIVE = re.compile(r"<!--\s*lmmflow:(\w+)(.*?)-->", re.DOTALL)
SECTION = re.compile(r"<!--\s*lmmflow:section\s*-->(.*?)<!--\s*lmmflow:end\s*-->\n?", re.DOTALL)


def fill_template(text: str, results: Results, context: dict) -> tuple[str, list[str]]:
    """The filled markdown, and the results whose absence left sections out."""
    left_out = []

    def section(match: re.Match) -> str:
        try:
            return _fill(match.group(1), results, context)
        except MissingResult as missing:
            left_out.append(str(missing))
            return ""

    text = SECTION.sub(section, text)
    try:
        text = _fill(text, results, context)
    except MissingResult as missing:
        raise ReportError(f"the report needs {missing}, which is not among the job's inputs") from None
    return re.sub(r"\n{3,}", "\n\n", text), left_out


def _fill(text: str, results: Results, context: dict) -> str:
    def replace(match: re.Match) -> str:
        name, arguments = match.group(1), _arguments(match.group(2))
        if name == "provenance":  # the one block that needs the run's context
            return provenance(results, context)
        if name not in BLOCKS:
            raise ReportError(f"unknown placeholder lmmflow:{name}; known: {', '.join([*BLOCKS, 'provenance'])}")
        try:
            return BLOCKS[name](results, **arguments)
        except TypeError as error:
            raise ReportError(f"placeholder lmmflow:{name}: {error}") from None

    return DIRECTIVE.sub(replace, text)


def _arguments(text: str) -> dict[str, str]:
    arguments = {}
    for token in shlex.split(text):
        key, sep, val = token.partition("=")
        if not sep:
            raise ReportError(f"placeholder argument {token!r}: expected key=value")
        arguments[key] = val
    return arguments


def front_matter(text: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    return yaml.safe_load(match.group(1)) if match else {}
