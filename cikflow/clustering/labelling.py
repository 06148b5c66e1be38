"""Phenotype labels of clusters: the template's gates applied to cluster medians.

The thresholds are the clusters' own: per marker, the weighted two-class split
of the parent clusters' medians (:func:`median_divider`), within each subset
where the template splits per subset; never a gate's fitted threshold, so that
the clusters are a second opinion independent of the gates. A batch's median
thresholds may be given instead (:func:`resolve_dividers`).

Where the template stops a divider at a smear's edge (``negative_edge``: the CD3
divider, below the CD3-dim T cells), the clusters' divider goes no higher than the
count-balanced edge (:func:`cikflow.gating.edges.balanced_edge`) of the clusters'
own events: without it the gap between cluster medians lies in the smear, and the
clusters the smear shares with the negatives' upper edge are named negative whole
(cluster T 2.5 points below the truth on ``realistic`` day-0 and day-7 tubes, against
0.3 for the gates). That divider is then placed by the same model as the gate's, on
the same events; what stays independent is which clusters fall on each side of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.clustering.model import _DECADES, _check_values
from cikflow.exceptions import ConfigError
from cikflow.gating.methods import ValleyThreshold
from cikflow.gating.model import Gate, from_spec, identity_scale
from cikflow.gating.template import make_transform, transform_name

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from cikflow.gating.template import Template

__all__ = [
    "DIVIDER_COLUMNS",
    "ClusterLabels",
    "Divider",
    "label_clusters",
    "median_divider",
    "resolve_dividers",
    "tree_populations",
]

#: thresholds the cluster labels used (``dividers`` in ``clusters.json``)
DIVIDER_COLUMNS = ["gate", "dimension", "value", "transformed", "source"]


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
        ``cluster medians`` (placed on the cluster medians, :func:`median_divider`),
        ``template`` (the template's coordinate, where the clusters could not be
        split) or ``batch median`` (median over a batch's samples).
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


#: transformed units added to every cluster's spread in the density of :func:`median_divider`
_MIN_SPREAD = 0.02
#: a side of a divider holds at least this share of the parent's events
_MIN_SIDE_SHARE = 0.01
#: a valley whose density exceeds this share of its lower flanking peak is no valley
_NO_VALLEY = 0.9
#: width of the bins of the events' density (transformed units)
_BIN = 0.005


def _event_density(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Events per transformed unit at ``at``: binned Gaussian kernel density of ``values``.

    Bandwidth by Silverman's rule (0.9 · min(SD, IQR/1.34) · n^−1/5, at least one bin).
    """
    x = values[np.isfinite(values)]
    if len(x) < 2:
        return np.zeros(len(at))
    q1, q3 = np.quantile(x, [0.25, 0.75])
    h = max(0.9 * min(float(x.std()), float(q3 - q1) / 1.34) * len(x) ** -0.2, _BIN)
    lo, hi = float(min(x.min(), at.min())) - 4 * h, float(max(x.max(), at.max())) + 4 * h
    edges = np.arange(lo, hi + _BIN, _BIN)
    counts, _ = np.histogram(x, bins=edges)
    offsets = np.arange(-int(4 * h / _BIN) - 1, int(4 * h / _BIN) + 2) * _BIN
    kernel = np.exp(-(offsets**2) / (2 * h * h))
    smooth = np.convolve(counts, kernel / (kernel.sum() * _BIN), mode="same")
    return np.interp(at, (edges[:-1] + edges[1:]) / 2, smooth)


