"""The model of a gate read from GatingML or FlowJo: flowkit's gate objects → :class:`Gate`.

:mod:`cikflow.gating.model` turns templates into gates and gates into flowkit's
objects; this module goes the other way, for gates cikflow did not write (an
imported GatingML or FlowJo workspace, a reviewer's own gate) and for reading back
what it wrote. A kind cikflow does not model (an ellipsoid) stays flowkit's own,
wrapped in :class:`OtherGate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from cikflow.gating.model import (
    BooleanGate,
    Gate,
    PolygonGate,
    QuadrantGate,
    RangeGate,
    RectangleGate,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["OtherGate", "from_flowkit"]


@dataclass(frozen=True)
class OtherGate(Gate):
    """A flowkit gate of a kind cikflow does not model (an ellipsoid): kept as flowkit's.

    Attributes
    ----------
    flowkit_gate : Any
        The flowkit gate.
    dimensions : tuple of str
        Its dimension IDs.
    """

    flowkit_gate: Any = None
    dimensions: tuple[str, ...] = ()
    kind: ClassVar[str] = "other"

    @property
    def dims(self) -> tuple[str, ...]:
        """As :attr:`Gate.dims`."""
        return self.dimensions

    @property
    def counts_on_parent(self) -> bool:
        """As :attr:`Gate.counts_on_parent`."""
        return self._flowkit_kind() != "boolean"

    def _flowkit_kind(self) -> str:
        return str(getattr(self.flowkit_gate, "gate_type", "other")).removesuffix("Gate").lower()

    def populations(self) -> list[tuple[str, str]]:
        """As :meth:`Gate.populations`."""
        quadrants = getattr(self.flowkit_gate, "quadrants", None)
        if quadrants:
            return [(q, "quadrant_child") for q in quadrants]
        return [(self.name, self._flowkit_kind())]


def from_flowkit(gate: Any, *, parent: str, dims: Callable[[Any], str] | None = None) -> Gate:
    """The model of a flowkit gate (coordinates already in transformed units).

    Parameters
    ----------
    gate : flowkit gate
        A RectangleGate, PolygonGate, QuadrantGate, BooleanGate (others are kept
        as :class:`OtherGate`).
    parent : str
        Its parent population.
    dims : callable, optional
        flowkit Dimension → the name to give it (default: its ``dimension_ref``,
        ratio reference or ID).
    """
    import flowkit as fk

    name_of = dims or _dim_name
    common = {"name": gate.gate_name, "parent": parent}
    if isinstance(gate, fk.gates.RectangleGate):
        cls = RangeGate if len(gate.dimensions) == 1 else RectangleGate
        bounds = tuple((name_of(d), d.min, d.max) for d in gate.dimensions)
        return cls(**common, complement=bool(gate.use_complement), bounds=bounds)
    if isinstance(gate, fk.gates.PolygonGate):
        xd, yd = (name_of(d) for d in gate.dimensions)
        vertices = tuple((float(x), float(y)) for x, y in gate.vertices)
        return PolygonGate(
            **common, complement=bool(gate.use_complement), xdim=xd, ydim=yd, vertices=vertices
        )
    if isinstance(gate, fk.gates.QuadrantGate) and len(gate.dimensions) == 2:
        xdiv, ydiv = gate.dimensions
        if len(xdiv.values) == 1 and len(ydiv.values) == 1:
            quads = []
            for quad in gate.quadrants.values():
                signs = ""
                for div in (xdiv, ydiv):
                    lo, _ = quad.get_divider_range(div.id)
                    signs += "+" if lo is not None else "-"
                quads.append((quad.id, signs))
            return QuadrantGate(
                **common,
                xdim=name_of(xdiv),
                ydim=name_of(ydiv),
                x=float(xdiv.values[0]),
                y=float(ydiv.values[0]),
                quadrants=tuple(quads),
            )
    if isinstance(gate, fk.gates.BooleanGate) and not any(r["complement"] for r in gate.gate_refs):
        return BooleanGate(**common, op=gate.type, of=tuple(r["ref"] for r in gate.gate_refs))
    return OtherGate(
        **common,
        flowkit_gate=gate,
        dimensions=tuple(name_of(d) for d in (getattr(gate, "dimensions", None) or [])),
    )


def _dim_name(dim: Any) -> str:
    return getattr(dim, "dimension_ref", None) or getattr(dim, "ratio_ref", None) or dim.id
