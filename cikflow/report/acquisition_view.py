"""The acquisition-QC view of a sample report: event rate and a key channel over Time.

:func:`acquisition_plot_data` bins the file as read (before QC removes anything) into
at most ``n_bins`` equal Time bins and keeps per bin the event rate and the median of
one key channel (FSC-A when present, else the first channel QC watches), beside the
anomalous windows of the ``qc`` record: a few kB in ``plots.json``.
:func:`acquisition_figure` draws both over Time with the removed windows shaded.
Registered as the sample report's ``acquisition`` panel (:mod:`cikflow.report.panels`).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cikflow.qc import default_qc_channels, is_clock_like
from cikflow.report.panels import Panel, PanelContext, register

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["acquisition_figure", "acquisition_plot_data"]

#: Time bins drawn (the QC's own bins may be finer)
N_BINS = 100
_WINDOW_COLOR = "#d62728"


def _key_channel(channels: Sequence[str], time_index: int) -> int | None:
    names = [c.strip().upper() for c in channels]
    if "FSC-A" in names:
        return names.index("FSC-A")
    watched = default_qc_channels(list(channels), time_index=time_index)
    return watched[0] if watched else None


def acquisition_plot_data(
    events: np.ndarray,
    *,
    channels: Sequence[str],
    time_index: int | None,
    qc: Mapping[str, Any],
    time_unit: str = "s",
    n_bins: int = N_BINS,
) -> dict[str, Any] | None:
    """Binned event rate and key-channel median over Time; None without a Time that is a clock.

    Parameters
    ----------
    events : numpy.ndarray
        float (n_events, n_channels): the file as read, Time in its final units.
    channels : sequence of str
        $PnN of each column.
    time_index : int or None
        Column of Time.
    qc : mapping
        The ``qc`` record of ``status.json`` (its ``windows`` are shaded).
    time_unit : str
        Unit of Time (``s`` for files with $TIMESTEP).
    n_bins : int
        Bins over the run.
    """
    if time_index is None or len(events) < 2:
        return None
    time = np.asarray(events[:, time_index], dtype=float)
    if not is_clock_like(time):  # rates over a Time that runs backwards mean nothing
        return None
    lo, hi = float(np.nanmin(time)), float(np.nanmax(time))
    edges = np.linspace(lo, hi, n_bins + 1)
    which = np.clip(np.searchsorted(edges, time, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    width = (hi - lo) / n_bins
    key = _key_channel(channels, time_index)
    medians: list[float | None] = [None] * n_bins
    if key is not None:
        values = np.asarray(events[:, key], dtype=float)
        order = np.argsort(which, kind="stable")
        for b, chunk in enumerate(np.split(values[order], np.cumsum(counts)[:-1])):
            if chunk.size:
                medians[b] = float(np.median(chunk))
    return {
        "time_unit": time_unit,
        "centers": [round(float(c), 6) for c in (edges[:-1] + edges[1:]) / 2],
        "rate": [round(float(n) / width, 4) for n in counts],
        "channel": channels[key] if key is not None else None,
        "median": [None if m is None else round(m, 4) for m in medians],
        "windows": [
            {"start": w["start"], "end": w["end"], "reason": str(w.get("reason", ""))}
            for w in qc.get("windows", [])
            if w.get("unit") != "event"
        ],
    }


def acquisition_figure(entry: Mapping[str, Any]) -> go.Figure:
    """Event rate (top) and the key channel's median (bottom) over Time, windows shaded."""
    unit = html.escape(str(entry.get("time_unit", "")))
    channel = entry.get("channel")
    rows = 2 if channel else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_trace(
        go.Scatter(
            x=entry["centers"],
            y=entry["rate"],
            mode="lines",
            name="event rate",
            line={"color": "#1f77b4"},
        ),
        row=1,
        col=1,
    )
    fig.update_yaxes(title_text=f"events / {unit}", rangemode="tozero", row=1, col=1)
    if channel:
        label = html.escape(str(channel))
        fig.add_trace(
            go.Scatter(
                x=entry["centers"],
                y=entry["median"],
                mode="lines",
                name=f"median {label}",
                line={"color": "#2ca02c"},
            ),
            row=2,
            col=1,
        )
        fig.update_yaxes(title_text=f"median {label}", row=2, col=1)
    fig.update_xaxes(title_text=f"Time ({unit})", row=rows, col=1)
    for w in entry.get("windows", []):
        fig.add_vrect(
            x0=w["start"],
            x1=w["end"],
            fillcolor=_WINDOW_COLOR,
            opacity=0.2,
            line_width=0,
            row="all",
            col=1,
        )
    n = len(entry.get("windows", []))
    fig.update_layout(
        title={
            "text": f"<b>Acquisition</b> over Time: {n} removed window(s) shaded",
            "font": {"size": 13},
        },
        width=960,
        height=420 if rows == 2 else 260,
        margin={"l": 70, "r": 10, "t": 50, "b": 50},
        plot_bgcolor="white",
        showlegend=False,
    )
    return fig


def _panel_data(context: PanelContext) -> dict[str, Any] | None:
    fcs = context.fcs
    return acquisition_plot_data(
        fcs.by_channel(),
        channels=fcs.pnn,
        time_index=fcs.time_index,
        qc=context.qc or {},
        time_unit=context.time_unit or "s",
    )


register(
    Panel(
        name="acquisition",
        title="Acquisition over Time",
        caption=(
            "The file as read, before acquisition QC: event rate and the median of one "
            "channel per Time bin; windows QC removed are shaded red."
        ),
        stage="read",
        data=_panel_data,
        figure=acquisition_figure,
    )
)
