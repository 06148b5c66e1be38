"""Template transforms beyond logicle: FlowJo's biex and GatingML's hyperlog.

biex is checked against the logicle function it implements (Moore & Parks 2012, solved here
by bisection, independently of flowkit) at a few hand-checked points; both transforms are
checked to survive the exchange formats that can hold them: biex a FlowJo workspace (as
biex), hyperlog GatingML 2.0, each read back with the same membership for every event.
"""

from __future__ import annotations

import math

import flowkit as fk
import numpy as np
import pytest

from cikflow.exceptions import ExportError, GatingTemplateError
from cikflow.gating import Template, gate_fcs, validate_template
from cikflow.gating.template import make_transform
from cikflow.io import WorkspaceSample, export_flowjo_wsp, export_gatingml, read_fcs, read_template
from cikflow.io.simulated import write_simulated
from cikflow.simulate import simulate_batches

ALIASES = {"Viability": ["7-AAD"]}


def _logicle(x: float, *, t: float, w: float, m: float, a: float) -> float:
    """Logicle scale value of data value ``x`` (Moore & Parks, Cytometry A 2012, eqs. 5-9)."""
    b = (m + a) * math.log(10)
    wf, x2 = w / (m + a), a / (m + a)
    x1, x0 = x2 + wf, x2 + 2 * wf
    lo, hi = 1e-12, b  # d solves 2 (ln d - ln b) + w (b + d) = 0
    for _ in range(200):
        d = (lo + hi) / 2
        lo, hi = (d, hi) if 2 * (math.log(d) - math.log(b)) + wf * (b + d) < 0 else (lo, d)
    ca = math.exp(x0 * (b + d))
    mfa = math.exp(b * x1) - ca / math.exp(d * x1)
    big_a = t / (math.exp(b) - mfa - ca / math.exp(d))

    def s(y: float) -> float:
        if y < x1:
            return -s(2 * x1 - y)
        return big_a * math.exp(b * y) - ca * big_a * math.exp(-d * y) - mfa * big_a

    lo, hi = -1.0, 1.5
    for _ in range(200):
        y = (lo + hi) / 2
        lo, hi = (y, hi) if s(y) < x else (lo, y)
    return y


# FlowJo biex (max, pos, neg, width) is logicle with T = max, M = pos, A = neg and
# W = log10(|width|) / 2, tabulated on 4096 channels (FlowJo 10; cytolib's port).
# Hand check at zero: x1 = (A + W) / (M + A): width -1000, pos 4.5 -> 1.5 / 4.5 = 1/3;
# width -100, pos 4.5, neg 1 -> 2 / 5.5 = 0.3636; the table places it on a whole
# channel (1365 / 4096 = 0.33325, 1489 / 4096 = 0.36353).
BIEX_CASES = [
    pytest.param({"max": 262144, "pos": 4.5, "neg": 0, "width": -1000}, id="aurora-262144"),
    pytest.param({"max": 1e6, "pos": 4.5, "neg": 0, "width": -1000}, id="aurora-1e6"),
    pytest.param({"max": 262144, "pos": 4.5, "neg": 1, "width": -100}, id="neg1-w100"),
]
POINTS = [-1000.0, -100.0, 0.0, 100.0, 1000.0, 1e4, 1e5]
#: FlowJo's table differs from the closed form by its whole-channel zero point and its
#: 4097-point grid: at most 20 of 4096 channels at these points
CHANNELS = 20 / 4096


@pytest.mark.parametrize("biex", BIEX_CASES)
def test_biex_reproduces_flowjo_values(biex):
    xform = make_transform({"type": "biex", **biex})
    w = math.log10(-biex["width"]) / 2
    expected = [_logicle(x, t=biex["max"], w=w, m=biex["pos"], a=biex["neg"]) for x in POINTS]
    got = xform.apply(np.array(POINTS).reshape(-1, 1))[:, 0]
    np.testing.assert_allclose(got, expected, atol=CHANNELS)
    zero = (biex["neg"] + w) / (biex["pos"] + biex["neg"])
    assert got[2] == pytest.approx(zero, abs=1 / 4096)  # one channel
    assert np.all(np.diff(got) > 0)
    # the inverse returns the data values (to the table's resolution)
    np.testing.assert_allclose(xform.inverse(got.reshape(-1, 1))[:, 0], POINTS, rtol=0.02, atol=5)


def test_biex_keeps_flowjo_parameters_and_defaults():
    xform = make_transform({"type": "biex", "max": 1e6, "pos": 4.5, "width": -1000})
    assert isinstance(xform, fk.transforms.WSPBiexTransform)
    assert (xform.max_value, xform.positive, xform.negative, xform.width) == (1e6, 4.5, 0, -1000)
    default = make_transform({"type": "biex"})
    assert (default.max_value, default.positive, default.negative, default.width) == (
        262144,
        4.418540,
        0,
        -10,
    )


