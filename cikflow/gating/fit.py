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
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.exceptions import GatingTemplateError
from cikflow.gating.methods import BeadGate
from cikflow.gating.registry import (
    METHODS,
    blob_estimator,
    get_method,
    singlet_estimator,
    threshold_estimator,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["THRESHOLD_METHODS", "fit_gate"]

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
    name = p.pop("method", "valley")
    est = threshold_estimator(name, p, where=where, random_state=random_state).fit(values)
    value = float(unscale(dim, [est.threshold_])[0])
    record = {
        "dimension": dim,
        "method": est.method_,
        "threshold": value,
        "threshold_transformed": est.threshold_,
        "search": p.get("search") and list(params["search"]),
        "events": int(est.n_events_),
        "flags": [{"flag": f.flag, "reason": f"{dim}: {f.reason}"} for f in est.flags_],
    }
    return float(value), record


def fit_gate(
    gate: Mapping[str, Any],
    *,
    values: Callable[[str, np.ndarray], np.ndarray],
    mask: np.ndarray,
    scale: Callable[[str, Any], np.ndarray],
    unscale: Callable[[str, Any], np.ndarray],
    random_state: int = 0,
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

    def parent(dim: str) -> np.ndarray:
        return values(dim, mask)

    if method in THRESHOLD_METHODS:
        if len(gate["dimensions"]) != 1:
            raise GatingTemplateError(f"{where}: method '{method}' needs a gate on one dimension")
        ((dim, bounds),) = gate["dimensions"].items()
        side = params.pop("bound", None) or ("min" if bounds.get("min") is not None else "max")
        value, fit = _threshold(
            parent(dim),
            {**params, "method": method},
            dim=dim,
            scale=scale,
            unscale=unscale,
            random_state=random_state,
            where=where,
        )
        spec["dimensions"] = {dim: {**bounds, side: value}}
        record["fits"].append(fit)
    elif method == "quadrant":
        for axis in ("x", "y"):
            divider = gate[axis]
            dim = divider["dimension"]
            p = {k: v for k, v in divider.items() if k not in ("dimension", "at")}
            p.setdefault("method", "valley")
            value, fit = _threshold(
                parent(dim),
                p,
                dim=dim,
                scale=scale,
                unscale=unscale,
                random_state=random_state,
                where=f"{where} divider '{axis}'",
            )
            spec[axis] = {"dimension": dim, "at": value}
            record["fits"].append(fit)
    elif method in ("blob", "singlets"):
        xdim, ydim = gate["dimensions"]
        xy = np.column_stack([parent(xdim), parent(ydim)])
        if method == "blob":
            # fitted in data units (by default on log10 of linear scatter)
            est = blob_estimator(params, linear=True, where=where, random_state=random_state)
            est.fit(np.column_stack([unscale(xdim, xy[:, 0]), unscale(ydim, xy[:, 1])]))
        else:
            est = singlet_estimator(params, where=where)
            est.fit(np.column_stack([unscale(xdim, xy[:, 0]), unscale(ydim, xy[:, 1])]))
            record["ratio"] = getattr(est, "ratio_", None)
            record["band"] = list(getattr(est, "band_", ()))
        if est.vertices_:
            spec["vertices"] = [list(v) for v in est.vertices_]
        record["fits"].append({"dimensions": [xdim, ydim], "vertices": spec["vertices"]})
        record["flags"].extend({"flag": f.flag, "reason": f.reason} for f in est.flags_)
    elif method == "beads":
        dims = list(gate["dimensions"])
        scatter, fluor = dims[0], dims[1:]
        max_scatter = gate["dimensions"][scatter].get("max")
        if max_scatter is None:
            raise GatingTemplateError(
                f"gate '{gate['name']}': method 'beads' needs a max on its first "
                "(scatter) dimension"
            )
        search = METHODS["beads"].params(params, where=where)["search"]
        est = BeadGate(
            search=(0.0, 1.0),
            max_scatter=float(scale(scatter, [max_scatter])[0]),
            random_state=random_state,
        )
        cols = [parent(scatter)]
        thresholds = []
        for dim in fluor:
            est.search = tuple(float(v) for v in scale(dim, search))
            est.fit(np.column_stack([*cols, parent(dim)]))
            thresholds.append(float(unscale(dim, [est.thresholds_[0]])[0]))
            record["flags"].extend(
                {"flag": f.flag, "reason": f"{dim}: {f.reason}"} for f in est.flags_
            )
        for dim, value in zip(fluor, thresholds, strict=True):
            spec["dimensions"][dim] = {**spec["dimensions"][dim], "min": value}
        record["fits"].append({"dimensions": fluor, "thresholds": thresholds})
    else:
        raise GatingTemplateError(f"gate '{gate['name']}': unknown method '{method}'")
    for fit in record["fits"]:
        record["flags"].extend(fit.pop("flags", []))
    return spec, record
