"""cikflow's gate evaluator against flowkit's gate_sample: identical memberships."""

from __future__ import annotations

import flowkit as fk
import numpy as np
import pandas as pd
import pytest

from cikflow.gating import engine, gate_fcs
from cikflow.gating.engine import evaluate, supports
from cikflow.io import read_fcs, read_template, select_events, write_fcs
from cikflow.io.simulated import write_simulated
from cikflow.simulate import CHANNELS, simulate_batches

ALIASES = {"Viability": ["7-AAD"]}


def _assert_same(strategy, sample, *, fcs=None, compensated=None):
    """The evaluator against flowkit's gate_sample, event for event.

    On the flowkit Sample and, given them, on the FcsData with the shared float32
    compensated columns gating uses.
    """
    reference = strategy.gate_sample(sample)
    runs = [evaluate(strategy, sample)]
    if fcs is not None:
        runs.append(evaluate(strategy, fcs, compensated={"spill": compensated}))
    for ours in runs:
        assert ours
        for (name, path), mask in ours.items():
            expected = reference.get_gate_membership(name, path)
            np.testing.assert_array_equal(mask, expected, err_msg=name)
    return runs[0]


def test_compliance_set(shared_data):
    folder = shared_data / "gatingml-flowkit"
    sample = read_fcs(folder / "data1.fcs").sample
    compared = 0
    for xml in sorted((folder / "gml").glob("*.xml")):
        try:
            strategy = fk.parse_gating_xml(str(xml))
        except Exception:
            continue
        if not supports(strategy):
            continue  # ratio dimensions: flowkit evaluates them
        compared += len(_assert_same(strategy, sample))
    assert compared >= 80


@pytest.fixture(scope="module")
def tubes(tmp_path_factory):
    out = tmp_path_factory.mktemp("engine")
    batches = simulate_batches(n_batches=1, days=(0, 21), n_events=20000, seed=31)
    write_simulated(batches, out)
    return out, batches[0].samples


@pytest.mark.parametrize("name", ["cik_static", "cik_default"])
def test_simulated_templates(tubes, repo_dir, name):
    folder, samples = tubes
    template = read_template(repo_dir / "config" / "gating" / f"{name}.yaml")
    for tube in samples:
        fcs = read_fcs(folder / f"{tube.sample}.fcs")
        outcome = gate_fcs(fcs, template, aliases=ALIASES)
        _assert_same(outcome.strategy, fcs.sample, fcs=fcs, compensated=outcome.compensated)


def test_events_exactly_on_a_bound(tubes, repo_dir, tmp_path):
    """Bounds placed on events' own transformed values: the band re-check decides them."""
    folder, samples = tubes
    tube = samples[0]
    fcs = read_fcs(folder / f"{tube.sample}.fcs")
    template = read_template(repo_dir / "config" / "gating" / "cik_static.yaml")
    outcome = gate_fcs(fcs, template, aliases=ALIASES)
    strategy = outcome.strategy
    gate = strategy.get_gate("leukocytes")
    dim = gate.dimensions[0]
    # the transformed CD45 value of an actual event becomes the gate's minimum
    matrix = strategy.comp_matrices["spill"]
    comp = matrix.apply(fcs.sample)[:, fcs.pnn.index(dim.id)]
    xform = strategy.transformations[dim.transformation_ref]
    values = xform.apply(comp.reshape(-1, 1))[:, 0]
    dim.min = float(np.sort(values)[len(values) // 3])
    ours = _assert_same(strategy, fcs.sample, fcs=fcs, compensated=outcome.compensated)
    assert ours[("leukocytes", tuple(outcome.infos[3].path))].sum() > 0
    # and a file whose events sit exactly on a linear bound
    events = tube.events.copy()
    events[:100, 0] = 25000.0  # FSC-A on the 'cells' minimum (inclusive)
    path = tmp_path / "edge.fcs"
    write_fcs(
        path,
        events,
        pnn=[c[0] for c in CHANNELS],
        pns=[c[1] for c in CHANNELS],
        keywords=tube.keywords,
    )
    edge = read_fcs(path)
    outcome = gate_fcs(edge, template, aliases=ALIASES)
    _assert_same(outcome.strategy, edge.sample, fcs=edge, compensated=outcome.compensated)


@pytest.mark.parametrize("name", ["cik_static", "cik_default"])
def test_large_file_through_gate_fcs(tmp_path, repo_dir, name):
    """Above the polygon grid's threshold, gate_fcs's memberships are flowkit's.

    Event for event: float32 shared columns, band re-check, polygon grid and a row
    selection (as after acquisition QC) all on the path.
    """
    write_simulated(simulate_batches(n_batches=1, days=(21,), n_events=150_000, seed=5), tmp_path)
    fcs = read_fcs(tmp_path / "B01_d21.fcs")
    fcs = select_events(fcs, np.arange(fcs.n_events) % 7 != 3)  # rows selected, as after QC
    assert fcs.n_events > 4 * engine._GRID**2
    template = read_template(repo_dir / "config" / "gating" / f"{name}.yaml")
    outcome = gate_fcs(fcs, template, aliases=ALIASES)
    reference = outcome.strategy.gate_sample(fcs.sample)
    for info in outcome.infos:
        if info.gate_type == "quadrant":
            continue
        expected = reference.get_gate_membership(info.name, info.path)
        np.testing.assert_array_equal(outcome.membership[info.name], expected, err_msg=info.name)


def _polygon_cases():
    rng = np.random.default_rng(2)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 45))
    blob = np.column_stack([np.cos(angles), 0.6 * np.sin(angles)]) * rng.uniform(0.7, 1.0, (45, 1))
    star = np.array(
        [
            [np.cos(a) * r, np.sin(a) * r]
            for a, r in zip(
                np.linspace(0, 2 * np.pi, 10, endpoint=False), [1.0, 0.35] * 5, strict=True
            )
        ]
    )
    bowtie = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # edges cross
    thin = np.array([[0.0, 0.0], [1000.0, 1.0], [1000.0, 1.5], [0.0, 0.2]])  # flat box
    return {"blob": blob, "star": star, "bowtie": bowtie, "thin": thin}


@pytest.mark.parametrize("case", ["blob", "star", "bowtie", "thin"])
def test_polygon_grid_matches_flowkit(case):
    vertices = _polygon_cases()[case]
    gate = fk.gates.PolygonGate(
        "p",
        [
            fk.Dimension("x", compensation_ref="uncompensated"),
            fk.Dimension("y", compensation_ref="uncompensated"),
        ],
        vertices.tolist(),
    )
    rng = np.random.default_rng(7)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    inside_box = lo + rng.random((150_000, 2)) * (hi - lo)
    t = rng.random((20_000, 1))
    k = rng.integers(0, len(vertices), 20_000)
    on_edges = vertices[k] + t * (vertices[(k + 1) % len(vertices)] - vertices[k])
    size = (hi - lo) / engine._GRID  # on grid lines and cell centres
    grid = lo + np.floor(rng.random((20_000, 2)) * engine._GRID) * size
    points = np.vstack([inside_box, on_edges, vertices, grid, grid + size / 2, [lo, hi]])
    frame = pd.DataFrame(points, columns=["x", "y"])
    expected = np.asarray(gate.apply(frame), dtype=bool)
    assert 0 < expected.sum() < len(expected)
    np.testing.assert_array_equal(engine._in_polygon(gate, frame), expected)
