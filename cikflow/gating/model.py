"""What a gate is: one small typed class per gate kind, in marker space.

This is the one module that knows the kinds of gate. Every other part of
cikflow — the template builder, the fits, the cluster labelling, the plots, the
gate table and the exchange formats — asks a :class:`Gate` what it needs:

* its dimensions (:attr:`Gate.dims`) and the populations it defines
  (:meth:`Gate.populations`: a quadrant gate defines one per quadrant);
* its one-threshold dividers (:meth:`Gate.thresholds`), and the same gate with
  other thresholds (:meth:`Gate.with_thresholds`) — what the data-driven fits
  and the cluster labelling move;
* membership of points given their transformed values (:meth:`Gate.members`),
  with GatingML 2.0 semantics (range minimum inclusive, maximum exclusive);
* an outline to draw within given axis ranges (:meth:`Gate.outline`);
* its flowkit gate (:meth:`Gate.to_flowkit`) and back
  (:func:`cikflow.gating.imported.from_flowkit`);
* the template fields a reviewer may set for one sample (:attr:`Gate.settable`).

A gate's coordinates are held in the *transformed* scale of its dimensions,
the scale in which GatingML 2.0 applies them and in which plots are drawn.
Templates write data units; :func:`from_spec` converts them with the caller's
``scale`` (the same flowkit transforms that gate the events).

Adding a gate kind means one class here plus its schema entry; see
:class:`EllipseGate` in the tests for an example written outside the package.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from cikflow.exceptions import GatingTemplateError
from cikflow.gating.geometry import (
    Outline,
    Threshold,
    even_odd,
    notched_polygon,
    span_fraction,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import flowkit

__all__ = [
    "KINDS",
    "BooleanGate",
    "Gate",
    "Outline",
    "PolygonGate",
    "QuadrantGate",
    "RangeGate",
    "RectangleGate",
    "SplitQuadrantGate",
    "Threshold",
    "from_spec",
    "register",
]

#: a bound, a vertex coordinate or a threshold in transformed units; None = unbounded
Bound = float | None


@dataclass(frozen=True)
class Gate:
    """A gate of a gating tree, in marker space.

    Attributes
    ----------
    name : str
        Gate name (unique in its tree).
    parent : str
        Parent population (``root`` at the top).
    method : str
        ``static``, or the data-driven method that places it per sample
        (:mod:`cikflow.gating.registry`).
    complement : bool
        Whether the gate holds the events outside its shape.
    """

    name: str
    parent: str
    method: str = "static"
    complement: bool = False
    #: template ``type`` of this gate class
    kind: ClassVar[str] = ""
    settable: ClassVar[tuple[str, ...]] = ()  # fields a reviewer's override may set
    refits_unset: ClassVar[bool] = False  # an override's unset dividers are refitted

    @property
    def dims(self) -> tuple[str, ...]:
        """Dimensions (markers or detectors), x first."""
        return ()

    def populations(self) -> list[tuple[str, str]]:
        """(population, kind of row) the gate defines: itself, or one per quadrant."""
        return [(self.name, self.kind)]

    @property
    def counts_on_parent(self) -> bool:
        """Whether its events are drawn from its parent's (all kinds but Boolean)."""
        return True

    @property
    def references(self) -> tuple[str, ...]:
        """Other gates its membership is computed from (Boolean gates)."""
        return ()

    def thresholds(self) -> list[Threshold]:
        """The one-threshold dividers a fit or a cluster labelling may move."""
        return []

    def with_thresholds(self, values: Mapping[str, float]) -> Gate:
        """The same gate with the thresholds in ``values`` moved.

        Keyed by :attr:`Threshold.key`; a dimension's name also moves its per-subset dividers.
        """
        return self

    def population_path(self, path: tuple[str, ...]) -> tuple[str, ...]:
        """Gate path of the populations it defines besides itself, given its own path."""
        return (*path, self.name)

    def subset(
        self, threshold: Threshold, values: Mapping[str, np.ndarray], *, parent: np.ndarray
    ) -> np.ndarray:
        """The points one of its thresholds divides: the parent, or a subset of it."""
        return parent

    def negative_pairs(self) -> list[tuple[str, str, str]]:
        """Pairs of populations both negative in a dimension, one positive in another.

        ``(population, population, dimension)``; correctly compensated, their medians agree.
        """
        return []

    def members(
        self,
        values: Mapping[str, np.ndarray],
        *,
        parent: np.ndarray,
        populations: Mapping[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """Membership of points (parent applied) for every population the gate defines.

        Parameters
        ----------
        values : mapping of str to numpy.ndarray
            Dimension → the points' transformed values.
        parent : numpy.ndarray
            Boolean membership of the points in the gate's parent.
        populations : mapping of str to numpy.ndarray
            Memberships known so far (for Boolean gates).
        """
        raise NotImplementedError

    def outline(self, extent: Sequence[tuple[float, float]]) -> Outline:
        """What to draw within ``extent`` (one (low, high) per dimension, transformed units)."""
        return Outline()

    def to_flowkit(
        self,
        *,
        dimension: Callable[..., flowkit.Dimension],
        divider: Callable[[str, str, float], Any],
        paths: Mapping[str, tuple[str, ...]],
    ) -> Any:
        """The flowkit gate (GatingML 2.0), coordinates in transformed units.

        A gate one GatingML gate cannot express gives the list of plain gates of its
        populations, added at :meth:`population_path`.

        Parameters
        ----------
        dimension : callable
            ``dimension(dim, low, high)`` → ``flowkit.Dimension`` of the gate's
            dimension ``dim`` with that range (transformed units, None = open).
        divider : callable
            ``divider(id, dim, value)`` → ``flowkit.QuadrantDivider``.
        paths : mapping of str to tuple of str
            Gate name → its gate path (for Boolean references).
        """
        raise NotImplementedError


@dataclass(frozen=True)
class RangeGate(Gate):
    """Events within a range in each of its dimensions (GatingML rectangle gate).

    Attributes
    ----------
    bounds : tuple of (str, float or None, float or None)
        (dimension, minimum, maximum) in transformed units; None is open.
    """

    bounds: tuple[tuple[str, Bound, Bound], ...] = ()
    kind: ClassVar[str] = "range"
    settable: ClassVar[tuple[str, ...]] = ("dimensions",)

    @property
    def dims(self) -> tuple[str, ...]:
        """As :attr:`Gate.dims`."""
        return tuple(d for d, _, _ in self.bounds)

    def thresholds(self) -> list[Threshold]:
        """As :meth:`Gate.thresholds`."""
        if len(self.bounds) != 1:
            return []
        dim, lo, hi = self.bounds[0]
        if (lo is None) == (hi is None):
            return []
        return [Threshold(dim, lo, "min") if lo is not None else Threshold(dim, hi, "max")]

    def with_thresholds(self, values: Mapping[str, float]) -> RangeGate:
        """As :meth:`Gate.with_thresholds`."""
        bounds = []
        for dim, lo, hi in self.bounds:
            if dim in values and self.thresholds():
                side = self.thresholds()[0].side
                lo, hi = (values[dim], hi) if side == "min" else (lo, values[dim])
            bounds.append((dim, lo, hi))
        return replace(self, bounds=tuple(bounds))

    def members(
        self,
        values: Mapping[str, np.ndarray],
        *,
        parent: np.ndarray,
        populations: Mapping[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """As :meth:`Gate.members`."""
        inside = parent.copy()
        for dim, lo, hi in self.bounds:
            v = values[dim]
            if lo is not None:
                inside &= v >= lo
            if hi is not None:
                inside &= v < hi
        if self.complement:
            inside = parent & ~inside
        return {self.name: inside}

    def outline(self, extent: Sequence[tuple[float, float]]) -> Outline:
        """As :meth:`Gate.outline`."""
        if len(self.bounds) == 1:
            (_, lo, hi), (elo, ehi) = self.bounds[0], extent[0]
            marks = [v for v in (lo, hi) if v is not None]
            span = (elo if lo is None else lo, ehi if hi is None else hi)
            label = (self.name, span_fraction(span, extent[0]), 0.95)
            return Outline(marks=marks, spans=[span], labels=[label])
        (_, x0, x1), (_, y0, y1) = self.bounds[0], self.bounds[1]
        (xlo, xhi), (ylo, yhi) = extent[0], extent[1]
        x0, x1 = (xlo if x0 is None else x0), (xhi if x1 is None else x1)
        y0, y1 = (ylo if y0 is None else y0), (yhi if y1 is None else y1)
        return Outline(paths=[([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0])])

    def to_flowkit(
        self,
        *,
        dimension: Callable[..., flowkit.Dimension],
        divider: Callable[[str, str, float], Any],
        paths: Mapping[str, tuple[str, ...]],
    ) -> Any:
        """As :meth:`Gate.to_flowkit`."""
        import flowkit as fk

        dims = [dimension(d, lo, hi) for d, lo, hi in self.bounds]
        return fk.gates.RectangleGate(self.name, dims, use_complement=self.complement)


@dataclass(frozen=True)
class RectangleGate(RangeGate):
    """A range gate written as ``type: rectangle`` (the same semantics)."""

    kind: ClassVar[str] = "rectangle"


@dataclass(frozen=True)
class PolygonGate(Gate):
    """Events inside a polygon of two dimensions.

    Attributes
    ----------
    xdim, ydim : str
        Dimensions.
    vertices : tuple of (float, float)
        Vertices in transformed units.
    """

    xdim: str = ""
    ydim: str = ""
    vertices: tuple[tuple[float, float], ...] = ()
    kind: ClassVar[str] = "polygon"
    settable: ClassVar[tuple[str, ...]] = ("vertices",)

    @property
    def dims(self) -> tuple[str, ...]:
        """As :attr:`Gate.dims`."""
        return (self.xdim, self.ydim)

    def members(
        self,
        values: Mapping[str, np.ndarray],
        *,
        parent: np.ndarray,
        populations: Mapping[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """As :meth:`Gate.members`."""
        inside = even_odd(
            np.asarray(self.vertices, dtype=float),
            np.column_stack([values[self.xdim], values[self.ydim]]),
        )
        return {self.name: parent & (~inside if self.complement else inside)}

    def outline(self, extent: Sequence[tuple[float, float]]) -> Outline:
        """As :meth:`Gate.outline`."""
        xs = [float(v[0]) for v in self.vertices]
        ys = [float(v[1]) for v in self.vertices]
        return Outline(paths=[([*xs, xs[0]], [*ys, ys[0]])])

    def to_flowkit(
        self,
        *,
        dimension: Callable[..., flowkit.Dimension],
        divider: Callable[[str, str, float], Any],
        paths: Mapping[str, tuple[str, ...]],
    ) -> Any:
        """As :meth:`Gate.to_flowkit`."""
        import flowkit as fk

        return fk.gates.PolygonGate(
            self.name,
            [dimension(self.xdim, None, None), dimension(self.ydim, None, None)],
            [(float(x), float(y)) for x, y in self.vertices],
            use_complement=self.complement,
        )


@dataclass(frozen=True)
class QuadrantGate(Gate):
    """Four quadrants of two dimensions split at one divider each.

    Attributes
    ----------
    xdim, ydim : str
        Dimensions.
    x, y : float or None
        Divider positions in transformed units.
    quadrants : tuple of (str, str)
        Quadrant name and its signs (``"+-"``: above the x divider, below the y one).
    """

    xdim: str = ""
    ydim: str = ""
    x: float | None = None
    y: float | None = None
    quadrants: tuple[tuple[str, str], ...] = ()
    kind: ClassVar[str] = "quadrant"
    settable: ClassVar[tuple[str, ...]] = ("x", "y")
    refits_unset: ClassVar[bool] = True

    @property
    def dims(self) -> tuple[str, ...]:
        """As :attr:`Gate.dims`."""
        return (self.xdim, self.ydim)

    def populations(self) -> list[tuple[str, str]]:
        """As :meth:`Gate.populations`."""
        return [(q, "quadrant_child") for q, _ in self.quadrants]

    def thresholds(self) -> list[Threshold]:
        """As :meth:`Gate.thresholds`."""
        return [Threshold(self.xdim, self.x, "at"), Threshold(self.ydim, self.y, "at")]

    def negative_pairs(self) -> list[tuple[str, str, str]]:
        """As :meth:`Gate.negative_pairs`: ``+-`` and ``-+`` against ``--``."""
        by_signs = {signs: quad for quad, signs in self.quadrants}
        both = by_signs.get("--")
        pairs = [(by_signs.get("+-"), self.ydim), (by_signs.get("-+"), self.xdim)]
        return [(pop, both, dim) for pop, dim in pairs if pop and both]

    def with_thresholds(self, values: Mapping[str, float]) -> QuadrantGate:
        """As :meth:`Gate.with_thresholds`."""
        return replace(self, x=values.get(self.xdim, self.x), y=values.get(self.ydim, self.y))

    def members(
        self,
        values: Mapping[str, np.ndarray],
        *,
        parent: np.ndarray,
        populations: Mapping[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """As :meth:`Gate.members`."""
        above_x = values[self.xdim] >= self.x
        above_y = self._above_y(values, above_x)
        out = {}
        for quad, signs in self.quadrants:
            sx = above_x if signs[0] == "+" else ~above_x
            sy = above_y if signs[1] == "+" else ~above_y
            out[quad] = parent & sx & sy
        out[self.name] = parent.copy()
        return out

    def _above_y(self, values: Mapping[str, np.ndarray], above_x: np.ndarray) -> np.ndarray:
        """Whether each point lies at or above the y divider (of its side of x)."""
        return values[self.ydim] >= self.y

    def outline(self, extent: Sequence[tuple[float, float]]) -> Outline:
        """As :meth:`Gate.outline`."""
        (xlo, xhi), (ylo, yhi) = extent[0], extent[1]
        labels = [
            (q, 0.98 if s[0] == "+" else 0.02, 0.98 if s[1] == "+" else 0.02)
            for q, s in self.quadrants
        ]
        return Outline(
            paths=[([self.x, self.x], [ylo, yhi]), ([xlo, xhi], [self.y, self.y])],
            labels=labels,
        )

    def to_flowkit(
        self,
        *,
        dimension: Callable[..., flowkit.Dimension],
        divider: Callable[[str, str, float], Any],
        paths: Mapping[str, tuple[str, ...]],
    ) -> Any:
        """As :meth:`Gate.to_flowkit`."""
        import flowkit as fk

        dividers = [divider("x", self.xdim, self.x), divider("y", self.ydim, self.y)]
        quadrants = []
        for quad, signs in self.quadrants:
            ranges = [
                (self.x, None) if signs[0] == "+" else (None, self.x),
                (self.y, None) if signs[1] == "+" else (None, self.y),
            ]
            quadrants.append(fk.gates.Quadrant(quad, ["x", "y"], ranges))
        return fk.gates.QuadrantGate(self.name, dividers, quadrants)


@dataclass(frozen=True)
class SplitQuadrantGate(QuadrantGate):
    """Quadrants whose y divider is placed separately within each side of the x one.

    Real CD3 × CD56 panels split CD56 within CD3+ and within CD3−: CD56 on CIK
    cells is dim, on NK cells bright, and imperfect compensation lifts whole
    subsets, so one CD56 divider for all lymphocytes may fall in the wrong valley.
    GatingML has no such gate: its populations are written as plain rectangle
    gates under the parent (as FlowJo stores quadrants).

    A *notch* is the y+ cells' own x divider. Below x, the x−, y+ events above it join
    x+, y+ (CD3-dim CIK cells, a second mode among the NK cells by day 21); above x, the
    x+, y+ events below it join x−, y+ (NK cells with CD3 background above a divider
    placed for the CD3-dim T cells). Both are exported as polygons, one L-shaped.

    Attributes
    ----------
    y : float or None
        The y divider within the x+ side (transformed units).
    y_xneg : float or None
        The y divider within the x− side.
    x_notch : float or None
        The x divider of the y+ cells (None: none; at ``x``: no events move).
    """

    y_xneg: float | None = None
    x_notch: float | None = None
    far: tuple[float, float] = (1e12, 1e12)  # the polygon's far corner (transformed units)
    near: float = -1e12  # the x−, y+ polygon's far side on x (transformed units)

    #: data units beyond any event: the polygon's far corner, before transforming (a
    #: corner every transform and its inverse keep finite; the polygon's edges are
    #: axis-parallel, so no rounding enters the point-in-polygon test)
    FAR: ClassVar[float] = 1e12

    def _within(self, sign: str) -> str:
        return f"{self.xdim}{sign}"

    def _notch_within(self, *, above: bool | None = None) -> str:
        """The notch's subset: the x−, y+ quadrant (below x), the y+ cells (above)."""
        above = self.raised if above is None else above
        return f"{self.ydim}+" if above else f"{self.xdim}-{self.ydim}+"

    @property
    def notched(self) -> bool:
        """Whether the notch moves any events (below or above ``x``)."""
        return self.x_notch is not None and self.x is not None and self.x_notch != self.x

    @property
    def raised(self) -> bool:
        """Whether the notch lies above ``x``: x+, y+ events below it join x−, y+."""
        return self.notched and self.x_notch > self.x  # type: ignore[operator]

    def y_at(self, sign: str) -> float | None:
        """The y divider within the ``"+"`` or ``"-"`` side of the x divider."""
        return self.y if sign == "+" else self.y_xneg

    def thresholds(self) -> list[Threshold]:
        """As :meth:`Gate.thresholds`: the x divider, y within x− and within x+, the notch."""
        out = [
            Threshold(self.xdim, self.x, "at"),
            Threshold(self.ydim, self.y_xneg, "at", within=self._within("-")),
            Threshold(self.ydim, self.y, "at", within=self._within("+")),
        ]
        if self.notched:  # one that moves events: a divider a fit or labelling may move
            upto = None if self.raised else self.x  # the x−, y+ quadrant ends at x
            notch = Threshold(self.xdim, self.x_notch, "at", self._notch_within(), upto)
            out.append(notch)
        return out

    def with_thresholds(self, values: Mapping[str, float]) -> SplitQuadrantGate:
        """As :meth:`Gate.with_thresholds` (the notch moves by its own key only)."""
        neg, pos = (self.thresholds()[k].key for k in (1, 2))
        whole = values.get(self.ydim)
        keys = [f"{self.xdim} within {self._notch_within(above=a)}" for a in (False, True)]
        x = values.get(self.xdim, self.x)
        # a notch that moves nothing (at x: `notch: true` unfitted) stays at x as x moves
        unmoved = x if self.x_notch is not None and not self.notched else self.x_notch
        notch = next((values[k] for k in keys if k in values), unmoved)
        return replace(
            self,
            x=x,
            y_xneg=values.get(neg, self.y_xneg if whole is None else whole),
            y=values.get(pos, self.y if whole is None else whole),
            x_notch=notch,
        )

    def population_path(self, path: tuple[str, ...]) -> tuple[str, ...]:
        """As :meth:`Gate.population_path`: the rectangles sit under the parent."""
        return path

    def subset(
        self, threshold: Threshold, values: Mapping[str, np.ndarray], *, parent: np.ndarray
    ) -> np.ndarray:
        """As :meth:`Gate.subset`: a y divider divides its side of the x divider."""
        if not threshold.within:
            return parent
        above = values[self.xdim] >= self.x
        if threshold.within == self._notch_within(above=False):  # x−, y+, notch undone
            return parent & ~above & (values[self.ydim] >= self.y_xneg)
        if threshold.within == self._notch_within(above=True):  # the y+ cells of both sides
            return parent & self._above_y(values, above)
        return parent & (above if threshold.within == self._within("+") else ~above)

    def members(
        self,
        values: Mapping[str, np.ndarray],
        *,
        parent: np.ndarray,
        populations: Mapping[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """As :meth:`Gate.members`; the notch's events move between x−, y+ and x+, y+."""
        out = super().members(values, parent=parent, populations=populations)
        by_signs = {signs: quad for quad, signs in self.quadrants}
        low, high = by_signs.get("-+"), by_signs.get("++")
        if self.notched and low and high:
            if self.raised:  # x+, y+ below the notch: to x−, y+
                moved = out[high] & (values[self.xdim] < self.x_notch)
                out[high], out[low] = out[high] & ~moved, out[low] | moved
            else:  # x−, y+ at or above the notch: to x+, y+
                moved = out[low] & (values[self.xdim] >= self.x_notch)
                out[low], out[high] = out[low] & ~moved, out[high] | moved
        return out

    def _above_y(self, values: Mapping[str, np.ndarray], above_x: np.ndarray) -> np.ndarray:
        """As the quadrant gate's, each side of x against its own y divider."""
        y = values[self.ydim]
        return np.where(above_x, y >= self.y, y >= self.y_xneg)

    def outline(self, extent: Sequence[tuple[float, float]]) -> Outline:
        """As :meth:`Gate.outline`: the x divider, and each side's own y divider."""
        base = super().outline(extent)
        (xlo, xhi), (ylo, yhi) = extent[0], extent[1]
        paths = [
            ([self.x, self.x], [ylo, yhi]),
            ([xlo, self.x], [self.y_xneg, self.y_xneg]),
            ([self.x, xhi], [self.y, self.y]),
        ]
        if self.notched:  # x+, y+ reaches left to the notch, or x−, y+ right to it
            top = max(self.y, self.y_xneg)
            paths[0] = ([self.x, self.x], [ylo, top])
            bottom = self.y if self.raised else self.y_xneg
            paths.append(([self.x_notch, self.x_notch], [bottom, yhi]))
        return replace(base, paths=paths)

    def to_flowkit(
        self,
        *,
        dimension: Callable[..., flowkit.Dimension],
        divider: Callable[[str, str, float], Any],
        paths: Mapping[str, tuple[str, ...]],
    ) -> Any:
        """As :meth:`Gate.to_flowkit`: one 2-D rectangle gate per quadrant.

        With a notch, the x−, y+ and x+, y+ quadrants are polygons, one of them
        L-shaped where the notch moves events (polygons also where this sample's notch
        moves nothing: flowkit keeps one gate type per gate across samples).
        """
        import flowkit as fk

        gates = []
        for quad, signs in self.quadrants:
            y = self.y_at(signs[0])
            if self.x_notch is not None and signs in ("++", "-+"):
                x = (self.x, self.x_notch if self.notched else self.x)
                corners = notched_polygon(
                    x=x, y=(self.y_xneg, self.y), far=(self.near, *self.far), high=signs == "++"
                )
                dims = [dimension(self.xdim, None, None), dimension(self.ydim, None, None)]
                gates.append(fk.gates.PolygonGate(quad, dims, corners))
                continue
            xr = (self.x, None) if signs[0] == "+" else (None, self.x)
            yr = (y, None) if signs[1] == "+" else (None, y)
            dims = [dimension(self.xdim, *xr), dimension(self.ydim, *yr)]
            gates.append(fk.gates.RectangleGate(quad, dims))
        return gates


@dataclass(frozen=True)
class BooleanGate(Gate):
    """``and``, ``or`` or ``not`` of other gates, within the parent.

    Attributes
    ----------
    op : {"and", "or", "not"}
    of : tuple of str
        Referenced gates (one for ``not``).
    """

    op: str = "and"
    of: tuple[str, ...] = ()
    kind: ClassVar[str] = "boolean"

    @property
    def counts_on_parent(self) -> bool:
        """As :attr:`Gate.counts_on_parent`."""
        return False

    @property
    def references(self) -> tuple[str, ...]:
        """As :attr:`Gate.references`."""
        return self.of

    def members(
        self,
        values: Mapping[str, np.ndarray],
        *,
        parent: np.ndarray,
        populations: Mapping[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        """As :meth:`Gate.members`."""
        refs = [populations[r] for r in self.of]
        if self.op == "and":
            combined = np.logical_and.reduce(refs)
        elif self.op == "or":
            combined = np.logical_or.reduce(refs)
        else:
            combined = ~refs[0]
        return {self.name: combined & parent}

    def to_flowkit(
        self,
        *,
        dimension: Callable[..., flowkit.Dimension],
        divider: Callable[[str, str, float], Any],
        paths: Mapping[str, tuple[str, ...]],
    ) -> Any:
        """As :meth:`Gate.to_flowkit`."""
        import flowkit as fk

        refs = [{"ref": r, "path": paths[r], "complement": False} for r in self.of]
        return fk.gates.BooleanGate(self.name, self.op, refs)


#: template ``type`` → gate class; :func:`register` adds one
KINDS: dict[str, type[Gate]] = {
    cls.kind: cls for cls in (RangeGate, RectangleGate, PolygonGate, QuadrantGate, BooleanGate)
}


def register(cls: type[Gate], *, spec: Callable[..., Gate] | None = None) -> type[Gate]:
    """Add a gate class to :data:`KINDS` (and how to read it from a template, if given)."""
    KINDS[cls.kind] = cls
    if spec is not None:
        _FROM_SPEC[cls.kind] = spec
    return cls


def _range_spec(spec: Mapping[str, Any], scale: Callable[[str, Any], np.ndarray]) -> Gate:
    def conv(dim: str, v: float | None) -> Bound:
        return None if v is None else float(scale(dim, [v])[0])

    for dim, b in spec["dimensions"].items():
        lo, hi = b.get("min"), b.get("max")
        if lo is not None and hi is not None and lo >= hi:
            raise GatingTemplateError(
                f"gate '{spec['name']}': field 'dimensions.{dim}': min {lo:g} is not below "
                f"max {hi:g}; the gate would hold no event"
            )
    cls = KINDS[spec["type"]]
    bounds = tuple(
        (dim, conv(dim, b.get("min")), conv(dim, b.get("max")))
        for dim, b in spec["dimensions"].items()
    )
    return cls(**_common(spec), bounds=bounds)


def _polygon_spec(spec: Mapping[str, Any], scale: Callable[[str, Any], np.ndarray]) -> Gate:
    if any(len(v) != 2 for v in spec["vertices"]):
        raise GatingTemplateError(f"gate '{spec['name']}': field 'vertices': need [x, y] pairs")
    xdim, ydim = spec["dimensions"]
    xs = scale(xdim, [v[0] for v in spec["vertices"]])
    ys = scale(ydim, [v[1] for v in spec["vertices"]])
    vertices = tuple((float(x), float(y)) for x, y in zip(xs, ys, strict=True))
    return PolygonGate(**_common(spec), xdim=xdim, ydim=ydim, vertices=vertices)


def _quadrant_spec(spec: Mapping[str, Any], scale: Callable[[str, Any], np.ndarray]) -> Gate:
    xdim, ydim = spec["x"]["dimension"], spec["y"]["dimension"]
    common = {
        **_common(spec),
        "xdim": xdim,
        "ydim": ydim,
        "x": float(scale(xdim, [spec["x"]["at"]])[0]),
        "quadrants": tuple(spec["quadrants"].items()),
    }
    at, notch = spec["y"]["at"], spec["x"].get("notch")
    if not spec["y"].get("per_side") and not isinstance(at, dict) and notch is None:
        return QuadrantGate(**common, y=float(scale(ydim, [at])[0]))
    if notch is not None:  # true: fitted per sample; until then, as false, none moves
        numeric = not isinstance(notch, bool)
        common["x_notch"] = float(scale(xdim, [notch])[0]) if numeric else common["x"]
        far = SplitQuadrantGate.FAR
        common["far"] = (float(scale(xdim, [far])[0]), float(scale(ydim, [far])[0]))
        near = float(scale(xdim, [-far])[0])  # a log scale has no −FAR: as far below x
        common["near"] = near if np.isfinite(near) else 2 * common["x"] - common["far"][0]
    sides = at if isinstance(at, dict) else {"-": at, "+": at}
    if set(sides) != {"-", "+"}:
        raise GatingTemplateError(
            f"gate '{spec['name']}': field 'y.at': per side, give both '-' and '+' (the sides "
            f"of the x divider), not {sorted(sides)}"
        )
    neg, pos = scale(ydim, [sides["-"], sides["+"]])
    return SplitQuadrantGate(**common, y=float(pos), y_xneg=float(neg))


def _boolean_spec(spec: Mapping[str, Any], scale: Callable[[str, Any], np.ndarray]) -> Gate:
    if spec["op"] == "not" and len(spec["of"]) != 1:
        raise GatingTemplateError(f"gate '{spec['name']}': field 'of': 'not' takes one gate")
    return BooleanGate(**_common(spec), op=spec["op"], of=tuple(spec["of"]))


def _common(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": spec["name"],
        "parent": spec["parent"],
        "method": spec.get("method", "static"),
        "complement": bool(spec.get("complement", False)),
    }


_FROM_SPEC: dict[str, Callable[..., Gate]] = {
    "range": _range_spec,
    "rectangle": _range_spec,
    "polygon": _polygon_spec,
    "quadrant": _quadrant_spec,
    "boolean": _boolean_spec,
}


def spec_dims(spec: Mapping[str, Any]) -> list[str]:
    """Dimensions a template gate (YAML form) uses, x first, without converting anything."""
    return list(from_spec(spec, scale=identity_scale).dims)


def identity_scale(dim: str, values: Any) -> np.ndarray:
    """The scale of untransformed dimensions: values as they are (float)."""
    return np.asarray(values, dtype=float)


def from_spec(spec: Mapping[str, Any], *, scale: Callable[[str, Any], np.ndarray]) -> Gate:
    """The gate a YAML template entry describes, its coordinates transformed.

    Parameters
    ----------
    spec : mapping
        One validated entry of a template's ``gates`` (coordinates in data units).
    scale : callable
        ``scale(dim, values)`` → the values in the dimension's transformed units.
    """
    return _FROM_SPEC[spec["type"]](spec, scale)


def tree_order(gates: Sequence[Gate]) -> list[tuple[str, str]]:
    """(population, parent population) of every population the gates define, in order."""
    return [(pop, g.parent) for g in gates for pop, _ in g.populations()]
