"""Agreement of cikflow's results with a ground truth (simulated batches, expert gating)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["compare_to_truth", "f1_score"]

KEY_POPULATIONS = ("T", "CIK", "NK")


def f1_score(predicted: np.ndarray, truth: np.ndarray) -> float:
    """F1 of a boolean event membership against a true one.

    Examples
    --------
    >>> f1_score(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    0.5
    """
    tp = int(np.sum(predicted & truth))
    denom = int(np.sum(predicted)) + int(np.sum(truth))
    return 1.0 if denom == 0 else 2.0 * tp / denom


def compare_to_truth(
    summary: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    populations: Sequence[str] = KEY_POPULATIONS,
    method: str = "gate",
) -> pd.DataFrame:
    """Absolute error of ``percent_of_base`` per sample and population.

    Parameters
    ----------
    summary, truth : pandas.DataFrame
        Long tables with ``sample``, ``population`` and ``percent_of_base``
        (``results/summary.tsv`` and a simulator's ``truth.tsv``).
    populations : sequence of str
        Populations compared.
    method : str
        Rows of ``summary`` compared, by its ``method`` column (``gate`` or
        ``cluster``); a summary without that column is taken whole.

    Returns
    -------
    pandas.DataFrame
        ``batch, sample, day, population, percent_of_base, truth_percent_of_base,
        abs_error_pp`` (percentage points), one row per sample and population
        present in both tables.

    Examples
    --------
    >>> s = pd.DataFrame({"batch": ["B"], "sample": ["s1"], "day": [0], "population": ["T"],
    ...                   "percent_of_base": [61.0]})
    >>> t = s.assign(percent_of_base=[63.5])
    >>> float(compare_to_truth(s, t)["abs_error_pp"].iloc[0])
    2.5
    """
    keep = ["batch", "sample", "day", "population", "percent_of_base"]
    if "method" in summary.columns:
        summary = summary[summary["method"].astype(str) == method]
    left = summary.loc[summary["population"].isin(populations), keep]
    right = truth.loc[
        truth["population"].isin(populations), ["sample", "population", "percent_of_base"]
    ]
    merged = left.merge(right, on=["sample", "population"], suffixes=("", "_truth"))
    merged = merged.rename(columns={"percent_of_base_truth": "truth_percent_of_base"})
    merged["abs_error_pp"] = (merged["percent_of_base"] - merged["truth_percent_of_base"]).abs()
    order = {p: i for i, p in enumerate(populations)}
    merged["_order"] = merged["population"].map(order)
    return (
        merged.sort_values(["batch", "day", "sample", "_order"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )
