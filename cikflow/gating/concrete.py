"""The concrete gates of a sample: flowkit strategies flattened, split and merged for exchange.

A flowkit :class:`~flowkit.GatingStrategy` holds template gates and, per sample,
custom sample gates that replace them (flowkit's model of FlowJo's sample-specific
gates, and where cikflow's data-driven gates go). Exchange formats want something
simpler or something different:

* GatingML 2.0 has no notion of a sample: :func:`concrete_strategy` makes the
  strategy one sample actually used, its custom gates as the only gates.
* A FlowJo workspace has no quadrant gate (FlowJo stores each quadrant as a
  rectangle): :func:`split_quadrants` replaces every quadrant by rectangles.
* A FlowJo workspace holds one full strategy per sample, each with its own
  transforms and compensation: :func:`merge_strategies` folds them into one
  strategy with custom sample gates, so a template can gate each sample with its
  own gates.

Everything here is pure: strategies in, new strategies out, no file access.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from cikflow.exceptions import GatingTemplateError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import flowkit

__all__ = ["concrete_strategy", "merge_strategies", "split_quadrants"]

#: compensation references that name no matrix of the strategy (GatingML 2.0 §4.1:
#: "uncompensated", and "FCS" for a file's own spillover keyword; flowkit ignores case)
_SPECIAL_COMP_REFS = frozenset({"uncompensated", "fcs"})


def _gate_items(
    strategy: flowkit.GatingStrategy, *, sample_id: str | None
) -> list[tuple[tuple[str, ...], Any]]:
    """(gate path, gate) in tree order, parents first; quadrant members are skipped."""
    import flowkit as fk

    items = []
    for name, path in strategy.get_gate_ids():
        try:
            gate = strategy.get_gate(name, path, sample_id=sample_id)
        except fk.exceptions.QuadrantReferenceError:
            continue  # a Quadrant of a QuadrantGate: it comes with its gate
        items.append((tuple(path), gate))
    return items


def _refs(gate: Any) -> tuple[set[str], set[str]]:
    """Transform IDs and compensation IDs a gate references."""
    xforms: set[str] = set()
    comps: set[str] = set()
    for dim in getattr(gate, "dimensions", None) or []:
        for ref in (getattr(dim, "transformation_ref", None), getattr(dim, "ratio_ref", None)):
            if ref is not None:
                xforms.add(ref)
        comp = getattr(dim, "compensation_ref", None)
        if comp is not None and comp.lower() not in _SPECIAL_COMP_REFS:
            comps.add(comp)
    return xforms, comps


def _exchange_matrix(matrix: Any) -> Any:
    """A copy of a matrix whose fluorochrome labels are valid GatingML (non-empty).

    flowkit leaves fluorochromes blank when it reads a $SPILL keyword or a FlowJo
    matrix; GatingML 2.0 requires a non-empty name for each. Gates name the
    detectors, so labelling each fluorochrome with its detector keeps every
    reference resolvable.
    """
    matrix = copy.deepcopy(matrix)
    if hasattr(matrix, "fluorochromes") and not any(matrix.fluorochromes):
        matrix.fluorochromes = list(matrix.detectors)
    return matrix


def concrete_strategy(
    strategy: flowkit.GatingStrategy, *, sample_id: str | None = None
) -> flowkit.GatingStrategy:
    """The strategy one sample is gated with, its custom sample gates as template gates.

    Parameters
    ----------
    strategy : flowkit.GatingStrategy
        Template gates, possibly with custom sample gates (``add_gate(...,
        sample_id=...)``).
    sample_id : str, optional
        Whose custom gates replace the template gates; None keeps the template gates.

    Returns
    -------
    flowkit.GatingStrategy
        A new strategy with the same gate tree, no custom gates, and only the
        transforms and compensation matrices its gates reference (matrices with
        blank fluorochrome labels get their detector names).

    Raises
    ------
    GatingTemplateError
        A gate references a transform or matrix the strategy lacks.
    """
    import flowkit as fk

    out = fk.GatingStrategy()
    xforms: set[str] = set()
    comps: set[str] = set()
    items = _gate_items(strategy, sample_id=sample_id)
    for _, gate in items:
        x, c = _refs(gate)
        xforms |= x
        comps |= c
    for ref in sorted(xforms):
        if ref not in strategy.transformations:
            raise GatingTemplateError(f"a gate references transform '{ref}', which is not defined")
        out.add_transform(ref, copy.deepcopy(strategy.transformations[ref]))
    for ref in sorted(comps):
        if ref not in strategy.comp_matrices:
            raise GatingTemplateError(f"a gate references matrix '{ref}', which is not defined")
        out.add_comp_matrix(ref, _exchange_matrix(strategy.comp_matrices[ref]))
    for path, gate in items:
        out.add_gate(copy.deepcopy(gate), path)
    return out


def _path_map(strategy: flowkit.GatingStrategy) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Old full gate path (ancestors + name) → full path once quadrant gates are dissolved."""
    import flowkit as fk

    mapping: dict[tuple[str, ...], tuple[str, ...]] = {("root",): ("root",)}
    for name, path in strategy.get_gate_ids():
        path = tuple(path)
        try:
            gate = strategy.get_gate(name, path)
        except fk.exceptions.QuadrantReferenceError:
            # a quadrant: hangs where its quadrant gate hung
            mapping[(*path, name)] = (*mapping[path[:-1]], name)
            continue
        if isinstance(gate, fk.gates.QuadrantGate):
            mapping[(*path, name)] = mapping[path]  # dissolved
        else:
            mapping[(*path, name)] = (*mapping[path], name)
    return mapping


def split_quadrants(strategy: flowkit.GatingStrategy) -> flowkit.GatingStrategy:
    """Replace every quadrant gate by one rectangle gate per quadrant.

    A quadrant is the rectangle between its dividers' values, with GatingML's
    range semantics (minimum inclusive, maximum exclusive; GatingML 2.0 §5.3),
    the same as a rectangle gate's (§5.1.1), so membership is unchanged. Each
    rectangle takes the quadrant's ID as its name and the quadrant gate's parent
    as its parent; gates below a quadrant move up with it, and Boolean gate
    references follow. This is how FlowJo stores quadrants.

    Parameters
    ----------
    strategy : flowkit.GatingStrategy
        Template gates only (see :func:`concrete_strategy`); custom sample gates
        are not carried over.

    Returns
    -------
    flowkit.GatingStrategy
        A new strategy with the same transforms and matrices.

    Raises
    ------
    GatingTemplateError
        A quadrant's name clashes with a sibling gate once its quadrant gate is gone.
    """
    import flowkit as fk

    mapping = _path_map(strategy)
    out = fk.GatingStrategy()
    for ref, xform in strategy.transformations.items():
        out.add_transform(ref, copy.deepcopy(xform))
    for ref, matrix in strategy.comp_matrices.items():
        out.add_comp_matrix(ref, copy.deepcopy(matrix))
    seen: set[tuple[str, ...]] = set()

    def add(gate: Any, parent: tuple[str, ...]) -> None:
        full = (*parent, gate.gate_name)
        if full in seen:
            raise GatingTemplateError(
                f"gate '{gate.gate_name}' under '{parent[-1]}' would exist twice once "
                "quadrants become rectangles; rename one of them"
            )
        seen.add(full)
        out.add_gate(gate, parent)

    for path, gate in _gate_items(strategy, sample_id=None):
        parent = mapping[path]
        gate = copy.deepcopy(gate)
        if isinstance(gate, fk.gates.QuadrantGate):
            dividers = {d.id: d for d in gate.dimensions}
            for quadrant in gate.quadrants.values():
                dims = []
                for div_ref in quadrant.divider_refs:
                    div = dividers[div_ref]
                    lo, hi = quadrant.get_divider_range(div_ref)
                    if lo is None and hi is None:
                        continue
                    dims.append(
                        fk.Dimension(
                            div.dimension_ref,
                            compensation_ref=div.compensation_ref,
                            transformation_ref=div.transformation_ref,
                            range_min=lo,
                            range_max=hi,
                        )
                    )
                add(fk.gates.RectangleGate(quadrant.id, dims), parent)
            continue
        if isinstance(gate, fk.gates.BooleanGate):
            for ref in gate.gate_refs:
                new = mapping[(*tuple(ref["path"]), ref["ref"])]
                ref["path"] = new[:-1]
        add(gate, parent)
    return out


def _rename_refs(gate: Any, *, xforms: Mapping[str, str], comps: Mapping[str, str]) -> Any:
    gate = copy.deepcopy(gate)
    for dim in getattr(gate, "dimensions", None) or []:
        if getattr(dim, "transformation_ref", None) in xforms:
            dim.transformation_ref = xforms[dim.transformation_ref]
        if getattr(dim, "ratio_ref", None) in xforms:
            dim.ratio_ref = xforms[dim.ratio_ref]
        if getattr(dim, "compensation_ref", None) in comps:
            dim.compensation_ref = comps[dim.compensation_ref]
    return gate


def merge_strategies(
    strategies: Mapping[str, flowkit.GatingStrategy],
    *,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> flowkit.GatingStrategy:
    """Fold one full strategy per sample into template gates plus custom sample gates.

    The first sample's gates become the template gates (what a sample not named
    here is gated with). Every other sample's gates become custom sample gates
    under its name and each of its aliases, so ``strategy.gate_sample(sample)``
    gates a sample whose ID is one of those with its own gates. A sample's
    transform or matrix that differs from the template's under the same ID is
    added under ``"<sample>/<id>"`` and its gates point there.

    Parameters
    ----------
    strategies : mapping of str to flowkit.GatingStrategy
        Sample name → that sample's complete strategy (template gates only), in
        order; the first is the template.
    aliases : mapping of str to sequence of str, optional
        Sample name → further sample IDs to register its gates under (for
        example the file name without ``.fcs``).

    Returns
    -------
    flowkit.GatingStrategy

    Raises
    ------
    GatingTemplateError
        No strategies, or a sample's gate tree differs from the first sample's.
    """
    if not strategies:
        raise GatingTemplateError("no sample gate trees to merge")
    names = list(strategies)
    first = names[0]
    merged = concrete_strategy(strategies[first])
    tree = sorted(merged.get_gate_ids())
    aliases = aliases or {}
    for name in names:
        strategy = concrete_strategy(strategies[name])
        if sorted(strategy.get_gate_ids()) != tree:
            ours = {"/".join((*p, g)) for g, p in strategy.get_gate_ids()}
            theirs = {"/".join((*p, g)) for g, p in tree}
            diff = sorted(ours ^ theirs)
            raise GatingTemplateError(
                f"sample '{name}' has a different gate tree from '{first}' "
                f"(differing gates: {', '.join(diff[:5])}); import one sample's gates instead"
            )
        keys = [name, *aliases.get(name, ())] if name != first else list(aliases.get(name, ()))
        keys = list(dict.fromkeys(k for k in keys if k != first))
        if not keys:
            continue
        xforms: dict[str, str] = {}
        for ref, xform in strategy.transformations.items():
            if ref not in merged.transformations:
                merged.add_transform(ref, xform)
            elif merged.transformations[ref] != xform:
                xforms[ref] = f"{name}/{ref}"
                merged.add_transform(xforms[ref], xform)
        comps: dict[str, str] = {}
        for ref, matrix in strategy.comp_matrices.items():
            if ref not in merged.comp_matrices:
                merged.add_comp_matrix(ref, matrix)
            elif merged.comp_matrices[ref] != matrix:
                comps[ref] = f"{name}/{ref}"
                merged.add_comp_matrix(comps[ref], matrix)
        for path, gate in _gate_items(strategy, sample_id=None):
            gate = _rename_refs(gate, xforms=xforms, comps=comps)
            for key in keys:
                merged.add_gate(gate, path, sample_id=key)
    return merged
