"""The per-sample and batch result tables: populations, flags, failed samples.

Pure table building (DataFrame in, DataFrame out, no file I/O): one sample's
population rows from its gate table, its flag rows, the cluster-based rows beside
the gate-based ones, and the batch summary's gate/cluster split around absolute
counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "FAILED_COLUMNS",
    "FLAG_COLUMNS",
    "SUMMARY_COLUMNS",
    "cluster_rows",
    "drift_flags",
    "flag_table",
    "gate_rows",
    "merge_cluster_rows",
    "population_table",
    "with_cluster_rows",
]

#: columns of ``populations.tsv`` and ``summary.tsv`` (before absolute counts)
SUMMARY_COLUMNS = [
    "batch",
    "sample",
    "day",
    "population",
    "gate",
    "method",
    "events",
    "percent_of_base",
    "percent_parent",
    "review_required",
    "percent_of_base_low",
    "percent_of_base_high",
    "below_loq",
]
#: columns of ``flags.tsv``
FLAG_COLUMNS = [
    "batch",
    "sample",
    "day",
    "gate",
    "flag",
    "reason",
    "accepted_by",  # a reviewer accepted the flag (cikflow.review): who, and why
    "accepted_reason",
]
#: columns of ``failed.tsv``
FAILED_COLUMNS = ["batch", "sample", "day", "fcs", "error", "message"]


def population_table(
    gates: pd.DataFrame,
    *,
    populations: Mapping[str, str],
    ids: Mapping[str, Any],
    review: bool,
    intervals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One sample's gate-based population rows.

    Parameters
    ----------
    gates : pandas.DataFrame
        The sample's gate table (``gate``, ``events``, ``percent_of_base``,
        ``percent_parent`` in percent).
    populations : mapping of str to str
        Population name to the gate that defines it.
    ids : mapping
        ``batch``, ``sample`` and ``day`` of the sample.
    review : bool
        Whether a flag asks for review (every row carries it).
    intervals : pandas.DataFrame, optional
        Per ``gate``: ``percent_of_base_low``, ``percent_of_base_high`` (percent)
        and ``below_loq`` (:func:`cikflow.uncertainty.population_intervals`);
        empty cells without it.

    Returns
    -------
    pandas.DataFrame
        :data:`SUMMARY_COLUMNS`, ``method`` = ``gate``.
    """
    by_gate = gates.set_index("gate")
    table = pd.DataFrame(
        [
            {
                **ids,
                "population": pop,
                "gate": gate,
                "method": "gate",
                "events": int(by_gate.loc[gate, "events"]),
                "percent_of_base": by_gate.loc[gate, "percent_of_base"],
                "percent_parent": by_gate.loc[gate, "percent_parent"],
                "review_required": review,
            }
            for pop, gate in populations.items()
        ],
        columns=SUMMARY_COLUMNS,
    )
    if intervals is not None and not intervals.empty:
        found = intervals.set_index("gate").reindex(table["gate"])
        for col in ("percent_of_base_low", "percent_of_base_high", "below_loq"):
            table[col] = found[col].to_numpy()
    return table


def flag_table(flags: Iterable[Mapping[str, Any]], *, ids: Mapping[str, Any]) -> pd.DataFrame:
    """One sample's flag rows.

    Parameters
    ----------
    flags : iterable of mapping
        ``{"gate", "flag", "reason"}`` records.
    ids : mapping
        ``batch``, ``sample`` and ``day`` of the sample.

    Returns
    -------
    pandas.DataFrame
        :data:`FLAG_COLUMNS`.
    """
    return pd.DataFrame([{**ids, **f} for f in flags], columns=FLAG_COLUMNS)


