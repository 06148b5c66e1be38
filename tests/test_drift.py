"""An independent cluster divider, and drift (scatter, all-channel gain) that asks for review."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from steps_run import gated_days

from cikflow.clustering import (
    ClusterModel,
    base_levels,
    drift_table,
    level_drift,
    median_divider,
)
from cikflow.io import read_table, write_table
from cikflow.io.status import read_status, write_status
from cikflow.review import Override, mark_accepted
from cikflow.steps import summarize
from cikflow.summary import drift_flags

CONFIG = {"panel": {"aliases": {"Viability": ["7-AAD"]}}, "gating": {"min_events": 50}}


@pytest.mark.parametrize(
    ("medians", "weights", "search", "expected"),
    [
        # a large class spread over four clusters and a 2 % class apart: the gap between
        # them (0.16 | 0.60), not a cut through the large class
        ([0.10, 0.12, 0.14, 0.16, 0.60], [250, 250, 250, 250, 20], None, 0.38),
        # two gaps alike: the template's search range (0.5-0.7) picks the second
        ([0.1, 0.4, 0.8], [100, 100, 100], (0.5, 0.7), 0.6),
        ([0.1, 0.4, 0.8], [100, 100, 100], (0.2, 0.3), 0.25),
        # no gap in the search range: no divider (the template's coordinate stays)
        ([0.1, 0.4, 0.8], [100, 100, 100], (0.9, 1.0), None),
        # one median only: nothing to divide
        ([0.3, 0.3], [10, 10], None, None),
    ],
    ids=["small-class-apart", "search-high", "search-low", "search-outside", "one-median"],
)
def test_median_divider_splits_at_the_gap_between_classes(medians, weights, search, expected):
    got = median_divider(
        np.array(medians),
        weights=np.array(weights),
        spreads=np.full(len(medians), 0.02),
        search=search,
    )
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_median_divider_reads_the_valley_of_the_events():
    """Clusters at 0.1, 0.3, 0.5, 0.7; the events have their valley at 0.4 (0.3 | 0.5 gap)."""
    rng = np.random.default_rng(3)
    low, high = rng.normal(0.2, 0.05, 6000), rng.normal(0.6, 0.05, 3000)
    values = np.r_[low, high]
    medians = np.array([0.15, 0.25, 0.55, 0.65])
    weights = np.array([3000, 3000, 1500, 1500])
    assert median_divider(medians, weights=weights, values=values) == pytest.approx(0.4)


def test_base_levels_split_scatter_from_fluorescence():
    values = np.array([[1.0, 10.0, 5.0], [3.0, 30.0, 7.0], [2.0, 20.0, 6.0]])
    levels = base_levels(values, channel_map={"FSC-A": "FSC-A", "CD3": "FITC-A", "T": "Time"})
    assert levels == {"scatter": {"FSC-A": 2.0}, "fluorescence": {"CD3": 20.0}}


def _levels(fsc=50000.0, cd45=20000.0, cd3=8000.0, dim=150.0):
    return {"scatter": {"FSC-A": fsc}, "fluorescence": {"CD45": cd45, "CD3": cd3, "CD56": dim}}


def test_level_drift_names_scatter_and_gain_not_one_population():
    levels = {
        "d0": _levels(),
        "d7": _levels(),
        "d14": _levels(fsc=125000.0),  # 2.5-fold scatter
        "d21": _levels(cd45=26000.0, cd3=10400.0, dim=450.0),  # all bright channels x1.3
        "d28": _levels(cd3=16000.0, dim=600.0),  # one population grew: CD3 x2 only
    }
    table = level_drift(levels, scatter_limit=2.2, gain_limit=1.2, min_level=1000).set_index(
        "sample"
    )
    assert table.loc["d14", "scatter_fold"] == pytest.approx(2.5)
    assert table.loc["d21", "gain_fold"] == pytest.approx(1.3)
    # d28: folds CD45 1.0 and CD3 2.0 (CD56 below min_level): with two bright channels
    # their median (1.5) cannot tell one population from a gain, so the day is flagged;
    # with a third bright channel the median is 1.0 and it is not (below)
    assert table["scatter_drifted"].tolist() == [False, False, True, False, False]
    assert table["gain_drifted"].tolist() == [False, False, False, True, True]
    assert "scatter 2.50-fold" in table.loc["d14", "reason"]
    assert "all-channel gain 1.30-fold" in table.loc["d21", "reason"]
    three = {
        k: {**v, "fluorescence": {**v["fluorescence"], "CD16": 3000.0}} for k, v in levels.items()
    }
    three["d28"]["fluorescence"]["CD3"] = 16000.0
    again = level_drift(three, min_level=1000).set_index("sample")
    assert again.loc["d28", "gain_fold"] == pytest.approx(1.0)
    assert not again.loc["d28", "gain_drifted"]


def _beads(gain=1.0, fsc=16000.0, events=2000):
    return {
        "events": events,
        "scatter": {"FSC-A": fsc},
        "fluorescence": {"CD45": 90000.0 * gain, "CD3": 110000.0 * gain, "CD56": 60000.0 * gain},
    }


def test_level_drift_reads_the_beads_not_the_culture():
    """Only a day whose beads moved is drifted, whatever the culture did to the cells.

    The cells change with the culture (blasts 2.5-fold FSC, CD3 and CD45 up); the
    beads are the same particles every day.
    """
    levels = {
        "d0": {**_levels(), "beads": _beads()},
        "d7": {**_levels(fsc=125000.0, cd45=30000.0, cd3=12000.0), "beads": _beads()},
        "d14": {**_levels(fsc=125000.0), "beads": _beads(gain=1.3)},  # every detector x1.3
        "d21": {**_levels(), "beads": _beads(fsc=22400.0)},  # scatter x1.4
    }
    table = level_drift(levels, bead_limit=1.2, min_bead_events=200).set_index("sample")
    assert table["level_source"].tolist() == ["beads"] * 4
    assert table["scatter_drifted"].tolist() == [False, False, False, True]
    assert table["gain_drifted"].tolist() == [False, False, True, False]
    # d14 against the median of the others' beads (x1.0): 1.3; d21's FSC 22400 / 16000
    assert table.loc["d14", "gain_fold"] == pytest.approx(1.3)
    assert table.loc["d21", "scatter_fold"] == pytest.approx(1.4)
    assert table.loc["d7", "gain_fold"] == pytest.approx(1.0)
    assert table.loc["d14", "reason"] == (
        "the beads' all-channel gain 1.30-fold the other days' (limit 1.2)"
    )
    assert table.loc["d21", "scatter_limit"] == 1.2
    # without the beads, the cells' scatter is drift even at the cells' looser limit: d7
    # and d14 at 125000 against a median of 50000 (2.5-fold), d0 and d21 at 50000 against
    # 125000 (0.4-fold)
    cells = level_drift({k: {**v, "beads": None} for k, v in levels.items()}).set_index("sample")
    assert cells["level_source"].tolist() == ["cells"] * 4
    assert cells["scatter_limit"].tolist() == [2.2] * 4
    assert cells.loc["d0", "scatter_fold"] == pytest.approx(50000 / 125000)
    assert cells.loc["d7", "scatter_fold"] == pytest.approx(2.5)
    assert cells["scatter_drifted"].all()


def test_level_drift_falls_back_to_the_cells_below_the_fewest_beads():
    levels = {
        "d0": {**_levels(), "beads": _beads()},
        "d7": {**_levels(), "beads": _beads(gain=1.5, events=150)},  # too few beads to read
        "d14": {**_levels(cd45=26000.0, cd3=10400.0), "beads": _beads()},
    }
    table = level_drift(levels, min_bead_events=200).set_index("sample")
    assert table["level_source"].tolist() == ["beads", "cells", "beads"]
    # d7 on its cells: CD45 20000 / median(20000, 26000), CD3 8000 / median(8000, 10400)
    assert table.loc["d7", "gain_fold"] == pytest.approx(20000 / 23000)
    assert not table["gain_drifted"].any()
    assert table.loc["d14", "gain_fold"] == pytest.approx(1.0)  # d0's beads only


def test_gate_step_records_the_beads_levels(tmp_path, repo_dir):
    """The gate step keeps the beads' count and medians; the batch's drift reads them."""
    from cikflow.steps import cluster_batch

    dirs = gated_days(tmp_path, repo_dir=repo_dir, config=CONFIG)
    status = read_status(dirs[0] / "status.json")
    gates = read_table(dirs[0] / "gates.tsv").set_index("gate")
    assert status.bead_levels["events"] == gates.loc["beads", "events"] > 0
    # the simulated beads: CD56 (PE) 110000 and FSC-A 16000 (log-normal medians), gain 1
    assert status.bead_levels["fluorescence"]["CD56"] == pytest.approx(110000, rel=0.1)
    assert status.bead_levels["scatter"]["FSC-A"] == pytest.approx(16000, rel=0.1)
    template = repo_dir / "config" / "gating" / "cik_default.yaml"
    drift = cluster_batch(dirs, template_path=template, out_dir=tmp_path / "b", config=CONFIG)
    assert drift["level_source"].tolist() == ["beads"] * 4
    assert not drift["drifted"].any()


def test_a_tube_the_sheet_gives_no_beads_has_no_bead_levels(tmp_path, repo_dir):
    """Whatever the bead gate catches in a tube without beads is no instrument reference."""
    from cikflow.steps import gate_file
    from cikflow.steps.demo import simulate_demo

    sheet = simulate_demo(tmp_path / "data", n_batches=1, days=(0,), n_events=3000)
    row = sheet.iloc[0].to_dict()
    template = repo_dir / "config" / "gating" / "cik_default.yaml"
    fcs = tmp_path / "data" / f"{row['sample']}.fcs"
    with_beads = gate_file(
        fcs, template_path=template, out_dir=tmp_path / "a", row=row, config=CONFIG
    )
    assert with_beads["bead_levels"]["events"] > 0
    row["beads_per_tube"] = None  # the sheet's cell left empty
    without = gate_file(fcs, template_path=template, out_dir=tmp_path / "b", row=row, config=CONFIG)
    assert without["status"] == "ok"
    assert "bead_levels" not in without


def test_drift_table_carries_the_level_drift_and_its_reason():
    rng = np.random.default_rng(2)
    samples = {d: rng.normal(0.4, 0.05, (2000, 2)) for d in ("d0", "d7", "d14", "d21")}
    days = {"d0": 0, "d7": 7, "d14": 14, "d21": 21}
    reference = ClusterModel(n_clusters=4, max_events=8000).fit(np.vstack(list(samples.values())))
    levels = {d: _levels() for d in samples}
    levels["d14"] = _levels(cd45=30000.0, cd3=12000.0)  # all bright channels x1.5
    table = drift_table(reference, samples, days=days, batch="B", pool_events=8000, levels=levels)
    row = table.set_index("sample").loc["d14"]
    assert row["drifted"]
    assert row["gain_fold"] == pytest.approx(1.5)
    assert row["reason"] == "all-channel gain 1.50-fold the other days' (limit 1.2)"
    assert not table.loc[table["sample"] != "d14", "drifted"].any()


def test_a_drift_flag_is_accepted_like_any_other():
    drift = pd.DataFrame(
        {
            "batch": "B",
            "sample": ["d0", "d7"],
            "day": [0, 7],
            "drifted": [False, True],
            "reason": ["", "scatter 2.50-fold the other days' (limit 2.2)"],
        }
    )
    flags = drift_flags(drift, gate="lymphocytes")
    assert flags[["sample", "gate", "flag"]].values.tolist() == [["d7", "lymphocytes", "drift"]]
    entry = Override(
        sample="d7", gate="lymphocytes", reason="bead check", by="AB", accept_flags=("drift",)
    )
    assert mark_accepted(flags, [entry])["accepted_by"].tolist() == ["AB"]


def test_summarize_makes_a_drifted_day_review_required(tmp_path, repo_dir):
    template = repo_dir / "config" / "gating" / "cik_default.yaml"
    dirs = gated_days(tmp_path, repo_dir=repo_dir, config=CONFIG)
    before = summarize(dirs, out_dir=tmp_path / "before", template_path=template, config=CONFIG)
    drift = pd.DataFrame(
        {
            "batch": "B01",
            "sample": ["B01_d00", "B01_d07", "B01_d14", "B01_d21"],
            "day": [0, 7, 14, 21],
            "drifted": [False, False, True, False],
            "reason": ["", "", "all-channel gain 1.50-fold the other days' (limit 1.2)", ""],
        }
    )
    write_table(drift, tmp_path / "drift.tsv")
    paths = [tmp_path / "drift.tsv"]
    summary = summarize(
        dirs, out_dir=tmp_path / "out", template_path=template, drift_paths=paths, config=CONFIG
    )
    flags = read_table(tmp_path / "out" / "flags.tsv")
    drifted = flags[flags["flag"] == "drift"]
    assert drifted["sample"].tolist() == ["B01_d14"]
    assert drifted["gate"].tolist() == ["lymphocytes"]
    assert "all-channel gain 1.50-fold" in drifted["reason"].iloc[0]
    assert summary.loc[summary["sample"] == "B01_d14", "review_required"].all()
    others = summary["sample"] != "B01_d14"
    assert summary.loc[others, "review_required"].tolist() == (
        before.loc[before["sample"] != "B01_d14", "review_required"].tolist()
    )
    # a reviewer accepts the drift: the day asks for review only for its own flags
    status = read_status(dirs[2] / "status.json")
    status.review = [
        Override(
            sample="B01_d14",
            gate="lymphocytes",
            reason="gain checked with beads",
            by="AB",
            accept_flags=("drift",),
        ).as_record()
    ]
    write_status(status, dirs[2] / "status.json")
    accepted = summarize(
        dirs, out_dir=tmp_path / "acc", template_path=template, drift_paths=paths, config=CONFIG
    )
    flags = read_table(tmp_path / "acc" / "flags.tsv")
    row = flags[flags["flag"] == "drift"].iloc[0]
    assert (row["accepted_by"], row["accepted_reason"]) == ("AB", "gain checked with beads")
    assert accepted["review_required"].tolist() == before["review_required"].tolist()
