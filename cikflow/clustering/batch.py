"""Clustering across a batch: the reference pool, day drift and the cluster map."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cikflow.clustering.model import ClusterModel

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


__all__ = [
    "DRIFT_COLUMNS",
    "balanced_pool",
    "cluster_map",
    "drift_table",
    "median_dividers",
]

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