def with_cluster_rows(
    populations: pd.DataFrame,
    flags: pd.DataFrame,
    *,
    clusters: pd.DataFrame,
    cluster_flags: list[dict[str, Any]],
    ids: Mapping[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add the cluster-based rows (``method`` = ``cluster``) and the discordance flags.

    Parameters
    ----------
    populations : pandas.DataFrame
        The sample's gate-based rows (:func:`population_table`).
    flags : pandas.DataFrame
        The sample's flag rows (:func:`flag_table`).
    clusters : pandas.DataFrame
        Cluster-based ``population, gate, events, percent_of_base,
        percent_parent`` (percent).
    cluster_flags : list of dict
        ``gate_cluster_discordant`` flags (``{"flag", "gate", "reason"}``).
    ids : mapping
        ``batch``, ``sample`` and ``day`` of the sample.

    Returns
    -------
    tuple of pandas.DataFrame
        The populations with the cluster rows after the gate rows (review
        required on all when any row or cluster flag asks), and the flags.
    """
    review = bool(populations["review_required"].any()) or bool(cluster_flags)
    rows = clusters.assign(**ids, method="cluster", review_required=review)
    populations = pd.concat(
        [populations.assign(review_required=review), rows.reindex(columns=SUMMARY_COLUMNS)],
        ignore_index=True,
    )
    extra = pd.DataFrame([{**ids, **f} for f in cluster_flags], columns=FLAG_COLUMNS)
    if not extra.empty:
        flags = pd.concat([flags, extra], ignore_index=True) if not flags.empty else extra
    return populations, flags


def gate_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The gate-based rows of a summary (cluster-based rows are a second opinion only).

    Parameters
    ----------
    summary : pandas.DataFrame
        A summary table, with or without a ``method`` column.

    Returns
    -------
    pandas.DataFrame
        Rows whose ``method`` is not ``cluster``, index reset.
    """
    if "method" not in summary.columns:
        return summary
    return summary[summary["method"].astype(str) != "cluster"].reset_index(drop=True)


def cluster_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The cluster-based rows of a summary (``method`` = ``cluster``).

    Parameters
    ----------
    summary : pandas.DataFrame
        A summary table with a ``method`` column.

    Returns
    -------
    pandas.DataFrame
        Rows whose ``method`` is ``cluster``, original index kept.
    """
    return summary[summary["method"].astype(str) == "cluster"]


def merge_cluster_rows(summary: pd.DataFrame, clusters: pd.DataFrame) -> pd.DataFrame:
    """Put the cluster-based rows back after each sample's gate rows.

    Parameters
    ----------
    summary : pandas.DataFrame
        The gate-based rows (with absolute counts), sorted by batch, day, sample.
    clusters : pandas.DataFrame
        The cluster-based rows (:func:`cluster_rows`).

    Returns
    -------
    pandas.DataFrame
        Both, sorted by batch, day and sample (stable); a cluster row asks for
        review when any gate row of its sample does.
    """
    if clusters.empty:
        return summary
    review = summary.groupby("sample")["review_required"].any()
    clusters = clusters.assign(
        review_required=clusters["sample"].isin(review[review].index)
        | clusters["review_required"].astype(bool)
    )
    return pd.concat([summary, clusters], ignore_index=True).sort_values(
        ["batch", "day", "sample"], kind="stable", ignore_index=True
    )


def drift_flags(drift: pd.DataFrame, *, gate: str) -> pd.DataFrame:
    """``drift`` flags: a culture day that drifted from its batch's other days.

    One flag per drifted row of the batches' ``drift.tsv``
    (:func:`cikflow.clustering.drift_table`): the clusters' drift ratio, the
    scatter or the gain of all fluorescence channels together beyond its limit,
    named in the reason. A drifted day asks for review: its gates may sit where
    the other days' would not.

    Parameters
    ----------
    drift : pandas.DataFrame
        Drift rows (``batch``, ``sample``, ``day``, ``drifted``, ``reason``).
    gate : str
        The gate the flag names (the template's base: the events measured).

    Returns
    -------
    pandas.DataFrame
        :data:`FLAG_COLUMNS` (accepted columns empty).

    Examples
    --------
    >>> d = pd.DataFrame({"batch": "B", "sample": ["d0", "d7"], "day": [0, 7],
    ...     "drifted": [False, True], "reason": ["", "scatter 2.50-fold (limit 2.2)"]})
    >>> drift_flags(d, gate="lymphocytes")[["sample", "gate", "flag"]].values.tolist()
    [['d7', 'lymphocytes', 'drift']]
    """
    if drift.empty:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    rows = drift[drift["drifted"].astype(str).str.lower() == "true"]
    out = pd.DataFrame(
        {
            "batch": rows["batch"],
            "sample": rows["sample"],
            "day": rows["day"],
            "gate": gate,
            "flag": "drift",
            "reason": "drifted from the batch's other days: "
            + rows["reason"].fillna("").astype(str),
            "accepted_by": "",
            "accepted_reason": "",
        },
        columns=FLAG_COLUMNS,
    )
    return out.reset_index(drop=True)


def jump_flags(
    summary: pd.DataFrame, *, populations: Sequence[str], max_jump_pp: float
) -> pd.DataFrame:
    """``implausible_jump`` flags: a day whose population leaves its batch's other days.

    Per batch and population (gate rows, percent of base): an inner culture day is
    implausible when it lies more than ``max_jump_pp`` percentage points outside the
    range of the days before and after it. The worst such day is flagged and left out,
    and the rest checked again, so that one bad day does not make its neighbours look
    bad. The first and the last day are compared with the range from the nearest day to
    the line through the two nearest (a trend may go on or level off). Cultures
    change smoothly over weeks; a collapse or a spike on one day is a gating, staining
    or acquisition fault until a reviewer says otherwise.

    Parameters
    ----------
    summary : pandas.DataFrame
        Summary rows (``batch``, ``sample``, ``day``, ``population``,
        ``percent_of_base``; only gate rows are used).
    populations : sequence of str
        Populations checked (those below the base).
    max_jump_pp : float
        Allowed distance outside the neighbours' range, percentage points.

    Returns
    -------
    pandas.DataFrame
        :data:`FLAG_COLUMNS`, gate = the population.

    Examples
    --------
    >>> s = pd.DataFrame({"batch": "B", "sample": ["d0", "d7", "d14", "d21"],
    ...     "day": [0, 7, 14, 21], "population": "CIK", "percent_of_base": [2, 11, 1, 28]})
    >>> jump_flags(s, populations=["CIK"], max_jump_pp=5)[["sample", "flag"]].values.tolist()
    [['d14', 'implausible_jump']]
    >>> s["percent_of_base"] = [2, 11, 19, 3]  # a collapse on the last day
    >>> jump_flags(s, populations=["CIK"], max_jump_pp=5)["sample"].tolist()
    ['d21']
    """
    rows = gate_rows(summary)
    rows = rows[rows["population"].isin(list(populations))]
    flags = []
    for (batch, pop), part in rows.groupby(["batch", "population"], sort=False):
        part = part.dropna(subset=["percent_of_base"]).sort_values("day", kind="stable")
        days = part["day"].astype(float).tolist()
        values = part["percent_of_base"].astype(float).tolist()
        for k, outside in _implausible_days(days, values, limit=max_jump_pp):
            flags.append(
                {
                    "batch": batch,
                    "sample": part["sample"].iloc[k],
                    "day": part["day"].iloc[k],
                    "gate": pop,
                    "flag": "implausible_jump",
                    "reason": (
                        f"{pop} {values[k]:.1f} % of base lies {outside:.1f} points outside "
                        f"what the batch's other culture days allow (limit {max_jump_pp:g})"
                    ),
                }
            )
    return pd.DataFrame(flags, columns=FLAG_COLUMNS)


def _implausible_days(
    days: list[float], values: list[float], *, limit: float
) -> list[tuple[int, float]]:
    """(index, points outside) of each implausible day.

    Greedy: while some day deviates by more than the limit, the day whose removal leaves
    the smoothest rest is flagged and removed (so one bad day does not make its
    neighbours look bad).
    """
    keep = list(range(len(days)))
    found: list[tuple[int, float]] = []
    while len(keep) >= 3 and _roughness(days, values, keep) > limit:
        score, k = min((_roughness(days, values, [j for j in keep if j != k]), k) for k in keep)
        outside = _deviation(days, values, keep, k)
        if outside <= limit or score > limit:
            break  # no single day explains it: several days move together
        found.append((k, outside))
        keep.remove(k)
    return sorted(found)


def _roughness(days: list[float], values: list[float], keep: list[int]) -> float:
    """The largest deviation of any day of ``keep`` from the days around it."""
    if len(keep) < 3:
        return 0.0
    return max(_deviation(days, values, keep, k) for k in keep)


def _deviation(days: list[float], values: list[float], keep: list[int], k: int) -> float:
    """Points ``values[k]`` lies outside what its neighbours in ``keep`` allow.

    An inner day: outside the range of the days before and after it. The first or last
    day: outside the range from the nearest day to the line through the two nearest
    (a trend may go on or level off, not turn back).
    """
    pos = keep.index(k)
    if 0 < pos < len(keep) - 1:
        a, b = keep[pos - 1], keep[pos + 1]
        return max(
            min(values[a], values[b]) - values[k], values[k] - max(values[a], values[b]), 0.0
        )
    a, b = (keep[1], keep[2]) if pos == 0 else (keep[-2], keep[-3])
    slope = (values[a] - values[b]) / (days[a] - days[b]) if days[a] != days[b] else 0.0
    line = values[a] + slope * (days[k] - days[a])
    lo, hi = sorted((values[a], line))
    return max(lo - values[k], values[k] - hi, 0.0)
