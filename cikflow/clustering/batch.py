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
    "LEVEL_DRIFT_DEFAULTS",
    "balanced_pool",
    "base_levels",
    "cluster_map",
    "drift_table",
    "level_drift",
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
    "level_source",
    "scatter_fold",
    "scatter_limit",
    "gain_fold",
    "gain_limit",
    "drifted",
    "reason",
]

#: defaults of the scatter and all-channel gain drift limits (``clustering`` config)
LEVEL_DRIFT_DEFAULTS: dict[str, float | int] = {
    "scatter_drift_limit": 2.2,
    "gain_drift_limit": 1.2,
    "drift_min_level": 1000.0,
    "bead_drift_limit": 1.2,
    "drift_min_beads": 200,
}


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


def base_levels(values: np.ndarray, *, channel_map: Mapping[str, str]) -> dict[str, dict]:
    """Median of every dimension of a sample's base events, scatter apart from fluorescence.

    Parameters
    ----------
    values : numpy.ndarray
        Base events (n_events × n_dims), compensated data units, one column per
        dimension of ``channel_map`` in its order.
    channel_map : mapping of str to str
        Dimension → detector; detectors named ``FSC…``/``SSC…`` are scatter,
        ``Time`` is left out, every other is fluorescence.

    Returns
    -------
    dict
        ``{"scatter": {dim: median}, "fluorescence": {dim: median}}`` (data
        units; NaN without events).

    Examples
    --------
    >>> v = np.array([[100.0, 10.0], [300.0, 30.0], [200.0, 20.0]])
    >>> base_levels(v, channel_map={"FSC-A": "FSC-A", "CD3": "FITC-A"})
    {'scatter': {'FSC-A': 200.0}, 'fluorescence': {'CD3': 20.0}}
    """
    x = np.asarray(values, dtype=float)
    out: dict[str, dict] = {"scatter": {}, "fluorescence": {}}
    for j, (dim, detector) in enumerate(channel_map.items()):
        kind = str(detector).upper()
        if kind == "TIME":
            continue
        level = float(np.median(x[:, j])) if len(x) else float("nan")
        out["scatter" if kind.startswith(("FSC", "SSC")) else "fluorescence"][dim] = level
    return out


def _fold(level: float, others: Sequence[float]) -> float:
    """``level`` ÷ the median of ``others`` (NaN where either is not positive)."""
    ref = float(np.median(others)) if len(others) else float("nan")
    return level / ref if level > 0 and ref > 0 else float("nan")


