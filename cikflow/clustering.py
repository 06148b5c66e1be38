"""Clustering of the base population, phenotype labels, and the gate-vs-cluster check.

An automated gate is trusted more when an independent method agrees with it. This
module clusters the template's base population (viable lymphocytes in the default
template) on transformed markers (CD3, CD16, CD56 by default) and names each cluster
by its phenotype, so that every reported population below the base has a second,
cluster-based value beside the gate-based one.

Method
------
1. **Over-clustering.** :class:`ClusterModel` fits k-means (scikit-learn
   :class:`~sklearn.cluster.KMeans`, k-means++ initialisation, ``n_init`` restarts)
   with more clusters than populations (default 25) on a seeded subsample of at
   most ``max_events`` events, then assigns every event to its nearest centroid.
   Lloyd's algorithm on a random subsample estimates the same centroids as on all
   events (they are means of the same distributions), at a fraction of the cost.
2. **Phenotype labels.** The template's gates below the base are applied to each
   cluster's *median* marker vector (transformed units), parents first, with the
   sample's own thresholds (:func:`resolve_dividers`): the fitted threshold of a
   data-driven gate; for a static gate, a threshold the clustering fits itself on
   the cluster-derived parent (iterative two-class mean split, Ridler & Calvard
   1978, refined to the density valley between the two class means), because a
   static coordinate is what the check should be able to contradict; the static
   coordinate only where the parent shows no valley. A cluster's phenotype is the
   deepest reported population whose gate holds its median (``other`` if none).
3. **Cluster-based populations.** A population's cluster-based members are the
   events of the clusters its gate holds. :func:`concordance` compares them with
   the gate-based members: percent of base, the difference in percentage points,
   and the per-event F1 of the two labelings; a difference above ``margin_pp``
   is the ``gate_cluster_discordant`` flag.
4. **Per batch** (:func:`balanced_pool`, :func:`drift_table`): one reference
   model fitted on an equal share of every culture day's events, applied to every
   day, so that clusters mean the same thing across the culture. A day's drift
   figure is its mean distance to the nearest centroid of the same model fitted
   on the *other* days, divided by those days' own (1 = typical): a day cannot
   hide its shift in centroids fitted partly on itself.

Markers enter in their template transform (logicle for fluorescence: one unit
spans ``m`` = 4.5 decades); a dimension without a transform (scatter) enters as
``log10(value) / 4.5`` so that a decade weighs the same in every dimension.

Nothing here reads files or draws: arrays and tables in, arrays and tables out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cikflow.exceptions import ConfigError
from cikflow.gating.model import Gate, from_spec, identity_scale
from cikflow.gating.template import make_transform, transform_name

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from cikflow.gating.apply import GatingOutcome
    from cikflow.gating.template import Template

__all__ = [
    "CLUSTERING_DEFAULTS",
    "CLUSTER_COLUMNS",
    "CONCORDANCE_COLUMNS",
    "DIVIDER_COLUMNS",
    "DRIFT_COLUMNS",
    "ClusterLabels",
    "ClusterModel",
    "Divider",
    "GatedClusters",
    "SampleClusters",
    "balanced_pool",
    "cluster_map",
    "cluster_outcome",
    "cluster_sample",
    "concordance",
    "drift_table",
    "label_clusters",
    "marker_values",
    "median_dividers",
    "resolve_dividers",
    "tree_populations",
]

#: defaults of the ``clustering`` config section
CLUSTERING_DEFAULTS: dict[str, Any] = {
    "markers": ["CD3", "CD16", "CD56"],
    "n_clusters": 25,
    "subsample": 50_000,
    "random_state": 0,
    "margin_pp": 2.0,
    "drift_limit": 1.5,
}
#: per-cluster table (``clusters.tsv``); marker medians follow as ``median_<marker>``
CLUSTER_COLUMNS = ["sample", "cluster", "events", "percent_of_base", "phenotype"]
#: per-population concordance of gate and cluster (``concordance.tsv``)
CONCORDANCE_COLUMNS = [
    "population",
    "gate",
    "gate_events",
    "cluster_events",
    "gate_percent_of_base",
    "cluster_percent_of_base",
    "difference_pp",
    "f1",
    "margin_pp",
    "discordant",
]
#: thresholds the cluster labels used (``dividers`` in ``clusters.json``)
DIVIDER_COLUMNS = ["gate", "dimension", "value", "transformed", "source"]
#: per-day drift from the batch reference model (``drift.tsv``)
DRIFT_COLUMNS = [
    "batch",
    "sample",
    "day",
    "events",
    "mean_distance",
    "drift_ratio",
    "drift_limit",
    "drifted",
]

_DECADES = 4.5  # logicle m: decades spanned by one transformed unit
_MIN_SPLIT_EVENTS = 20


class ClusterModel:
    """k-means over-clustering fitted on a seeded subsample, applied to every event.

    Parameters
    ----------
    n_clusters : int
        Number of clusters (more than the populations expected: over-clustering).
    max_events : int
        Fit on a seeded random subsample of at most this many events.
    n_init : int
        k-means++ restarts; the run with the lowest inertia is kept.
    random_state : int
        Seed of the subsample and of k-means.

    Attributes
    ----------
    cluster_centers_ : numpy.ndarray
        float64, shape (n_clusters, n_features), transformed units.
    n_features_in_ : int
        Number of markers.
    n_fit_events_ : int
        Events the centroids were fitted on.
    inertia_ : float
        Sum of squared distances of the fitted events to their centroids.
    mean_distance_ : float
        Mean Euclidean distance of the fitted events to their centroid
        (transformed units): the reference for :func:`drift_table`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.vstack([rng.normal(0, 0.05, (500, 2)), rng.normal(1, 0.05, (500, 2))])
    >>> model = ClusterModel(n_clusters=2, random_state=0).fit(x)
    >>> labels = model.predict(x)
    >>> bool((labels[:500] == labels[0]).all() and (labels[500:] != labels[0]).all())
    True
    """

    def __init__(
        self,
        *,
        n_clusters: int = 25,
        max_events: int = 50_000,
        n_init: int = 3,
        random_state: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.max_events = max_events
        self.n_init = n_init
        self.random_state = random_state

    def fit(self, values: np.ndarray) -> ClusterModel:
        """Fit the centroids on a seeded subsample of ``values`` (n_events × n_markers)."""
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        x = _check_values(values)
        if len(x) > self.max_events:
            rng = np.random.default_rng(self.random_state)
            x = x[np.sort(rng.choice(len(x), size=self.max_events, replace=False))]
        k = min(self.n_clusters, len(x))
        if k < 1:
            raise ConfigError("clustering: no events to cluster")
        # one thread: on a subsample, OpenMP start-up and contention with other jobs cost
        # more than the parallel work saves (10x on a busy 2-core machine)
        with threadpool_limits(limits=1):
            km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
            km.fit(x)
        self.cluster_centers_ = np.asarray(km.cluster_centers_, dtype=float)
        self.n_features_in_ = x.shape[1]
        self.n_fit_events_ = len(x)
        self.inertia_ = float(km.inertia_)
        _, dist = self._nearest(x)
        self.mean_distance_ = float(dist.mean())
        return self

    def _nearest(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from sklearn import config_context
        from sklearn.metrics import pairwise_distances_argmin_min

        if len(x) == 0:
            return np.zeros(0, dtype=np.int32), np.zeros(0)
        # distances in blocks of ≤ 16 MB (scikit-learn's default allows 1 GB: the whole
        # events × clusters matrix of a big file at once); each row's answer is the same
        with config_context(working_memory=16):
            labels, dist = pairwise_distances_argmin_min(x, self.cluster_centers_)
        return labels.astype(np.int32), dist

    def predict(self, values: np.ndarray) -> np.ndarray:
        """Index of the nearest centroid of every event (int32, shape (n_events,))."""
        return self._nearest(_check_values(values, n_features=self.n_features_in_))[0]

    def distance(self, values: np.ndarray) -> np.ndarray:
        """Euclidean distance of every event to its nearest centroid (transformed units)."""
        return self._nearest(_check_values(values, n_features=self.n_features_in_))[1]


def _check_values(values: np.ndarray, *, n_features: int | None = None) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 2:
        raise ConfigError(f"clustering: expected events × markers, got shape {x.shape}")
    if n_features is not None and x.shape[1] != n_features:
        raise ConfigError(f"clustering: model has {n_features} markers, values {x.shape[1]}")
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return x


def marker_values(
    compensated: Any,
    *,
    pnn: Sequence[str],
    channel_map: Mapping[str, str],
    template: Template,
    markers: Sequence[str],
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Transformed marker values of events, as the clustering sees them.

    Parameters
    ----------
    compensated : numpy.ndarray or CompensatedEvents
        Compensated events (n_events × n_channels, file channel order), read as
        ``compensated[rows, j]``.
    pnn : sequence of str
        The file's detector names ($PnN), in channel order.
    channel_map : mapping of str to str
        Template dimension → detector (:attr:`GatingOutcome.channel_map`).
    template : Template
        The YAML template whose transforms apply.
    markers : sequence of str
        Dimensions to return, in order (markers or scatter detectors).
    rows : numpy.ndarray, optional
        bool (n_events,): the events wanted; default all.

    Returns
    -------
    numpy.ndarray
        float64, shape (n_events, len(markers)): each marker in its template
        transform; dimensions without one as ``log10(max(value, 1)) / 4.5``.

    Raises
    ------
    ConfigError
        A marker is not a dimension of the template's panel.
    """
    missing = [m for m in markers if m not in channel_map]
    if missing:
        raise ConfigError(
            f"clustering.markers {missing} are not dimensions of template "
            f"'{template.name}' (it has {sorted(channel_map)})"
        )
    n = len(compensated) if rows is None else int(np.count_nonzero(rows))
    take = slice(None) if rows is None else rows
    out = np.empty((n, len(markers)))
    for j, dim in enumerate(markers):
        raw = np.asarray(compensated[take, list(pnn).index(channel_map[dim])], dtype=float)
        xform = make_transform(template.spec["transforms"][transform_name(template.spec, dim)])
        if xform is None:
            out[:, j] = np.log10(np.maximum(raw, 1.0)) / _DECADES
        else:
            out[:, j] = xform.apply(raw.reshape(-1, 1))[:, 0]
    return out


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
        applied = {t.dimension: t.value for t in info.gate.thresholds()} if fitted else {}
        for threshold in gate.thresholds():
            dim = threshold.dimension
            key = (name, dim)
            transformed = applied.get(dim)
            _, inv = _transformer(template, dim)
            # a fit that says it is unsure (no valley, at its bound …) lends no threshold
            unsure = fitted and any(
                str(f.get("reason", "")).startswith(f"{dim}: ") for f in info.fit.get("flags", [])
            )
            if overrides and key in overrides:
                t = float(overrides[key])
                out[key] = Divider(name, dim, t, inv(t), "batch median")
            elif fitted and transformed is not None and not unsure:
                out[key] = Divider(name, dim, transformed, inv(transformed), "gate fit")
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
        static = {t.dimension: t.value for t in statics[gate.name].thresholds()}
        for threshold in gate.thresholds():
            dim = threshold.dimension
            key = (gate.name, dim)
            if key not in known:
                known[key] = _fit_divider(
                    gate.name,
                    dim,
                    template=template,
                    static=float(static[dim]),
                    start=float(threshold.value),
                    x=x[:, col[dim]],
                    labels=labels,
                    parent=parent,
                    random_state=random_state,
                )
            used.append(known[key])
            thresholds[dim] = known[key].transformed
        placed = gate.with_thresholds(thresholds)
        member.update(placed.members(at, parent=parent, populations=member))
    # phenotype: the deepest reported population (non-boolean gate) holding the cluster
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
    seen: dict[tuple[str, str], Divider] = {(d.gate, d.dimension): d for d in used}
    return ClusterLabels(phenotypes=phenotypes, gates=member, dividers=list(seen.values()))


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


