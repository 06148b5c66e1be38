"""Imported templates (GatingML, FlowJo) with data-driven `method:` overrides on named gates."""

from __future__ import annotations

import numpy as np
import pytest

from cikflow.exceptions import GatingTemplateError
from cikflow.gating import gate_fcs
from cikflow.io import read_fcs, read_template


def _template(tmp_path, text):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return read_template(path)


def test_flowjo_gates_with_fitted_overrides_keep_the_expert_counts(shared_data, tmp_path):
    folder = shared_data / "flowsom-68983"
    template = _template(
        tmp_path,
        f"""name: flowjo_fitted
version: 1
import: {folder / "gating.wsp"}
overrides:
  Lymphocytes: {{method: blob, params: {{n_components: 2, level: 0.99999, merge: 4.0}}}}
  NK1_1+: {{method: valley, params: {{search: [1000, 20000], dimension: PE-A}}}}
""",
    )
    fcs = read_fcs(folder / "68983.fcs")
    outcome = gate_fcs(fcs, template)
    assert outcome.flags == []
    strategy = outcome.strategy
    fitted = strategy.get_gate("NK1_1+", sample_id=fcs.sample.id).dimensions[0].min
    expert = template.strategy.get_gate("NK1_1+", sample_id=fcs.sample.id).dimensions[0].min
    assert fitted != expert
    # the fitted NK1.1 threshold lands within 2 % of the expert's, in the gate's own scale
    assert fitted == pytest.approx(expert, rel=0.02)
    counts = outcome.gates.set_index("gate")["events"]
    assert abs(counts["NK cells"] - 312) <= 10
    assert abs(counts["NK T cells"] - 535) <= 10
    # the imported template itself is untouched (a copy is fitted per sample)
    assert template.strategy.get_gate("NK1_1+", sample_id=fcs.sample.id).dimensions[0].min == expert


def test_gatingml_range_gate_override(shared_data, tmp_path):
    folder = shared_data / "gatingml-flowkit"
    template = _template(
        tmp_path,
        f"""name: gml_fitted
version: 1
import: {folder / "gml" / "gml_range_gate.xml"}
overrides:
  Range1: {{method: quantile, params: {{quantile: 0.5}}}}
""",
    )
    fcs = read_fcs(folder / "data1.fcs")
    outcome = gate_fcs(fcs, template)
    n = int(outcome.gates.set_index("gate").loc["Range1", "events"])
    assert outcome.strategy.is_custom_gate(fcs.sample.id, "Range1")
    # Range1 is FSC-H >= 100, uncompensated and untransformed: the fitted lower bound is
    # the median of FSC-H, so the gate keeps exactly the events at or above it
    fsc_h = fcs.events[:, fcs.pnn.index("FSC-H")]
    assert n == int((fsc_h >= np.median(fsc_h)).sum())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "overrides: {Nope: {method: valley, params: {search: [1, 2]}}}",
            "override 'Nope': no gate",
        ),
        ("overrides: {Range1: {method: valley}}", "needs params.search"),
        ("overrides: {Range1: {method: magic}}", "field 'overrides.Range1.method'"),
        ("overrides: {Range1: {method: blob}}", "needs a polygon gate"),
    ],
    ids=["unknown-gate", "no-search", "bad-method", "wrong-type"],
)
def test_override_errors_name_the_gate(shared_data, tmp_path, body, message):
    folder = shared_data / "gatingml-flowkit"
    path = tmp_path / "t.yaml"
    path.write_text(
        f"name: x\nversion: 1\nimport: {folder / 'gml' / 'gml_range_gate.xml'}\n{body}\n"
    )
    fcs = read_fcs(folder / "data1.fcs")
    with pytest.raises(GatingTemplateError, match=message):
        gate_fcs(fcs, read_template(path))