def level_drift(
    levels: Mapping[str, Mapping[str, Any]],
    *,
    scatter_limit: float = 2.2,
    gain_limit: float = 1.2,
    min_level: float = 1000.0,
    bead_limit: float = 1.2,
    min_bead_events: int = 200,
) -> pd.DataFrame:
    """Scatter drift and all-channel gain drift of each day against the batch's other days.

    Per sample and dimension, the fold = its level ÷ the median of the other
    samples' levels. ``scatter_fold`` is the scatter dimension's fold farthest
    from 1 (on a log scale); ``gain_fold`` is the median of the fluorescence
    folds over channels whose level is at least ``min_level`` on the day and on
    the other days (a gain change of every detector moves them together). A
    fold beyond a limit, or below its reciprocal, is drifted.

    The levels are the counting beads' where the day and at least one other
    day have ``min_bead_events`` bead events: beads are the same particles
    every day, so their folds are the instrument's alone, held to
    ``bead_limit``. Otherwise they are the base cells' medians, which the
    culture moves too (blasts grow, a population's share changes a channel's
    median), held to the looser ``scatter_limit`` and ``gain_limit``.

    Parameters
    ----------
    levels : mapping
        Sample → :func:`base_levels` of its base events, and optionally under
        ``"beads"`` the :func:`base_levels` of its bead events with their
        ``"events"`` (count).
    scatter_limit, gain_limit : float
        Allowed folds (> 1) of the cells' levels.
    min_level : float
        Fluorescence levels below this (data units) are too near zero to give a
        fold.
    bead_limit : float
        Allowed fold (> 1) of the beads' levels, scatter and fluorescence.
    min_bead_events : int
        Fewest bead events whose medians are used.

    Returns
    -------
    pandas.DataFrame
        ``sample``, ``level_source`` (``beads``, ``cells`` or empty),
        ``scatter_fold``, ``scatter_limit``, ``gain_fold``, ``gain_limit``
        (NaN where not measurable), ``scatter_drifted``, ``gain_drifted``,
        ``reason``.

    Examples
    --------
    >>> day = {"scatter": {"FSC-A": 100.0}, "fluorescence": {"CD45": 5000.0, "CD3": 4000.0}}
    >>> gain = {"scatter": {"FSC-A": 100.0}, "fluorescence": {"CD45": 8000.0, "CD3": 6400.0}}
    >>> t = level_drift({"a": day, "b": day, "c": day, "d": gain}, gain_limit=1.2)
    >>> t[["sample", "gain_fold", "gain_drifted"]].values.tolist()
    [['a', 1.0, False], ['b', 1.0, False], ['c', 1.0, False], ['d', 1.6, True]]
    """
    beads = {
        k: v["beads"]
        for k, v in levels.items()
        if v.get("beads") and int(v["beads"].get("events", 0)) >= min_bead_events
    }
    rows = []
    for sample, own in levels.items():
        if sample in beads and len(beads) > 1:
            source, own_levels = "beads", beads[sample]
            others = [v for k, v in beads.items() if k != sample]
            s_lim, g_lim = bead_limit, bead_limit
        else:
            source, own_levels = "cells", own
            others = [v for k, v in levels.items() if k != sample]
            s_lim, g_lim = scatter_limit, gain_limit
        scatter_fold, gain_fold = _level_folds(own_levels, others, min_level=min_level)
        s_out = bool(np.isfinite(scatter_fold) and abs(np.log(scatter_fold)) > np.log(s_lim))
        g_out = bool(np.isfinite(gain_fold) and abs(np.log(gain_fold)) > np.log(g_lim))
        of = "the beads' " if source == "beads" else ""
        reason = []
        if s_out:
            reason.append(f"{of}scatter {scatter_fold:.2f}-fold the other days' (limit {s_lim:g})")
        if g_out:
            reason.append(
                f"{of}all-channel gain {gain_fold:.2f}-fold the other days' (limit {g_lim:g})"
            )
        measured = np.isfinite(scatter_fold) or np.isfinite(gain_fold)
        rows.append(
            {
                "sample": sample,
                "level_source": source if measured else "",
                "scatter_fold": round(float(scatter_fold), 6),
                "scatter_limit": float(s_lim),
                "gain_fold": round(float(gain_fold), 6),
                "gain_limit": float(g_lim),
                "scatter_drifted": s_out,
                "gain_drifted": g_out,
                "reason": "; ".join(reason),
            }
        )
    return pd.DataFrame(rows, columns=_LEVEL_COLUMNS)


_LEVEL_COLUMNS = [
    "sample",
    "level_source",
    "scatter_fold",
    "scatter_limit",
    "gain_fold",
    "gain_limit",
    "scatter_drifted",
    "gain_drifted",
    "reason",
]


def _level_folds(
    own: Mapping[str, Any], others: Sequence[Mapping[str, Any]], *, min_level: float
) -> tuple[float, float]:
    """The scatter fold farthest from 1 and the median bright fluorescence fold (NaN: none)."""
    folds = {
        kind: {
            dim: _fold(level, [o[kind][dim] for o in others if dim in o.get(kind, {})])
            for dim, level in own.get(kind, {}).items()
        }
        for kind in ("scatter", "fluorescence")
    }
    scatter = [f for f in folds["scatter"].values() if np.isfinite(f)]
    scatter_fold = max(scatter, key=lambda f: abs(np.log(f))) if scatter else np.nan
    bright = [
        f
        for dim, f in folds["fluorescence"].items()
        if np.isfinite(f)
        and own["fluorescence"][dim] >= min_level
        and own["fluorescence"][dim] / f >= min_level
    ]
    return scatter_fold, float(np.median(bright)) if bright else np.nan


