from __future__ import annotations

import copy

import pandas as pd
import pytest

from cikflow.evaluate import f1_score
from cikflow.exceptions import GatingTemplateError, MissingMarkerError
from cikflow.gating import gate_fcs, validate_template
from cikflow.io import read_fcs, read_template, read_yaml, write_fcs
from cikflow.io.simulated import write_simulated
from cikflow.panel import resolve_panel
from cikflow.simulate import CHANNELS, simulate_batches

ALIASES = {"Viability": ["7-AAD"]}


@pytest.fixture(scope="module")
def default_template_path(repo_dir):
    return repo_dir / "config" / "gating" / "cik_static.yaml"


@pytest.fixture(scope="module")
def default_template(default_template_path):
    return read_template(default_template_path)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("gating")
    batches = simulate_batches(n_batches=1, days=(0, 21), n_events=20000, seed=5)
    write_simulated(batches, out)
    return out, {s.sample: s for s in batches[0].samples}


def test_day0_static_gates_match_truth(sim, default_template):
    folder, tubes = sim
    tube = tubes["B01_d00"]
    outcome = gate_fcs(read_fcs(folder / "B01_d00.fcs"), default_template, aliases=ALIASES)
    gates = outcome.gates.set_index("gate")
    truth = {r["population"]: r for r in tube.truth}
    for population in ("T", "CIK", "NK"):
        got = gates.loc[population, "percent_of_base"]
        assert got == pytest.approx(truth[population]["percent_of_base"], abs=1.5), population
        f1 = f1_score(outcome.membership[population], tube.members(population))
        assert f1 >= 0.95, (population, f1)
    assert outcome.flags == []


def test_day21_static_lymphocyte_gate_cuts_blasts(sim, default_template):
    """The documented weakness of static gates: day-0 scatter coordinates lose day-21 blasts."""
    folder, tubes = sim
    tube = tubes["B01_d21"]
    outcome = gate_fcs(read_fcs(folder / "B01_d21.fcs"), default_template, aliases=ALIASES)
    base = tube.members("viable_lymphocytes")
    kept = outcome.membership["lymphocytes"] & base
    assert kept.sum() < 0.5 * base.sum()
    truth_cik = next(r for r in tube.truth if r["population"] == "CIK")["percent_of_base"]
    got_cik = outcome.gates.set_index("gate").loc["CIK", "percent_of_base"]
    assert truth_cik - got_cik > 10


def test_gate_table_is_consistent(sim, default_template):
    folder, _ = sim
    outcome = gate_fcs(read_fcs(folder / "B01_d00.fcs"), default_template, aliases=ALIASES)
    g = outcome.gates.set_index("gate")
    # quadrants partition their parent; CD16 halves partition CIK
    quads = ["T", "CIK", "NK", "CD3neg_CD56neg"]
    assert g.loc[quads, "events"].sum() == g.loc["lymphocytes", "events"]
    assert g.loc[["CIK_CD16pos", "CIK_CD16neg"], "events"].sum() == g.loc["CIK", "events"]
    assert g.loc["lymphocytes", "percent_of_base"] == 100.0
    cik = g.loc["CIK"]
    assert cik["percent_parent"] == pytest.approx(
        100 * cik["events"] / g.loc["lymphocytes", "events"]
    )
    assert g.loc["CIK_CD16pos", "gate_path"].endswith("lymphocytes/cd3_cd56/CIK/CIK_CD16pos")
    for name, mask in outcome.membership.items():
        assert mask.sum() == g.loc[name, "events"]


def test_missing_spillover_is_flagged(sim, default_template, tmp_path):
    _, tubes = sim
    tube = tubes["B01_d00"]
    keywords = {k: v for k, v in tube.keywords.items() if k != "$SPILLOVER"}
    path = tmp_path / "nospill.fcs"
    write_fcs(
        path,
        tube.events,
        pnn=[c[0] for c in CHANNELS],
        pns=[c[1] for c in CHANNELS],
        keywords=keywords,
    )
    outcome = gate_fcs(read_fcs(path), default_template, aliases=ALIASES)
    assert [f["flag"] for f in outcome.flags] == ["compensation_missing"]


def test_panel_errors_name_the_marker():
    with pytest.raises(MissingMarkerError, match=r"x\.fcs: marker 'CD56'.*\$PnS labels: FL1-A=CD3"):
        resolve_panel(["CD56"], pnn=["FL1-A"], pns=["CD3"], source="x.fcs")
    with pytest.raises(MissingMarkerError, match="several detectors"):
        resolve_panel(["CD3"], pnn=["FL1-A", "FL2-A"], pns=["CD3", "cd3"])
    with pytest.raises(MissingMarkerError, match="override CD3 -> 'FL9-A'"):
        resolve_panel(["CD3"], pnn=["FL1-A"], pns=["CD3"], overrides={"CD3": "FL9-A"})
    assert resolve_panel(
        ["CD3"], pnn=["FL1-A", "FL2-A"], pns=["CD3", "x"], overrides={"CD3": "FL2-A"}
    ) == {"CD3": "FL2-A"}


