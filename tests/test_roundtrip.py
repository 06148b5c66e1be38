"""Round trips of gates through GatingML 2.0 and FlowJo workspaces.

Import: GatingML files entering as templates are checked against the ISAC compliance truth in
``test_compliance.py`` (not repeated here); FlowJo workspaces from ``../shared/data`` (see its
PROVENANCE.md) must reproduce FlowJo's stored counts. Export: the gates a sample was gated with
(data-driven gates fitted per sample, and a hand-made custom sample gate) written as GatingML or
as a FlowJo workspace and read back must gate every event, and count every gate, the same.
"""

from __future__ import annotations

import copy
from pathlib import Path

import flowkit as fk
import numpy as np
import pytest

from cikflow.exceptions import ExportError, GatingTemplateError
from cikflow.gating import Template, gate_fcs, validate_template
from cikflow.gating.concrete import concrete_strategy, merge_strategies, split_quadrants
from cikflow.io import (
    FcsData,
    WorkspaceSample,
    export_flowjo_wsp,
    export_gatingml,
    read_fcs,
    read_flowjo_counts,
    read_json,
    read_template,
)
from cikflow.io.simulated import write_simulated
from cikflow.simulate import simulate_batches
from cikflow.steps import export_workspace, gate_file

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TEMPLATE = REPO / "config" / "gating" / "cik_default.yaml"
ALIASES = {"Viability": ["7-AAD"]}
#: FlowJo's own counts (PROVENANCE.md), which flowkit 1.3.2 reproduces exactly
FLOWSOM_NK = {"NK cells": 312, "NK T cells": 535}


def _membership(strategy: fk.GatingStrategy, fcs: FcsData, outcome) -> dict[str, np.ndarray]:
    """Membership of every gate of ``outcome`` when ``strategy`` gates ``fcs``."""
    results = strategy.gate_sample(fcs.sample)
    return {
        info.name: np.asarray(results.get_gate_membership(info.name, info.path), dtype=bool)
        for info in outcome.infos
        if info.gate_type != "quadrant"
    }