def test_hyperlog_matches_gatingml_definition():
    # GatingML 2.0 hyperlog: hyperlog(x) = y with EH(y) = x; EH(x1) = 0 at x1 = (A + W) / (M + A)
    xform = make_transform({"type": "hyperlog", "t": 1000, "w": 1, "m": 4, "a": 0})
    assert xform.apply(np.array([[0.0]]))[0, 0] == pytest.approx(0.25, abs=1e-12)
    assert xform.apply(np.array([[1000.0]]))[0, 0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ({"type": "biex", "t": 262144}, "transforms.fx"),
        ({"type": "logicle", "width": -10}, "transforms.fx"),
        ({"type": "biex", "width": 10}, "transforms.fx.width"),
        ({"type": "hyperlog", "w": 3, "m": 4.5}, "hyperlog needs 0 < w <= m/2 (w=3, m=4.5)"),
    ],
    ids=["biex-t", "logicle-width", "biex-width-positive", "hyperlog-w"],
)
def test_transform_parameters_are_validated(entry, text):
    spec = {
        "name": "x",
        "version": 1,
        "transforms": {"fx": entry},
        "default_transform": "fx",
        "gates": [{"name": "a", "parent": "root", "type": "range", "dimensions": {"CD3": {}}}],
    }
    with pytest.raises(GatingTemplateError, match="field 'transforms") as info:
        validate_template(spec, source="t.yaml")
    assert text in str(info.value)


# --- exchange: biex through a FlowJo workspace, hyperlog through GatingML --------------------


def _template(transform: dict) -> Template:
    spec = validate_template(
        {
            "name": "exchange",
            "version": 1,
            "transforms": {"fx": transform, "none": {"type": "none"}},
            "default_transform": "fx",
            "channels": {"FSC-A": "none", "SSC-A": "none"},
            "gates": [
                {
                    "name": "cells",
                    "parent": "root",
                    "type": "range",
                    "dimensions": {"FSC-A": {"min": 25000, "max": None}},
                },
                {
                    "name": "CD3pos",
                    "parent": "cells",
                    "type": "rectangle",
                    "dimensions": {"CD3": {"min": 300, "max": None}, "CD56": {"min": -500}},
                },
                {
                    "name": "CIKish",
                    "parent": "cells",
                    "type": "polygon",
                    "dimensions": ["CD3", "CD56"],
                    "vertices": [[300, 200], [100000, 200], [100000, 100000], [300, 100000]],
                },
            ],
        }
    )
    return Template(name="exchange", version="1", kind="yaml", spec=spec, sha256="0" * 64)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list:
    out = tmp_path_factory.mktemp("transforms")
    sheet = write_simulated(simulate_batches(n_batches=1, days=(0, 21), n_events=3000, seed=5), out)
    return [read_fcs(out / f"{sample}.fcs") for sample in sheet["sample"]]


BIEX = {"type": "biex", "max": 262144, "pos": 4.5, "neg": 0, "width": -1000}
HYPERLOG = {"type": "hyperlog", "t": 262144, "w": 0.5, "m": 4.5, "a": 0}


def test_biex_survives_a_flowjo_workspace_as_biex(files, tmp_path):
    template = _template(BIEX)
    gated = [(fcs, gate_fcs(fcs, template, aliases=ALIASES)) for fcs in files]
    wsp = tmp_path / "batch.wsp"
    assert export_flowjo_wsp([WorkspaceSample(f, o.strategy) for f, o in gated], wsp) == []
    text = wsp.read_text()
    assert 'transforms:biex transforms:length="256" transforms:maxRange="262144"' in text
    assert 'transforms:width="-1000"' in text
    assert 'transforms:pos="4.5"' in text
    workspace = fk.Workspace(str(wsp), find_fcs_files_from_wsp=True)
    for fcs, outcome in gated:
        workspace.analyze_samples(sample_id=fcs.path.name, use_mp=False)
        results = workspace.get_gating_results(fcs.path.name)
        for gate in ("cells", "CD3pos", "CIKish"):
            mask = outcome.membership[gate]
            assert 0 < mask.sum() < mask.size, gate
            path = ("root", "cells") if gate != "cells" else ("root",)
            np.testing.assert_array_equal(
                results.get_gate_membership(gate, path), mask, err_msg=gate
            )
    # read back as a template: FlowJo's biex again, the same events in every gate
    back = read_template(wsp)
    for fcs, outcome in gated:
        again = gate_fcs(fcs, back).membership
        for gate in ("cells", "CD3pos", "CIKish"):
            np.testing.assert_array_equal(again[gate], outcome.membership[gate], err_msg=gate)


def test_biex_cannot_become_gatingml(files, tmp_path):
    outcome = gate_fcs(files[0], _template(BIEX), aliases=ALIASES)
    with pytest.raises(ExportError, match=r"transform '.*' is a WSPBiexTransform"):
        export_gatingml(outcome.strategy, tmp_path / "x.xml")


def test_hyperlog_survives_gatingml(files, tmp_path):
    for fcs in files:
        outcome = gate_fcs(fcs, _template(HYPERLOG), aliases=ALIASES)
        xml = tmp_path / f"{fcs.path.stem}.xml"
        export_gatingml(outcome.strategy, xml, sample_id=fcs.sample.id)
        assert "transforms:hyperlog" in xml.read_text()
        again = gate_fcs(fcs, read_template(xml)).membership
        for gate in ("cells", "CD3pos", "CIKish"):
            assert 0 < outcome.membership[gate].sum() < fcs.n_events, gate
            np.testing.assert_array_equal(again[gate], outcome.membership[gate], err_msg=gate)


def test_hyperlog_cannot_become_a_flowjo_workspace(files, tmp_path):
    outcome = gate_fcs(files[0], _template(HYPERLOG), aliases=ALIASES)
    with pytest.raises(ExportError, match="HyperlogTransform"):
        export_flowjo_wsp([WorkspaceSample(files[0], outcome.strategy)], tmp_path / "x.wsp")