def _broken(spec, index, **change):
    spec = copy.deepcopy(spec)
    for key, value in change.items():
        if value is None:
            spec["gates"][index].pop(key)
        else:
            spec["gates"][index][key] = value
    return spec


@pytest.mark.parametrize(
    ("index", "change", "message"),
    [
        (2, {"vertices": [[1, 2], [3, 4]]}, r"gate 'singlets' \(gates\[2\]\) field 'vertices'"),
        (3, {"parent": "nowhere"}, r"gate 'leukocytes': field 'parent': 'nowhere'"),
        (4, {"name": "leukocytes"}, r"gate 'leukocytes': field 'name': duplicate"),
        (5, {"type": "ellipse"}, r"gate 'lymphocytes' \(gates\[5\]\) field 'type'"),
        (6, {"x": None}, r"gate 'cd3_cd56' \(gates\[6\]\) field '\(gate\)': 'x' is a required"),
        (
            7,
            {"dimensions": {"CD16": {"min": "high"}}},
            r"gate 'CIK_CD16pos' \(gates\[7\]\) field 'dimensions",
        ),
    ],
    ids=[
        "short-polygon",
        "unknown-parent",
        "duplicate",
        "bad-type",
        "quadrant-no-x",
        "bound-not-number",
    ],
)
def test_template_errors_name_gate_and_field(default_template_path, index, change, message):
    spec = _broken(read_yaml(default_template_path), index, **change)
    with pytest.raises(GatingTemplateError, match=message):
        validate_template(spec, source="t.yaml")


def test_template_level_errors(default_template_path):
    spec = read_yaml(default_template_path)
    with pytest.raises(GatingTemplateError, match=r"field 'populations\.CIK': unknown gate 'CIKK'"):
        validate_template({**spec, "populations": {"CIK": "CIKK"}})
    with pytest.raises(GatingTemplateError, match="transform 'biex' is not defined"):
        validate_template({**spec, "default_transform": "biex"})
    with pytest.raises(GatingTemplateError, match="field 'base': unknown gate"):
        validate_template({**spec, "base": "nope"})


def test_unreadable_template_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(GatingTemplateError, match=r"bad\.yaml: not valid YAML"):
        read_template(bad)
    with pytest.raises(GatingTemplateError, match="not found"):
        read_template(tmp_path / "absent.yaml")


def test_membership_matches_truth_labels_per_event(sim, default_template):
    """Per-event agreement on day 0 for every reported subset (not only the fractions)."""
    folder, tubes = sim
    tube = tubes["B01_d00"]
    outcome = gate_fcs(read_fcs(folder / "B01_d00.fcs"), default_template, aliases=ALIASES)
    scores = pd.Series(
        {
            pop: f1_score(outcome.membership[pop], tube.members(pop))
            for pop in ("CIK_CD16pos", "CIK_CD16neg", "NK_CD56bright", "NK_CD56dim")
        }
    )
    assert (scores >= 0.9).all(), scores.to_dict()


def test_spillover_covering_a_subset_of_detectors(sim, default_template, tmp_path):
    """Unstained detectors outside $SPILLOVER: compensation and gating are unchanged."""
    from cikflow.simulate import extra_channels

    folder, tubes = sim
    tube = tubes["B01_d00"]
    wide, pnn, pns = extra_channels(tube.events, n_extra=5)
    path = tmp_path / "wide.fcs"
    write_fcs(path, wide, pnn=pnn, pns=pns, keywords=tube.keywords)
    narrow = gate_fcs(read_fcs(folder / "B01_d00.fcs"), default_template, aliases=ALIASES)
    widened = gate_fcs(read_fcs(path), default_template, aliases=ALIASES)
    assert widened.compensation == "$SPILLOVER (5 detectors)"
    pd.testing.assert_series_equal(narrow.gates["events"], widened.gates["events"])


def test_plot_axes_always_show_the_gates(sim, default_template_path):
    from cikflow.gating.template import Template
    from cikflow.plotdata import gate_plot_data

    folder, _ = sim
    spec = read_yaml(default_template_path)
    for gate in spec["gates"]:
        if gate["name"] == "cells":  # a bound far above every event (FSC-A ≤ 262,144)
            gate["dimensions"]["FSC-A"] = {"min": 25000, "max": 900000}
    template = Template("wide", "1", "yaml", validate_template(spec))
    fcs = read_fcs(folder / "B01_d00.fcs")
    outcome = gate_fcs(fcs, template, aliases=ALIASES)
    plots = {p["gate"]: p for p in gate_plot_data(fcs, outcome, template=template,
                                                  compensated=outcome.compensated)}  # fmt: skip
    lo, hi = plots["cells"]["x"]["range"]
    assert lo < 25000
    assert hi > 900000
    assert hi < 1.1 * 900000  # the bound plus the usual 4 % margin, not more
