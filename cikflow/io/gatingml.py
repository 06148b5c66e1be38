"""Read a GatingML 2.0 file as a gating template, gate by gate.

flowkit's :func:`flowkit.parse_gating_xml` reads a whole document or nothing: one
gate it cannot build (or a document that strays from the schema anywhere) loses
the file. Here every top-level part — gate, transform, spectrum matrix — is
checked on its own, with the schema flowkit validates against and flowkit's own
per-element builders (the ones ``parse_gating_xml`` calls); a part that cannot be
built, or a gate that cannot be computed (a reference to a transform or matrix
the file lacks or that is unusable, a non-square spectrum matrix, a dimension
without a name, mixed compensation within one gate), is left out with a
:class:`~cikflow.exceptions.GatingMLGateWarning` naming it and why, and so is
every gate depending on it (children, Boolean gates referencing it). The parts
kept are then read by ``parse_gating_xml`` itself, so every kept gate has
flowkit's GatingML semantics exactly.

A document that is not well-formed XML raises
:class:`~cikflow.exceptions.GatingTemplateError` naming the line and the element
being read.
"""

from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.exceptions import GatingMLGateWarning, GatingMLWarning, GatingTemplateError

if TYPE_CHECKING:
    import flowkit
    from lxml import etree

__all__ = ["read_gatingml"]

_GATING = "http://www.isac-net.org/std/Gating-ML/v2.0/gating"
_DATATYPES = "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes"
_TRANSFORMS = "http://www.isac-net.org/std/Gating-ML/v2.0/transformations"
_GATE_TAGS = ("RectangleGate", "PolygonGate", "EllipsoidGate", "QuadrantGate", "BooleanGate")
#: compensation references every GatingML document has (§ 4.3)
_BUILTIN_COMP = (None, "uncompensated", "FCS")


@dataclass
class _Part:
    """One top-level element of the document: a gate, a transform or a spectrum matrix."""

    element: Any
    role: str  # "gate", "transform" or "matrix"
    id: str | None
    line: int
    built: Any = None
    reason: str | None = None  # why it is left out (None: kept)
    deps: list[str] = field(default_factory=list)  # gates: parent and Boolean references
    quadrants: list[str] = field(default_factory=list)  # quadrant gates: their quadrant IDs


def _qname(element: Any) -> str:
    local = element.tag.rpartition("}")[2] if isinstance(element.tag, str) else str(element.tag)
    return f"{element.prefix}:{local}" if element.prefix else local


def _parse(path: Path) -> etree._ElementTree:
    """The document; a syntax error names its line and the element being read."""
    from lxml import etree

    # fed line by line, the pull parser's events keep the stack of open elements up
    # to the error, so the error can name the element it interrupts
    parser = etree.XMLPullParser(events=("start", "end"), resolve_entities=False, no_network=True)
    stack: list[tuple[str, int]] = []

    def follow(*, failed: bool = False) -> None:
        for event, element in parser.read_events():
            if event == "start":
                stack.append((_qname(element), element.sourceline or 0))
            elif not failed:  # after an error, lxml closes every open element
                stack.pop()

    try:
        for line in path.read_bytes().splitlines(keepends=True):
            parser.feed(line)
            follow()
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        follow(failed=True)
        line, column = exc.position if exc.position else (exc.lineno, 0)
        line = max(line or 0, 1)  # libxml2 says line 0 for an empty file
        where = (
            f"in element <{stack[-1][0]}> (opened at line {stack[-1][1]})"
            if stack
            else "before the root element"
        )
        raise GatingTemplateError(
            f"{path.name}: not well-formed XML at line {line}, column {column}, {where}: {exc.msg}"
        ) from None
    return root.getroottree()


def _prefixes(root: Any, source: str) -> tuple[str, str, str]:
    """The document's prefixes of the gating, data-type and transformation namespaces."""
    if root.tag != f"{{{_GATING}}}Gating-ML":
        raise GatingTemplateError(
            f"{source}: line {root.sourceline}: root element <{_qname(root)}> is not "
            f"<gating:Gating-ML> in namespace {_GATING}"
        )
    found = {url: prefix for prefix, url in root.nsmap.items() if prefix}
    if _GATING not in found:
        raise GatingTemplateError(
            f"{source}: line {root.sourceline}: root element <{_qname(root)}> declares no "
            f"prefix for the GatingML namespace {_GATING} (flowkit needs one)"
        )
    return found[_GATING], found.get(_DATATYPES, "data-type"), found.get(_TRANSFORMS, "transforms")


