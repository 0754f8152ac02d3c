"""Checks of the configuration files themselves, before their content is trusted.

YAML (and PyYAML, which Snakemake uses to load ``--configfile`` and ``configfile:``) keeps only
the last of two equal keys in a mapping: a second ``models: {m: ...}`` entry of the same name
silently replaces the first. ``check_duplicate_keys`` re-reads the files and refuses that.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml


class DuplicateKeyError(ValueError):
    """A configuration file gives the same key twice in one mapping."""


def duplicate_keys(path: str | os.PathLike) -> list[str]:
    """One message per repeated key in the YAML (or JSON) file: its dotted key and both lines."""
    path = Path(path)
    with open(path, encoding="utf-8") as stream:
        root = yaml.compose(stream, Loader=yaml.SafeLoader)
    found: list[str] = []
    _walk(root, [], path, found)
    return found


def check_duplicate_keys(paths) -> None:
    """Raise DuplicateKeyError naming every repeated key in any of ``paths``."""
    found = [message for path in paths for message in duplicate_keys(path)]
    if found:
        raise DuplicateKeyError(
            "duplicate keys in the configuration (YAML would silently keep only the last of each): " + "; ".join(found)
        )


def _walk(node, keys: list[str], path: Path, found: list[str]) -> None:
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else repr(key_node.value)
            line = key_node.start_mark.line + 1
            if key == "<<":  # a merge key, not a configuration key
                continue
            dotted = ".".join([*keys, key])
            if key in first_line:
                found.append(f"{path.name} line {line}: '{dotted}' (first given at line {first_line[key]})")
            else:
                first_line[key] = line
            _walk(value_node, [*keys, key], path, found)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, [*keys, str(index)], path, found)