@dataclass(frozen=True)
class SampleClusters:
    """One sample's clustering.

    Attributes
    ----------
    model : ClusterModel
        The fitted over-clustering.
    labels : numpy.ndarray
        int32, cluster of every clustered (base) event.
    phenotypes : list of str
        Phenotype of every cluster.
    members : dict of str to numpy.ndarray
        Reported population → boolean over the clustered events (cluster-based).
    clusters : pandas.DataFrame
        One row per cluster: :data:`CLUSTER_COLUMNS` then ``median_<marker>``
        (transformed units).
    dividers : pandas.DataFrame
        The thresholds the labels used (:data:`DIVIDER_COLUMNS`).
    gates : dict of str to numpy.ndarray
        Every gate below the base → boolean over the clustered events.
    """

    model: ClusterModel
    labels: np.ndarray
    phenotypes: list[str]
    members: dict[str, np.ndarray]
    clusters: pd.DataFrame
    dividers: pd.DataFrame
    gates: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def event_phenotypes(self) -> np.ndarray:
        """Phenotype of every clustered event (object array)."""
        return np.asarray(self.phenotypes, dtype=object)[self.labels]


def cluster_sample(
    values: np.ndarray,
    *,
    template: Template,
    markers: Sequence[str],
    outcome: GatingOutcome | None = None,
    overrides: Mapping[tuple[str, str], float] | None = None,
    n_clusters: int = 25,
    max_events: int = 50_000,
    random_state: int = 0,
    sample: str = "",
) -> SampleClusters:
    """Over-cluster one sample's base events and name the clusters.

    Parameters
    ----------
    values : numpy.ndarray
        Transformed markers of the base population's events
        (:func:`marker_values` of the events in the base gate).
    template : Template
        The YAML template (base, gates, populations, transforms).
    markers : sequence of str
        The columns of ``values``.
    outcome : GatingOutcome, optional
        The sample's gating: data-driven gates lend their fitted thresholds.
    overrides : mapping, optional
        ``(gate, dimension) → threshold`` (transformed units) used instead.
    n_clusters, max_events, random_state : int
        :class:`ClusterModel` settings.
    sample : str
        Sample ID written in the cluster table.

    Returns
    -------
    SampleClusters
    """
    x = _check_values(values, n_features=len(markers))
    model = ClusterModel(n_clusters=n_clusters, max_events=max_events, random_state=random_state)
    model.fit(x)
    labels = model.predict(x)
    named = label_clusters(
        x,
        labels,
        template=template,
        markers=markers,
        dividers=resolve_dividers(template, outcome=outcome, overrides=overrides),
        random_state=random_state,
    )
    members = {pop: named.gates[gate][labels] for pop, gate in tree_populations(template).items()}
    k = len(model.cluster_centers_)
    counts = np.bincount(labels, minlength=k)
    medians = _cluster_medians(x, labels, k)
    table = pd.DataFrame(
        {
            "sample": sample,
            "cluster": np.arange(k),
            "events": counts,
            "percent_of_base": 100.0 * counts / max(len(x), 1),
            "phenotype": named.phenotypes,
            **{f"median_{m}": medians[:, j] for j, m in enumerate(markers)},
        }
    )
    dividers = pd.DataFrame(
        [
            {
                "gate": d.gate,
                "dimension": d.dimension,
                "value": d.value,
                "transformed": d.transformed,
                "source": d.source,
            }
            for d in named.dividers
        ],
        columns=DIVIDER_COLUMNS,
    )
    gates = {name: inside[labels] for name, inside in named.gates.items()}
    return SampleClusters(model, labels, named.phenotypes, members, table, dividers, gates)