def _attr(element: Any, name: str, namespace: str = _GATING) -> str | None:
    return element.get(f"{{{namespace}}}{name}")


def _parts(root: Any) -> list[_Part]:
    """Every gate, transform and spectrum matrix, wherever it sits, in document order.

    IDs, parents and references are read from the XML itself (not from flowkit's
    gates) because a gate flowkit cannot build still has children to leave out.
    """
    roles = {f"{{{_GATING}}}{tag}": "gate" for tag in _GATE_TAGS}
    roles[f"{{{_TRANSFORMS}}}transformation"] = "transform"
    roles[f"{{{_TRANSFORMS}}}spectrumMatrix"] = "matrix"
    parts = []
    for element in root.iter(*roles):
        if any(parent.tag in roles for parent in element.iterancestors()):
            continue
        role = roles[element.tag]
        ns = _GATING if role == "gate" else _TRANSFORMS
        part = _Part(element, role, _attr(element, "id", ns), element.sourceline or 0)
        if role == "gate":
            parent = _attr(element, "parent_id")
            refs = element.iter(f"{{{_GATING}}}gateReference")
            part.deps = [d for d in [parent, *(_attr(r, "ref") for r in refs)] if d]
            quadrants = element.iter(f"{{{_GATING}}}Quadrant")
            part.quadrants = [q for q in (_attr(e, "id") for e in quadrants) if q]
        parts.append(part)
    return parts


def _schema_errors(tree: Any) -> list[Any]:
    # the schema flowkit validates every document against (flowkit._resources)
    from flowkit._resources import gml_schema

    gml_schema.validate(tree)
    return list(gml_schema.error_log)


def _short(message: str) -> str:
    """A schema message without its list of every element allowed, with prefixed names."""
    message = message.split(" Expected is", 1)[0].strip()
    for url, prefix in (
        (_GATING, "gating"),
        (_DATATYPES, "data-type"),
        (_TRANSFORMS, "transforms"),
    ):
        message = message.replace(f"{{{url}}}", f"{prefix}:")
    return message


def _check_schema(root: Any, parts: list[_Part], source: str) -> None:
    """Parts the schema rejects get a reason; other schema errors are warned about."""
    from lxml import etree

    own = {root.getroottree().getpath(p.element): p for p in parts}
    for error in _schema_errors(root.getroottree()):
        if not any(error.path == k or error.path.startswith(f"{k}/") for k in own):
            warnings.warn(
                GatingMLWarning(
                    f"{source}: line {error.line}: {_short(error.message)} (ignored; the "
                    "gates, transforms and matrices inside it are still read)"
                ),
                stacklevel=4,
            )
    # each part again at the top level: one nested in a stray element was not validated
    alone = etree.Element(root.tag, nsmap=root.nsmap)
    for part in parts:
        alone.append(copy.deepcopy(part.element))  # keeps the source lines
    tree = etree.ElementTree(alone)
    paths = [(tree.getpath(child), part) for child, part in zip(alone, parts, strict=True)]
    for error in _schema_errors(tree):
        for key, part in paths:
            if part.reason is None and (error.path == key or error.path.startswith(f"{key}/")):
                part.reason = (
                    f"not valid GatingML 2.0 at line {error.line}: {_short(error.message)}"
                )


def _build(part: _Part, ns: tuple[str, str, str]) -> None:
    """Build the part with flowkit's own per-element builders; a failure is its reason."""
    # the builders parse_gating_xml calls for each element (flowkit has no public
    # per-element API); flowkit is pinned to 1.3.x
    from flowkit._utils import xml_utils

    gating, data_type, xform = ns
    local = part.element.tag.rpartition("}")[2]
    try:
        if part.role == "gate":
            builder = xml_utils.gate_constructor_lut[local]
            part.built = builder(part.element, gating, data_type)
        elif part.role == "transform":
            part.built = xml_utils._parse_transformation_element(part.element, xform, data_type)[1]
        else:
            part.built = xml_utils._parse_matrix_element(part.element, xform, data_type)[1]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        # flowkit's ValueErrors say what is wrong and where; the others are its
        # internals tripping over an element it did not expect
        said = str(exc) if isinstance(exc, ValueError) else "flowkit cannot read the element"
        part.reason = f"flowkit cannot build it from line {part.line}: {said}"


