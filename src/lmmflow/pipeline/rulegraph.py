"""The README's picture of the workflow: ``snakemake --rulegraph``, normalized, drawn by graphviz.

Regenerate docs/rulegraph.dot and docs/rulegraph.svg from the repository root with::

    python -m lmmflow.pipeline.rulegraph

Snakemake's DOT numbers the nodes in DAG order, colours them by rule index and lists edges in
set order; the normalized DOT names nodes by rule, keeps only direct dependencies (transitive
reduction), sorts nodes and edges and uses one style, so it changes only when the rules or their
connections do (tests/pipeline/test_rulegraph.py checks it against snakemake's current output).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lmmflow.outputs import io

NODE = re.compile(r'^\s*(\d+)\s*\[\s*label\s*=\s*"([^"]+)"')
EDGE = re.compile(r"^\s*(\d+)\s*->\s*(\d+)")
HEADER = """digraph lmmflow_rules {
    graph [bgcolor=white, margin=0, rankdir=TB, nodesep=0.25, ranksep=0.35];
    node [shape=box, style="rounded,filled", fillcolor="#eef3f8", color="#4a6785", fontname=sans, fontsize=10, penwidth=1.2];
    edge [color="#7a8899", penwidth=1.2, arrowsize=0.7];
"""


def normalize_dot(dot: str) -> str:
    """Rule names as node ids, nodes and edges sorted, one style: only the structure is left."""
    labels, edges = {}, set()
    for line in dot.splitlines():
        if node := NODE.match(line):
            labels[node.group(1)] = node.group(2)
        elif edge := EDGE.match(line):
            edges.add((edge.group(1), edge.group(2)))
    if not labels:
        raise ValueError("no rule graph in the input (is it `snakemake --rulegraph` output?)")
    named = transitive_reduction({(labels[s], labels[t]) for s, t in edges})
    lines = [f'    "{name}";' for name in sorted(labels.values())]
    lines += [f'    "{a}" -> "{b}";' for a, b in sorted(named)]
    return HEADER + "\n".join(lines) + "\n}\n"


def transitive_reduction(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Drop a -> b when b is also reached from a through other rules (e.g. everything -> all that
    also feeds the report): the picture keeps only the direct dependencies."""
    children: dict[str, set[str]] = {}
    for a, b in edges:
        children.setdefault(a, set()).add(b)

    def reachable(start: str, skip: str) -> set[str]:
        seen, stack = set(), [c for c in children.get(start, ()) if c != skip]
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(children.get(node, ()))
        return seen

    return {(a, b) for a, b in edges if b not in reachable(a, skip=b)}


def snakemake_rulegraph(repo: Path, snakemake: str = "snakemake") -> str:
    """``snakemake --rulegraph`` of the repository's workflow and config.yaml, in a scratch folder."""
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copyfile(repo / "config.yaml", Path(scratch) / "config.yaml")
        command = [snakemake, "--snakefile", str(repo / "Snakefile"), "--directory", scratch, "--rulegraph"]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"snakemake --rulegraph failed:\n{result.stderr}")
    return result.stdout


def draw_svg(dot_path: Path, svg_path: Path, dot: str = "dot") -> None:
    with io.atomic_path(svg_path) as temporary:
        subprocess.run([dot, "-Tsvg", str(dot_path), "-o", str(temporary)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="repository root (default: here)")
    arguments = parser.parse_args(argv)
    repo = arguments.repo.resolve()
    docs = repo / "docs"
    dot_path, svg_path = docs / "rulegraph.dot", docs / "rulegraph.svg"
    with io.atomic_path(dot_path) as temporary:
        temporary.write_text(normalize_dot(snakemake_rulegraph(repo)))
    draw_svg(dot_path, svg_path)
    print(f"wrote {dot_path.relative_to(repo)} and {svg_path.relative_to(repo)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
