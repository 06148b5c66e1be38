"""plotly figure builders: precomputed tables and histograms in, ``go.Figure`` out.

Nothing here computes a statistic; every number drawn was computed upstream.
Strings that may come from an FCS file or a sample sheet are HTML-escaped
before they reach plotly, which renders a subset of HTML in titles and labels.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

__all__ = [
    "OTHER_COLOR",
    "PALETTE",
    "absolute_counts_figure",
    "cluster_map_figure",
    "drift_figure",
    "fold_expansion_figure",
    "fractions_figure",
    "gate_figure",
    "population_colors",
]

_COLORSCALE = "Viridis"
_GATE_COLOR = "#d62728"
_REPLACED_COLOR = "#555555"  # the fitted gate a reviewer's override replaced (dashed)
#: shading of a 1-D gate's inside; the second colour marks the other side of a shared divider
_SIDE_COLORS = (_GATE_COLOR, "#1f77b4")

#: population colours, given out in the template's population order (then repeated):
#: with the default template, T blue, CIK dark red with its CD16+ red and CD16- orange
#: subsets, NK dark green with its CD56bright green and CD56dim purple subsets
PALETTE: tuple[str, ...] = (
    "#4c78a8",
    "#b0413e",
    "#e45756",
    "#f58518",
    "#2e7d32",
    "#54a24b",
    "#b279a2",
    "#72b7b2",
    "#eeca3b",
    "#ff9da6",
    "#9d755d",
    "#9ecae9",
)
#: colour of anything that is none of the populations (e.g. the cluster phenotype "other")
OTHER_COLOR = "#9d9d9d"


def population_colors(populations: Sequence[str]) -> dict[str, str]:
    """Colour of each population: :data:`PALETTE` given out in the populations' order.

    Parameters
    ----------
    populations : sequence of str
        Population names in the template's order (duplicates keep their first colour).

    Returns
    -------
    dict of str to str
        Population → colour (``#rrggbb``); the palette repeats after its last colour.

    Examples
    --------
    >>> population_colors(["T", "CIK"])
    {'T': '#4c78a8', 'CIK': '#b0413e'}
    """
    names = list(dict.fromkeys(str(p) for p in populations))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _axis_title(axis: dict[str, Any]) -> str:
    dim, det = html.escape(str(axis["dim"])), html.escape(str(axis["detector"]))
    label = dim if dim == det else f"{dim} ({det})"
    return f"{label} [{html.escape(str(axis['transform']))}]"


def _axis_layout(axis: dict[str, Any]) -> dict[str, Any]:
    layout: dict[str, Any] = {"title": {"text": _axis_title(axis)}, "range": axis["range"]}
    if axis.get("ticks") and axis["ticks"].get("vals"):
        layout.update(
            tickmode="array", tickvals=axis["ticks"]["vals"], ticktext=axis["ticks"]["text"]
        )
    return layout


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def _draw_outline(
    fig: go.Figure, outline: dict[str, Any], *, line: dict[str, Any], name: str
) -> None:
    """A gate outline's paths (2-D) and divider marks (1-D) in one line style."""
    for path in outline.get("paths", []):
        fig.add_trace(
            go.Scatter(
                x=path["x"], y=path["y"], mode="lines", line=line, name=name, hoverinfo="skip"
            )
        )
    for v in outline.get("marks", []):
        fig.add_vline(x=v, line=line)


def gate_figure(entry: dict[str, Any]) -> go.Figure:
    """One gate over its parent's binned density.

    Parameters
    ----------
    entry : dict
        One item of :func:`cikflow.plotdata.gate_plot_data`.

    Returns
    -------
    plotly.graph_objects.Figure
        2-D: heatmap of log10(events per bin) with the gate outline; 1-D:
        histogram with the gate's bounds; title with count and % of parent.
    """
    fig = go.Figure()
    xa, ya = entry["x"], entry.get("y")
    counts = np.asarray(entry["counts"], dtype=float)
    name = html.escape(str(entry["gate"]))
    parent = html.escape(str(entry["parent"]))
    if entry.get("gates"):  # one divider, a child gate on each side
        names = " and ".join(f"<b>{html.escape(str(g))}</b>" for g in entry["gates"])
        title = f"{names} in {parent}: {entry['parent_events']:,} events split"
    else:
        title = (
            f"<b>{name}</b> in {parent}: {entry['events']:,} of {entry['parent_events']:,} "
            f"events ({_percent(entry['percent_parent'])})"
        )
    outline = entry.get("outline") or {}
    line = {"color": _GATE_COLOR, "width": 2}
    replaced = entry.get("replaced_outline") or {}  # the fitted gate a reviewer replaced
    dashed = {"color": _REPLACED_COLOR, "width": 2, "dash": "dash"}
    if replaced:
        title += "<br><i>gate set by reviewer; fitted gate dashed</i>"  # a line of its own
    if entry["kind"] == "2d":
        x_edges = np.linspace(*xa["range"], counts.shape[1] + 1)
        y_edges = np.linspace(*ya["range"], counts.shape[0] + 1)
        z = np.where(counts > 0, np.log10(np.maximum(counts, 1)), np.nan)
        fig.add_trace(
            go.Heatmap(
                x=(x_edges[:-1] + x_edges[1:]) / 2,
                y=(y_edges[:-1] + y_edges[1:]) / 2,
                z=z,
                colorscale=_COLORSCALE,
                showscale=False,
                hovertemplate="log10 events: %{z:.2f}<extra></extra>",
            )
        )
        fig.update_yaxes(**_axis_layout(ya))
    else:
        edges = np.linspace(*xa["range"], counts.shape[0] + 1)
        fig.add_trace(
            go.Bar(
                x=(edges[:-1] + edges[1:]) / 2,
                y=counts,
                marker={"color": "#4c78a8"},
                width=float(edges[1] - edges[0]),
                hovertemplate="%{y} events<extra></extra>",
            )
        )
        for k, (lo, hi) in enumerate(outline.get("spans", [])):
            fill = _SIDE_COLORS[k % len(_SIDE_COLORS)]  # two sides of one divider differ
            fig.add_vrect(x0=lo, x1=hi, fillcolor=fill, opacity=0.08, line_width=0)
        fig.update_yaxes(title={"text": "events"})
    _draw_outline(fig, replaced, line=dashed, name="fitted")  # under the applied gate
    _draw_outline(fig, outline, line=line, name=name)
    pops = {p["name"]: p for p in entry.get("populations", [])}
    for label in outline.get("labels", []):
        pop = pops.get(label["name"])
        if pop is None:
            continue
        right, top = label["fx"] > 0.5, label["fy"] > 0.5
        fig.add_annotation(
            x=label["fx"],
            y=label["fy"],
            xref="x domain",
            yref="y domain",
            showarrow=False,
            xanchor="right" if right else "left",
            yanchor="top" if top else "bottom",
            text=(
                f"{html.escape(str(pop['name']))}<br>{pop['events']:,} "
                f"({_percent(pop['percent_parent'])})"
            ),
            bgcolor="rgba(255,255,255,0.8)",
            font={"size": 11},
        )
    fig.update_xaxes(**_axis_layout(xa))
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        width=420,
        height=400,
        margin={"l": 60, "r": 10, "t": 65 if replaced else 50, "b": 50},
        showlegend=False,
        plot_bgcolor="white",
    )
    return fig