def _assert_same(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(actual) == set(expected)
    for gate, mask in expected.items():
        np.testing.assert_array_equal(actual[gate], mask, err_msg=gate)


def _flowkit_counts(wsp: Path) -> dict[tuple[str, str], int]:
    """(sample, gate) → count, gating the workspace with flowkit alone (files found by URI)."""
    workspace = fk.Workspace(str(wsp), find_fcs_files_from_wsp=True)
    workspace.analyze_samples(use_mp=False)
    report = workspace.get_analysis_report()
    return {
        (row.sample_id, row.gate_name): int(row.count)
        for row in report[["sample_id", "gate_name", "count"]].itertuples()
    }


# --- simulated batch gated with the default (data-driven) template -----------------------------


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A simulated culture (days 0, 14, 21; few events), each file gated with cik_default."""
    out = tmp_path_factory.mktemp("roundtrip")
    sheet = write_simulated(
        simulate_batches(n_batches=1, days=(0, 14, 21), n_events=3000, seed=11), out
    )
    template = read_template(DEFAULT_TEMPLATE)
    gated = []
    for sample in sheet["sample"]:
        fcs = read_fcs(out / f"{sample}.fcs")
        gated.append((fcs, gate_fcs(fcs, template, aliases=ALIASES)))
    return out, gated


@pytest.fixture(scope="module")
def custom(batch):
    """The day-14 sample with a hand-made custom sample gate (as a fitted gate would be)."""
    _, gated = batch
    fcs, outcome = gated[1]
    strategy = copy.deepcopy(outcome.strategy)
    path = next(info.path for info in outcome.infos if info.name == "leukocytes")
    gate = copy.deepcopy(strategy.get_gate("leukocytes", path))
    assert not strategy.is_custom_gate(fcs.sample.id, "leukocytes", path)
    gate.dimensions[0].min += 0.08  # a higher CD45 threshold, in the logicle scale
    strategy.add_gate(gate, path, sample_id=fcs.sample.id)
    expected = _membership(strategy, fcs, outcome)
    assert expected["leukocytes"].sum() < outcome.membership["leukocytes"].sum()
    return fcs, outcome, strategy, expected


def test_default_template_fits_gates_per_sample(batch):
    # the premise of the export tests: fitted gates are custom sample gates that differ by sample
    _, gated = batch
    (fcs0, out0), (fcs2, out2) = gated[0], gated[2]
    path = next(info.path for info in out0.infos if info.name == "lymphocytes")
    assert out0.strategy.is_custom_gate(fcs0.sample.id, "lymphocytes", path)
    v0 = out0.strategy.get_gate("lymphocytes", path, sample_id=fcs0.sample.id).vertices
    v2 = out2.strategy.get_gate("lymphocytes", path, sample_id=fcs2.sample.id).vertices
    assert not np.allclose(np.asarray(v0).mean(axis=0), np.asarray(v2).mean(axis=0))


@pytest.mark.parametrize("day", [0, 1, 2], ids=["d00", "d14", "d21"])
def test_gatingml_export_reimport_same_membership(batch, tmp_path, day):
    _, gated = batch
    fcs, outcome = gated[day]
    xml = tmp_path / "gates.xml"
    export_gatingml(outcome.strategy, xml, sample_id=fcs.sample.id)
    template = read_template(xml)
    assert template.kind == "gatingml"
    # plain GatingML: the fitted coordinates are the only gates, no custom sample gates left
    assert not any(
        template.strategy.is_custom_gate(fcs.sample.id, name, path)
        for name, path in template.strategy.get_gate_ids()
        if name not in ("T", "CIK", "NK", "CD3neg_CD56neg")
    )
    _assert_same(gate_fcs(fcs, template).membership, outcome.membership)


def test_gatingml_export_keeps_a_custom_sample_gate(custom, tmp_path):
    fcs, _, strategy, expected = custom
    xml = tmp_path / "gates.xml"
    export_gatingml(strategy, xml, sample_id=fcs.sample.id)
    _assert_same(gate_fcs(fcs, read_template(xml)).membership, expected)
    # without the sample ID the template gate comes back
    export_gatingml(strategy, xml)
    leuk = gate_fcs(fcs, read_template(xml)).membership["leukocytes"]
    assert leuk.sum() > expected["leukocytes"].sum()


def test_wsp_export_reimport_through_flowkit_same_counts(batch, custom, tmp_path):
    _, gated = batch
    fcs1, _, strategy1, expected1 = custom
    entries = [WorkspaceSample(fcs, outcome.strategy) for fcs, outcome in gated]
    entries[1] = WorkspaceSample(fcs1, strategy1)
    wsp = tmp_path / "batch.wsp"
    assert export_flowjo_wsp(entries, wsp, group="B01") == []
    counts = _flowkit_counts(wsp)
    assert {s for s, _ in counts} == {fcs.path.name for fcs, _ in gated}
    for k, (fcs, outcome) in enumerate(gated):
        expected = expected1 if k == 1 else outcome.membership
        for gate, mask in expected.items():
            assert counts[(fcs.path.name, gate)] == int(mask.sum()), (fcs.path.name, gate)
    wsp_dict = fk.parse_wsp(str(wsp))
    assert set(wsp_dict["groups"]) == {"All Samples", "B01"}
    assert len(wsp_dict["groups"]["B01"]["samples"]) == 3
    # every sample carries its own spillover matrix (the one it was compensated with)
    for fcs, outcome in gated:
        comp = wsp_dict["samples"][fcs.path.name]["compensation"]
        np.testing.assert_array_equal(
            comp["matrix"].matrix, outcome.strategy.comp_matrices["spill"].matrix
        )
        assert comp["prefix"] == "Comp-"


def test_wsp_export_reimport_as_template_gates_each_sample_with_its_own_gates(
    batch, custom, tmp_path
):
    _, gated = batch
    fcs1, _, strategy1, expected1 = custom
    entries = [WorkspaceSample(fcs, outcome.strategy) for fcs, outcome in gated]
    entries[1] = WorkspaceSample(fcs1, strategy1)
    wsp = tmp_path / "batch.wsp"
    export_flowjo_wsp(entries, wsp)
    template = read_template(wsp)
    for k, (fcs, outcome) in enumerate(gated):
        expected = expected1 if k == 1 else outcome.membership
        _assert_same(gate_fcs(fcs, template).membership, expected)


# --- what FlowJo workspaces cannot hold, and how the writers cope ------------------------------


def test_wsp_export_of_boolean_and_quadrant_gates(batch, tmp_path):
    _, gated = batch
    fcs = gated[0][0]
    spec = validate_template(
        {
            "name": "booleans",
            "version": "1",
            "gates": [
                {"name": "cells", "parent": "root", "type": "range",
                 "dimensions": {"FSC-A": {"min": 25000}}},
                {"name": "cd3", "parent": "cells", "type": "range",
                 "dimensions": {"CD3": {"min": 1500}}},
                {"name": "q", "parent": "cells", "type": "quadrant",
                 "x": {"dimension": "CD3", "at": 1500}, "y": {"dimension": "CD56", "at": 600},
                 "quadrants": {"Tq": "+-", "CIKq": "++", "NKq": "-+", "DNq": "--"}},
                {"name": "cd16", "parent": "CIKq", "type": "range",
                 "dimensions": {"CD16": {"min": 1500}}},
                {"name": "both", "parent": "root", "type": "boolean", "op": "and",
                 "of": ["cd3", "cd16"]},
                {"name": "either", "parent": "cells", "type": "boolean", "op": "or",
                 "of": ["NKq", "cd16"]},
                {"name": "notcd3", "parent": "cells", "type": "boolean", "op": "not",
                 "of": ["cd3"]},
            ],
        },
        source="test",
    )  # fmt: skip
    outcome = gate_fcs(fcs, Template("booleans", "1", "yaml", spec), aliases=ALIASES)
    wsp = tmp_path / "bool.wsp"
    export_flowjo_wsp([WorkspaceSample(fcs, outcome.strategy)], wsp)
    counts = _flowkit_counts(wsp)
    for gate, mask in outcome.membership.items():
        assert counts[(fcs.path.name, gate)] == int(mask.sum()), gate
    assert outcome.membership["both"].any()
    # the quadrant is stored as four rectangles under its parent, as FlowJo stores quadrants
    template = read_template(wsp)
    assert ("Tq", ("root", "cells")) in template.strategy.get_gate_ids()
    _assert_same(gate_fcs(fcs, template).membership, outcome.membership)


def test_wsp_export_refuses_what_flowjo_cannot_hold(batch, tmp_path):
    _, gated = batch
    fcs, outcome = gated[0]
    strategy = fk.GatingStrategy()
    dims = [fk.Dimension("FSC-A", "uncompensated"), fk.Dimension("SSC-A", "uncompensated")]
    strategy.add_gate(
        fk.gates.EllipsoidGate("blob", dims, [60000, 20000], [[1e8, 0], [0, 1e8]], 1.0), ("root",)
    )
    good = WorkspaceSample(fcs, outcome.strategy)
    bad = WorkspaceSample(gated[1][0], strategy)
    wsp = tmp_path / "bad.wsp"
    with pytest.raises(ExportError, match="EllipsoidGate"):
        export_flowjo_wsp([good, bad], wsp)
    skipped = export_flowjo_wsp([good, bad], wsp, on_error="skip")
    assert len(skipped) == 1
    assert gated[1][0].path.name in skipped[0]
    assert list(fk.parse_wsp(str(wsp))["samples"]) == [fcs.path.name]
    with pytest.raises(ExportError, match="unique"):
        export_flowjo_wsp([good, good], wsp)


def test_empty_batch_gives_an_empty_workspace(tmp_path):
    wsp = tmp_path / "empty.wsp"
    assert export_flowjo_wsp([], wsp) == []
    assert fk.parse_wsp(str(wsp))["samples"] == {}


@pytest.mark.parametrize("divider", [-100.0, 0.0], ids=["negative", "zero"])
def test_gatingml_quadrant_at_or_below_zero(batch, tmp_path, divider):
    # flowkit places a quadrant's location at half (or twice) the divider, which is on the
    # wrong side when the divider is <= 0; the exporter moves it inside its quadrant
    _, gated = batch
    fcs = gated[0][0]
    strategy = fk.GatingStrategy()
    dividers = [
        fk.QuadrantDivider("x", "FSC-A", "uncompensated", [divider]),
        fk.QuadrantDivider("y", "SSC-A", "uncompensated", [20000.0]),
    ]
    quadrants = [
        fk.gates.Quadrant("pp", ["x", "y"], [(divider, None), (20000.0, None)]),
        fk.gates.Quadrant("np", ["x", "y"], [(None, divider), (20000.0, None)]),
        fk.gates.Quadrant("pn", ["x", "y"], [(divider, None), (None, 20000.0)]),
        fk.gates.Quadrant("nn", ["x", "y"], [(None, divider), (None, 20000.0)]),
    ]
    strategy.add_gate(fk.gates.QuadrantGate("quad", dividers, quadrants), ("root",))
    xml = tmp_path / "quad.xml"
    export_gatingml(strategy, xml)
    before = strategy.gate_sample(fcs.sample)
    after = read_template(xml).strategy.gate_sample(fcs.sample)
    for q in ("pp", "np", "pn", "nn"):
        np.testing.assert_array_equal(
            after.get_gate_membership(q), before.get_gate_membership(q), err_msg=q
        )


def test_split_quadrants_keeps_membership(batch):
    _, gated = batch
    fcs, outcome = gated[2]
    split = split_quadrants(concrete_strategy(outcome.strategy, sample_id=fcs.sample.id))
    results = split.gate_sample(fcs.sample)
    for info in outcome.infos:
        if info.gate_type == "quadrant":
            continue
        path = tuple(p for p in info.path if p != "cd3_cd56")
        np.testing.assert_array_equal(
            results.get_gate_membership(info.name, path), outcome.membership[info.name]
        )


def test_merge_refuses_different_gate_trees(batch):
    _, gated = batch
    a = gated[0][1].strategy
    b = copy.deepcopy(a)
    b.add_gate(fk.gates.RectangleGate("extra", [fk.Dimension("FSC-A", range_min=1.0)]), ("root",))
    with pytest.raises(GatingTemplateError, match="different gate tree"):
        merge_strategies({"a": a, "b": b})


# --- the workflow steps: gates.xml per sample, workspace.wsp per batch -------------------------


def test_steps_write_gatingml_and_workspace(batch, tmp_path):
    _, gated = batch
    config = {"panel": {"aliases": ALIASES}}
    dirs = []
    for fcs, outcome in gated[:2]:
        d = tmp_path / fcs.path.stem
        status = gate_file(fcs.path, template_path=DEFAULT_TEMPLATE, out_dir=d, config=config)
        assert status["gatingml"] == "gates.xml"
        _assert_same(gate_fcs(fcs, read_template(d / "gates.xml")).membership, outcome.membership)
        dirs.append(d)
    bad = tmp_path / "bad.fcs"
    bad.write_bytes(b"not an FCS file")
    status = gate_file(bad, template_path=DEFAULT_TEMPLATE, out_dir=tmp_path / "bad", config=config)
    assert status["status"] == "failed"
    assert read_json(tmp_path / "bad" / "status.json")["gatingml"] == "none"
    assert (tmp_path / "bad" / "gates.xml").is_file()  # an empty GatingML document
    dirs.append(tmp_path / "bad")
    wsp = tmp_path / "workspace.wsp"
    skipped = export_workspace(dirs, out_path=wsp, group="B01")
    assert len(skipped) == 1
    assert skipped[0].startswith("bad:")
    counts = _flowkit_counts(wsp)
    for fcs, outcome in gated[:2]:
        for gate, mask in outcome.membership.items():
            assert counts[(fcs.path.name, gate)] == int(mask.sum()), gate


# --- FlowJo workspaces from ../shared/data imported as templates -------------------------------


def test_cytoml_wsp_reproduces_flowjo_counts(shared_data: Path):
    folder = shared_data / "flowjo-wsp-coereba"
    template = read_template(folder / "CytoML.wsp", group="All Samples")
    flowjo = read_flowjo_counts(folder / "CytoML.wsp").query("gate == 'Vd2'")
    flowjo = flowjo.set_index("sample")["count"]
    files = sorted(folder.glob("*.fcs"))
    assert len(files) == len(flowjo) == 30
    ours = {}
    for path in files:
        outcome = gate_fcs(read_fcs(path), template)
        ours[path.name] = int(outcome.gates.set_index("gate").loc["Vd2", "events"])
        # every sample is gated with its own (FlowJo sample-specific) gate
        first = path.name == flowjo.index[0]
        assert first or template.strategy.is_custom_gate(path.stem, "Vd2", ("root",))
    assert ours == flowjo.to_dict()


def test_flowsom_wsp_reproduces_nk_and_nkt_counts(shared_data: Path):
    folder = shared_data / "flowsom-68983"
    template = read_template(folder / "gating.wsp")
    counts = gate_fcs(read_fcs(folder / "68983.fcs"), template).gates.set_index("gate")["events"]
    flowjo = read_flowjo_counts(folder / "gating.wsp").set_index("gate")["count"]
    for gate, n in FLOWSOM_NK.items():
        assert counts[gate] == n == flowjo[gate]


def test_wsp_template_errors(shared_data: Path, tmp_path):
    wsp = shared_data / "flowjo-wsp-coereba" / "CytoML.wsp"
    with pytest.raises(GatingTemplateError, match="no sample group 'Nope'"):
        read_template(wsp, group="Nope")
    with pytest.raises(GatingTemplateError, match=r"no sample 'nope\.fcs'"):
        read_template(wsp, sample="nope.fcs")
    bad = tmp_path / "bad.wsp"
    bad.write_text("<Workspace/>")
    with pytest.raises(GatingTemplateError, match=r"bad\.wsp: not a FlowJo 10 workspace"):
        read_template(bad)


def test_wsp_single_sample_template(shared_data: Path):
    folder = shared_data / "flowjo-wsp-coereba"
    name = "2025_08_07_AB_06_INF155_00_SEB.fcs"
    template = read_template(folder / "CytoML.wsp", sample=name)
    assert template.strategy.get_gate_ids() == [("Vd2", ("root",))]
    flowjo = read_flowjo_counts(folder / "CytoML.wsp").set_index("sample")["count"]
    outcome = gate_fcs(read_fcs(folder / name), template)
    assert outcome.gates.set_index("gate").loc["Vd2", "events"] == flowjo[name]


def test_flowjo_biex_cannot_become_gatingml(shared_data: Path, tmp_path):
    template = read_template(shared_data / "flowjo-wsp-coereba" / "CytoML.wsp")
    with pytest.raises(ExportError, match="WSPBiexTransform"):
        export_gatingml(template.strategy, tmp_path / "x.xml")


# the ISAC GatingML compliance set: every file imported, exported and imported again gates
# every event the same (test_compliance.py checks the first import against the truth files)
_GML = REPO.parent / "shared" / "data" / "gatingml-flowkit" / "gml"
_GML_FILES = (
    sorted(p.name for p in _GML.glob("*.xml") if p.name != "gml_range_gate_attr_testing.xml")
    if _GML.is_dir()
    else []
)


@pytest.mark.parametrize("xml", _GML_FILES or ["absent"], ids=_GML_FILES or ["absent"])
def test_gatingml_compliance_set_survives_export(shared_data: Path, tmp_path, xml: str):
    if not _GML_FILES:
        pytest.skip("../shared/data absent")
    folder = shared_data / "gatingml-flowkit"
    data1 = read_fcs(folder / "data1.fcs")
    before = gate_fcs(data1, read_template(folder / "gml" / xml)).membership
    export_gatingml(read_template(folder / "gml" / xml).strategy, tmp_path / xml)
    _assert_same(gate_fcs(data1, read_template(tmp_path / xml)).membership, before)


def test_workspace_gates_follow_the_file_whatever_the_sample_id(shared_data):
    """Sample-sheet IDs differ from FlowJo's sample names: each file still gets its own gates."""
    from cikflow.io.flowjo import read_flowjo_counts

    folder = shared_data / "flowjo-wsp-coereba"
    template = read_template(folder / "CytoML.wsp")
    counts = read_flowjo_counts(folder / "CytoML.wsp")
    vd2 = counts[counts["gate"] == "Vd2"]
    expected = dict(zip(vd2["sample"], vd2["count"], strict=True))
    files = sorted(folder.glob("*.fcs"))
    assert len(files) == 30
    for i, path in enumerate(files):
        outcome = gate_fcs(read_fcs(path, sample_id=f"row{i}"), template)
        got = outcome.gates.set_index("gate").loc["Vd2", "events"]
        assert got == expected[path.name], path.name


def test_a_workspace_template_draws_each_sample_with_its_own_gate(shared_data: Path):
    from cikflow.plotdata import gate_plot_data

    folder = shared_data / "flowjo-wsp-coereba"
    template = read_template(folder / "CytoML.wsp")
    flowjo = read_flowjo_counts(folder / "CytoML.wsp").query("gate == 'Vd2'")
    flowjo = flowjo.set_index("sample")["count"]
    outlines = []
    # the one sample whose Vd2 gate FlowJo placed differently, and another
    odd = next(n for n in flowjo.index if "INF199" in n)
    for name in (flowjo.index[0], odd):
        fcs = read_fcs(folder / name)
        outcome = gate_fcs(fcs, template)
        (plot,) = gate_plot_data(fcs, outcome, template=template, compensated=None)
        assert plot["gate"] == "Vd2"
        assert plot["events"] == flowjo[name]
        assert plot["parent_events"] == fcs.n_events  # Vd2 sits on root
        assert 0.99 * fcs.n_events <= int(np.sum(plot["counts"])) <= fcs.n_events
        # the outline is this sample's own Vd2 rectangle (FlowJo sample-specific gates)
        gate = template.strategy.get_gate("Vd2", ("root",), sample_id=fcs.sample_id)
        (path,) = plot["outline"]["paths"]
        assert (min(path["x"]), max(path["x"])) == (gate.dimensions[0].min, gate.dimensions[0].max)
        assert (min(path["y"]), max(path["y"])) == (gate.dimensions[1].min, gate.dimensions[1].max)
        outlines.append(path)
    assert len({str(p) for p in outlines}) > 1  # and the samples' gates differ


def test_a_notched_quadrant_exports_and_reimports_the_same(tmp_path):
    """Day 21 (realistic): the CIK quadrant is L-shaped, written as a polygon.

    On a tube whose notch moves events, GatingML read back gives every event the same
    gates, and a FlowJo workspace gated by flowkit alone the same quadrant counts.
    """
    sheet = write_simulated(
        simulate_batches(n_batches=1, days=(21,), n_events=30_000, seed=6, preset="realistic"),
        tmp_path,
    )
    fcs = read_fcs(tmp_path / f"{sheet['sample'].iloc[0]}.fcs")
    outcome = gate_fcs(fcs, read_template(DEFAULT_TEMPLATE), aliases=ALIASES)
    (gate,) = [i.gate for i in outcome.infos if i.name == "cd3_cd56"]
    assert gate.notched
    xml = tmp_path / "gates.xml"
    export_gatingml(outcome.strategy, xml, sample_id=fcs.sample.id)
    _assert_same(gate_fcs(fcs, read_template(xml)).membership, outcome.membership)
    wsp = tmp_path / "batch.wsp"
    assert export_flowjo_wsp([WorkspaceSample(fcs, outcome.strategy)], wsp, group="B01") == []
    counts = _flowkit_counts(wsp)
    for pop in ("T", "CIK", "NK", "CD3neg_CD56neg"):
        assert counts[(fcs.path.name, pop)] == int(outcome.membership[pop].sum()), pop
