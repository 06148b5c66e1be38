"""The clustering model: k-means on transformed markers, fitted on a seeded subsample.

Markers enter in their template transform; a dimension without a transform
(scatter) enters as ``log10(value) / 4.5`` (:func:`marker_values`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.exceptions import ConfigError
from cikflow.gating.template import make_transform, transform_name

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cikflow.gating.template import Template

__all__ = [
    "CLUSTERING_DEFAULTS",
    "ClusterModel",
    "marker_values",
]

#: defaults of the ``clustering`` config section
CLUSTERING_DEFAULTS: dict[str, Any] = {
    "markers": ["CD3", "CD16", "CD56"],
    "n_clusters": 25,
    "subsample": 50_000,
    "random_state": 0,
    "margin_pp": 2.0,
    "drift_limit": 1.5,
    "scatter_drift_limit": 2.2,
    "gain_drift_limit": 1.2,
    "drift_min_level": 1000.0,
    "bead_drift_limit": 1.2,
    "drift_min_beads": 200,
}


_DECADES = 4.5  # logicle m: decades spanned by one transformed unit


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