def fractions_figure(
    summary: pd.DataFrame, *, batch: str, populations: list[str], base: str = "base"
) -> go.Figure:
    """Percent of base per population over culture days for one batch.

    Parameters
    ----------
    summary : pandas.DataFrame
        Rows of ``summary.tsv`` (``day``, ``population``, ``percent_of_base``).
    batch : str
        Batch shown (title only).
    populations : list of str
        Populations drawn, in legend order (colours: :func:`population_colors`).
    base : str
        The base population's name (title only).
    """
    fig = go.Figure()
    colors = population_colors(populations)
    for pop in populations:
        rows = summary[summary["population"] == pop].sort_values("day")
        if rows.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=rows["day"],
                y=rows["percent_of_base"],
                mode="lines+markers",
                name=html.escape(pop),
                line={"color": colors[pop]},
                marker={"color": colors[pop]},
                error_y=_error_bars(rows, column="percent_of_base", color=colors[pop]),
            )
        )
    fig.update_layout(
        title={"text": f"Batch {html.escape(batch)}: populations, % of {html.escape(base)}"},
        xaxis={"title": {"text": "culture day"}},
        yaxis={"title": {"text": "% of base"}},
        width=640,
        height=380,
        margin={"l": 60, "r": 10, "t": 50, "b": 50},
    )
    return fig


