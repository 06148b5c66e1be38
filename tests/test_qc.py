"""Acquisition QC: margin events and time windows, on simulated files with and without a clog."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from cikflow.acquisition import run_acquisition_qc
from cikflow.io import read_fcs, read_json, read_table, write_fcs
from cikflow.qc import acquisition_qc, default_qc_channels, robust_line
from cikflow.simulate import CHANNELS, TOP_OF_SCALE, simulate_batches
from cikflow.simulate_anomaly import insert_clog
from cikflow.steps import gate_file, sample_report

PNN = [c[0] for c in CHANNELS]
PNS = [c[1] for c in CHANNELS]
TIME = PNN.index("Time")
SEEDS = (101, 202, 303)
DAYS = (0, 7, 14, 21)
#: (signal factor, rate factor) of the clogs inserted: a partial block that slows the flow
#: and dims every channel, a clearing burst, a dimming at unchanged rate, a slow-down only,
#: a mild partial block
CLOGS = [(0.6, 0.4), (0.7, 2.5), (0.8, 1.0), (1.0, 0.3), (0.85, 0.6)]


@pytest.fixture(scope="module")
def tubes():
    """12 clean simulated tubes (3 cultures × days 0/7/14/21, 20,000 events each)."""
    return [
        tube
        for seed in SEEDS
        for tube in simulate_batches(n_batches=1, days=DAYS, n_events=20000, seed=seed)[0].samples
    ]


def _read(tmp_path, events, keywords, name):
    path = tmp_path / f"{name}.fcs"
    write_fcs(path, events, pnn=PNN, pns=PNS, keywords=keywords)
    return read_fcs(path)


def test_clean_files_lose_at_most_one_percent(tmp_path, tubes):
    removed = []
    for tube in tubes:
        outcome = run_acquisition_qc(_read(tmp_path, tube.events, tube.keywords, tube.sample))
        removed.append(1 - outcome.record["kept"] / outcome.record["events"])
        assert not [f for f in outcome.flags if f["flag"] == "acquisition_anomaly"]
    assert max(removed) <= 0.01, removed


@pytest.mark.parametrize(("signal", "rate"), CLOGS, ids=[f"signal{s}-rate{r}" for s, r in CLOGS])
def test_clog_windows_are_removed(tmp_path, tubes, signal, rate):
    rng = np.random.default_rng(int(signal * 100 + rate * 10))
    for tube in tubes:
        start, duration = rng.uniform(1000, 9000), rng.uniform(500, 1500)  # 10 ms ticks
        events, anomalous = insert_clog(
            tube.events,
            time_index=TIME,
            start=start,
            duration=duration,
            signal_factor=signal,
            rate_factor=rate,
            top=TOP_OF_SCALE - 1,
            rng=rng,
        )
        outcome = run_acquisition_qc(_read(tmp_path, events, tube.keywords, tube.sample))
        removed = ~outcome.keep
        caught = (removed & anomalous).sum() / anomalous.sum()
        collateral = (removed & ~anomalous).sum() / (~anomalous).sum()
        label = f"{tube.sample} window {start / 100:.1f}+{duration / 100:.1f} s"
        assert caught >= 0.95, (label, caught, outcome.record["windows"])
        assert collateral <= 0.1, (label, collateral, outcome.record["windows"])
        windows = outcome.record["windows"]
        assert windows
        assert all(w["unit"] == "s" for w in windows)
        assert min(w["start"] for w in windows) <= start / 100 <= max(w["end"] for w in windows)


def test_margin_events_are_removed_and_counted(tmp_path, tubes):
    tube = tubes[0]
    events = tube.events.copy()
    events[:50, PNN.index("PE-A")] = TOP_OF_SCALE - 1  # saturated CD56
    events[40:60, PNN.index("SSC-A")] = TOP_OF_SCALE + 5  # above the range (float data)
    outcome = run_acquisition_qc(_read(tmp_path, events, tube.keywords, "m"))
    record = outcome.record
    assert record["margin_by_channel"]["PE-A"] >= 50
    assert record["margin_by_channel"]["SSC-A"] >= 20
    assert not outcome.keep[:60].any()
    assert record["removed_margin"] == (~outcome.keep).sum() - record["removed_time"]
    assert outcome.fcs.n_events == record["kept"] == outcome.keep.sum()
    assert not [f for f in outcome.flags if f["flag"] == "margin_events"]
    flagged = run_acquisition_qc(outcome.fcs, settings={"max_margin_share": 0.0})
    assert not flagged.flags  # the kept events hold no margin events any more
    strict = run_acquisition_qc(
        _read(tmp_path, events, tube.keywords, "m2"), settings={"max_margin_share": 0.001}
    )
    assert [f["flag"] for f in strict.flags] == ["margin_events"]
    assert "PE-A" in strict.flags[0]["reason"]


def test_qc_can_be_switched_off(tmp_path, tubes):
    tube = tubes[1]
    events, _ = insert_clog(tube.events, time_index=TIME, start=3000, duration=1500, rng=1)
    fcs = _read(tmp_path, events, tube.keywords, "off")
    for settings in ({"enabled": False}, {"margins": False, "time_windows": False}):
        outcome = run_acquisition_qc(fcs, settings=settings)
        assert outcome.fcs is fcs
        assert outcome.keep.all()
        assert outcome.record["enabled"] is False
    only_margins = run_acquisition_qc(fcs, settings={"time_windows": False})
    assert only_margins.record["removed_time"] == 0


def test_watched_channels_by_marker_or_detector(tmp_path, tubes):
    tube = tubes[2]
    fcs = _read(tmp_path, tube.events, tube.keywords, "ch")
    outcome = run_acquisition_qc(fcs, settings={"channels": ["CD3", "SSC-A"]})
    assert outcome.record["settings"]["channels"] == ["CD3", "SSC-A"]
    from cikflow.exceptions import ConfigError

    with pytest.raises(ConfigError, match="'CD99'"):
        run_acquisition_qc(fcs, settings={"channels": ["CD99"]})


def test_without_time_channel_the_signal_is_checked_in_event_order():
    rng = np.random.default_rng(5)
    events = rng.lognormal(8, 0.5, size=(20000, 3))
    events[12000:14000] *= 0.5  # a dim stretch of events
    result = acquisition_qc(events, channels=["FSC-A", "SSC-A", "FL1-A"], time_index=None)
    assert any("rate check skipped" in n for n in result.notes)
    assert result.anomalous[12000:14000].mean() > 0.95
    assert result.anomalous.sum() < 3000
    assert result.windows[0]["unit"] == "event"


def test_a_time_channel_that_runs_backwards_is_not_read_as_a_clock():
    # an Aurora export's Time: small values in no order (about half the steps go back)
    rng = np.random.default_rng(8)
    events = rng.lognormal(8, 0.5, size=(20000, 3))
    events[:, 2] = rng.uniform(0, 0.07, 20000)
    events[12000:14000, 0] *= 0.5  # a dim stretch, found in event order
    result = acquisition_qc(events, channels=["FSC-A", "SSC-A", "Time"], time_index=2)
    note = next(n for n in result.notes if "is not a clock" in n)
    assert "decreases between 50% of consecutive events" in note
    assert result.windows[0]["unit"] == "event"
    assert result.anomalous[12000:14000].mean() > 0.95


def test_a_clock_channel_is_the_time_axis_and_never_watched():
    rng = np.random.default_rng(6)
    events = rng.lognormal(8, 0.5, size=(10000, 3))
    events[:, 0] = np.sort(rng.uniform(0, 1000, 10000))  # a clock named like MACSQuant's
    result = acquisition_qc(events, channels=["HDR-T", "FSC-A", "FL1-A"], time_index=None)
    assert any("HDR-T never decrease" in n for n in result.notes)
    assert any("HDR-T used as the time axis" in n for n in result.notes)
    assert result.keep.all()


def test_too_few_events_skip_the_time_check():
    events = np.random.default_rng(7).lognormal(8, 0.5, size=(500, 2))
    result = acquisition_qc(events, channels=["FSC-A", "Time"], time_index=1)
    assert result.n_bins == 0
    assert any("time check skipped" in note for note in result.notes)
    assert "margin check skipped: no $PnR ranges" in result.notes


def test_default_channels_skip_time_and_pulse_widths():
    names = ["FSC-A", "FSC-W", "SSC-A", "Width", "FL1-A", "Time"]
    assert default_qc_channels(names, time_index=5) == [0, 2, 4]


def test_robust_line_ignores_a_step():
    x = np.arange(100.0)
    y = 2.0 * x + 1.0
    y[40:60] += 500.0  # 20 % of the points shifted
    slope, intercept = robust_line(x, y)
    assert slope == pytest.approx(2.0)
    assert intercept == pytest.approx(1.0)


# --- in the per-sample step ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def clogged_sample(tmp_path_factory, tubes, repo_dir):
    root = tmp_path_factory.mktemp("qcstep")
    tube = tubes[3]
    events, anomalous = insert_clog(
        tube.events, time_index=TIME, start=5000, duration=1500, top=TOP_OF_SCALE - 1, rng=3
    )
    path = root / "clogged.fcs"
    write_fcs(path, events, pnn=PNN, pns=PNS, keywords=tube.keywords)
    config = {"panel": {"aliases": {"Viability": ["7-AAD"]}}, "gating": {"min_events": 50}}
    status = gate_file(
        path,
        template_path=repo_dir / "config" / "gating" / "cik_default.yaml",
        out_dir=root / "out",
        config=config,
        events_table=True,
    )
    sample_report(root / "out", out_path=root / "report.html")
    return root, status, anomalous


def test_status_records_qc_counts_and_flags(clogged_sample):
    root, status, anomalous = clogged_sample
    assert status["status"] == "ok"
    qc = read_json(root / "out" / "status.json")["qc"]
    assert qc["events"] == anomalous.size == status["events"]
    assert qc["kept"] + qc["removed_margin"] + qc["removed_time"] == qc["events"]
    assert qc["removed_time"] >= 0.95 * anomalous.sum()
    flags = read_table(root / "out" / "flags.tsv")
    assert "acquisition_anomaly" in set(flags["flag"])
    assert read_table(root / "out" / "populations.tsv")["review_required"].all()


def test_gating_sees_only_kept_events(clogged_sample):
    root, _, anomalous = clogged_sample
    qc = read_json(root / "out" / "status.json")["qc"]
    gates = read_table(root / "out" / "gates.tsv").set_index("gate")
    with gzip.open(root / "out" / "events.tsv.gz", "rt") as fh:
        membership = pd.read_csv(fh, sep="\t")
    assert len(membership) == anomalous.size  # one row per event of the file
    assert list(membership.columns) == ["qc_removed", *gates.index]
    removed = membership["qc_removed"] == 1
    assert set(membership["qc_removed"]) == {0, 1}
    assert removed.sum() == qc["events"] - qc["kept"]
    assert removed[anomalous].mean() >= 0.95
    # gating never saw the removed events: their gate cells are empty, the others 0/1
    gate_cells = membership.drop(columns="qc_removed")
    assert gate_cells[removed].isna().all().all()
    assert gate_cells[~removed].isin([0, 1]).all().all()
    for gate in ("cells", "lymphocytes", "CIK"):
        assert membership[gate].sum() == gates.loc[gate, "events"]
    root_share = gates.loc["cells", "events"] / gates.loc["cells", "percent_total"] * 100
    assert root_share == pytest.approx(qc["kept"], rel=1e-9)


def test_report_header_has_the_qc_line(clogged_sample):
    root, _, _ = clogged_sample
    page = (root / "report.html").read_text()
    assert 'id="qc"' in page
    assert "anomalous time window" in page
    assert "acquisition_anomaly" in page