def concordance(
    gate_members: Mapping[str, np.ndarray],
    cluster_members: Mapping[str, np.ndarray],
    *,
    populations: Mapping[str, str],
    margin_pp: float = 2.0,
) -> pd.DataFrame:
    """Gate-based vs cluster-based membership of every population.

    Parameters
    ----------
    gate_members, cluster_members : mapping of str to numpy.ndarray
        Population → boolean over the same events (the base population's).
    populations : mapping of str to str
        Population → gate name, in report order.
    margin_pp : float
        Largest allowed ``|gate − cluster|`` percent of base (percentage points).

    Returns
    -------
    pandas.DataFrame
        :data:`CONCORDANCE_COLUMNS`: events and percent of base by each method,
        the difference (cluster − gate, percentage points), the per-event F1 of
        the two labelings, and ``discordant`` (difference above the margin).

    Examples
    --------
    >>> g = {"CIK": np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], bool)}
    >>> c = {"CIK": np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], bool)}
    >>> row = concordance(g, c, populations={"CIK": "CIK"}).iloc[0]
    >>> float(row["difference_pp"]), round(float(row["f1"]), 3), bool(row["discordant"])
    (10.0, 0.8, True)
    """
    from cikflow.evaluate import f1_score

    rows = []
    for pop, gate in populations.items():
        if pop not in gate_members or pop not in cluster_members:
            continue
        g = np.asarray(gate_members[pop], dtype=bool)
        c = np.asarray(cluster_members[pop], dtype=bool)
        n = len(g)
        gp = 100.0 * g.sum() / n if n else np.nan
        cp = 100.0 * c.sum() / n if n else np.nan
        diff = cp - gp
        rows.append(
            {
                "population": pop,
                "gate": gate,
                "gate_events": int(g.sum()),
                "cluster_events": int(c.sum()),
                "gate_percent_of_base": gp,
                "cluster_percent_of_base": cp,
                "difference_pp": diff,
                "f1": f1_score(g, c),
                "margin_pp": float(margin_pp),
                "discordant": bool(abs(diff) > margin_pp),
            }
        )
    return pd.DataFrame(rows, columns=CONCORDANCE_COLUMNS)


