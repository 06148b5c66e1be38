"""Fit a template's data-driven gate on one sample's parent events.

A fitted gate is returned as a template gate *specification in data units* —
the same form a QC lead writes by hand — so the one builder in
:mod:`cikflow.gating.template` turns it into a plain GatingML gate that flowkit
adds as that sample's custom gate. Fitting happens in each dimension's
transformed scale (where valleys between populations are meaningful); values
are converted back with the transform's exact inverse.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from cikflow.exceptions import GatingTemplateError
from cikflow.gating.methods import HELD_MAX_SHARE
from cikflow.gating.registry import (
    METHODS,
    blob_estimator,
    get_method,
    singlet_estimator,
    threshold_estimator,
)
from cikflow.gating.shapes import BeadGate

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["THRESHOLD_METHODS", "fit_gate"]

#: fewest events of a quadrant worth searching for a notch (two modes of ten)
_NOTCH_MIN_EVENTS = 20
#: a notch's valley over the smaller mode: a second mode is shallower than a population
#: of its own (0.81-0.84 where CD3-dim CIK cells lay next to the CD3 divider on day-21
#: realistic tubes, 94-98 % of the events above it true CIK; no notch on any clean tube)
_NOTCH_DEPTH_RATIO = 0.85

#: 1-D methods usable on range gates and quadrant dividers
THRESHOLD_METHODS = tuple(m.name for m in METHODS.values() if m.divider)


def _threshold(
    values: np.ndarray,
    params: Mapping[str, Any],
    *,
    dim: str,
    scale: Callable[[str, Any], np.ndarray],
    unscale: Callable[[str, Any], np.ndarray],
    random_state: int,
    where: str,
) -> tuple[float, dict[str, Any]]:
    """Fit one threshold; return it in data units and the fit record."""
    p = dict(params)
    if "search" in p:
        p["search"] = [float(v) for v in scale(dim, p["search"])]
    if isinstance(p.get("fallback"), int | float):  # a coordinate, in data units like all
        p["fallback"] = float(scale(dim, [p["fallback"]])[0])
    name = p.pop("method", "valley")
    est = threshold_estimator(name, p, where=where, random_state=random_state).fit(values)
    value = float(unscale(dim, [est.threshold_])[0])
    record = {
        "dimension": dim,
        "method": est.method_,
        "threshold": value,
        "threshold_transformed": est.threshold_,
        "search": p.get("search") and list(params["search"]),
        "search_transformed": p.get("search") and list(p["search"]),
        # a positive smear into the negatives: the intervals continue its shoulder
        "negative_edge": bool(p.get("negative_edge", False)),
        # the first valley over the lower population: at the lower end of what stains
        # between it and the upper one (a viability dye's dying cells)
        "pick": p.get("pick", "deepest") if name == "valley" else None,
        "events": int(est.n_events_),
        # share of events staining between the valley and the upper population (valley)
        "intermediate_share": getattr(est, "intermediate_share_", None),
        # a first valley above the main peak below the chosen one (the dying cells)
        "first_valley_transformed": getattr(est, "first_valley_", None),
        # what placed a valley fit's threshold: "valley", "valley edge" (a smear's
        # count-balanced edge below the valley), "edge" (that edge where there is no
        # valley) or "fallback" (the template's)
        "placed": getattr(est, "placed_", None),
        # the count-balanced edge below the search range, where its bound held the fit
        "held_edge_transformed": getattr(est, "held_edge_", None),
        "flags": [
            {"flag": f.flag, "reason": f"{dim}: {f.text(lambda v: unscale(dim, v))}"}
            for f in est.flags_
        ],
    }
    return float(value), record


def _fit_quadrant(
    gate: Mapping[str, Any], *, fitting: _Fitting, fixed: Mapping[str, Any] | None = None
) -> tuple[tuple[str, float], tuple[str, float | dict[str, float]], list[dict[str, Any]]]:
    """Both dividers of a quadrant gate (data units) and their fit records.

    x is fitted on the parent; y on the parent, or with ``per_side`` within each
    side of x separately (``{"-": …, "+": …}``). A divider in ``fixed`` (``{"x":
    {"at": …}}``, data units: a reviewer's override) is not fitted but taken as
    given, so a y fitted per side is fitted within the sides of a given x.
    """
    fixed = fixed or {}
    where = f"gate '{gate['name']}'"
    records: list[dict[str, Any]] = []

    def fit(axis: str, within: np.ndarray, side: str = "") -> tuple[float, float]:
        divider = gate[axis]
        dim = divider["dimension"]
        p = {k: v for k, v in divider.items() if k not in ("dimension", "at", "per_side", "notch")}
        p.setdefault("method", "valley")
        value, record = _threshold(
            fitting.values(dim, within),
            p,
            dim=dim,
            scale=fitting.scale,
            unscale=fitting.unscale,
            random_state=fitting.seed,
            where=f"{where} divider '{axis}'" + (f" within {side}" if side else ""),
        )
        if side:  # flags and records name the subset: "CD56 within CD3-: ..."
            record["within"] = side
            for flag in record["flags"]:
                flag["reason"] = f"{dim} within {side}" + flag["reason"][len(dim) :]
        records.append(record)
        return value, record["threshold_transformed"]

    xdim, ydim = gate["x"]["dimension"], gate["y"]["dimension"]
    mask = fitting.mask
    if "x" in fixed:
        x = float(fixed["x"]["at"])
        x_t = float(fitting.scale(xdim, [x])[0])
    else:
        x, x_t = fit("x", mask)
    if "y" in fixed:
        return (xdim, x), (ydim, fixed["y"]["at"]), records
    if not gate["y"].get("per_side"):
        return (xdim, x), (ydim, fit("y", mask)[0]), records
    above = np.zeros_like(mask)
    above[mask] = fitting.parent(xdim) >= x_t
    at = {
        sign: fit("y", side, f"{xdim}{sign}")[0]
        for sign, side in (("-", mask & ~above), ("+", above))
    }
    if gate["x"].get("notch") is True and "x" not in fixed:  # a set x: as set, no notch
        y_neg = float(fitting.scale(ydim, [at["-"]])[0])
        quadrant = np.zeros_like(mask)  # x−, y+
        quadrant[mask & ~above] = fitting.values(ydim, mask & ~above) >= y_neg
        found = _fit_notch(gate, quadrant, x=(x, x_t), fitting=fitting, where=where)
        if found is None:
            y_pos = float(fitting.scale(ydim, [at["+"]])[0])
            positive = quadrant.copy()  # the y+ cells of both sides
            positive[above] = fitting.values(ydim, above) >= y_pos
            found = _fit_raised_notch(gate, positive, x=(x, x_t), fitting=fitting, where=where)
            if found is not None:  # the notch divides the y+ cells: x, the y− cells only
                _judge_held(records[0], decided=mask & ~positive, fitting=fitting, total=mask)
        if found is not None:
            records.append(found)
    return (xdim, x), (ydim, at), records


def _judge_held(
    record: dict[str, Any], *, decided: np.ndarray, fitting: _Fitting, total: np.ndarray
) -> None:
    """A divider its search range held, judged on the events it still decides.

    Its ``at_bound`` flag goes where no more than
    :data:`cikflow.gating.methods.HELD_MAX_SHARE` of the ``total`` events (boolean
    over the parent) are ``decided`` ones between the held edge and the divider: a
    notch above the x divider divides the y+ cells in its place, so x decides the y−
    cells only.
    """
    edge = record.get("held_edge_transformed")
    if edge is None:
        return
    values = fitting.values(record["dimension"], decided)
    between = np.count_nonzero((values >= edge) & (values < record["threshold_transformed"]))
    record["held_share"] = between / max(int(np.count_nonzero(total)), 1)
    if record["held_share"] <= HELD_MAX_SHARE:
        record["flags"] = [f for f in record["flags"] if f["flag"] != "at_bound"]


def _fit_notch(
    gate: Mapping[str, Any],
    quadrant: np.ndarray,
    *,
    x: tuple[float, float],
    fitting: _Fitting,
    where: str,
) -> dict[str, Any] | None:
    """The notch of a per-side quadrant's x−, y+ quadrant: its record, None without one.

    A valley of the quadrant's own x values between the x search range's lower
    bound and the x divider (``x``: data and transformed units), at least one kernel
    width below the divider: a second mode of cells that belong across it. Without
    such a valley (the common case) there is no notch, and nothing to flag.
    """
    divider = gate["x"]
    dim = divider["dimension"]
    lo = float(divider["search"][0]) if divider.get("search") else None
    bandwidth = float(divider.get("bandwidth", METHODS["valley"].defaults["bandwidth"]))
    if lo is None or lo >= x[0] or np.count_nonzero(quadrant) < _NOTCH_MIN_EVENTS:
        return None
    params = {
        "method": "valley",
        "search": [lo, x[0]],
        "fallback": "upper",
        "max_depth_ratio": _NOTCH_DEPTH_RATIO,
        "bandwidth": bandwidth,
    }
    record = _notch_record(gate, quadrant, params, fitting=fitting, where=where)
    if record["flags"] or record["threshold_transformed"] > x[1] - bandwidth:
        return None  # one mode only, or a valley at the divider itself: no second mode
    record["within"] = f"{dim}-{gate['y']['dimension']}+"
    return record


def _notch_record(
    gate: Mapping[str, Any],
    events: np.ndarray,
    params: Mapping[str, Any],
    *,
    fitting: _Fitting,
    where: str,
) -> dict[str, Any]:
    """The fit record of a notch's valley on ``events`` (boolean over the parent)."""
    dim = gate["x"]["dimension"]
    _, record = _threshold(
        fitting.values(dim, events),
        params,
        dim=dim,
        scale=fitting.scale,
        unscale=fitting.unscale,
        random_state=fitting.seed,
        where=f"{where} notch",
    )
    return record


def _fit_raised_notch(
    gate: Mapping[str, Any],
    positive: np.ndarray,
    *,
    x: tuple[float, float],
    fitting: _Fitting,
    where: str,
) -> dict[str, Any] | None:
    """A notch above the x divider, for the y+ cells of both sides: its record, or None.

    The x divider is placed for the y− cells (the CD3-dim T cells' edge against the
    CD3−CD56− cells, ``negative_edge``); among the y+ cells the negatives are others
    (NK cells, whose CD3 background reaches higher) and the positives' smear too (the
    CD3-dim CIK cells). Their own valley, no higher than its count-balanced edge, in the
    x search range: a notch where it lies above the x divider (``x``: data and
    transformed units). Without a valley, or with one at or below the x divider, there
    is none, and nothing to flag.
    """
    divider = gate["x"]
    if not divider.get("search") or np.count_nonzero(positive) < _NOTCH_MIN_EVENTS:
        return None
    params = {
        "method": "valley",
        "search": list(divider["search"]),
        "fallback": "lower",
        "negative_edge": True,
        "bandwidth": float(divider.get("bandwidth", METHODS["valley"].defaults["bandwidth"])),
    }
    record = _notch_record(gate, positive, params, fitting=fitting, where=where)
    if record["flags"] or record["threshold_transformed"] <= x[1]:
        return None
    record["within"] = f"{gate['y']['dimension']}+"
    return record


class _Fitting(NamedTuple):
    """What every fit of one gate works with (see :func:`fit_gate`)."""

    values: Callable[[str, np.ndarray], np.ndarray]
    mask: np.ndarray
    scale: Callable[[str, Any], np.ndarray]
    unscale: Callable[[str, Any], np.ndarray]
    seed: int

    def parent(self, dim: str) -> np.ndarray:
        return self.values(dim, self.mask)


def _fit_range(
    gate: Mapping[str, Any],
    spec: dict[str, Any],
    record: dict[str, Any],
    *,
    method: str,
    params: dict[str, Any],
    fitting: _Fitting,
) -> None:
    """One bound of a range gate on one dimension, by a threshold method."""
    where = f"gate '{gate['name']}'"
    if len(gate["dimensions"]) != 1:
        raise GatingTemplateError(f"{where}: method '{method}' needs a gate on one dimension")
    ((dim, bounds),) = gate["dimensions"].items()
    side = params.pop("bound", None) or ("min" if bounds.get("min") is not None else "max")
    value, fit = _threshold(
        fitting.parent(dim),
        {**params, "method": method},
        dim=dim,
        scale=fitting.scale,
        unscale=fitting.unscale,
        random_state=fitting.seed,
        where=where,
    )
    spec["dimensions"] = {dim: {**bounds, side: value}}
    record["fits"].append(fit)


def _fit_shape(
    gate: Mapping[str, Any],
    spec: dict[str, Any],
    record: dict[str, Any],
    *,
    method: str,
    params: dict[str, Any],
    fitting: _Fitting,
) -> None:
    """A polygon: the main mixture population (blob) or the singlet ratio band."""
    where = f"gate '{gate['name']}'"
    xdim, ydim = gate["dimensions"]
    xy = np.column_stack([fitting.parent(xdim), fitting.parent(ydim)])
    data = np.column_stack([fitting.unscale(xdim, xy[:, 0]), fitting.unscale(ydim, xy[:, 1])])
    if method == "blob":
        # fitted in data units (by default on log10 of linear scatter)
        est = blob_estimator(params, linear=True, where=where, random_state=fitting.seed)
        est.fit(data)
        # mixture components cut off the hull (cut_enclosed: monocytes it would enclose)
        record["components_cut"] = len(est.cut_)
    else:
        est = singlet_estimator(params, where=where)
        est.fit(data)
        record["ratio"] = getattr(est, "ratio_", None)
        record["band"] = list(getattr(est, "band_", ()))
    if est.vertices_:
        spec["vertices"] = [list(v) for v in est.vertices_]
    record["fits"].append({"dimensions": [xdim, ydim], "vertices": spec["vertices"]})
    record["flags"].extend({"flag": f.flag, "reason": f.text()} for f in est.flags_)


def _fit_beads(
    gate: Mapping[str, Any],
    spec: dict[str, Any],
    record: dict[str, Any],
    *,
    params: dict[str, Any],
    fitting: _Fitting,
) -> None:
    """Counting beads: a scatter maximum, then a bright threshold per fluorescence channel."""
    where = f"gate '{gate['name']}'"
    dims = list(gate["dimensions"])
    scatter, fluor = dims[0], dims[1:]
    max_scatter = gate["dimensions"][scatter].get("max")
    if max_scatter is None:
        raise GatingTemplateError(
            f"gate '{gate['name']}': method 'beads' needs a max on its first (scatter) dimension"
        )
    search = METHODS["beads"].params(params, where=where)["search"]
    est = BeadGate(
        search=(0.0, 1.0),
        max_scatter=float(fitting.scale(scatter, [max_scatter])[0]),
        random_state=fitting.seed,
    )
    cols = [fitting.parent(scatter)]
    thresholds = []
    for dim in fluor:
        est.search = tuple(float(v) for v in fitting.scale(dim, search))
        est.fit(np.column_stack([*cols, fitting.parent(dim)]))
        thresholds.append(float(fitting.unscale(dim, [est.thresholds_[0]])[0]))
        record["flags"].extend(
            {"flag": f.flag, "reason": f"{dim}: {f.text(lambda v, d=dim: fitting.unscale(d, v))}"}
            for f in est.flags_
        )
    for dim, value in zip(fluor, thresholds, strict=True):
        spec["dimensions"][dim] = {**spec["dimensions"][dim], "min": value}
    record["fits"].append({"dimensions": fluor, "thresholds": thresholds})


def fit_gate(
    gate: Mapping[str, Any],
    *,
    values: Callable[[str, np.ndarray], np.ndarray],
    mask: np.ndarray,
    scale: Callable[[str, Any], np.ndarray],
    unscale: Callable[[str, Any], np.ndarray],
    random_state: int = 0,
    fixed: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit a data-driven template gate on the parent's events.

    Parameters
    ----------
    gate : mapping
        The template gate (``method`` other than ``static``).
    values : callable
        Dimension name → transformed values of all events.
    mask : numpy.ndarray
        Boolean parent membership over all events.
    scale, unscale : callable
        ``(dim, data-unit values) → transformed`` and its inverse, vectorised.
    random_state : int
        Seed of subsamples and mixtures.
    fixed : mapping, optional
        Quadrant gates: dividers given, not fitted (``{"x": {"at": 2000}}``, data
        units; :mod:`cikflow.review`); the other divider is fitted with them.

    Returns
    -------
    spec : dict
        The gate with fitted coordinates (data units), method ``static``.
    record : dict
        What was fitted: method, thresholds or vertices, events, flags.
    """
    where = f"gate '{gate['name']}'"
    method = get_method(gate["method"], kind=gate["type"], where=where).name
    params = dict(gate.get("params", {}))
    spec = copy.deepcopy(dict(gate))
    spec["method"] = "static"
    spec.pop("params", None)
    record: dict[str, Any] = {"gate": gate["name"], "method": method, "fits": [], "flags": []}
    fitting = _Fitting(values=values, mask=mask, scale=scale, unscale=unscale, seed=random_state)
    if method in THRESHOLD_METHODS:
        _fit_range(gate, spec, record, method=method, params=params, fitting=fitting)
    elif method == "quadrant":
        fits = _fit_quadrant(gate, fitting=fitting, fixed=fixed)
        for axis, dim, at in (("x", *fits[0]), ("y", *fits[1])):
            spec[axis] = {"dimension": dim, "at": at}
        if isinstance(spec["y"]["at"], dict):
            spec["y"]["per_side"] = True
        if gate["x"].get("notch") is True:  # where it was found, or none (false)
            ydim = gate["y"]["dimension"]
            within = (f"{gate['x']['dimension']}-{ydim}+", f"{ydim}+")  # below x, above
            notch = [f["threshold"] for f in fits[2] if f.get("within") in within]
            # a reviewer's set x has the notch they set with it, if any
            found = dict(fixed["x"]).get("notch", False) if "x" in (fixed or {}) else None
            spec["x"]["notch"] = found if found is not None else (notch[0] if notch else False)
        elif gate["x"].get("notch") is not None:  # false, or placed: as the template's,
            spec["x"]["notch"] = gate["x"]["notch"]  # so that its gates keep their types
        record["fits"].extend(fits[2])
    elif method in ("blob", "singlets"):
        _fit_shape(gate, spec, record, method=method, params=params, fitting=fitting)
    elif method == "beads":
        _fit_beads(gate, spec, record, params=params, fitting=fitting)
    else:
        raise GatingTemplateError(f"gate '{gate['name']}': unknown method '{method}'")
    for fit in record["fits"]:
        record["flags"].extend(fit.pop("flags", []))
    return spec, record
