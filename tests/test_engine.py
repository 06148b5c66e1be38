"""cikflow's gate evaluator against flowkit's gate_sample: identical memberships."""

from __future__ import annotations

import flowkit as fk
import numpy as np
import pytest

from cikflow.gating import gate_fcs
from cikflow.gating.engine import evaluate, supports
from cikflow.io import read_fcs, read_template, write_fcs
from cikflow.io.simulated import write_simulated
from cikflow.simulate import CHANNELS, simulate_batches

ALIASES = {"Viability": ["7-AAD"]}


def _assert_same(strategy, sample):
    ours = evaluate(strategy, sample)
    reference = strategy.gate_sample(sample)
    assert ours
    for (name, path), mask in ours.items():
        np.testing.assert_array_equal(mask, reference.get_gate_membership(name, path), err_msg=name)
    return ours


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
        _assert_same(outcome.strategy, fcs.sample)


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
    ours = _assert_same(strategy, fcs.sample)
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
    _assert_same(gate_fcs(edge, template, aliases=ALIASES).strategy, edge.sample)