def _left_out_ratio(
    reference: ClusterModel, x: np.ndarray, *, others: Mapping[str, np.ndarray], pool_events: int
) -> float:
    """A day's mean distance to the reference refitted on ``others`` ÷ theirs (NaN: none)."""
    if not others or not len(x):
        return np.nan
    pool = balanced_pool(others, max_events=pool_events, random_state=reference.random_state)
    loo = ClusterModel(
        n_clusters=reference.n_clusters,
        max_events=len(pool),
        n_init=reference.n_init,
        random_state=reference.random_state,
    ).fit(pool)
    if loo.mean_distance_ <= 0:
        return np.nan
    return float(loo.distance(x).mean() / loo.mean_distance_)


def drift_table(
    reference: ClusterModel,
    samples: Mapping[str, np.ndarray],
    *,
    days: Mapping[str, Any],
    batch: str = "",
    drift_limit: float = 1.5,
    pool_events: int = 50_000,
    levels: Mapping[str, Mapping[str, Any]] | None = None,
    level_limits: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """How far each day's events sit from a batch's reference centroids, and level drift.

    A reference fitted on every day partly fits each day's own events, and
    k-means spends clusters on a shifted day, hiding the shift. So the drift
    figure of a day is measured against the same model refitted (same
    settings, :func:`balanced_pool` of ``pool_events``) on the *other* days:
    ``drift_ratio`` = the day's mean distance to those centroids ÷ the other
    days' own mean distance to them (1 = as close as the days it was fitted
    on). ``mean_distance`` is the day's mean distance to the all-days
    ``reference``. With ``levels``, a day is also drifted when its scatter or
    the gain of all its fluorescence channels together left the other days'
    (:func:`level_drift`); ``reason`` says what drifted.

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
    levels : mapping, optional
        Sample → :func:`base_levels` (data units), with its beads' under
        ``"beads"`` (:func:`level_drift`).
    level_limits : mapping, optional
        ``scatter_drift_limit``, ``gain_drift_limit``, ``bead_drift_limit``
        (folds), ``drift_min_level`` (data units) and ``drift_min_beads``
        (events); :data:`LEVEL_DRIFT_DEFAULTS` fill gaps.

    Returns
    -------
    pandas.DataFrame
        :data:`DRIFT_COLUMNS`, one row per sample; ``drift_ratio`` and the folds
        are NaN (and nothing drifted) for a batch of one sample.
    """
    lim = {**LEVEL_DRIFT_DEFAULTS, **dict(level_limits or {})}
    lv = level_drift(
        {k: v for k, v in (levels or {}).items() if k in samples},
        scatter_limit=float(lim["scatter_drift_limit"]),
        gain_limit=float(lim["gain_drift_limit"]),
        min_level=float(lim["drift_min_level"]),
        bead_limit=float(lim["bead_drift_limit"]),
        min_bead_events=int(lim["drift_min_beads"]),
    ).set_index("sample")
    rows = []
    for sample, x in samples.items():
        dist = reference.distance(x)
        others = {k: v for k, v in samples.items() if k != sample}
        ratio = _left_out_ratio(reference, x, others=others, pool_events=pool_events)
        level = lv.loc[sample] if sample in lv.index else None
        reason = (
            [f"cluster drift ratio {ratio:.2f} (limit {drift_limit:g})"]
            if ratio > drift_limit
            else []
        )
        if level is not None and level["reason"]:
            reason.append(str(level["reason"]))
        rows.append(
            {
                "batch": batch,
                "sample": sample,
                "day": days.get(sample),
                "events": len(dist),
                "mean_distance": float(dist.mean()) if len(dist) else np.nan,
                "drift_ratio": ratio,
                "drift_limit": float(drift_limit),
                "level_source": level["level_source"] if level is not None else "",
                "scatter_fold": level["scatter_fold"] if level is not None else np.nan,
                "scatter_limit": (
                    level["scatter_limit"] if level is not None else lim["scatter_drift_limit"]
                ),
                "gain_fold": level["gain_fold"] if level is not None else np.nan,
                "gain_limit": level["gain_limit"] if level is not None else lim["gain_drift_limit"],
                "drifted": bool(reason),
                "reason": "; ".join(reason),
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
