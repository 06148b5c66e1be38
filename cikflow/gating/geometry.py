"""Geometry of gates that no gate kind owns: dividers, outlines to draw, polygon tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Outline", "Threshold", "even_odd", "notched_polygon", "span_fraction"]


@dataclass(frozen=True)
class Threshold:
    """One divider of a gate along one dimension.

    Attributes
    ----------
    dimension : str
        Marker or detector.
    value : float or None
        Position in the dimension's transformed units (None: unset).
    side : {"min", "max", "at"}
        Which bound of a range gate it is; ``at`` for a quadrant divider.
    within : str
        The subset it divides when not the whole parent: ``CD3-`` for a CD56
        divider fitted within the CD3− side of a per-subset quadrant gate.
    upto : float or None
        Where that subset ends above it on its own dimension (transformed units):
        a notch lies below its quadrant gate's x divider. None: nowhere.
    """

    dimension: str
    value: float | None
    side: str
    within: str = ""
    upto: float | None = None

    @property
    def key(self) -> str:
        """Its name in ``Gate.with_thresholds``.

        The dimension, or ``"<dimension> within <subset>"`` for a per-subset divider.
        """
        return f"{self.dimension} within {self.within}" if self.within else self.dimension


@dataclass(frozen=True)
class Outline:
    """What to draw for a gate, in its axes' transformed units.

    Attributes
    ----------
    paths : list of (list of float, list of float)
        Polylines (x values, y values) on a 2-D plot; closed paths repeat the first point.
    marks : list of float
        Positions of vertical lines on a 1-D plot.
    spans : list of (float, float)
        Shaded intervals of a 1-D plot: the gate's inside.
    labels : list of (str, float, float)
        Population name and where to write it, as fractions of the plot's width
        and height (0 = left/bottom, 1 = right/top).
    """

    paths: list[tuple[list[float], list[float]]] = field(default_factory=list)
    marks: list[float] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)
    labels: list[tuple[str, float, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists only)."""
        return {
            "paths": [{"x": list(x), "y": list(y)} for x, y in self.paths],
            "marks": list(self.marks),
            "spans": [list(s) for s in self.spans],
            "labels": [{"name": n, "fx": fx, "fy": fy} for n, fx, fy in self.labels],
        }


def span_fraction(span: tuple[float, float], extent: tuple[float, float]) -> float:
    """Middle of ``span`` as a fraction of ``extent`` (clipped to the plot)."""
    lo, hi = extent
    if hi <= lo:
        return 0.5
    mid = (max(span[0], lo) + min(span[1], hi)) / 2
    return float(np.clip((mid - lo) / (hi - lo), 0.05, 0.95))


def even_odd(vertices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test of ``points`` (n × 2) against ``vertices`` (k × 2)."""
    x, y = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), dtype=bool)
    for (x1, y1), (x2, y2) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < xcross)
    return inside


def notched_polygon(
    *,
    x: tuple[float, float],
    y: tuple[float, float],
    far: tuple[float, float, float],
    high: bool,
) -> list[tuple[float, float]]:
    """A notched quadrant's x+, y+ (``high``) or x−, y+ quadrant as a polygon.

    ``x``: the x divider and the notch (the x divider of the y+ cells; at x: none);
    ``y``: the y divider within x− and within x+; ``far``: x below and x, y above every
    event. The notch below x moves the x−, y+ events above it to x+, y+ (which reaches
    left to it above the x− side's y divider); above x, the x+, y+ events below it to
    x−, y+ (which reaches right to it above the x+ side's y divider).

    Examples
    --------
    x at 2, the notch at 3, y at 2.5 within x− and 0.5 within x+: x−, y+ is L-shaped.

    >>> notched_polygon(x=(2, 3), y=(2.5, 0.5), far=(-9, 9, 9), high=False)
    [(-9.0, 2.5), (2.0, 2.5), (2.0, 0.5), (3.0, 0.5), (3.0, 9.0), (-9.0, 9.0)]
    >>> notched_polygon(x=(2, 3), y=(2.5, 0.5), far=(-9, 9, 9), high=True)
    [(3.0, 0.5), (9.0, 0.5), (9.0, 9.0), (3.0, 9.0)]
    """
    (x0, notch), (y_neg, y_pos), (near_x, far_x, far_y) = x, y, far
    if high and notch > x0:
        corners = [(notch, y_pos), (far_x, y_pos), (far_x, far_y), (notch, far_y)]
    elif high:
        corners = [
            (notch, y_neg if notch < x0 else y_pos),
            (x0, y_neg if notch < x0 else y_pos),
            (x0, y_pos),
            (far_x, y_pos),
            (far_x, far_y),
            (notch, far_y),
        ]
    elif notch > x0:
        corners = [(near_x, y_neg), (x0, y_neg), (x0, y_pos), (notch, y_pos), (notch, far_y)]
        corners.append((near_x, far_y))
    else:
        corners = [(near_x, y_neg), (notch, y_neg), (notch, far_y), (near_x, far_y)]
    out = [corners[0]]
    for c in corners[1:]:  # equal dividers: drop the repeated corner
        if c != out[-1]:
            out.append(c)
    return [(float(a), float(b)) for a, b in out]
