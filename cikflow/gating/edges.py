"""Where a divider counts a smearing positive population right: the count-balanced edge.

A positive population that smears down into the negatives (CD3-dim activated T
cells: 10 % of them down-regulated 3- to 25-fold) leaves no clean valley. The density
minimum then sits somewhere in a flat stretch, and every positive cell below it is
lost. The best a single divider can do for a *count* is to lose as many positives
below it as it takes negatives above it: the errors cancel. This module finds that
place from the density alone.

The negative population is modelled by the one part of it a positive smear does not
reach: its peak. Its upper half is taken as a Gaussian whose width is the distance
from the mode to where the density falls to half the mode's height (on real and
simulated compensated data the negatives' lower half is the wider one: compensation
spreads them below zero, where the logicle scale is linear, so mirroring it
over-states the negatives above the mode). Density above that Gaussian, between the
mode and a divider, is positives the divider counts negative; the Gaussian's mass
above the divider is negatives it counts positive.

No library offers this: it is a few lines on the binned density the valley fit
already computed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["balanced_edge", "negative_mode"]


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
        The first index in ``[max(start, mode + 1), valley]`` where the density in
        excess of the negatives' Gaussian, summed from the mode up to it, reaches the
        Gaussian's mass above it; ``valley`` when there is none.

    Examples
    --------
    Negatives N(0, 0.1) (100 %) and a flat smear of 10 % of as many events over
    [0.3, 0.8]: the excess below ``t`` is ≈ 0.2 × (t − 0.3) and the negatives above it
    ``1 − Φ(t / 0.1)``; they balance near 0.31, where the smear begins.

    >>> x = np.linspace(-0.5, 1.0, 601)
    >>> neg = np.exp(-(x**2) / 0.02) / np.sqrt(0.02 * np.pi)
    >>> d = neg + np.where((x >= 0.3) & (x <= 0.8), 0.2, 0.0)
    >>> round(float(x[balanced_edge(x, d, valley=520, start=0)]), 2)
    0.31
    """
    mode = negative_mode(density, valley)
    half = mode
    while half < len(x) - 1 and density[half] > density[mode] / 2:
        half += 1
    sigma = max(float(x[half] - x[mode]), float(x[1] - x[0])) / np.sqrt(2 * np.log(2))
    above_mode = x >= x[mode]
    negatives = np.where(
        above_mode, density[mode] * np.exp(-((x - x[mode]) ** 2) / (2 * sigma**2)), 0.0
    )
    excess = np.where(x > x[mode], np.maximum(density - negatives, 0.0), 0.0)
    positives_below = np.cumsum(excess)
    negatives_above = np.cumsum(negatives[::-1])[::-1]
    for i in range(max(mode + 1, start), valley + 1):
        if positives_below[i] >= negatives_above[i]:
            return i
    return valley
