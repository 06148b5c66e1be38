"""Reviewer corrections: validation, a gate set for one sample, accepted flags, plots, audit."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import flowkit as fk
import numpy as np
import pandas as pd
import pytest

from cikflow.audit import override_changes, replay_overrides
from cikflow.exceptions import OverrideError
from cikflow.gating import gate_fcs
from cikflow.io import export_gatingml, read_fcs, read_overrides, read_template, read_yaml
from cikflow.io.simulated import write_simulated
from cikflow.plotdata import gate_plot_data
from cikflow.report.figures import gate_figure
from cikflow.review import (
    Override,
    mark_accepted,
    needs_review,
    override_problems,
    with_covers,
)
from cikflow.simulate import simulate_batches

if TYPE_CHECKING:
    from pathlib import Path

SAMPLES = ["B01_d00", "B01_d14", "B02_d07"]


@pytest.fixture(scope="module")
def template(repo_dir):
    return read_template(repo_dir / "config" / "gating" / "cik_default.yaml")


@pytest.fixture(scope="module")
def aliases(repo_dir):
    return read_yaml(repo_dir / "config" / "config.yaml")["panel"]["aliases"]


@pytest.fixture(scope="module")
def tube(tmp_path_factory):
    out = tmp_path_factory.mktemp("review")
    batches = simulate_batches(n_batches=1, days=(14,), n_events=20_000, seed=7, preset="realistic")
    write_simulated(batches, out)
    return read_fcs(out / "B01_d14.fcs")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_issue_example_reads_and_passes(tmp_path, template):
    path = _write(
        tmp_path,
        """
- sample: B01_d14
  gate: cd3_cd56
  set: {x: {at: 2000}}
  reason: "CD3 valley shallow; set at the CD3-dim shoulder as on days 7 and 21"
  by: "AB"
- sample: B02_d07
  gate: viable
  accept_flags: [no_valley]
  reason: "bimodal by eye; fallback acceptable"
  by: "AB"
