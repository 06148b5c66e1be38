"""Binned densities of each gate's parent population, for the reports.

Reports never draw millions of raw points: each gate is shown over a 2-D (or
1-D) histogram of its parent's events in the gate's own transformed scale, with
the gate outline in the same coordinates. This module computes those
histograms; :mod:`cikflow.report` only draws them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.gating.template import make_transform, transform_name

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from cikflow.events import FcsData
    from cikflow.gating.apply import GatingOutcome
    from cikflow.gating.template import Template
    from cikflow.preprocess import CompensatedEvents

__all__ = ["gate_plot_data"]

#: events binned at a time (numpy's 2-D histogram makes float64 and index copies)
_CHUNK = 1 << 18

_DECADE_TICKS = (-1000.0, 0.0, 100.0, 1000.0, 10000.0, 100000.0)


def _tick_text(value: float) -> str:
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    return f"{sign}10<sup>{round(np.log10(abs(value)))}</sup>"


def gate_plot_data(
    fcs: FcsData,
    outcome: GatingOutcome,
    *,
    template: Template,
    compensated: CompensatedEvents | np.ndarray | None,
    bins: int = 96,
) -> list[dict[str, Any]]:
    """Histograms of every gate's parent events, in the gate's transformed axes.

    Parameters
    ----------
    fcs : FcsData
        The file gated.
    outcome : GatingOutcome
        Its gating result (membership and gate geometry).
    template : Template
        The template: YAML (marker space, its transforms), or GatingML / FlowJo
        (each gate in its own dimensions' compensation and transforms).
    compensated : CompensatedEvents or numpy.ndarray or None
        YAML templates: compensated events, file channel order, read as
        ``compensated[:, j]`` (:class:`cikflow.preprocess.CompensatedEvents`, or an
        array). GatingML and FlowJo templates (None): each gate's own compensation.
    bins : int
        Bins per axis.

    Returns
    -------
    list of dict
        One per drawable gate: ``gate``, ``parent``, ``gate_type``, ``events``,
        ``parent_events``, ``percent_parent``, ``kind`` (``"2d"``/``"1d"``),
        ``x``/``y`` axis dicts (``dim``, ``detector``, ``transform``, ``range``,
        ``ticks``), ``counts`` (int lists; 2-D as rows over y), ``outline``
        (:meth:`cikflow.gating.model.Outline.as_dict`, transformed units),
        ``replaced_outline`` where a reviewer's override replaced the fitted gate
        (the fitted one's outline, drawn dashed) and ``populations`` (``name``,
        ``events``, ``percent_parent`` of each population the gate defines: one per
        quadrant of a quadrant gate).
    """
    if template.kind != "yaml":
        return _strategy_plot_data(fcs, outcome, bins=bins)
    axes = _Axes(fcs, outcome, template=template, compensated=compensated, bins=bins)
    axes.reach = _gate_reach(outcome.infos)
    out: list[dict[str, Any]] = []
    counts = _counts(outcome)
    for info, mask in _drawn(outcome, n_events=fcs.n_events):
        entry = _entry(info.gate, parent=info.path[-1], mask=mask, counts_by_gate=counts)
        entry.update(axes.histogram(info.gate.dims, mask))
        _add_outline(entry, info.gate)
        if info.fitted is not None:  # a reviewer's override replaced this gate as fitted
            entry["replaced_outline"] = info.fitted.outline(_extent(entry)).as_dict()
        out.append(entry)
    return _merge_dividers(out)


def _drawn(outcome: GatingOutcome, *, n_events: int) -> Iterator[tuple[Any, np.ndarray]]:
    """Each gate with something to draw, and its parent's events (a mask)."""
    for info in outcome.infos:
        gate = info.gate
        if gate is None or info.name != gate.name or not gate.dims:
            continue  # a quadrant (drawn with its gate), or a gate with nothing to draw
        parent = info.path[-1]
        mask = outcome.membership[parent] if parent != "root" else np.ones(n_events, dtype=bool)
        yield info, mask


def _counts(outcome: GatingOutcome) -> dict[str, int]:
    """Events per population of the gate table."""
    return dict(zip(outcome.gates["gate"], outcome.gates["events"], strict=True))


def _entry(
    gate: Any, *, parent: str, mask: np.ndarray, counts_by_gate: Mapping[str, int]
) -> dict[str, Any]:
    """A plot's gate, parent and counts: the populations the gate defines, % of parent."""
    parent_n = int(mask.sum())
    pops = [p for p, _ in gate.populations() if p in counts_by_gate]
    n_in = sum(counts_by_gate[p] for p in pops)
    return {
        "gate": gate.name,
        "parent": parent,
        "gate_type": gate.kind,
        "events": int(n_in),
        "parent_events": parent_n,
        "percent_parent": 100.0 * n_in / parent_n if parent_n else None,
        "populations": [
            {
                "name": p,
                "events": int(counts_by_gate[p]),
                "percent_parent": 100.0 * counts_by_gate[p] / parent_n if parent_n else None,
            }
            for p in pops
        ],
    }


def _extent(entry: Mapping[str, Any]) -> list[Any]:
    return [entry["x"]["range"]] + ([entry["y"]["range"]] if entry["y"] else [])


def _add_outline(entry: dict[str, Any], gate: Any) -> None:
    entry["outline"] = gate.outline(_extent(entry)).as_dict()


def _strategy_plot_data(fcs: FcsData, outcome: GatingOutcome, *, bins: int) -> list[dict[str, Any]]:
    """The plots of a GatingML or FlowJo template: each gate in its own dimensions' units.

    A GatingML gate carries its compensation and transforms per dimension, so its
    axes are the values flowkit decides it on (:class:`cikflow.gating.engine.GateValues`).
    Boolean gates (no dimensions) and ratio dimensions are not drawn; a gate the
    model has no outline for (an ellipsoid) shows its parent's events alone.
    """
    from cikflow.gating.engine import GateValues
    from cikflow.gating.imported import from_flowkit

    strategy = outcome.strategy
    values = GateValues(strategy, fcs)
    counts = _counts(outcome)
    out: list[dict[str, Any]] = []
    try:
        for info, mask in _drawn(outcome, n_events=fcs.n_events):
            # the sample's own gate where the template has one for it (FlowJo workspaces)
            fk_gate = strategy.get_gate(info.name, info.path, sample_id=outcome.sample)
            gate = from_flowkit(fk_gate, parent=info.path[-1])
            columns = values(fk_gate, np.flatnonzero(mask))
            if columns is None:
                continue
            entry = _entry(gate, parent=info.path[-1], mask=mask, counts_by_gate=counts)
            reach = _gate_reach([replace(info, gate=gate)])
            axes = [
                _value_axis(v, dim=name, transform=values.transform(d), reach=reach, bins=bins)
                for v, name, d in zip(columns, gate.dims, fk_gate.dimensions, strict=True)
            ]
            entry.update(_histogram(columns, axes))
            _add_outline(entry, gate)
            out.append(entry)
    finally:
        values.release()
    return _merge_dividers(out)


def _value_axis(
    values: np.ndarray,
    *,
    dim: str,
    transform: Any,
    reach: Mapping[str, tuple[float, float]],
    bins: int,
) -> dict[str, Any]:
    """An axis over values already in the gate's units: range (events and the gate), ticks."""
    finite = values[np.isfinite(values)]
    lo, hi = np.quantile(finite, [0.001, 0.999]) if len(finite) else (0.0, 1.0)
    if dim in reach:  # the axis always shows the gate
        lo, hi = min(lo, reach[dim][0]), max(hi, reach[dim][1])
    pad = 0.04 * (hi - lo or 1.0)
    lo, hi = float(lo - pad), float(hi + pad)
    return {
        "dim": dim,
        "detector": dim,
        "transform": "none" if transform is None else type(transform).__name__,
        "range": [lo, hi],
        "ticks": _ticks(transform, lo, hi),
        "edges": np.linspace(lo, hi, bins + 1),
    }


def _ticks(xform: Any, lo: float, hi: float) -> dict[str, list[Any]]:
    """Decade ticks of a transformed axis, none crowding the last (none for a linear one)."""
    import flowkit as fk

    if xform is None or isinstance(xform, fk.transforms.LinearTransform):
        return {}  # plotly's own ticks, in the gate's units
    with np.errstate(all="ignore"):
        vals = xform.apply(np.array(_DECADE_TICKS).reshape(-1, 1))[:, 0]
    keep: list[tuple[float, float]] = []
    for v, t in zip(vals, _DECADE_TICKS, strict=True):
        if lo <= v <= hi and (not keep or v - keep[-1][0] >= 0.06 * (hi - lo)):
            keep.append((float(v), t))
    return {"vals": [v for v, _ in keep], "text": [_tick_text(t) for _, t in keep]}


def _histogram(columns: list[np.ndarray], axes: list[dict[str, Any]]) -> dict[str, Any]:
    """``kind``, ``x``, ``y`` and ``counts`` of values binned on the axes' edges."""
    edges = [a.pop("edges") for a in axes]
    if len(columns) < 2:
        hist, _ = np.histogram(columns[0], bins=edges[0])
        return {"kind": "1d", "x": axes[0], "y": None, "counts": hist.astype(int).tolist()}
    counts = np.histogram2d(columns[1], columns[0], bins=[edges[1], edges[0]])[0]
    return {"kind": "2d", "x": axes[0], "y": axes[1], "counts": counts.astype(int).tolist()}


def _merge_dividers(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One plot for two 1-D gates that split the same parent at the same divider.

    A divider with a child on each side (CD16+ and CD16− of CIK) is drawn once,
    each side shaded and labelled; the merged entry lists both in ``gates``.

    >>> a = {"kind": "1d", "gate": "a", "parent": "P", "x": {"dim": "X"}, "events": 3,
    ...      "outline": {"marks": [1.0], "spans": [[1.0, 9.0]], "labels": [], "paths": []},
    ...      "populations": [{"name": "a"}]}
    >>> b = {**a, "gate": "b", "events": 7,
    ...      "outline": {**a["outline"], "spans": [[0.0, 1.0]]}, "populations": [{"name": "b"}]}
    >>> merged = _merge_dividers([a, b])
    >>> [(m["gates"], m["events"], m["outline"]["spans"]) for m in merged]
    [(['a', 'b'], 10, [[1.0, 9.0], [0.0, 1.0]])]
    """
    out: list[dict[str, Any]] = []
    for entry in entries:
        prev = out[-1] if out else None
        if prev is not None and "gates" not in prev and _same_divider(prev, entry):
            outline = {
                key: prev["outline"][key] + entry["outline"][key]
                for key in ("paths", "spans", "labels")
            }
            outline["marks"] = prev["outline"]["marks"]
            pops = prev["populations"] + entry["populations"]
            out[-1] = {
                **prev,
                "gates": [prev["gate"], entry["gate"]],
                "gate": f"{prev['gate']} | {entry['gate']}",
                "events": prev["events"] + entry["events"],
                "outline": outline,
                "populations": pops,
            }
            continue
        out.append(entry)
    return out


def _same_divider(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two 1-D entries are the two sides of one divider of one parent."""
    if a["kind"] != "1d" or b["kind"] != "1d" or a["parent"] != b["parent"]:
        return False
    if a["x"]["dim"] != b["x"]["dim"]:
        return False
    marks_a, marks_b = a["outline"]["marks"], b["outline"]["marks"]
    if len(marks_a) != 1 or marks_a != marks_b:
        return False
    (lo_a, hi_a), (lo_b, hi_b) = a["outline"]["spans"][0], b["outline"]["spans"][0]
    mark = marks_a[0]
    return (hi_a == mark and lo_b == mark) or (lo_a == mark and hi_b == mark)


class _Axes:
    """Each dimension's plot axis and bin edges, computed once per file."""

    def __init__(
        self,
        fcs: FcsData,
        outcome: GatingOutcome,
        *,
        template: Template,
        compensated: CompensatedEvents | np.ndarray,
        bins: int,
    ) -> None:
        self.fcs = fcs
        self.outcome = outcome
        self.spec = template.spec
        self.compensated = compensated
        self.bins = bins
        self.raw_of: dict[str, np.ndarray] = {}  # dimension → values, untransformed or not
        self.edges_of: dict[str, np.ndarray] = {}  # dimension → bin edges in raw_of's units
        self.axes: dict[str, dict[str, Any]] = {}
        self.reach: dict[str, tuple[float, float]] = {}  # dimension → gates' extent

    def axis(self, dim: str) -> dict[str, Any]:
        """The axis of ``dim``: detector, transform, range and ticks (transformed units)."""
        from cikflow.gating.engine import invertible

        if dim in self.axes:
            return self.axes[dim]
        detector = self.outcome.channel_map[dim]
        tname = transform_name(self.spec, dim)
        xform = make_transform(self.spec["transforms"][tname])
        raw = self.compensated[:, self.fcs.pnn.index(detector)]
        # A monotone transform maps bins onto bins: the histogram of T(x) over
        # equal bins in T is the histogram of x over the back-transformed edges,
        # and T's quantiles are T of x's, so no event is transformed.
        direct = xform is None or invertible(xform)
        values = raw if direct else xform.apply(raw.reshape(-1, 1))[:, 0]
        if len(values):
            lo, hi = np.quantile(values, [0.001, 0.999])
            if xform is not None and direct:
                lo, hi = xform.apply(np.array([[lo], [hi]]))[:, 0]
        else:
            lo, hi = 0.0, 1.0
        if dim in self.reach:  # the axis always shows the gates drawn on it
            lo, hi = min(lo, self.reach[dim][0]), max(hi, self.reach[dim][1])
        pad = 0.04 * (hi - lo or 1.0)
        edges = np.linspace(lo - pad, hi + pad, self.bins + 1)
        if xform is not None and direct:
            edges = xform.inverse(edges.reshape(-1, 1))[:, 0]
        self.raw_of[dim], self.edges_of[dim] = values, edges
        ticks: dict[str, list[Any]] = {}
        if xform is not None:
            vals = xform.apply(np.array(_DECADE_TICKS).reshape(-1, 1))[:, 0]
            keep = [
                (v, t)
                for v, t in zip(vals, _DECADE_TICKS, strict=True)
                if lo - pad <= v <= hi + pad
            ]
            ticks = {
                "vals": [float(v) for v, _ in keep],
                "text": [_tick_text(t) for _, t in keep],
            }
        self.axes[dim] = {
            "dim": dim,
            "detector": detector,
            "transform": tname,
            "range": [float(lo - pad), float(hi + pad)],
            "ticks": ticks,
        }
        return self.axes[dim]

    def histogram(self, dims: tuple[str, ...], mask: np.ndarray) -> dict[str, Any]:
        """``kind``, ``x``, ``y`` axes and ``counts`` of the events in ``mask``."""
        xa = self.axis(dims[0])
        xv = self.raw_of[dims[0]][mask]
        if len(dims) < 2:
            hist, _ = np.histogram(xv, bins=self.edges_of[dims[0]])
            return {"kind": "1d", "x": xa, "y": None, "counts": hist.astype(int).tolist()}
        ya = self.axis(dims[1])
        yv = self.raw_of[dims[1]][mask]
        grid = [self.edges_of[dims[1]], self.edges_of[dims[0]]]
        counts = np.zeros((self.bins, self.bins))
        for start in range(0, len(xv), _CHUNK):  # bounded temporaries on big files
            part = slice(start, start + _CHUNK)
            counts += np.histogram2d(yv[part], xv[part], bins=grid)[0]
        return {"kind": "2d", "x": xa, "y": ya, "counts": counts.astype(int).tolist()}


def _gate_reach(infos: Any) -> dict[str, tuple[float, float]]:
    """Per dimension, the lowest and highest coordinate of the gates drawn (transformed).

    Read off each gate's outline drawn within an undefined extent: what remains
    finite are the gate's own coordinates (bounds, dividers, vertices).
    """
    reach: dict[str, list[float]] = {}
    for info in infos:
        gate = info.gate
        if gate is None or info.name != gate.name or not gate.dims:
            continue
        outline = gate.outline([(np.nan, np.nan)] * len(gate.dims))
        found: dict[str, list[float]] = {d: [] for d in gate.dims}
        x_dim = gate.dims[0]
        found[x_dim] += [*outline.marks, *(v for s in outline.spans for v in s)]
        for xs, ys in outline.paths:
            found[x_dim] += list(xs)
            if len(gate.dims) > 1:
                found[gate.dims[1]] += list(ys)
        for dim, values in found.items():
            reach.setdefault(dim, []).extend(v for v in values if v is not None)
    out = {}
    for dim, values in reach.items():
        finite = np.asarray(values, dtype=float)
        finite = finite[np.isfinite(finite)]
        if len(finite):
            out[dim] = (float(finite.min()), float(finite.max()))
    return out