def _log_lines(
    kinetics: pd.DataFrame, *, column: str, populations: list[str], hover: str
) -> list[go.Scatter]:
    traces = []
    colors = population_colors(populations)
    for pop in populations:
        rows = kinetics[kinetics["population"] == pop].sort_values("day")
        if rows.empty:
            continue
        traces.append(
            go.Scatter(
                x=rows["day"],
                y=rows[column],
                mode="lines+markers",
                name=html.escape(pop),
                line={"color": colors[pop]},
                marker={"color": colors[pop]},
                customdata=rows["sample"].astype(str).map(html.escape),
                hovertemplate=f"%{{customdata}}: {hover}<extra>{html.escape(pop)}</extra>",
                error_y=_error_bars(rows, column=column, color=colors[pop]),
            )
        )
    return traces


def _error_bars(rows: pd.DataFrame, *, column: str, color: str) -> dict[str, Any] | None:
    """Plotly ``error_y`` of a column's ``_low`` / ``_high`` interval (none without one)."""
    low, high = f"{column}_low", f"{column}_high"
    if low not in rows.columns or high not in rows.columns:
        return None
    value = rows[column].to_numpy(dtype=float)
    lower = value - rows[low].to_numpy(dtype=float)
    upper = rows[high].to_numpy(dtype=float) - value
    if not (np.isfinite(lower).any() or np.isfinite(upper).any()):
        return None
    return {
        "type": "data",
        "symmetric": False,
        # undefined bounds draw no bar
        "array": np.where(np.isfinite(upper), upper, 0.0).tolist(),
        "arrayminus": np.where(np.isfinite(lower), lower, 0.0).tolist(),
        "color": color,
        "thickness": 1,
        "width": 3,
    }


def _log_layout(fig: go.Figure, *, title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        title={"text": title},
        xaxis={"title": {"text": "culture day"}},
        yaxis={"title": {"text": y_title}, "type": "log", "exponentformat": "power"},
        width=640,
        height=380,
        margin={"l": 70, "r": 10, "t": 50, "b": 50},
    )
    return fig


def absolute_counts_figure(
    kinetics: pd.DataFrame, *, batch: str, populations: list[str]
) -> go.Figure:
    """Absolute counts per population over culture days for one batch (log axis).

    Parameters
    ----------
    kinetics : pandas.DataFrame
        Rows of ``kinetics.tsv`` (``day``, ``sample``, ``population``,
        ``total_cells``, ``cells_per_uL``).
    batch : str
        Batch shown (title only).
    populations : list of str
        Populations drawn, in legend order.

    Returns
    -------
    plotly.graph_objects.Figure
        Total cells in the culture per day; cells/µL when no culture volume
        gave totals. Undefined counts leave gaps.
    """
    column, unit = "total_cells", "total cells in culture"
    if not np.isfinite(kinetics["total_cells"].to_numpy(dtype=float)).any():
        column, unit = "cells_per_uL", "cells/µL"
    fig = go.Figure(
        _log_lines(kinetics, column=column, populations=populations, hover=f"%{{y:.3~g}} {unit}")
    )
    return _log_layout(
        fig, title=f"Batch {html.escape(batch)}: absolute counts ({unit})", y_title=unit
    )


def fold_expansion_figure(
    kinetics: pd.DataFrame, *, batch: str, populations: list[str]
) -> go.Figure:
    """Fold expansion per population over culture days for one batch (log axis).

    Parameters
    ----------
    kinetics : pandas.DataFrame
        Rows of ``kinetics.tsv`` (``day``, ``sample``, ``population``,
        ``fold_expansion``).
    batch : str
        Batch shown (title only).
    populations : list of str
        Populations drawn, in legend order.

    Returns
    -------
    plotly.graph_objects.Figure
        Total cells on each day ÷ total cells on the reference day (day 0 or
        the first day present); undefined folds leave gaps.
    """
    fig = go.Figure(
        _log_lines(
            kinetics, column="fold_expansion", populations=populations, hover="%{y:.3g}-fold"
        )
    )
    return _log_layout(
        fig, title=f"Batch {html.escape(batch)}: fold expansion", y_title="fold vs reference day"
    )


def _tick_label(value: float) -> str:
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    return f"{sign}10<sup>{round(np.log10(abs(value)))}</sup>"


