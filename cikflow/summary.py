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
    from collections.abc import Iterable, Mapping

__all__ = [
    "FAILED_COLUMNS",
    "FLAG_COLUMNS",
    "SUMMARY_COLUMNS",
    "cluster_rows",
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
FLAG_COLUMNS = ["batch", "sample", "day", "gate", "flag", "reason"]
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