""",
    )
    entries = with_covers(read_overrides(path), template=template)
    assert [(o.entry, o.sample, o.gate) for o in entries] == [
        (1, "B01_d14", "cd3_cd56"),
        (2, "B02_d07", "viable"),
    ]
    assert entries[0].values == {"x": {"at": 2000}}
    assert entries[1].accept_flags == ("no_valley",)
    # a quadrant's entry covers the populations it defines; a range gate only itself
    assert entries[0].covers == ("cd3_cd56", "T", "CIK", "NK", "CD3neg_CD56neg")
    assert entries[1].covers == ("viable",)
    assert override_problems(entries, samples=SAMPLES, template=template) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {sample: B01_d14, gate: viable, accept_flags: [x], by: AB}", "entry 1 (sample "),
        ("- {sample: B01_d14, gate: viable, accept_flags: [x], reason: r, by: AB, at: 1}", "at"),
        ("sample: B01_d14", "(top level)"),
        ("- [unclosed", "not valid YAML"),
    ],
)
def test_schema_errors_name_the_file_and_entry(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(OverrideError, match=r"overrides\.yaml") as err:
        read_overrides(path)
    assert message in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(OverrideError, match=r"nowhere\.yaml: overrides file not found"):
        read_overrides(tmp_path / "nowhere.yaml")


def _entry(**change) -> Override:
    fields = {
        "sample": "B01_d14",
        "gate": "cd3_cd56",
        "reason": "set by eye",
        "by": "AB",
        "values": {"x": {"at": 2000}},
        "entry": 3,
    }
    return Override(**{**fields, **change})


WHERE = "entry 3 (sample 'B01_d14', gate 'cd3_cd56'): "


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sample": "B01_d41"}, "unknown sample 'B01_d41' (did you mean 'B01_d14'?)"),
        ({"gate": "cd3_cd65"}, "unknown gate 'cd3_cd65' (did you mean 'cd3_cd56'?)"),
        (
            {"values": {"dimensions": {"CD3": {"min": 1}}}},
            "set: field 'dimensions' is not one a quadrant gate has (settable: x, y)",
        ),
        (
            {"gate": "viable", "values": {"x": {"at": 1}}},
            "set: field 'x' is not one a range gate has (settable: dimensions)",
        ),
        (
            {"gate": "viable", "values": {"dimensions": {"CD3": {"min": 1}}}},
            "set: dimension 'CD3' is not one of the gate's (Viability)",
        ),
        (
            {"values": {"x": {"at": 2000, "search": [1, 2]}}},
            "set: field 'x' takes {at: value} only, not {'at': 2000, 'search': [1, 2]}",
        ),
        ({"reason": "  "}, "reason is empty: say why"),
        ({"by": ""}, "by is empty: say who"),
        ({"values": {}}, "nothing to do: give set, accept_flags or both"),
    ],
)
def test_each_problem_names_its_entry(template, change, message):
    entry = _entry(**change)
    problems = override_problems([entry], samples=SAMPLES, template=template)
    assert len(problems) == 1, problems
    assert problems[0] == entry.where + ": " + message
    if entry.sample == "B01_d14" and entry.gate == "cd3_cd56":
        assert problems[0].startswith(WHERE)


def test_two_entries_for_one_gate_of_one_sample(template):
    first, second = _entry(entry=1), _entry(entry=2, accept_flags=("no_valley",))
    (problem,) = override_problems([first, second], samples=SAMPLES, template=template)
    assert problem.startswith("entry 2 (sample 'B01_d14', gate 'cd3_cd56'): entry 1 already")


def test_a_gatingml_template_accepts_flags_but_refuses_a_set_gate(
    tube, template, aliases, tmp_path
):
    outcome = gate_fcs(tube, template, aliases=aliases)
    export_gatingml(outcome.strategy, tmp_path / "gates.xml", sample_id=outcome.sample)
    gml = read_template(tmp_path / "gates.xml")
    assert gml.kind == "gatingml"
    ok = _entry(gate="CIK", values={}, accept_flags=("no_valley",))
    assert override_problems([ok], samples=SAMPLES, template=gml) == []
    (problem,) = override_problems([_entry(gate="CIK")], samples=SAMPLES, template=gml)
    assert problem == (
        "entry 3 (sample 'B01_d14', gate 'CIK'): set: only gates of a YAML template "
        "(this one is imported) can be set; 'CIK' is not one"
    )


def test_accepted_flags_are_marked_and_no_longer_ask_for_review(template):
    flags = pd.DataFrame(
        {
            "sample": ["B01_d14", "B01_d14", "B02_d07", "B01_d14"],
            "gate": ["CIK", "viable", "CIK", "NK"],
            "flag": ["no_valley", "no_valley", "no_valley", "shallow_valley"],
        }
    )
    (entry,) = with_covers(
        [_entry(values={}, accept_flags=("no_valley", "shallow_valley"), reason="ok")],
        template=template,
    )
    marked = mark_accepted(flags, [entry])
    # CIK and NK are the quadrant's populations (accepted); viable and the other sample are not
    assert marked["accepted_by"].tolist() == ["AB", "", "", "AB"]
    assert marked["accepted_reason"].tolist() == ["ok", "", "", "ok"]
    assert needs_review(marked)
    one_sample = marked[(marked["sample"] == "B01_d14") & (marked["gate"] != "viable")]
    assert not needs_review(one_sample)
    assert list(flags.columns) == ["sample", "gate", "flag"]  # the input is left alone


def _compensated(fcs_path: Path, detector: str) -> np.ndarray:
    """One detector's compensated values, by flowkit (independent of cikflow's engine)."""
    sample = fk.Sample(str(fcs_path))
    sample.apply_compensation(sample.metadata["spillover"])
    return sample.get_channel_events(detector, source="comp")


def test_a_set_divider_replaces_the_fit_for_that_sample_only(tube, template, aliases):
    fitted = gate_fcs(tube, template, aliases=aliases)
    applied = gate_fcs(
        tube, template, aliases=aliases, gate_overrides={"cd3_cd56": {"x": {"at": 2000}}}
    )
    before = fitted.gates.set_index("gate")["events"]
    after = applied.gates.set_index("gate")["events"]
    # the gates above the quadrant are untouched
    for gate in ("cells", "singlets", "leukocytes", "viable", "lymphocytes"):
        assert after[gate] == before[gate]
    # CD3+ (T and CIK) is exactly the lymphocytes at CD3 >= 2000, counted independently
    cd3 = _compensated(tube.path, applied.channel_map["CD3"])
    lymph = applied.membership["lymphocytes"]
    assert after["T"] + after["CIK"] == int((lymph & (cd3 >= 2000)).sum())
    assert after["T"] + after["CIK"] != before["T"] + before["CIK"]
    (info,) = [i for i in applied.infos if i.name == "cd3_cd56"]
    assert info.override == {"x": {"at": 2000}}
    assert info.fit["method"] == "override"
    replaced = info.fit["replaced"]["fits"][0]
    assert replaced["dimension"] == "CD3"
    assert replaced["threshold"] != pytest.approx(2000)
    # CD56 refitted within the new CD3 sides: one fit each, over exactly their events
    within = {f["within"]: f["events"] for f in info.fit["fits"]}
    assert within == {"CD3-": int((lymph & (cd3 < 2000)).sum()), "CD3+": after["T"] + after["CIK"]}
    # the fitted gate is kept beside the applied one
    assert info.fitted is not None


def test_exported_gatingml_carries_the_applied_divider(tube, template, aliases, tmp_path):
    overrides = {"cd3_cd56": {"x": {"at": 2000}}}
    applied = gate_fcs(tube, template, aliases=aliases, gate_overrides=overrides)
    fitted = gate_fcs(tube, template, aliases=aliases)
    path = tmp_path / "gates.xml"
    export_gatingml(applied.strategy, path, sample_id=applied.sample)
    # flowkit gates the file with the exported document: the applied gate's counts
    result = fk.parse_gating_xml(str(path)).gate_sample(fk.Sample(str(tube.path)))
    counts = {g: int(result.get_gate_membership(g).sum()) for g in ("T", "CIK", "NK")}
    after = applied.gates.set_index("gate")["events"]
    before = fitted.gates.set_index("gate")["events"]
    assert counts == {g: int(after[g]) for g in ("T", "CIK", "NK")}
    assert counts != {g: int(before[g]) for g in ("T", "CIK", "NK")}


def test_the_plot_draws_the_fitted_gate_dashed_beside_the_applied_one(tube, template, aliases):
    applied = gate_fcs(
        tube, template, aliases=aliases, gate_overrides={"cd3_cd56": {"x": {"at": 2000}}}
    )
    entries = {
        e["gate"]: e
        for e in gate_plot_data(tube, applied, template=template, compensated=applied.compensated)
    }
    (quadrant,) = [e for e in entries.values() if "replaced_outline" in e]  # that gate only
    fig = gate_figure(quadrant)
    dashed = [t for t in fig.data if getattr(t, "line", None) and t.line.dash == "dash"]
    assert len(dashed) == len(quadrant["replaced_outline"]["paths"]) > 0
    assert "set by reviewer" in fig.layout.title.text
    # the dashed CD3 line is not where the applied one is
    applied_x = {round(x, 6) for p in quadrant["outline"]["paths"] for x in p["x"]}
    fitted_x = {round(x, 6) for p in quadrant["replaced_outline"]["paths"] for x in p["x"]}
    assert applied_x != fitted_x


def test_override_records_added_changed_removed():
    entry = {
        "sample": "B01_d14",
        "gate": "cd3_cd56",
        "set": {"x": {"at": 2000}},
        "accept_flags": [],
        "reason": "shallow",
        "by": "AB",
        "covers": ["cd3_cd56", "T"],
    }
    (added,) = override_changes({}, [entry], runner="ops")
    assert (added["what"], added["by"], added["reason"], added["old"]) == (
        "override_added",
        "AB",
        "shallow",
        None,
    )
    assert added["new"] == {
        "set": {"x": {"at": 2000}},
        "accept_flags": [],
        "reason": "shallow",
        "by": "AB",
    }
    state = replay_overrides([added])
    moved = {**entry, "set": {"x": {"at": 2500}}, "reason": "shoulder at 2500", "by": "CD"}
    (changed,) = override_changes(state, [moved], runner="ops")
    assert changed["what"] == "override_changed"
    assert changed["old"]["set"] == {"x": {"at": 2000}}
    assert changed["new"]["set"] == {"x": {"at": 2500}}
    assert (changed["by"], changed["reason"]) == ("CD", "shoulder at 2500")
    state = replay_overrides([added, changed])
    assert override_changes(state, [moved], runner="ops") == []  # no change, no record
    (removed,) = override_changes(state, [], runner="ops")
    assert (removed["what"], removed["by"], removed["new"]) == ("override_removed", "ops", None)
    assert removed["old"]["set"] == {"x": {"at": 2500}}
    assert replay_overrides([added, changed, removed]) == {}
    json.dumps([added, changed, removed])  # records are JSON-ready
