"""The acquisition-QC view of the sample report: binned rate and signal over Time."""

from __future__ import annotations

import numpy as np

from cikflow.report.acquisition_view import acquisition_figure, acquisition_plot_data

CHANNELS = ["FSC-A", "SSC-A", "FITC-A", "Time"]


def _events(n: int = 20_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    time = np.sort(rng.uniform(0, 100, n))
    fsc = rng.normal(50_000, 5_000, n)
    fsc[(time > 40) & (time < 50)] *= 0.5  # a clog: signal halves
    return np.column_stack([fsc, rng.normal(20_000, 2_000, n), rng.normal(1_000, 100, n), time])


def test_binned_rate_median_and_windows() -> None:
    qc = {"windows": [{"start": 40.0, "end": 50.0, "unit": "s", "reason": "signal FSC-A"}]}
    data = acquisition_plot_data(
        _events(), channels=CHANNELS, time_index=3, qc=qc, time_unit="s", n_bins=50
    )
    assert data is not None
    assert data["channel"] == "FSC-A"
    assert len(data["centers"]) == len(data["rate"]) == len(data["median"]) == 50
    rate = np.array(data["rate"])
    assert abs(rate.mean() - 200) < 10  # 20,000 events over 100 s
    median = np.array(data["median"], dtype=float)
    centers = np.array(data["centers"])
    inside = (centers > 41) & (centers < 49)
    assert np.all(median[inside] < 30_000)
    assert np.all(median[centers < 39] > 45_000)
    assert data["windows"] == [{"start": 40.0, "end": 50.0, "reason": "signal FSC-A"}]
    fig = acquisition_figure(data)
    assert len(fig.data) == 2
    assert len(fig.layout.shapes) == 2  # the window shaded in both panels


def test_no_time_channel_no_view() -> None:
    events = _events()[:, :3]
    assert acquisition_plot_data(events, channels=CHANNELS[:3], time_index=None, qc={}) is None


def test_channel_names_escaped() -> None:
    data = acquisition_plot_data(
        _events(), channels=["<b>x", "SSC-A", "FITC-A", "Time"], time_index=3, qc={}
    )
    assert data is not None
    fig = acquisition_figure(data)
    assert "<b>x" not in fig.layout.yaxis2.title.text


def test_no_view_over_a_time_channel_that_is_not_a_clock() -> None:
    events = _events()
    events[:, 3] = np.random.default_rng(1).uniform(0, 0.07, len(events))  # runs backwards
    data = acquisition_plot_data(events, channels=CHANNELS, time_index=3, qc={}, time_unit="s")
    assert data is None
    events[:, 3] = np.sort(events[:, 3])  # the same values in order: a clock
    data = acquisition_plot_data(events, channels=CHANNELS, time_index=3, qc={}, time_unit="s")
    assert data is not None
