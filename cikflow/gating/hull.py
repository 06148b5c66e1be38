"""Convex gate outlines that do not swallow a neighbouring population.

A fitted 2-D gate (:class:`cikflow.gating.shapes.BlobGate`) is the convex hull of
the grid points where its population's mixture components win; GatingML 2.0
polygons are drawn from it. A broad member component (scattered background events)
may win on both sides of a small neighbouring component (monocytes beside the
lymphocytes), leaving that neighbour as a hole in the region, which the hull fills.
:func:`cut_enclosed` cuts such a neighbour off with a straight line at the
mixture's decision boundary between it and the population, so the outline stays one
convex polygon. Written here because neither scipy's hulls nor scikit-learn's
mixtures know which component a hole belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["cut_enclosed", "inside_hull", "population_region"]


def population_region(
    points: np.ndarray, *, gmm: Any, members: np.ndarray, main: int, level: float, cut: bool
) -> tuple[np.ndarray, list[int]]:
    """The grid points of a mixture population's region, and the components cut off.

    The region is where the members' posterior is at least 0.5 and a member's
    ``level`` contour holds the point; with ``cut``, :func:`cut_enclosed` then
    cuts off the other components its convex hull would enclose.

    Parameters
    ----------
    points : numpy.ndarray
        (n, 2) grid points (the fit's units).
    gmm : sklearn.mixture.GaussianMixture
        The fitted mixture (full covariances).
    members : numpy.ndarray
        The population's components.
    main : int
        Its main component.
    level : float
        Probability mass of a component inside its contour.
    cut : bool
        Cut off enclosed components.

    Returns
    -------
    tuple
        The region's points, and the components cut off (empty without ``cut``).
    """
    posterior = gmm.predict_proba(points)[:, members].sum(axis=1)
    radius2 = -2.0 * np.log(1.0 - level)  # chi-square quantile, 2 degrees of freedom
    inside = np.zeros(len(points), dtype=bool)
    for k in members:
        d = points - gmm.means_[k]
        inside |= np.einsum("ij,jk,ik->i", d, np.linalg.inv(gmm.covariances_[k]), d) <= radius2
    region = points[(posterior >= 0.5) & inside]
    if not cut:
        return region, []
    return cut_enclosed(
        region, means=gmm.means_, posterior=gmm.predict_proba, members=members, main=main
    )


def inside_hull(points: np.ndarray, point: np.ndarray) -> bool:
    """Whether ``point`` lies inside (or on) the convex hull of ``points``.

    Parameters
    ----------
    points : numpy.ndarray
        (n, 2) points, n ≥ 3, not all on one line.
    point : numpy.ndarray
        (2,) the point to test (same units).

    Returns
    -------
    bool

    Examples
    --------
    >>> square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    >>> inside_hull(square, np.array([0.5, 0.5])), inside_hull(square, np.array([2.0, 0.5]))
    (True, False)
    """
    from scipy.spatial import ConvexHull, QhullError

    try:
        equations = ConvexHull(points).equations  # outward normals: n·x + c ≤ 0 inside
    except QhullError:  # all points on one line: no inside
        return False
    at = equations[:, :2] @ np.asarray(point, dtype=float) + equations[:, 2]
    return bool(np.all(at <= 1e-12))


def cut_enclosed(
    region: np.ndarray,
    *,
    means: np.ndarray,
    posterior: Callable[[np.ndarray], np.ndarray],
    members: Sequence[int],
    main: int,
    steps: int = 200,
) -> tuple[np.ndarray, list[int]]:
    """Cut from a gate region every other component its convex hull would enclose.

    For each component that is not a member and whose mean lies inside the
    region's convex hull, the segment from the main component's mean to its mean
    is followed to the first point where that component's posterior exceeds the
    members' together; region points on the far side of the line through that
    point, perpendicular to the segment, are dropped.

    Parameters
    ----------
    region : numpy.ndarray
        (n, 2) grid points of the population's region (the fit's units).
    means : numpy.ndarray
        (k, 2) the mixture's component means.
    posterior : callable
        Points (m, 2) → (m, k) component posteriors (``GaussianMixture.predict_proba``).
    members : sequence of int
        The population's components.
    main : int
        Its main component.
    steps : int
        Points along each segment.

    Returns
    -------
    tuple
        The region points kept, and the components cut off.

    Examples
    --------
    A population on both sides of a small component at (2, 0), which wins for
    1 < x < 3, keeps only the grid points up to that boundary (x ≤ 1):

    >>> grid = np.array([[x, y] for x in np.linspace(-1, 3, 9) for y in (-1.0, 1.0)])
    >>> means = np.array([[0.0, 0.0], [2.0, 0.0]])
    >>> def posterior(p):
    ...     near = (np.abs(p[:, 0] - 2.0) < 1.0).astype(float)
    ...     return np.column_stack([1 - near, near])
    >>> kept, cut = cut_enclosed(grid, means=means, posterior=posterior, members=[0], main=0)
    >>> float(kept[:, 0].max()), cut
    (1.0, [1])
    """
    kept = np.asarray(region, dtype=float)
    cut = []
    own = list(members)
    for k in range(len(means)):
        if k in own or len(kept) < 3 or not inside_hull(kept, means[k]):
            continue
        direction = means[k] - means[main]
        path = means[main] + np.linspace(0.0, 1.0, steps)[:, None] * direction
        post = posterior(path)
        wins = np.flatnonzero(post[:, k] > post[:, own].sum(axis=1))
        if not wins.size:
            continue
        kept = kept[(kept - path[wins[0]]) @ direction < 0]
        cut.append(k)
    return kept, cut
