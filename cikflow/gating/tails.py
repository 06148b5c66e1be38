"""How many positives a divider in the right place still counts negative: the hidden tail.

A positive population that smears down into its negatives (CD56 on CIK cells: a
dim smear rising out of the T cells) has a tail *below* any divider in the valley
between them, so the count above the divider is low even when the divider sits
where it should. :func:`hidden_below` estimates that tail from the positives above
the divider; :mod:`cikflow.uncertainty` widens the intervals by it and
:mod:`cikflow.gating.confidence` flags it (``hidden_tail``) where it exceeds what a
release tolerates.

A positive population may also smear down as a flat *shoulder* rather than a
Gaussian flank (CD3-dim activated T cells: a share of them down-regulated CD3 by
any factor over a wide range, so their density in the transformed scale is a
plateau reaching into the negatives). :func:`shoulder_below` continues that
plateau below the divider down to where the negatives begin, and
:func:`spill_above` gives the other side of that divider: the negatives' upper
tail above it, what it counts positive.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize
from scipy.stats import norm

from cikflow.gating.edges import TAIL_END, negative_mode, smear_level
from cikflow.gating.methods import smoothed_density

__all__ = ["TAIL_MIN_EVENTS", "hidden_below", "shoulder_below", "spill_above", "tail_below"]

#: fewest events above a divider to fit their tail below it
TAIL_MIN_EVENTS = 50


def _spread(log_sd: float) -> float:
    """A fitted log-spread as a spread, within exp(±14).

    The simplex may try spreads far below any kernel width, or ones that overflow exp.
    """
    return math.exp(min(max(log_sd, -14.0), 14.0))


def _events_density(
    values: np.ndarray, threshold: float, *, bandwidth: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """The events' density around a divider: grid, events per transformed unit, its index.

    The grid reaches four kernel widths beyond the events and the threshold, in bins of a
    quarter kernel width (256 to 4,096 of them).
    """
    lo = min(float(values.min()), threshold) - 4 * bandwidth
    hi = max(float(values.max()), threshold) + 4 * bandwidth
    bins = int(min(4096, max(256, np.ceil((hi - lo) / (bandwidth / 4)))))
    x, density = smoothed_density(values, lo=lo, hi=hi, bins=bins, bandwidth=bandwidth)
    i = int(np.clip(np.searchsorted(x, threshold), 0, len(x) - 1))
    return x, density * values.size, i


def hidden_below(
    values: np.ndarray, threshold: float, *, bandwidth: float = 0.012, ceiling: float | None = None
) -> float:
    """Events of the population above a divider that its tail puts below it.

    The events at or above ``threshold`` are taken as the upper part of one
    Gaussian (transformed units) and its mean and SD fitted by maximum likelihood
    of that truncated sample (binned at a quarter of ``bandwidth``); its mass below
    the threshold, scaled to their number, is the estimate. A smear that is no
    Gaussian (a dim shoulder, a second bright population) could make that tail
    long, so it is capped by what the valley can hold if the positives' density
    does not rise below the divider: the density at the threshold times the
    distance down to the highest density below it (the negatives' mode), and by
    the events below.

    No library fits a Gaussian to a sample truncated at a known point; the
    likelihood is a few lines on :mod:`scipy.stats`, minimised by
    :func:`scipy.optimize.minimize` (Nelder–Mead from a fixed start: deterministic).

    Parameters
    ----------
    values : numpy.ndarray
        The divider's parent events (transformed units).
    threshold : float
        The divider (transformed units); events at or above it are the positives.
    bandwidth : float
        Kernel width of the density read at the threshold (transformed units).
    ceiling : float, optional
        Where the events end above the threshold (transformed units): the fitted
        Gaussian is then cut on both sides (a notch's events stop at the x divider).

    Returns
    -------
    float
        Estimated positives below the threshold (events); 0 with fewer than
        :data:`TAIL_MIN_EVENTS` events above it or none below.

    Examples
    --------
    Positives N(0.6, 0.15) and negatives N(0, 0.05), 10,000 each, divider at 0.35:
    Φ((0.35 − 0.6) / 0.15) = 4.8 % of the positives (≈ 478) lie below it.

    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0.6, 0.15, 10000), rng.normal(0, 0.05, 10000)])
    >>> 400 < hidden_below(x, 0.35) < 560
    True
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    upper = values[values >= threshold]
    n_below = values.size - upper.size
    if upper.size < TAIL_MIN_EVENTS or n_below == 0 or float(upper.std()) <= 0:
        return 0.0
    # the positives binned at a quarter of the kernel width: the likelihood costs the
    # same on a million events as on a thousand
    width = max(bandwidth / 4, float(upper.max() - threshold) / 4096)  # ≤ 4,096 bins
    edges = threshold + width * np.arange(int(np.ceil((upper.max() - threshold) / width)) + 2)
    counts, _ = np.histogram(upper, bins=edges)
    lo_edge, hi_edge, counts = edges[:-1][counts > 0], edges[1:][counts > 0], counts[counts > 0]

    def nll(p: np.ndarray) -> float:
        mu, sd = float(p[0]), _spread(float(p[1]))
        # each bin's mass, from whichever side of the mean keeps its precision
        mass = np.where(
            lo_edge > mu,
            norm.sf(lo_edge, mu, sd) - norm.sf(hi_edge, mu, sd),
            norm.cdf(hi_edge, mu, sd) - norm.cdf(lo_edge, mu, sd),
        )
        if ceiling is None:
            kept = upper.size * norm.logsf(threshold, mu, sd)
        else:  # cut on both sides
            within = norm.cdf(ceiling, mu, sd) - norm.cdf(threshold, mu, sd)
            kept = upper.size * math.log(max(float(within), 1e-300))
        return -float((counts * np.log(np.maximum(mass, 1e-300))).sum() - kept)

    start = np.array([float(np.median(upper)), math.log(float(upper.std()))])
    mu, log_sd = minimize(nll, start, method="Nelder-Mead").x
    sd = _spread(float(log_sd))
    top = 0.0 if ceiling is None else float(norm.sf(ceiling, mu, sd))
    kept = max(float(norm.sf(threshold, mu, sd)) - top, 1e-12)
    tail = upper.size * float(norm.cdf(threshold, mu, sd)) / kept
    x, density, i = _events_density(values, threshold, bandwidth=bandwidth)
    mode = int(np.argmax(density[: i + 1]))
    floor = float(density[i]) * float(x[i] - x[mode]) if mode < i else n_below
    return max(min(tail, floor, float(n_below)), 0.0)