def median_dividers(tables: Sequence[pd.DataFrame]) -> dict[tuple[str, str], float]:
    """Median threshold (transformed units) per gate and dimension over samples' divider tables.

    Parameters
    ----------
    tables : sequence of pandas.DataFrame
        Each sample's dividers (:data:`DIVIDER_COLUMNS`).

    Returns
    -------
    dict
        ``(gate, dimension) → median transformed threshold``.
    """
    frames = [t for t in tables if t is not None and not t.empty]
    if not frames:
        return {}
    all_rows = pd.concat(frames, ignore_index=True)
    med = all_rows.groupby(["gate", "dimension"], sort=True)["transformed"].median()
    return {(str(g), str(d)): float(v) for (g, d), v in med.items()}


def balanced_pool(
    samples: Mapping[str, np.ndarray],
    *,
    max_events: int = 50_000,
    random_state: int = 0,
) -> np.ndarray:
    """An equal share of every sample's events (seeded), pooled.

    Each of the ``n`` samples gives ``min(its events, max_events // n)``
    events, so that no culture day dominates a batch's reference model.

    Parameters
    ----------
    samples : mapping of str to numpy.ndarray
        Sample → events (n_i × n_markers); drawn in the mapping's order.
    max_events : int
        Size of the pool when every sample has enough events.
    random_state : int
        Seed.

    Returns
    -------
    numpy.ndarray
        The pooled events.
    """
    arrays = [np.asarray(v, dtype=float) for v in samples.values()]
    if not arrays:
        return np.zeros((0, 0))
    share = max(max_events // len(arrays), 1)
    rng = np.random.default_rng(random_state)
    parts = []
    for x in arrays:
        if len(x) > share:
            x = x[np.sort(rng.choice(len(x), size=share, replace=False))]
        parts.append(x)
    return np.vstack(parts)


def drift_table(
    reference: ClusterModel,
    samples: Mapping[str, np.ndarray],
    *,
    days: Mapping[str, Any],
    batch: str = "",
    drift_limit: float = 1.5,
    pool_events: int = 50_000,
) -> pd.DataFrame:
    """How far each day's events sit from a batch's reference centroids.

    A reference fitted on every day partly fits each day's own events, and
    k-means spends clusters on a shifted day, hiding the shift. So the drift
    figure of a day is measured against the same model refitted (same
    settings, :func:`balanced_pool` of ``pool_events``) on the *other* days:
    ``drift_ratio`` = the day's mean distance to those centroids ÷ the other
    days' own mean distance to them (1 = as close as the days it was fitted
    on). ``mean_distance`` is the day's mean distance to the all-days
    ``reference``.

    Parameters
    ----------
    reference : ClusterModel
        The batch's reference model, fitted on every day.
    samples : mapping of str to numpy.ndarray
        Sample → its events (n_i × n_markers), one sample per culture day.
    days : mapping of str to int
        Sample → culture day.
    batch : str
        Batch ID written in the table.
    drift_limit : float
        A ``drift_ratio`` above this is ``drifted``.
    pool_events : int
        Size of each leave-one-day-out pool.

    Returns
    -------
    pandas.DataFrame
        :data:`DRIFT_COLUMNS`, one row per sample; ``drift_ratio`` is NaN (and
        nothing drifted) for a batch of one sample.
    """
    rows = []
    for sample, x in samples.items():
        dist = reference.distance(x)
        ratio = np.nan
        others = {k: v for k, v in samples.items() if k != sample}
        if others and len(x):
            pool = balanced_pool(
                others, max_events=pool_events, random_state=reference.random_state
            )
            loo = ClusterModel(
                n_clusters=reference.n_clusters,
                max_events=len(pool),
                n_init=reference.n_init,
                random_state=reference.random_state,
            ).fit(pool)
            if loo.mean_distance_ > 0:
                ratio = float(loo.distance(x).mean() / loo.mean_distance_)
        rows.append(
            {
                "batch": batch,
                "sample": sample,
                "day": days.get(sample),
                "events": len(dist),
                "mean_distance": float(dist.mean()) if len(dist) else np.nan,
                "drift_ratio": ratio,
                "drift_limit": float(drift_limit),
                "drifted": bool(ratio > drift_limit) if ratio == ratio else False,
            }
        )
    out = pd.DataFrame(rows, columns=DRIFT_COLUMNS)
    return out.sort_values(["day", "sample"], kind="stable").reset_index(drop=True)


#: events binned at a time in :func:`cluster_map`
_MAP_CHUNK = 1 << 18


def cluster_map(
    values: np.ndarray,
    *,
    event_phenotypes: np.ndarray,
    markers: Sequence[str],
    x: str,
    y: str,
    bins: int = 96,
    axes: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Binned density of two markers, each bin coloured by its commonest phenotype.

    Parameters
    ----------
    values : numpy.ndarray
        Transformed markers of the clustered events.
    event_phenotypes : numpy.ndarray
        Phenotype of every event (:attr:`SampleClusters.event_phenotypes`).
    markers : sequence of str
        Columns of ``values``.
    x, y : str
        Markers on the axes.
    bins : int
        Bins per axis.
    axes : mapping, optional
        Axis descriptions (``dim``, ``detector``, ``transform``, ``ticks``) to
        carry into the plot data; the range is computed here.

    Returns
    -------
    dict
        ``x``/``y`` axis dicts (with ``range``), ``phenotypes`` (legend order),
        and ``bins``: rows ``[x centre, y centre, phenotype index, events]``.
    """
    j, k = list(markers).index(x), list(markers).index(y)
    xv, yv = values[:, j], values[:, k]
    phen = np.asarray(event_phenotypes, dtype=object)
    names = sorted(set(phen.tolist()), key=lambda p: (p == "other", p))

    def rng(v: np.ndarray) -> list[float]:
        lo, hi = np.quantile(v, [0.001, 0.999]) if len(v) else (0.0, 1.0)
        pad = 0.04 * (hi - lo or 1.0)
        return [float(lo - pad), float(hi + pad)]

    xr, yr = rng(xv), rng(yv)
    rows: list[list[float]] = []
    if names:
        per = np.zeros((len(names), bins, bins))
        for n, p in enumerate(names):
            events = np.flatnonzero(phen == p)
            for start in range(0, len(events), _MAP_CHUNK):  # bounded temporaries
                part = events[start : start + _MAP_CHUNK]
                per[n] += np.histogram2d(xv[part], yv[part], bins=bins, range=[xr, yr])[0]
        total = per.sum(axis=0)
        best = per.argmax(axis=0)
        cx = (np.linspace(*xr, bins + 1)[:-1] + np.linspace(*xr, bins + 1)[1:]) / 2
        cy = (np.linspace(*yr, bins + 1)[:-1] + np.linspace(*yr, bins + 1)[1:]) / 2
        for i, jj in zip(*np.nonzero(total), strict=True):
            rows.append(
                [
                    round(float(cx[i]), 5),
                    round(float(cy[jj]), 5),
                    int(best[i, jj]),
                    int(total[i, jj]),
                ]
            )
    ax = dict((axes or {}).get(x, {"dim": x, "detector": x, "transform": ""}))
    ay = dict((axes or {}).get(y, {"dim": y, "detector": y, "transform": ""}))
    ax["range"], ay["range"] = xr, yr
    return {"x": ax, "y": ay, "phenotypes": names, "bins": rows}


@dataclass(frozen=True)
class GatedClusters:
    """A gated sample's clustering, in the tables the workflow writes.

    Attributes
    ----------
    markers : list of str
        Clustered markers, in column order.
    result : SampleClusters
        Model, labels and phenotypes of the base events.
    populations : pandas.DataFrame
        Cluster-based ``population, gate, events, percent_of_base,
        percent_parent`` of every population below the base.
    concordance : pandas.DataFrame
        :func:`concordance` of gate and cluster.
    flags : list of dict
        ``gate_cluster_discordant`` flags: ``{"flag", "gate", "reason"}``.
    pool : pandas.DataFrame
        A seeded subsample of the base events' transformed markers (one column
        per marker), for the batch's reference model.
    map : dict
        :func:`cluster_map` of the first two-marker gate below the base.
    """

    markers: list[str]
    result: SampleClusters
    populations: pd.DataFrame
    concordance: pd.DataFrame
    flags: list[dict[str, Any]]
    pool: pd.DataFrame
    map: dict[str, Any]


_DECADE_TICKS = (-1000.0, 0.0, 100.0, 1000.0, 10000.0, 100000.0)


def _axis(template: Template, dim: str, detector: str) -> dict[str, Any]:
    tname = transform_name(template.spec, dim)
    xform = make_transform(template.spec["transforms"][tname])
    if xform is None:
        vals = [2.0, 3.0, 4.0, 5.0]
        return {
            "dim": dim,
            "detector": detector,
            "transform": "log10 / 4.5",
            "ticks": {"vals": [v / _DECADES for v in vals], "raw": [10**v for v in vals]},
        }
    vals = xform.apply(np.array(_DECADE_TICKS).reshape(-1, 1))[:, 0]
    return {
        "dim": dim,
        "detector": detector,
        "transform": tname,
        "ticks": {"vals": [float(v) for v in vals], "raw": list(_DECADE_TICKS)},
    }


def _map_dims(template: Template, markers: Sequence[str]) -> tuple[str, str] | None:
    for gate in _descendants(template, scale=identity_scale):
        if len(gate.dims) == 2 and all(d in markers for d in gate.dims):
            return gate.dims[0], gate.dims[1]
    return (markers[0], markers[1]) if len(markers) >= 2 else None


def cluster_outcome(
    outcome: GatingOutcome,
    *,
    template: Template,
    compensated: Any,
    pnn: Sequence[str],
    settings: Mapping[str, Any] | None = None,
    bins: int = 96,
) -> GatedClusters:
    """Cluster a gated sample's base events and compare with its gates.

    Parameters
    ----------
    outcome : GatingOutcome
        The sample's gating (base membership, fitted thresholds, gate members).
    template : Template
        The YAML template it was gated with.
    compensated : numpy.ndarray or CompensatedEvents
        Compensated events, file channel order (read as ``compensated[rows, j]``).
    pnn : sequence of str
        The file's detector names.
    settings : mapping, optional
        The ``clustering`` config section (:data:`CLUSTERING_DEFAULTS` fill gaps).
    bins : int
        Bins per axis of the cluster map.

    Returns
    -------
    GatedClusters

    Raises
    ------
    ConfigError
        A marker is missing from the template, or a gate below the base uses a
        dimension that is not clustered.
    """
    cfg = {**CLUSTERING_DEFAULTS, **dict(settings or {})}
    markers = [str(m) for m in cfg["markers"]]
    seed = int(cfg["random_state"])
    base = outcome.membership[template.base] if template.base else None
    if base is None:
        raise ConfigError(f"template '{template.name}' has no base gate to cluster")
    values = marker_values(
        compensated,
        rows=base,
        pnn=pnn,
        channel_map=outcome.channel_map,
        template=template,
        markers=markers,
    )
    result = cluster_sample(
        values,
        template=template,
        markers=markers,
        outcome=outcome,
        n_clusters=int(cfg["n_clusters"]),
        max_events=int(cfg["subsample"]),
        random_state=seed,
        sample=outcome.sample,
    )
    pops = tree_populations(template)
    n_base = len(values)
    rows = []
    for pop, gate in pops.items():
        members = result.members[pop]
        parent = _parent_of(template, gate)
        parent_n = n_base if parent == template.base else int(result.gates[parent].sum())
        n = int(members.sum())
        rows.append(
            {
                "population": pop,
                "gate": gate,
                "events": n,
                "percent_of_base": 100.0 * n / n_base if n_base else np.nan,
                "percent_parent": 100.0 * n / parent_n if parent_n else np.nan,
            }
        )
    table = concordance(
        {pop: outcome.membership[gate][base] for pop, gate in pops.items()},
        result.members,
        populations=pops,
        margin_pp=float(cfg["margin_pp"]),
    )
    flags = [
        {
            "flag": "gate_cluster_discordant",
            "gate": r["gate"],
            "reason": (
                f"{r['population']}: gate {r['gate_percent_of_base']:.2f} % vs cluster "
                f"{r['cluster_percent_of_base']:.2f} % of base "
                f"({r['difference_pp']:+.2f} pp, margin {r['margin_pp']:g} pp; "
                f"per-event F1 {r['f1']:.3f})"
            ),
        }
        for r in table.to_dict("records")
        if r["discordant"]
    ]
    rng = np.random.default_rng(seed)
    keep = np.arange(n_base)
    if n_base > int(cfg["subsample"]):
        keep = np.sort(rng.choice(n_base, size=int(cfg["subsample"]), replace=False))
    pool = pd.DataFrame(values[keep], columns=markers)
    dims = _map_dims(template, markers)
    cmap: dict[str, Any] = {}
    if dims is not None:
        cmap = cluster_map(
            values,
            event_phenotypes=result.event_phenotypes,
            markers=markers,
            x=dims[0],
            y=dims[1],
            bins=bins,
            axes={d: _axis(template, d, outcome.channel_map[d]) for d in dims},
        )
    return GatedClusters(
        markers=markers,
        result=result,
        populations=pd.DataFrame(
            rows, columns=["population", "gate", "events", "percent_of_base", "percent_parent"]
        ),
        concordance=table,
        flags=flags,
        pool=pool,
        map=cmap,
    )


def _parent_of(template: Template, gate_name: str) -> str:
    for spec in template.spec["gates"]:
        gate = from_spec(spec, scale=identity_scale)
        if gate.name == gate_name:
            return gate.parent
        if gate_name in (pop for pop, _ in gate.populations()):
            return gate.name
    raise ConfigError(f"template '{template.name}' has no gate '{gate_name}'")
