"""The arithmetic of intervals: counting, combining parts, propagating.

- a count's interval: ``k`` events of ``n`` are a binomial draw (Wilson score), a
  population holding the base the inverse fraction, disjoint ones (beads) the
  ratio of two Poisson counts;
- an interval from its parts (:func:`combine`): chance half-widths, in quadrature,
  and estimated biases, as bounds or as corrections with an uncertainty of their own;
- propagation to single-platform counts and ratios (fold expansion) by the delta
  method on the log scale.

:mod:`cikflow.uncertainty` finds the parts of a population's interval in a gating.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "UNCERTAINTY_DEFAULTS",
    "cells_per_uL_interval",
    "combine",
    "count_interval",
    "ratio_interval",
    "wilson_interval",
    "z_value",
]

#: defaults of the ``uncertainty`` config section
UNCERTAINTY_DEFAULTS: dict[str, Any] = {
    "confidence": 0.95,
    "loq_events": 100,
    "placement_depth": 0.5,
    "placement_bandwidth": 0.012,
    "placement_max_events": 50_000,
    "bias_uncertainty": 0.5,
    "bias_flag_pp": 2.0,
    "bead_lot_cv_percent": 2.0,
    "pipetting_cv_percent": 1.0,
}


def z_value(confidence: float) -> float:
    """Two-sided standard normal quantile of a confidence level.

    Parameters
    ----------
    confidence : float
        Confidence level in (0, 1), e.g. 0.95.

    Returns
    -------
    float
        ``z`` with ``P(|Z| < z) = confidence`` (1.95996… for 0.95).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(k: float, n: float, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial fraction ``k / n``.

    Parameters
    ----------
    k : float
        Events counted (successes).
    n : float
        Events of the reference (trials); 0 gives ``(0, 1)``.
    confidence : float
        Confidence level.

    Returns
    -------
    tuple of float
        Lower and upper bound of the fraction (0 to 1, not percent).

    Examples
    --------
    >>> lo, hi = wilson_interval(20, 100)
    >>> round(lo, 4), round(hi, 4)
    (0.1334, 0.2888)
    """
    if n <= 0:
        return 0.0, 1.0
    z = z_value(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def count_interval(
    events: int, base: int, *, relation: str = "nested", confidence: float = 0.95
) -> tuple[float, float]:
    """Counting interval of ``100 × events / base`` (percent of base).

    Parameters
    ----------
    events : int
        Events of the population.
    base : int
        Events of the base gate.
    relation : {"nested", "contains", "disjoint"}
        The population lies within the base (Wilson on ``events / base``), holds
        it (Wilson on ``base / events``, inverted) or is apart from it (ratio of
        two Poisson counts, ``exp(± z √(1/events + 1/base))``).
    confidence : float
        Confidence level.

    Returns
    -------
    tuple of float
        Lower and upper bound, in percent of base.

    Examples
    --------
    >>> [round(v, 2) for v in count_interval(20, 100)]
    [13.34, 28.88]
    """
    if base <= 0:
        return math.nan, math.nan
    if relation == "nested":
        lo, hi = wilson_interval(events, base, confidence=confidence)
        return 100.0 * lo, 100.0 * hi
    if events <= 0:
        return 0.0, math.nan
    if relation == "contains":
        lo, hi = wilson_interval(base, events, confidence=confidence)
        return 100.0 / hi, (100.0 / lo if lo > 0 else math.inf)
    spread = z_value(confidence) * math.sqrt(1 / events + 1 / base)
    point = 100.0 * events / base
    return point * math.exp(-spread), point * math.exp(spread)


def combine(
    point: float,
    *,
    counting: tuple[float, float],
    chance: tuple[float, float],
    bias_low: Sequence[float] = (),
    bias_high: Sequence[float] = (),
    bias_uncertainty: float | None = None,
) -> tuple[float, float]:
    """An interval from its parts: chance half-widths and estimated biases (percentage points).

    With ``bias_uncertainty`` None every bias is a bound: the interval reaches from
    ``point − below − Σ bias_low`` to ``point + above + Σ bias_high``. Otherwise the
    biases are estimates, each uncertain by ``bias_uncertainty`` times itself at the
    interval's confidence: the interval is centred on the corrected value
    ``c = point + Σ bias_high − Σ bias_low`` and reaches, on each side, the chance
    half-width and the estimates' uncertainties in quadrature; it is never narrower
    than the count's own interval, so it holds the gated value and whatever counting
    alone allows around it.

    Parameters
    ----------
    point : float
        The gated value.
    counting : tuple of float
        The count's own interval (low, high), e.g. :func:`count_interval`.
    chance : tuple of float
        Half-widths below and above (counting and placement, in quadrature).
    bias_low, bias_high : sequence of float
        Biases that may put the point above the truth (the truth lies lower by
        each), and below it; each ≥ 0.
    bias_uncertainty : float, optional
        Relative uncertainty of each bias estimate; None: biases are bounds.

    Returns
    -------
    tuple of float
        ``(low, high)``.

    Examples
    --------
    A point of 60 counted to within 59.6–60.4, chance ±0.5, a bias of 2 up and 0.4
    down. As bounds: 60 − 0.5 − 0.4 and 60 + 0.5 + 2. As estimates uncertain by half
    of themselves: centred on 61.6, ± √(0.5² + 1² + 0.2²) = ± 1.1358, and down to the
    count's own 59.6:

    >>> combine(60.0, counting=(59.6, 60.4), chance=(0.5, 0.5), bias_low=[0.4],
    ...         bias_high=[2.0])
    (59.1, 62.5)
    >>> [round(v, 4) for v in combine(60.0, counting=(59.6, 60.4), chance=(0.5, 0.5),
    ...                                bias_low=[0.4], bias_high=[2.0], bias_uncertainty=0.5)]
    [59.6, 62.7358]
    """
    below, above = chance
    if bias_uncertainty is None:
        return point - below - sum(bias_low), point + above + sum(bias_high)
    centre = point + sum(bias_high) - sum(bias_low)
    spread2 = sum((bias_uncertainty * b) ** 2 for b in (*bias_low, *bias_high))
    low = centre - math.sqrt(below**2 + spread2)
    high = centre + math.sqrt(above**2 + spread2)
    return min(low, counting[0], point), max(high, counting[1], point)


def cells_per_uL_interval(
    cells_per_uL: float,
    *,
    percent: tuple[float, float, float],
    events: int,
    bead_events: int,
    settings: Mapping[str, Any] | None = None,
) -> tuple[float, float]:
    """Interval of a single-platform count (cells/µL), by the delta method on the log scale.

    The relative spread adds, in quadrature: the population's own interval
    (``percent``: point, low, high in percent of base; its counting part turned
    from binomial into Poisson by ``z² p / events``), the bead count (Poisson,
    ``1 / bead_events``), the lot's beads per tube and the pipetted volume (CVs).
    The delta method suffices: every term is a product or ratio of a few
    independent factors, each with a CV of a few percent, where the log-scale
    normal approximation is accurate; it is deterministic and costs nothing.

    Parameters
    ----------
    cells_per_uL : float
        The count (cells/µL).
    percent : tuple of float
        The population's percent of base and its interval (percent).
    events : int
        The population's events.
    bead_events : int
        Bead events of the tube.
    settings : mapping, optional
        The ``uncertainty`` section (``confidence``, ``bead_lot_cv_percent``,
        ``pipetting_cv_percent``).

    Returns
    -------
    tuple of float
        Lower and upper bound (cells/µL); NaN when the count is.

    Examples
    --------
    >>> lo, hi = cells_per_uL_interval(
    ...     100.0, percent=(10.0, 10.0, 10.0), events=10000, bead_events=10000,
    ...     settings={"bead_lot_cv_percent": 0, "pipetting_cv_percent": 0})
    >>> round(lo, 2), round(hi, 2)
    (97.97, 102.08)
    """
    settings = {**UNCERTAINTY_DEFAULTS, **dict(settings or {})}
    if not np.isfinite(cells_per_uL) or events <= 0 or bead_events <= 0:
        return math.nan, math.nan
    z = z_value(float(settings["confidence"]))
    p, low, high = percent
    shared = (
        z * z * (min(p, 100.0) / 100.0 / events + 1.0 / bead_events)
        + (z * float(settings["bead_lot_cv_percent"]) / 100.0) ** 2
        + (z * float(settings["pipetting_cv_percent"]) / 100.0) ** 2
    )
    rel_lo = (p - low) / p if p > 0 and np.isfinite(low) else 0.0
    rel_hi = (high - p) / p if p > 0 and np.isfinite(high) else 0.0
    return (
        cells_per_uL * math.exp(-math.sqrt(rel_lo**2 + shared)),
        cells_per_uL * math.exp(math.sqrt(rel_hi**2 + shared)),
    )


def ratio_interval(
    numerator: tuple[float, float, float],
    denominator: tuple[float, float, float],
    *,
    shared_cv_percent: float = 0.0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Interval of a ratio of two independent estimates, by the delta method on the log scale.

    Each estimate's interval gives its log-scale half-width on each side,
    ``ln(value / low)`` and ``ln(high / value)``; the ratio's lower end combines the
    numerator's lower half-width with the denominator's upper one, in quadrature
    (and the reverse for the upper end). A relative error both share (the bead
    lot's beads per tube, when two tubes of one lot are counted) cancels in the
    ratio: its ``(z × CV)²`` is taken out of each side's variance. Used for fold
    expansion (total cells on day *d* ÷ total cells on the reference day).

    Parameters
    ----------
    numerator, denominator : tuple of float
        Value, low and high of each estimate (any positive unit, e.g. cells).
    shared_cv_percent : float
        CV (%) of a factor common to both estimates, which cancels.
    confidence : float
        Confidence level of the two intervals (and of the result).

    Returns
    -------
    tuple of float
        Lower and upper bound of ``numerator / denominator`` (NaN when either
        value is not positive and finite).

    Examples
    --------
    >>> lo, hi = ratio_interval((100.0, 90.0, 110.0), (10.0, 9.0, 11.0))
    >>> round(lo, 4), round(hi, 4)
    (8.6756, 11.5266)
    """
    (n, n_lo, n_hi), (d, d_lo, d_hi) = numerator, denominator
    values = (n, n_lo, n_hi, d, d_lo, d_hi)
    if not all(np.isfinite(v) and v > 0 for v in values):
        return math.nan, math.nan
    shared = (z_value(confidence) * shared_cv_percent / 100.0) ** 2

    def var(value: float, bound: float) -> float:
        return max(math.log(value / bound) ** 2 - shared, 0.0)

    ratio = n / d
    low = ratio * math.exp(-math.sqrt(var(n, n_lo) + var(d, d_hi)))
    high = ratio * math.exp(math.sqrt(var(n, n_hi) + var(d, d_lo)))
    return low, high