def _check_transform(part: _Part) -> None:
    import flowkit as fk

    xform = part.built
    if xform is None:
        kinds = [_qname(child) for child in part.element if isinstance(child.tag, str)]
        part.reason = f"<{', '.join(kinds) or 'nothing'}> is not a GatingML 2.0 transform"
        return
    if isinstance(xform, fk.transforms.RatioTransform):
        return  # applies to a sample, not to values
    probe = np.array([[-10.0], [0.0], [1.0], [100.0], [10_000.0]])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            values = np.asarray(xform.apply(probe), dtype=float)
        except Exception as exc:  # flowutils rejects impossible parameters here
            part.reason = f"flowkit cannot compute it ({exc})"
            return
    if not np.isfinite(values[2:]).all():  # positive values: finite for every valid transform
        part.reason = "it gives no finite value for positive data (impossible parameters)"


def _check_matrix(part: _Part) -> None:
    matrix = part.built
    values = np.asarray(matrix.matrix, dtype=float)
    rows, cols = len(matrix.fluorochromes), len(matrix.detectors)
    if values.shape != (rows, cols) or rows != cols:
        part.reason = (
            f"a {rows} fluorochrome × {cols} detector spectrum matrix "
            f"(coefficients {'×'.join(map(str, values.shape))}); flowkit compensates "
            "with square matrices only"
        )
    elif len(set(matrix.detectors)) != cols:
        part.reason = "a detector appears twice"
    elif not np.isfinite(values).all() or np.linalg.matrix_rank(values) < rows:
        part.reason = "the matrix is singular or not finite, so it cannot be inverted"


def _dimension_problem(
    gate: Any, transforms: dict[str, _Part], matrices: dict[str, _Part]
) -> str | None:
    """Why a built gate's dimensions cannot be computed, or None."""
    import flowkit as fk

    comps = set()
    for dim in gate.dimensions or []:
        ratio = getattr(dim, "ratio_ref", None)
        name = ratio or getattr(dim, "id", None) or getattr(dim, "dimension_ref", None)
        if not name:
            return "a dimension has no name"
        refs = [("compensation", dim.compensation_ref, matrices)]
        refs += [("transform", dim.transformation_ref, transforms)]
        refs += [("ratio transform", ratio, transforms)] if ratio else []
        for what, ref, defined in refs:
            if ref is None or (what == "compensation" and ref in _BUILTIN_COMP):
                continue
            if ref not in defined:
                return f"dimension '{name}' references {what} '{ref}', which the file lacks"
            if defined[ref].reason:
                return f"dimension '{name}' uses {what} '{ref}', left out: {defined[ref].reason}"
            is_ratio = isinstance(defined[ref].built, fk.transforms.RatioTransform)
            if what != "compensation" and is_ratio != (what == "ratio transform"):
                need = "a ratio (fratio)" if what == "ratio transform" else "a one-channel"
                return f"dimension '{name}' needs {need} transform, but '{ref}' is not one"
        if dim.compensation_ref not in (None, "uncompensated"):
            comps.add(dim.compensation_ref)
    if len(comps) > 1:
        return f"its dimensions mix compensations {', '.join(sorted(comps))} (flowkit uses one)"
    return None


def _index(gates: list[_Part]) -> dict[str, _Part]:
    """Gate and quadrant ID → the gate holding it (the first, where an ID repeats)."""
    first: dict[str, _Part] = {}
    for part in gates:
        for key in [part.id, *part.quadrants]:
            if key:
                first.setdefault(key, part)
    return first


def _depends_on(part: _Part, target: _Part, first: dict[str, _Part]) -> bool:
    """Whether ``part`` depends, through parents and references, on ``target``."""
    seen: set[int] = set()
    todo = list(part.deps)
    while todo:
        gate = first.get(todo.pop())
        if gate is None or id(gate) in seen:
            continue
        if gate is target:
            return True
        seen.add(id(gate))
        todo += gate.deps
    return False


