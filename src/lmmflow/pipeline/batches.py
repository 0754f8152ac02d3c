"""Which models share a fit job: small models of one data set in batches, the others alone.

A fit job costs Python's start-up and imports (~0.75 s) before its first model; a small model's
fit costs a tenth of that. Many small models therefore share a job (``lmmflow.pipeline.fit_job``
fits them one after the other, each exactly as alone). The plan is made when the workflow starts
(workflow/rules/fit.smk), from the configuration and what is at hand without running anything:

- A model's size is rows x terms (``model_size``): the data set's rows where they can be known at
  start-up (``dataset_rows``: a CSV or Parquet file at hand, a simulated data set), times the
  formula's terms. A model of unknown size, or of more than ``own_job_above``, keeps a job, a log
  and a benchmark file of its own, as before batching.
- The small models of a data set fill batches by their place among that data set's models in
  name order: fixed slots of ``size``, so that a model changing its formula (or growing out of
  its batch) leaves every other model where it was. Not the configuration's order: Snakemake
  puts an entry overridden by ``--configfile`` first. A slot holding one small model is that
  model's own job.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

from lmmflow.data.acquire import local_origin
from lmmflow.model.formula import parse_formula

_CHUNK = 1 << 20  # bytes read at a time when counting a CSV file's lines


@dataclass
class FitPlan:
    """``solo``: models fitted in a job of their own; ``batches``: batch name -> its models, in
    name order (the names: ``<data set>_<slot>``)."""

    solo: list[str] = field(default_factory=list)
    batches: dict[str, list[str]] = field(default_factory=dict)


def formula_terms(formula: str) -> int:
    """The formula's terms, an estimate of its columns: the fixed part's and each random term's,
    an intercept counted unless removed (``(1 + x | g)`` counts 2, ``(0 + x | g)`` 1)."""
    parsed = parse_formula(formula)
    return _terms(parsed.fixed) + sum(_terms(term.expr) for term in parsed.random)


def _terms(expression: str) -> int:
    items = {item.strip() for item in expression.split("+")}
    return len(items - {"0", "1", "-1"}) + (not items & {"0", "-1"})


def model_size(formula: str, rows: int | None) -> int | None:
    """Rows x terms, or None if the rows are not known."""
    return None if rows is None else rows * formula_terms(formula)


def dataset_rows(spec: dict, mirror: str | None, at_most: int) -> int | None:
    """A data set's rows, if known at start-up: simulated (the generator's parameters), or a CSV
    or Parquet file at hand (its ``path``, or its copy in the data mirror). A CSV file is counted
    up to ``at_most`` rows: more means too many to batch anyway."""
    if "simulate" in spec:
        return _simulated_rows(spec["simulate"])
    origin = local_origin(spec["source"], mirror)
    if origin is None or not origin.is_file():
        return None
    suffix = origin.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(origin, at_most)
    if suffix == ".parquet":
        import pyarrow.parquet

        return pyarrow.parquet.read_metadata(origin).num_rows
    return None


def _simulated_rows(simulate: dict) -> int | None:
    from lmmflow.data.simulate import simulate_exercise

    if simulate["generator"] != "exercise":
        return None

    defaults = {name: value.default for name, value in inspect.signature(simulate_exercise).parameters.items()}
    parameters = {**defaults, **simulate.get("parameters", {})}
    return int(parameters["n_groups"]) * int(parameters["n_per_group"])


def _csv_rows(path: Path, at_most: int) -> int:
    """Lines after the header, counted until more than ``at_most``."""
    lines, last = 0, b"\n"
    with open(path, "rb") as file:
        while lines <= at_most and (chunk := file.read(_CHUNK)):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines - (last == b"\n")


def plan_fit_jobs(models: dict, sizes: dict[str, int | None], size: int, own_job_above: int) -> FitPlan:
    """Batches of at most ``size`` small models per data set (module docstring); ``sizes``: each
    model's ``model_size``."""
    plan = FitPlan()
    slots: dict[tuple[str, int], list[str]] = {}
    position: dict[str, int] = {}
    for model, spec in sorted(models.items()):
        dataset = spec["dataset"]
        place = position.get(dataset, 0)
        position[dataset] = place + 1
        if sizes[model] is None or sizes[model] > own_job_above:
            plan.solo.append(model)
        else:
            slots.setdefault((dataset, place // size), []).append(model)
    for (dataset, slot), members in slots.items():
        if len(members) == 1:
            plan.solo.append(members[0])
        else:
            plan.batches[f"{dataset}_{slot}"] = members
    plan.solo.sort()
    return plan


def plan_from_config(config: dict) -> FitPlan:
    """The plan of ``config``'s models (schema defaults filled in), by its ``batches`` section."""
    settings = config["batches"]
    limit = settings["own_job_above"]
    rows = {}
    for dataset in {spec["dataset"] for spec in config["models"].values()}:
        rows[dataset] = dataset_rows(config["datasets"][dataset], config["data_mirror"], at_most=limit)
    sizes = {model: model_size(spec["formula"], rows[spec["dataset"]]) for model, spec in config["models"].items()}
    return plan_fit_jobs(config["models"], sizes, settings["size"], limit)
