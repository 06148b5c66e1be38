"""Phenotype labels of clusters: the template's gates applied to cluster medians.

Thresholds are the sample's own (:func:`resolve_dividers`): a data-driven gate's
fitted threshold, else one fitted on the cluster-derived parent, else the static
coordinate.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.clustering.model import _DECADES, _check_values
from cikflow.exceptions import ConfigError
from cikflow.gating.model import Gate, from_spec, identity_scale
from cikflow.gating.template import make_transform, transform_name

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from cikflow.gating.apply import GatingOutcome
    from cikflow.gating.template import Template

__all__ = [
    "DIVIDER_COLUMNS",
    "ClusterLabels",
    "Divider",
    "label_clusters",
    "resolve_dividers",
    "tree_populations",
]

#: thresholds the cluster labels used (``dividers`` in ``clusters.json``)
DIVIDER_COLUMNS = ["gate", "dimension", "value", "transformed", "source"]


_MIN_SPLIT_EVENTS = 20


@dataclass(frozen=True)
class Divider:
    """One threshold the cluster labels are decided against.

    Attributes
    ----------
    gate : str
        Template gate (a quadrant gate for its two dividers).
    dimension : str
        Marker.
    transformed : float
        The threshold in the marker's transformed units.
    value : float
        The same threshold in data units.
    source : str
        ``gate fit`` (the sample's data-driven gate), ``cluster fit`` (fitted by
        the clustering for a static gate), ``template`` (the static coordinate)
        or ``batch median`` (median over a batch's samples).
    """

    gate: str
    dimension: str
    transformed: float
    value: float
    source: str


def _descendants(
    template: Template, *, scale: Callable[[str, Any], np.ndarray] | None = None
) -> list[Gate]:
    """The template's gates below its base, in template order (parents first).

    Coordinates in the clustering's transformed units (:func:`_scale`), or in
    ``scale`` when given.
    """
    base = template.base
    if base is None:
        raise ConfigError(f"template '{template.name}' has no base gate to cluster")
    scale = scale or _scale(template)
    below: set[str] = {base}
    out = []
    for spec in template.spec["gates"]:
        if spec["parent"] in below:
            gate = from_spec(spec, scale=scale)
            out.append(gate)
            below.add(gate.name)
            below.update(pop for pop, _ in gate.populations())
    return out


def tree_populations(template: Template) -> dict[str, str]:
    """Reported populations whose gates lie below the template's base (population → gate).

    These are the populations a cluster-based value is given for.
    """
    names: set[str] = set()
    for gate in _descendants(template):
        names.add(gate.name)
        names.update(pop for pop, _ in gate.populations())
    return {pop: g for pop, g in template.populations.items() if g in names}


def _scale(template: Template) -> Callable[[str, Any], np.ndarray]:
    """Data units → the clustering's transformed units, per dimension (vectorised)."""

    def scale(dim: str, values: Any) -> np.ndarray:
        fwd, _ = _transformer(template, dim)
        return np.array([fwd(float(v)) for v in np.asarray(values, dtype=float).ravel()])

    return scale


def _transformer(template: Template, dim: str) -> tuple[Any, Any]:
    xform = make_transform(template.spec["transforms"][transform_name(template.spec, dim)])

    def fwd(v: float) -> float:
        if xform is None:
            return float(np.log10(max(v, 1.0)) / _DECADES)
        return float(xform.apply(np.array([[v]], dtype=float))[0, 0])

    def inv(t: float) -> float:
        if xform is None:
            return float(10 ** (t * _DECADES))
        return float(xform.inverse(np.array([[t]], dtype=float))[0, 0])

    return fwd, inv


def _split_threshold(x: np.ndarray, *, start: float, random_state: int) -> tuple[float | None, str]:
    """Two-class split of 1-D values near ``start``: Ridler–Calvard, then the valley.

    Returns the threshold (transformed units) or None when the values show no
    valley between the two class means, with a reason.
    """
    from cikflow.gating.methods import ValleyThreshold

    x = x[np.isfinite(x)]
    if len(x) < 2 * _MIN_SPLIT_EVENTS:
        return None, f"{len(x)} events"
    t = float(start)
    lo_mean = hi_mean = t
    for _ in range(100):
        lo, hi = x[x < t], x[x >= t]
        if len(lo) < _MIN_SPLIT_EVENTS or len(hi) < _MIN_SPLIT_EVENTS:
            # the start lies beyond the data: begin again from the median
            if t != float(np.median(x)):
                t = float(np.median(x))
                continue
            return None, "one class empty"
        lo_mean, hi_mean = float(lo.mean()), float(hi.mean())
        new = (lo_mean + hi_mean) / 2
        if abs(new - t) < 1e-6:
            break
        t = new
    est = ValleyThreshold(
        search=(lo_mean, hi_mean), fallback="lower", random_state=random_state
    ).fit(x)
    if {f.flag for f in est.flags_} & {"no_valley", "low_events"}:
        return None, "no valley between the two class means"
    return float(est.threshold_), ""


def resolve_dividers(
    template: Template,
    *,
    outcome: GatingOutcome | None = None,
    overrides: Mapping[tuple[str, str], float] | None = None,
) -> dict[tuple[str, str], Divider]:
    """Thresholds of the gates below the base that need no data of the clustering.

    Data-driven gates take the sample's fitted thresholds (from ``outcome``)
    unless the fit flagged that dimension (``no_valley``, ``at_bound`` …);
    ``overrides`` (transformed units) replace any threshold; every other
    threshold is left out, to be fitted by :func:`label_clusters` (static gates)
    or to fall back to the template's coordinate.

    Parameters
    ----------
    template : Template
        The YAML template.
    outcome : GatingOutcome, optional
        The sample's gating, whose infos hold the fitted geometry.
    overrides : mapping, optional
        ``(gate, dimension) → threshold`` in transformed units (e.g. a batch's
        median thresholds, :func:`median_dividers`).

    Returns
    -------
    dict
        ``(gate, dimension) → Divider``.
    """
    infos = {i.name: i for i in (outcome.infos if outcome is not None else [])}
    out: dict[tuple[str, str], Divider] = {}
    for gate in _descendants(template):
        name = gate.name
        info = infos.get(name)
        fitted = info is not None and info.method != "static" and bool(info.fit)
        applied = {t.key: t.value for t in info.gate.thresholds()} if fitted else {}
        for threshold in gate.thresholds():
            label = threshold.key  # the dimension, or "CD56 within CD3+" for a subset's own
            key = (name, label)
            transformed = applied.get(label)
            _, inv = _transformer(template, threshold.dimension)
            # a fit that says it is unsure (no valley, at its bound …) lends no threshold
            unsure = fitted and any(
                str(f.get("reason", "")).startswith(f"{label}: ") for f in info.fit.get("flags", [])
            )
            if overrides and key in overrides:
                t = float(overrides[key])
                out[key] = Divider(name, label, t, inv(t), "batch median")
            elif fitted and transformed is not None and not unsure:
                out[key] = Divider(name, label, transformed, inv(transformed), "gate fit")
    return out


@dataclass(frozen=True)
class ClusterLabels:
    """Phenotype of each cluster and the clusters each gate below the base holds.

    Attributes
    ----------
    phenotypes : list of str
        One per cluster: the deepest reported population holding its median,
        or ``other``.
    gates : dict of str to numpy.ndarray
        Gate (and quadrant) name → boolean over clusters.
    dividers : list of Divider
        The thresholds used.
    """

    phenotypes: list[str]
    gates: dict[str, np.ndarray]
    dividers: list[Divider] = field(default_factory=list)


def label_clusters(
    values: np.ndarray,
    labels: np.ndarray,
    *,
    template: Template,
    markers: Sequence[str],
    dividers: Mapping[tuple[str, str], Divider] | None = None,
    random_state: int = 0,
) -> ClusterLabels:
    """Name every cluster by its median marker vector and the template's gates.

    Gates below the template's base are applied to the clusters' medians,
    parents first. A threshold missing from ``dividers`` (a static gate) is
    fitted on the cluster-derived parent's events: the iterative two-class
    mean split started at the static coordinate (Ridler & Calvard, IEEE SMC
    8:630, 1978), moved to the density valley between the two class means; the
    static coordinate is kept when there is no valley.

    Parameters
    ----------
    values : numpy.ndarray
        Transformed markers of the clustered events (n_events × len(markers)).
    labels : numpy.ndarray
        Cluster index of every event.
    template : Template
        The YAML template.
    markers : sequence of str
        The columns of ``values``; must hold every dimension of every gate
        below the base.
    dividers : mapping, optional
        Known thresholds (:func:`resolve_dividers`).
    random_state : int
        Seed of the valley fits' subsamples.

    Returns
    -------
    ClusterLabels

    Raises
    ------
    ConfigError
        A gate below the base uses a dimension that is not clustered.
    """
    x = _check_values(values, n_features=len(markers))
    labels = np.asarray(labels)
    n_clusters = int(labels.max()) + 1 if len(labels) else 0
    col = {m: j for j, m in enumerate(markers)}
    medians = _cluster_medians(x, labels, n_clusters)
    known = dict(dividers or {})
    used: list[Divider] = []
    member: dict[str, np.ndarray] = {}
    base = template.base
    all_clusters = np.ones(n_clusters, dtype=bool)
    gates = _descendants(template)
    statics = {g.name: g for g in _descendants(template, scale=identity_scale)}
    at = {m: medians[:, j] for m, j in col.items()}
    for gate in gates:
        absent = [d for d in gate.dims if d not in col]
        if absent:
            raise ConfigError(
                f"clustering.markers lack {absent}, used by gate '{gate.name}' "
                f"below the base of template '{template.name}'"
            )
        parent = all_clusters if gate.parent == base else member[gate.parent]
        thresholds: dict[str, float] = {}
        static = {t.key: t.value for t in statics[gate.name].thresholds()}
        for threshold in gate.thresholds():
            dim, label = threshold.dimension, threshold.key
            key = (gate.name, label)
            if key not in known:
                # a subset's own divider is fitted within that subset, as placed so far
                within = gate.with_thresholds(thresholds).subset(threshold, at, parent=parent)
                known[key] = _fit_divider(
                    gate.name,
                    dim,
                    template=template,
                    static=float(static[label]),
                    start=float(threshold.value),
                    x=x[:, col[dim]],
                    labels=labels,
                    parent=within,
                    random_state=random_state,
                )
                known[key] = replace(known[key], dimension=label)
            used.append(known[key])
            thresholds[label] = known[key].transformed
        placed = gate.with_thresholds(thresholds)
        member.update(placed.members(at, parent=parent, populations=member))
    phenotypes = _phenotypes(template, gates=gates, member=member, n_clusters=n_clusters)
    seen: dict[tuple[str, str], Divider] = {(d.gate, d.dimension): d for d in used}
    return ClusterLabels(phenotypes=phenotypes, gates=member, dividers=list(seen.values()))


def _phenotypes(
    template: Template, *, gates: Sequence[Gate], member: Mapping[str, np.ndarray], n_clusters: int
) -> list[str]:
    """Every cluster's phenotype: the deepest reported population (non-boolean gate) holding it."""
    base = template.base
    reported = {g: p for p, g in template.populations.items()}
    order: list[str] = []
    parents: dict[str, str] = {}
    for g in gates:
        parents[g.name] = g.parent
        for pop, _ in g.populations():
            if pop != g.name:
                parents[pop] = g.name
        if g.counts_on_parent:
            order += [g.name, *(p for p, _ in g.populations() if p != g.name)]
    depth: dict[str, int] = {}
    for name in order:
        p = parents[name]
        depth[name] = 0 if p == base else depth.get(p, 0) + 1
    phenotypes = []
    for c in range(n_clusters):
        best, best_depth = "other", -1
        for name in order:
            if name in reported and member[name][c] and depth[name] > best_depth:
                best, best_depth = reported[name], depth[name]
        phenotypes.append(best)
    return phenotypes


def _fit_divider(
    gate: str,
    dim: str,
    *,
    template: Template,
    static: float,
    start: float,
    x: np.ndarray,
    labels: np.ndarray,
    parent: np.ndarray,
    random_state: int,
) -> Divider:
    """Fit a static gate's threshold on the clusters' parent (``start``: its transformed value)."""
    _, inv = _transformer(template, dim)
    events = x[parent[labels]] if len(labels) else x[:0]
    fitted, _ = _split_threshold(events, start=start, random_state=random_state)
    if fitted is None:
        return Divider(gate, dim, start, static, "template")
    return Divider(gate, dim, fitted, inv(fitted), "cluster fit")


def _cluster_medians(x: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Median of every column per cluster (NaN for an empty cluster)."""
    out = np.full((n_clusters, x.shape[1]), np.nan)
    if len(labels) == 0:
        return out
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_clusters + 1))
    for c in range(n_clusters):
        rows = order[bounds[c] : bounds[c + 1]]
        if len(rows):
            out[c] = np.median(x[rows], axis=0)
    return out