def _resolve(gates: list[_Part], first: dict[str, _Part]) -> None:
    """Give a reason to every gate whose ID repeats, whose references are missing or loop."""
    for part in gates:
        if part.reason is None and part.id and first[part.id] is not part:
            part.reason = f"its ID is already the gate's at line {first[part.id].line}"
        missing = [d for d in part.deps if d not in first]
        if part.reason is None and missing:
            part.reason = f"it refers to gate '{missing[0]}', which the file lacks"
    for part in gates:
        if part.reason is None and _depends_on(part, part, first):
            part.reason = "its parent and references loop back to it"


def _warn_gates(gates: list[_Part], first: dict[str, _Part], source: str) -> set[int]:
    """Warn about each gate left out, naming the gates left out with it; their indices."""
    out: set[int] = set()
    for i, part in enumerate(gates):
        if part.reason is None:
            continue
        out.add(i)
        dependants = [
            j for j, g in enumerate(gates) if g is not part and _depends_on(g, part, first)
        ]
        out.update(dependants)
        names = tuple(str(gates[j].id) for j in dependants)
        tail = f"; left out with it: {', '.join(names)}" if names else ""
        warnings.warn(
            GatingMLGateWarning(
                f"{source}: gate '{part.id}' (line {part.line}) left out: {part.reason}{tail}",
                gate=str(part.id),
                reason=part.reason,
                dependants=names,
            ),
            stacklevel=4,
        )
    return out


def read_gatingml(path: str | Path) -> flowkit.GatingStrategy:
    """Read a GatingML 2.0 file, leaving out (with a warning) the gates that cannot work.

    Parameters
    ----------
    path : str or pathlib.Path
        The GatingML 2.0 document.

    Returns
    -------
    flowkit.GatingStrategy
        The gates that can be built and computed, their transforms and spectrum
        matrices, with flowkit's GatingML semantics.

    Raises
    ------
    GatingTemplateError
        The file is not well-formed XML (the message names the line and element),
        is not a GatingML 2.0 document, or none of its gates can be used.

    Warns
    -----
    GatingMLGateWarning
        For each gate left out: its ID, line and why, and the gates depending on it.
    GatingMLWarning
        For a transform or matrix left out, and for schema errors outside any gate.
    """
    import flowkit as fk
    from lxml import etree

    path = Path(path)
    root = _parse(path).getroot()
    ns = _prefixes(root, path.name)
    parts = _parts(root)
    _check_schema(root, parts, path.name)
    for part in parts:
        if part.reason is None:
            _build(part, ns)
    defined: dict[str, dict[str, _Part]] = {"transform": {}, "matrix": {}}
    for part in parts:
        if part.role in defined and part.reason is None:
            (_check_transform if part.role == "transform" else _check_matrix)(part)
        if part.role in defined:
            if part.id in defined[part.role]:
                part.reason = part.reason or "its ID is defined earlier in the file"
            else:
                defined[part.role][part.id or ""] = part
            if part.reason:
                what = "transform" if part.role == "transform" else "spectrum matrix"
                msg = f"{path.name}: {what} '{part.id}' (line {part.line}) left out: {part.reason}"
                warnings.warn(GatingMLWarning(msg), stacklevel=2)
    gates = [p for p in parts if p.role == "gate"]
    for part in gates:
        if part.reason is None:
            part.reason = _dimension_problem(part.built, defined["transform"], defined["matrix"])
    first = _index(gates)
    _resolve(gates, first)
    dropped = _warn_gates(gates, first, path.name)
    if gates and len(dropped) == len(gates):
        raise GatingTemplateError(f"{path.name}: none of its {len(gates)} gates can be used")
    kept = etree.Element(root.tag, nsmap=root.nsmap)
    for part in parts:
        keep = part.reason is None and (part.role != "gate" or gates.index(part) not in dropped)
        if keep:
            kept.append(copy.deepcopy(part.element))
    try:
        return fk.parse_gating_xml(io.BytesIO(etree.tostring(kept)))
    except Exception as exc:  # not expected: every part kept was checked above
        raise GatingTemplateError(
            f"{path.name}: flowkit cannot assemble the gates kept ({exc})"
        ) from exc
