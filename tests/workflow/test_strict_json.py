"""Every JSON file a complete workflow run writes is strict JSON (RFC 8259): no NaN or Infinity
tokens, which Python's json accepts but R's jsonlite and JavaScript reject."""

import pytest
from workflow_helpers import json_outputs

pytestmark = pytest.mark.workflow


def test_every_json_output_parses_strictly(completed_workflow):
    parsed = json_outputs(completed_workflow / "results")
    # the kinds of JSON the workflow writes: data dictionaries, model and shrinkage fits
    assert {"data/gpa.schema.json", "models/gpa_mixed/fit.json", "shrinkage/gpa/fit.json"} <= set(parsed)