def _map_axis(axis: dict[str, Any]) -> dict[str, Any]:
    layout: dict[str, Any] = {"title": {"text": _axis_title(axis)}, "range": axis["range"]}
    ticks = axis.get("ticks") or {}
    lo, hi = axis["range"]
    keep = [(v, r) for v, r in zip(ticks.get("vals", []), ticks.get("raw", []), strict=True)]
    keep = [(v, r) for v, r in keep if lo <= v <= hi]
    if keep:
        layout.update(
            tickmode="array",
            tickvals=[v for v, _ in keep],
            ticktext=[_tick_label(r) for _, r in keep],
        )
    return layout


def cluster_map_figure(
    entry: dict[str, Any], *, populations: Sequence[str] | None = None
) -> go.Figure:
    """The cluster map: binned density of two markers coloured by cluster phenotype.

    Parameters
    ----------
    entry : dict
        :func:`cikflow.clustering.cluster_map` output (axes, phenotypes, bins
        as ``[x, y, phenotype index, events]``).
    populations : sequence of str, optional
        The template's populations in its order, which give the colours
        (:func:`population_colors`, the same as in the batch report); default the
        phenotypes in legend order. A phenotype that is none of them is grey.

    Returns
    -------
    plotly.graph_objects.Figure
        One square-marker trace per phenotype (legend); marker opacity grows
        with log10(events per bin).
    """
    fig = go.Figure()
    bins = np.asarray(entry.get("bins") or [], dtype=float).reshape(-1, 4)
    top = float(np.log10(bins[:, 3].max() + 1)) if len(bins) else 1.0
    names = [str(p) for p in entry.get("phenotypes", [])]
    colors = population_colors(
        populations if populations is not None else [p for p in names if p != "other"]
    )
    for i, name in enumerate(entry.get("phenotypes", [])):
        rows = bins[bins[:, 2] == i]
        if not len(rows):
            continue
        alpha = 0.25 + 0.75 * np.log10(rows[:, 3] + 1) / top
        label = html.escape(str(name))
        fig.add_trace(
            go.Scatter(
                x=rows[:, 0],
                y=rows[:, 1],
                mode="markers",
                name=label,
                marker={
                    "symbol": "square",
                    "size": 4,
                    "color": colors.get(str(name), OTHER_COLOR),
                    "opacity": alpha.tolist(),
                    "line": {"width": 0},
                },
                customdata=rows[:, 3],
                hovertemplate=f"{label}: %{{customdata:.0f}} events<extra></extra>",
            )
        )
    fig.update_xaxes(**_map_axis(entry["x"]))
    fig.update_yaxes(**_map_axis(entry["y"]))
    fig.update_layout(
        title={"text": "<b>Clusters</b> of the base population by phenotype", "font": {"size": 13}},
        width=480,
        height=400,
        margin={"l": 60, "r": 10, "t": 50, "b": 50},
        plot_bgcolor="white",
        legend={"itemsizing": "constant"},
    )
    return fig


def drift_figure(drift: pd.DataFrame, *, batch: str) -> go.Figure:
    """A batch's drift from its reference clusters over culture days.

    Parameters
    ----------
    drift : pandas.DataFrame
        Rows of ``drift.tsv`` (``day``, ``sample``, ``drift_ratio``,
        ``drift_limit``, ``drifted``).
    batch : str
        Batch shown (title only).

    Returns
    -------
    plotly.graph_objects.Figure
        Drift ratio per day (1 = as close to the reference centroids as the
        pooled events they were fitted on), the limit as a dashed line,
        drifted days in red.
    """
    rows = drift.sort_values("day")
    colors = ["#d62728" if bool(d) else "#4c78a8" for d in rows["drifted"]]
    fig = go.Figure(
        go.Scatter(
            x=rows["day"],
            y=rows["drift_ratio"],
            mode="lines+markers",
            marker={"color": colors, "size": 9},
            line={"color": "#4c78a8"},
            text=[html.escape(str(s)) for s in rows["sample"]],
            hovertemplate="%{text}: day %{x}, drift %{y:.2f}<extra></extra>",
            name="drift",
        )
    )
    if len(rows):
        fig.add_hline(
            y=float(rows["drift_limit"].iloc[0]),
            line={"color": _GATE_COLOR, "dash": "dash"},
            annotation_text="limit",
        )
    fig.update_layout(
        title={"text": f"Batch {html.escape(batch)}: drift from the reference clusters"},
        xaxis={"title": {"text": "culture day"}},
        yaxis={"title": {"text": "mean distance ÷ reference"}, "rangemode": "tozero"},
        width=480,
        height=360,
        showlegend=False,
        plot_bgcolor="white",
    )
    return fig