def _cluster_density(m: np.ndarray, w: np.ndarray, var: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Events per transformed unit at ``at``: every cluster a Gaussian of its events."""
    z = (at[None, :] - m[:, None]) ** 2 / (2 * var[:, None])
    return (w[:, None] / np.sqrt(2 * np.pi * var[:, None]) * np.exp(-z)).sum(axis=0)


def _minimum_error(m: np.ndarray, w: np.ndarray, sd: np.ndarray, splits: list[int]) -> int:
    """The split of lowest Kittler–Illingworth criterion (``P0 ln σ0 + P1 ln σ1 − Σ P ln P``)."""
    best, k_best = np.inf, splits[0]
    for k in splits:
        crit = 0.0
        for side in (slice(0, k), slice(k, None)):
            ws, ms, ss = w[side], m[side], sd[side]
            p = ws.sum() / w.sum()
            mu = float((ws * ms).sum() / ws.sum())
            var = float((ws * (ss**2 + (ms - mu) ** 2)).sum() / ws.sum())
            crit += p * 0.5 * np.log(max(var, 1e-12)) - p * np.log(p)
        if crit < best:
            best, k_best = crit, k
    return k_best


def median_divider(
    medians: np.ndarray,
    *,
    weights: np.ndarray,
    spreads: np.ndarray | None = None,
    search: tuple[float, float] | None = None,
    values: np.ndarray | None = None,
) -> float | None:
    """Divider between two classes of clusters, from their medians, sizes and spreads.

    The density of the parent's events (``values``; without them, each cluster
    pictured as a Gaussian of its events around its median with its spread, at
    least 0.02 transformed units) is read at the gaps between the clusters.
    Each gap between adjacent sorted medians that leaves at least 1 % of the
    events on either side, and whose midpoint lies in ``search`` (the
    template's allowed range), is a candidate; the divider
    is the midpoint of the gap whose density is lowest relative to the lower of
    the density's peaks on its two sides (the deepest valley). Where no gap
    dips below 0.9 of that peak (a smear, no valley), the gap of lowest
    minimum-error criterion is taken instead (Kittler & Illingworth, Pattern
    Recognit. 19:41, 1986: ``J = Σ P ln σ − Σ P ln P`` over the two sides, ``P``
    a side's share of events and ``σ²`` its variance). No gate threshold is
    used, and no random start: the same clusters give the same divider.

    Parameters
    ----------
    medians : numpy.ndarray
        One marker's cluster medians (transformed units); NaN is left out.
    weights : numpy.ndarray
        Events per cluster (same length).
    spreads : numpy.ndarray, optional
        Each cluster's standard deviation in the marker (transformed units);
        0 when not given.
    search : tuple of float, optional
        The range a divider may take (transformed units; the template's
        ``search``): a gap outside it is no candidate.
    values : numpy.ndarray, optional
        The parent clusters' events in the marker (transformed units): the
        density is then theirs (binned Gaussian kernel, Silverman's bandwidth)
        instead of the clusters' Gaussians.

    Returns
    -------
    float or None
        The divider (transformed units), or None without a candidate gap.

    Examples
    --------
    Two classes, the divider midway across the gap between them:

    >>> m, w = np.array([0.7, 0.1, 0.2, 0.6]), np.array([10, 10, 10, 10])
    >>> median_divider(m, weights=w, spreads=np.full(4, 0.05))
    0.4
    """
    m = np.asarray(medians, dtype=float)
    w = np.asarray(weights, dtype=float)
    sd = np.zeros_like(m) if spreads is None else np.asarray(spreads, dtype=float)
    keep = np.isfinite(m) & (w > 0)
    m, w, sd = m[keep], w[keep], np.nan_to_num(sd[keep])
    order = np.argsort(m, kind="stable")
    m, w, sd = m[order], w[order], sd[order]
    share = np.cumsum(w) / w.sum() if len(w) else w
    splits = [
        k
        for k in range(1, len(m))
        if m[k] > m[k - 1] and _MIN_SIDE_SHARE <= share[k - 1] <= 1 - _MIN_SIDE_SHARE
    ]
    if search is not None:
        # the template's range: a gap outside it splits other populations (NK cells'
        # CD56-dim from CD56-bright clusters where the CD3− cells hold few CD56−
        # ones by day 21), not the two this divider is for
        lo, hi = min(search), max(search)
        splits = [k for k in splits if lo <= (m[k - 1] + m[k]) / 2 <= hi]
    if not splits:
        return None
    grid = np.linspace(m[0], m[-1], 401)
    mids = np.array([(m[k - 1] + m[k]) / 2 for k in splits])
    if values is not None and len(values):
        density, at_mids = _event_density(np.asarray(values, dtype=float), np.r_[grid, mids]), None
        density, at_mids = density[: len(grid)], density[len(grid) :]
    else:
        var = sd**2 + _MIN_SPREAD**2
        density = _cluster_density(m, w, var, grid)
        at_mids = _cluster_density(m, w, var, mids)
    best, k_best = np.inf, -1
    for k, mid, at in zip(splits, mids, at_mids, strict=True):
        peaks = (density[grid <= mid].max(initial=0.0), density[grid >= mid].max(initial=0.0))
        ratio = at / min(peaks) if min(peaks) > 0 else np.inf
        if ratio < best:
            best, k_best = ratio, k
    if best > _NO_VALLEY:
        k_best = _minimum_error(m, w, sd, splits)
    return round(float((m[k_best - 1] + m[k_best]) / 2), 12)


def resolve_dividers(
    template: Template,
    *,
    overrides: Mapping[tuple[str, str], float] | None = None,
) -> dict[tuple[str, str], Divider]:
    """Thresholds of the gates below the base given from outside the clustering.

    Only ``overrides`` (transformed units, e.g. a batch's median thresholds)
    are given; a gate's fitted threshold never is, so that the cluster labels
    stay independent of the gates. Every other threshold is left out, to be
    placed by :func:`label_clusters` on the cluster medians.

    Parameters
    ----------
    template : Template
        The YAML template.
    overrides : mapping, optional
        ``(gate, dimension) → threshold`` in transformed units (e.g. a batch's
        median thresholds, :func:`median_dividers`).

    Returns
    -------
    dict
        ``(gate, dimension) → Divider`` (source ``batch median``).
    """
    out: dict[tuple[str, str], Divider] = {}
    for gate in _descendants(template):
        for threshold in gate.thresholds():
            key = (gate.name, threshold.key)  # "CD56 within CD3+" for a subset's own
            if overrides and key in overrides:
                _, inv = _transformer(template, threshold.dimension)
                t = float(overrides[key])
                out[key] = Divider(gate.name, threshold.key, t, inv(t), "batch median")
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
    parents first. A threshold missing from ``dividers`` is placed by
    :func:`median_divider` on the medians of the cluster-derived parent's
    clusters (for a subset's own divider, of that subset's clusters), weighted
    by their events; the template's coordinate is kept when the parent's
    clusters cannot be split. No gate's fitted threshold is used.

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
        Kept for callers; the dividers are deterministic.

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
    sizes = np.bincount(labels, minlength=n_clusters) if len(labels) else np.zeros(0, int)
    spreads = _cluster_spreads(x, labels, n_clusters)
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
                    # a notch the template leaves unplaced sits at its x divider: none
                    static=float(static[label] if label in static else static[dim]),
                    start=float(threshold.value),
                    medians=medians[:, col[dim]],
                    weights=sizes,
                    spreads=spreads[:, col[dim]],
                    parent=within,
                    x=x[:, col[dim]],
                    labels=labels,
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
    medians: np.ndarray,
    weights: np.ndarray,
    spreads: np.ndarray,
    parent: np.ndarray,
    x: np.ndarray,
    labels: np.ndarray,
) -> Divider:
    """A threshold from the parent clusters' medians and events (:func:`median_divider`).

    ``static``/``start``: the template's coordinate (data / transformed units),
    kept when the parent's clusters cannot be split; ``x``: the marker's values
    of every event, ``labels`` their clusters.
    """
    _, inv = _transformer(template, dim)
    search = _search_range(template, gate=gate, dim=dim)
    values = x[parent[labels]] if len(labels) else x[:0]
    fitted = median_divider(
        medians[parent],
        weights=weights[parent],
        spreads=spreads[parent],
        search=search,
        values=values,
    )
    if fitted is None:
        return Divider(gate, dim, start, static, "template")
    if search is not None and _negative_edge(template, gate=gate, dim=dim):
        # a smear of positives down into the negatives (CD3-dim T cells): the gap
        # between cluster medians lies in it, and the clusters the smear shares with
        # the negatives' upper edge would go negative whole; like the gate's, the
        # clusters' divider goes no higher than the count-balanced edge of their events
        # where there is no valley, the edge is found below the template's own fallback,
        # as the gate's is: below the search range's upper bound, on the positives' flank
        # by day 21, the negatives' small peak is no mode and there is no edge at all
        # (the clusters' CD3 divider stayed at the gap between medians, 2,400–2,600, in
        # the CD3-dim T cells: cluster T 4–6 points below the gate on realistic day 21)
        fallback = _numeric_fallback(template, gate=gate, dim=dim)
        edge = ValleyThreshold(
            search=(min(search), max(search)),
            fallback="upper" if fallback is None else fallback,
            negative_edge=True,
        ).fit(values)
        fitted = min(fitted, float(edge.threshold_))
    return Divider(gate, dim, fitted, inv(fitted), "cluster medians")


def _negative_edge(template: Template, *, gate: str, dim: str) -> bool:
    """Whether the template stops a gate's divider on ``dim`` at the smear's edge."""
    spec = next((g for g in template.spec["gates"] if g["name"] == gate), {})
    if (spec.get("params") or {}).get("negative_edge"):
        return True
    return any(
        isinstance(part, dict) and part.get("dimension") == dim and part.get("negative_edge")
        for part in (spec.get("x"), spec.get("y"))
    )


def _divider_param(template: Template, *, gate: str, dim: str, name: str) -> Any:
    """A parameter of a gate's divider on ``dim`` as the template writes it, or None."""
    spec = next((g for g in template.spec["gates"] if g["name"] == gate), {})
    found = (spec.get("params") or {}).get(name)
    for axis in ("x", "y"):
        part = spec.get(axis)
        if isinstance(part, dict) and part.get("dimension") == dim and part.get(name) is not None:
            found = part[name]
    return found


def _numeric_fallback(template: Template, *, gate: str, dim: str) -> float | None:
    """The template's numeric ``fallback`` of a gate's divider on ``dim`` (transformed units)."""
    found = _divider_param(template, gate=gate, dim=dim, name="fallback")
    if not isinstance(found, int | float) or isinstance(found, bool):
        return None
    fwd, _ = _transformer(template, dim)
    return fwd(float(found))


def _search_range(template: Template, *, gate: str, dim: str) -> tuple[float, float] | None:
    """The template's ``search`` range of a gate's divider on ``dim`` (transformed units)."""
    found = _divider_param(template, gate=gate, dim=dim, name="search")
    if not isinstance(found, (list, tuple)) or len(found) != 2:
        return None
    if any(v is None or isinstance(v, (dict, list)) for v in found):
        return None
    fwd, _ = _transformer(template, dim)
    return fwd(float(found[0])), fwd(float(found[1]))


def _cluster_spreads(x: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Standard deviation of every column per cluster (0 for an empty cluster)."""
    out = np.zeros((n_clusters, x.shape[1]))
    if len(labels) == 0:
        return out
    counts = np.bincount(labels, minlength=n_clusters).astype(float)
    for j in range(x.shape[1]):
        total = np.bincount(labels, weights=x[:, j], minlength=n_clusters)
        square = np.bincount(labels, weights=x[:, j] ** 2, minlength=n_clusters)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / counts
            out[:, j] = np.sqrt(np.clip(square / counts - mean**2, 0.0, None))
    return np.nan_to_num(out)


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
