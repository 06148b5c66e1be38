"""Where a divider counts a smearing positive population right: the count-balanced edge.

A positive population that smears down into the negatives (CD3-dim activated T
cells: 10 % of them down-regulated 3- to 25-fold) leaves no clean valley. The density
minimum then sits somewhere in a flat stretch, and every positive cell below it is
lost. The best a single divider can do for a *count* is to lose as many positives
below it as it takes negatives above it: the errors cancel. This module finds that
place from the density alone.

The positives' smear is modelled as the flat stretch it makes: its level is the
density's floor between the valley and the positives' peak, and it is taken to
continue at that level down to where the negatives begin (the point above their
mode where their density has fallen to half the mode's, :func:`negatives_begin`), the
same continuation :func:`cikflow.gating.tails.shoulder_below` gives the intervals.
Positives a divider counts negative are that level times the stretch from there up
to the divider; the negatives it counts positive are the density above the level
between the divider and the valley. An earlier model took the negatives' upper half
as a Gaussian of their peak's half-height width; the negatives' upper flank is
steeper than that (several CD3− populations side by side make a flat-topped peak),
so it put three times as many negatives above a divider as there were and stopped the
divider high, in the smear (T 1.5 points low on ``realistic`` day-0 tubes).

Where a smear as dense as the negatives' peak stands on their upper flank (by day 21,
CD3-dim T cells outnumber the few CD3− cells left), that flank never falls to half
before the valley, and it is taken as the mirror of the lower one. The divider used to
stay at the valley there (or at the template's fallback, without one), in the smear:
T more than 2 points low on 19 of 120 ``realistic`` tubes, 18 of them on day 21, by up
to 13.9 points.

No library offers this: it is a few lines on the binned density the valley fit
already computed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TAIL_END", "balanced_edge", "negative_mode", "negatives_begin", "smear_level"]

#: the negatives' tail ends where the density is within this factor of the smear's level
TAIL_END = 1.25


def negative_mode(density: np.ndarray, valley: int) -> int:
    """The negative population's mode: the lowest clear mode at or below ``valley``.

    A clear mode is a local maximum over ±5 grid points at least half as high as the
    highest point at or below the valley (a positive smear may be higher than a small
    negative peak, and is not a mode of its own).

    Parameters
    ----------
    density : numpy.ndarray
        Density on an even grid.
    valley : int
        Grid index above which the search does not go.

    Returns
    -------
    int
        Grid index of the mode.

    Examples
    --------
    A negative peak of 3 and a brighter positive one of 5, eleven points apart:

    >>> negative_mode(np.array([0, 1, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 4, 5, 4, 2, 0.0]), 17)
    2
    """
    below = density[: valley + 1]
    peaks = [
        i
        for i in range(valley + 1)
        if below[i] == below[max(0, i - 5) : i + 6].max() and below[i] >= 0.5 * below.max()
    ]
    return peaks[0] if peaks else int(np.argmax(below))


def negatives_begin(density: np.ndarray, valley: int) -> int | None:
    """Where the negatives' upper flank ends: half their mode's height above it.

    The density above the negatives' mode (:func:`negative_mode`) falls to half the
    mode's there. Where it does not before ``valley`` (a smear as dense as the
    negatives' peak stands on its upper flank: the CD3-dim T cells by day 21, when
    few CD3− cells are left), the flank is taken as the mirror of the lower one, which
    no smear reaches: as far above the mode as the density below it falls to half.

    Parameters
    ----------
    density : numpy.ndarray
        Density on an even grid.
    valley : int
        Grid index the flank may not reach.

    Returns
    -------
    int or None
        Grid index; None where neither flank ends before the grid's end or
        ``valley`` (no negative population of its own).

    Examples
    --------
    A negative peak of 4 whose upper flank falls to half (2) two points above it:

    >>> negatives_begin(np.array([0, 1, 2, 4, 3, 2, 1, 1, 3, 5, 3.0]), 10)
    5

    The same peak with a smear of 3 on its upper flank: its lower flank falls to
    half one point below it, so it ends one point above:

    >>> negatives_begin(np.array([0, 1, 2, 4, 3, 3, 3, 3, 3, 5, 3.0]), 10)
    4
    """
    mode = negative_mode(density, valley)
    half = mode
    while half < valley and density[half] > density[mode] / 2:
        half += 1
    if half < valley:
        return half
    low = mode
    while low > 0 and density[low] > density[mode] / 2:
        low -= 1
    half = 2 * mode - low
    if density[low] > density[mode] / 2 or half >= valley:
        return None
    return half


def smear_level(density: np.ndarray, start: int) -> tuple[int, float]:
    """The positives' mode above ``start`` and the smear's level: the lowest density up to it.

    Examples
    --------
    >>> smear_level(np.array([5.0, 2, 1, 1.5, 1.2, 4, 6, 3]), 2)
    (6, 1.0)
    """
    top = start + int(np.argmax(density[start:]))
    return top, float(density[start : top + 1].min())


def balanced_edge(x: np.ndarray, density: np.ndarray, *, valley: int, start: int) -> int:
    """The grid index where the positives below equal the negatives above.

    Parameters
    ----------
    x, density : numpy.ndarray
        Even grid (transformed units) and the density on it
        (:func:`cikflow.gating.methods.smoothed_density`).
    valley : int
        Index of the valley (or fallback) the edge may not exceed.
    start : int
        Index of the search range's lower bound the edge may not go below.

    Returns
    -------
    int
        The first index ``i`` in ``[max(start, half), valley]`` where the smear's
        level (the lowest density from the valley up to the positives' peak) times
        ``x[i] − x[half]`` reaches the density in excess of that level from ``i`` up
        to the valley; ``half`` is where the negatives begin
        (:func:`negatives_begin`). ``valley`` when there is none, or when the
        negatives have no peak of their own below the valley.

    Examples
    --------
    Negatives N(0, 0.1) (100 %) and a flat smear of 1/7 of their events per unit from
    0.1 up (the positives' peak lies beyond the grid). The smear's level is 1/7, and
    the density falls to half its mode at 0.124. At ``t`` the smear below counts
    (t − 0.124) / 7 and the negatives above it ``1 − Φ(t / 0.1)``; the two meet near
    0.22 (≈ 0.014 of the events each way).

    >>> x = np.linspace(-0.5, 1.0, 601)
    >>> neg = np.exp(-(x**2) / 0.02) / np.sqrt(0.02 * np.pi)
    >>> d = neg + np.where(x >= 0.1, 1 / 7, 0.0)
    >>> round(float(x[balanced_edge(x, d, valley=520, start=0)]), 2)
    0.22
    """
    half = negatives_begin(density, valley)
    if half is None:
        return valley
    _, level = smear_level(density, valley)
    step = float(x[1] - x[0])
    # the negatives' tail ends where the density has come down to the smear (a quarter
    # above its floor): beyond, the excess is the smear's own noise, not negatives
    end = half + int(np.argmax(density[half : valley + 1] <= TAIL_END * level))
    if density[end] > TAIL_END * level:
        end = valley
    excess = np.maximum(density[: end + 1] - level, 0.0)
    negatives_above = np.r_[np.cumsum(excess[::-1])[::-1], np.zeros(valley - end)] * step
    for i in range(max(half, start), valley + 1):
        if level * float(x[i] - x[half]) >= negatives_above[i]:
            return i
    return valley