def shoulder_below(
    values: np.ndarray, threshold: float, *, bandwidth: float = 0.012, lowest: float | None = None
) -> float:
    """Events of a flat shoulder above a divider that continue below it.

    The shoulder's level is the lowest density between the threshold and the
    positives' mode above it (events per transformed unit). It is continued flat
    below the threshold down to where the negatives begin: the point above their
    mode (:func:`cikflow.gating.edges.negative_mode`) where their density has
    fallen half-way from the mode's down to the shoulder's level (their half height
    above the shoulder they stand on; half the mode's alone would run far into a
    shoulder almost as dense), or ``lowest`` if that is higher.
    Where the negatives' mode rises no more than :data:`cikflow.gating.edges.TAIL_END`
    times above the shoulder's level, or the density does not fall half-way before the
    threshold (no negative population of its own below it: few CD3− cells by day 21,
    the smear itself the highest density there), the shoulder reaches down to
    ``lowest``; without ``lowest``, it is not continued at all. A deep valley has a
    low floor, so a small shoulder. (:func:`cikflow.gating.edges.balanced_edge` still
    ends the smear at half the negatives' own height, or where their lower flank,
    mirrored, ends: with this end the CD3 divider fell to its search bound on
    ``realistic`` days 14 and 21, counting NK cells' CD3 background as CIK, until the
    divider is fitted on each CD56 side apart.)

    No library models a plateau's continuation; it is a few lines on the binned
    density :func:`cikflow.gating.methods.smoothed_density` gives.

    Parameters
    ----------
    values : numpy.ndarray
        The divider's parent events (transformed units).
    threshold : float
        The divider (transformed units).
    bandwidth : float
        Kernel width of the density (transformed units).
    lowest : float, optional
        Lowest point the shoulder may reach (transformed units): the divider's own
        search bound, the lowest place its template lets a divider be.

    Returns
    -------
    float
        Estimated events of the shoulder below the threshold, at most the events
        below it; 0 with fewer than :data:`TAIL_MIN_EVENTS` events above it.

    Examples
    --------
    Negatives N(0, 0.05) and positives N(0.7, 0.05), 10,000 each, and a plateau of
    3,000 events evenly over [0.1, 0.7] (5,000 per unit), 1,000 of them below a
    divider at 0.3. Continued from 0.3 down to the negatives' half height above the
    plateau, (79,788 + 5,000) / 2 at 0.056:

    >>> rng = np.random.default_rng(0)
    >>> plateau = rng.uniform(0.1, 0.7, 3000)
    >>> x = np.concatenate([rng.normal(0, 0.05, 10000), rng.normal(0.7, 0.05, 10000), plateau])
    >>> 900 < shoulder_below(x, 0.3) < 1200
    True

    With 300 negatives only, the plateau is the highest density below the divider;
    it is continued down to ``lowest``:

    >>> y = np.concatenate([rng.normal(0, 0.05, 300), rng.normal(0.7, 0.05, 10000), plateau])
    >>> shoulder_below(y, 0.3)
    0.0
    >>> 800 < shoulder_below(y, 0.3, lowest=0.1) < 1100
    True
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n_above = int(np.count_nonzero(values >= threshold))
    n_below = values.size - n_above
    if n_above < TAIL_MIN_EVENTS or n_below == 0:
        return 0.0
    x, density, i = _events_density(values, threshold, bandwidth=bandwidth)
    _, level = smear_level(density, i)
    mode = negative_mode(density, i)  # not a bump of the smear above the negatives
    # the negatives' half height above the shoulder they stand on; a mode no clearer
    # above the shoulder than its own noise is the shoulder's, no negatives of their own
    half = mode if density[mode] > TAIL_END * level else i
    while half < i and density[half] > (density[mode] + level) / 2:
        half += 1
    if half < i:
        end = float(x[half]) if lowest is None else max(float(x[half]), lowest)
    elif lowest is not None:
        end = lowest
    else:
        return 0.0
    return min(level * max(threshold - end, 0.0), float(n_below))


def spill_above(values: np.ndarray, threshold: float, *, bandwidth: float = 0.012) -> float:
    """Events of the negatives' upper tail at or above a divider in a smear.

    The smear's level is taken as in :func:`shoulder_below` (the lowest density
    between the threshold and the positives' mode above it); the density above
    that level, from the threshold up to where it has come down within
    :data:`cikflow.gating.edges.TAIL_END` of it, is the negatives' tail the
    divider counts positive. At the count-balanced edge
    (:func:`cikflow.gating.edges.balanced_edge`) it about equals the shoulder below.

    No library models a smear's floor; it is a few lines on the binned density
    :func:`cikflow.gating.methods.smoothed_density` gives.

    Parameters
    ----------
    values : numpy.ndarray
        The divider's parent events (transformed units).
    threshold : float
        The divider (transformed units).
    bandwidth : float
        Kernel width of the density (transformed units).

    Returns
    -------
    float
        Estimated negatives at or above the threshold (events), at most the events
        there; 0 with fewer than :data:`TAIL_MIN_EVENTS` events on either side.

    Examples
    --------
    Negatives N(0, 0.05) (10,000), a plateau of 3,000 events evenly over [0, 0.6]
    (5,000 per unit) and positives N(0.7, 0.05) (10,000); a divider at 0.1 (two of
    the negatives' SDs up) counts 1 − Φ(2) = 2.3 % of them, ≈ 228, positive:

    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 0.05, 10000), rng.uniform(0, 0.6, 3000),
    ...                     rng.normal(0.7, 0.05, 10000)])
    >>> 150 < spill_above(x, 0.1) < 320
    True
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n_above = int(np.count_nonzero(values >= threshold))
    if n_above < TAIL_MIN_EVENTS or values.size - n_above < TAIL_MIN_EVENTS:
        return 0.0
    x, density, i = _events_density(values, threshold, bandwidth=bandwidth)
    top, level = smear_level(density, i)
    end = i + int(np.argmax(density[i : top + 1] <= TAIL_END * level))
    excess = np.maximum(density[i:end] - level, 0.0)
    return min(float(excess.sum()) * float(x[1] - x[0]), float(n_above))


def tail_below(
    values: np.ndarray,
    threshold: float,
    *,
    bandwidth: float = 0.012,
    ceiling: float | None = None,
    shoulder: bool = False,
    lowest: float | None = None,
) -> float:
    """Positives below a divider: the Gaussian tail, or a smear's shoulder if larger.

    Parameters
    ----------
    values, threshold, bandwidth, ceiling
        As for :func:`hidden_below`.
    shoulder : bool
        The positives smear down as a flat shoulder (a ``negative_edge`` divider):
        take :func:`shoulder_below` where it is the larger.
    lowest : float, optional
        As for :func:`shoulder_below`.

    Returns
    -------
    float
        Estimated positives below the threshold (events).
    """
    tail = hidden_below(values, threshold, bandwidth=bandwidth, ceiling=ceiling)
    if not shoulder:
        return tail
    return max(tail, shoulder_below(values, threshold, bandwidth=bandwidth, lowest=lowest))
