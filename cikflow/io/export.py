"""Write the gates a sample was gated with: GatingML 2.0, and FlowJo 10 workspaces for a batch.

Both writers go through flowkit (:func:`flowkit.export_gatingml`,
:meth:`flowkit.Session.export_wsp`). What flowkit 1.3.2 lacks is added here by
hand, each place saying why:

GatingML
    flowkit writes blank fluorochrome names for matrices read from $SPILL (not
    valid GatingML; :func:`~cikflow.gating.concrete.concrete_strategy` names them
    after their detectors), writes an empty ``transformation`` element for
    transforms GatingML lacks (refused here), and places a quadrant's
    ``location`` at half or twice the divider, which lies in the wrong quadrant
    when the divider is ≤ 0 (moved inside the quadrant here).

FlowJo workspace
    flowkit's ``export_flowjo_wsp`` writes one strategy for a whole sample group,
    applies custom sample gates only to top-level gates, cannot write quadrant or
    Boolean gates, puts the compensation matrix only in the workspace's
    ``Matrices`` list (FlowJo also stores it in each ``Sample``, which is where
    flowkit's own reader, ``parse_wsp``, looks for it), and uses the sample ID as
    the file URI. So each sample is exported on its own with its concrete gates
    (quadrants as rectangles, as FlowJo stores them), and the per-sample documents
    are merged here into one workspace: samples and gate IDs renumbered, each
    sample's matrix copied into its ``Sample`` element, the FCS file name as sample
    name and its ``file:`` URI in ``DataSet``, and Boolean gates written as
    FlowJo ``AndNode``/``OrNode``/``NotNode`` elements. The layout follows the
    FlowJo 10 workspaces of ``../shared/data`` (``flowsom-68983/gating.wsp``,
    FlowJo 10.5.3) and what ``flowkit.parse_wsp`` reads back.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cikflow import __version__
from cikflow.exceptions import CikflowError, ExportError
from cikflow.gating.concrete import concrete_strategy, split_quadrants

if TYPE_CHECKING:
    from collections.abc import Sequence

    import flowkit

    from cikflow.events import FcsData

__all__ = ["WorkspaceSample", "export_flowjo_wsp", "export_gatingml"]

_NS = {
    "gating": "http://www.isac-net.org/std/Gating-ML/v2.0/gating",
    "data-type": "http://www.isac-net.org/std/Gating-ML/v2.0/datatypes",
    "transforms": "http://www.isac-net.org/std/Gating-ML/v2.0/transformations",
}
#: GatingML 2.0 transforms flowkit writes (its writer silently skips any other)
_GATINGML_TRANSFORMS = (
    "RatioTransform",
    "LogTransform",
    "AsinhTransform",
    "LogicleTransform",
    "HyperlogTransform",
    "LinearTransform",
)


def _q(prefix: str, name: str) -> str:
    return f"{{{_NS[prefix]}}}{name}"


def _parser() -> Any:
    """An XML parser that drops layout whitespace, so edited trees pretty-print evenly."""
    from lxml import etree

    return etree.XMLParser(remove_blank_text=True)


def _write_bytes(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _inside(loc: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or loc >= lo) and (hi is None or loc < hi)


def _fix_quadrant_locations(doc: Any, strategy: flowkit.GatingStrategy) -> None:
    """Move each quadrant position flowkit placed outside its quadrant back inside it."""
    import flowkit as fk

    for name, path in strategy.get_gate_ids():
        try:
            gate = strategy.get_gate(name, path)
        except fk.exceptions.QuadrantReferenceError:
            continue
        if not isinstance(gate, fk.gates.QuadrantGate):
            continue
        for q_id, quadrant in gate.quadrants.items():
            for div_ref in quadrant.divider_refs:
                lo, hi = quadrant.get_divider_range(div_ref)
                xpath = (
                    f"//gating:QuadrantGate[@gating:id='{name}']/gating:Quadrant"
                    f"[@gating:id='{q_id}']/gating:position[@gating:divider_ref='{div_ref}']"
                )
                for pos in doc.xpath(xpath, namespaces=_NS):
                    loc = float(pos.get(_q("gating", "location")))
                    if _inside(loc, lo, hi):
                        continue
                    if lo is None:
                        loc = hi - max(1.0, abs(hi))
                    elif hi is None:
                        loc = lo + max(1.0, abs(lo))
                    else:
                        loc = (lo + hi) / 2.0
                    pos.set(_q("gating", "location"), repr(float(loc)))


def export_gatingml(
    strategy: flowkit.GatingStrategy,
    path: str | Path,
    *,
    sample_id: str | None = None,
) -> None:
    """Write the gates one sample was gated with as a GatingML 2.0 document.

    Parameters
    ----------
    strategy : flowkit.GatingStrategy
        The strategy applied (``GatingOutcome.strategy``): template gates and any
        custom sample gates (fitted data-driven gates).
    path : str or pathlib.Path
        The ``.xml`` file to write.
    sample_id : str, optional
        The sample whose custom gates replace the template gates, so the file
        holds that sample's concrete coordinates; None writes the template gates.

    Raises
    ------
    ExportError
        A gate uses a transform GatingML 2.0 cannot express (FlowJo's biex or
        log), or gate names are ambiguous (GatingML needs unique gate IDs).

    Notes
    -----
    Coordinates are written in the transformed scale of each dimension, as
    GatingML 2.0 defines them (§5), with the transforms and spillover matrices the
    gates reference. Reading the file back with
    :func:`cikflow.io.read_template` gives the same membership for every event.
    """
    import flowkit as fk
    from lxml import etree

    try:
        concrete = concrete_strategy(strategy, sample_id=sample_id)
    except CikflowError as exc:
        raise ExportError(f"cannot export GatingML: {exc}") from exc
    for ref, xform in concrete.transformations.items():
        if type(xform).__name__ not in _GATINGML_TRANSFORMS:
            raise ExportError(
                f"cannot export GatingML: transform '{ref}' is a {type(xform).__name__}, "
                "which GatingML 2.0 cannot express"
            )
    names = [name for name, _ in concrete.get_gate_ids()]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ExportError(
            f"cannot export GatingML: gate IDs must be unique, but {', '.join(dupes)} "
            "occur under several parents"
        )
    if concrete.get_gate_ids():
        buf = io.BytesIO()
        fk.export_gatingml(concrete, buf)
        doc = etree.fromstring(buf.getvalue(), _parser())
        _fix_quadrant_locations(doc, concrete)
        what = f"The gates applied to sample '{sample_id}'" if sample_id else "Template gates"
    else:  # flowkit's writer fails on a strategy without gates; the document is just its root
        doc = etree.Element(_q("gating", "Gating-ML"), nsmap=_NS)
        what = "No gates"
    # GatingML's place for free text (data-type:custom_info, DataTypes.v2.0.xsd); it also
    # keeps a document without gates valid (Gating-ML_Type needs at least one element)
    info = etree.Element(_q("data-type", "custom_info"))
    info.text = f"{what}, written by cikflow {__version__}."
    doc.insert(0, info)
    _write_bytes(
        etree.tostring(doc, xml_declaration=True, encoding="utf-8", pretty_print=True),
        Path(path),
    )


@dataclass(frozen=True)
class WorkspaceSample:
    """One sample of a FlowJo workspace: its FCS file and the strategy it was gated with.

    Attributes
    ----------
    fcs : FcsData
        The file (its name, path and keywords go into the workspace).
    strategy : flowkit.GatingStrategy
        The strategy applied to it (``GatingOutcome.strategy``).
    sample_id : str, optional
        Whose custom sample gates to write; default the flowkit Sample's ID
        (``fcs.sample.id``, the ID it was gated under).
    """

    fcs: FcsData
    strategy: flowkit.GatingStrategy
    sample_id: str | None = None


def _flowjo_strategy(entry: WorkspaceSample) -> tuple[Any, list[tuple[tuple[str, ...], Any]]]:
    """The sample's concrete gates for flowkit's writer, and the Boolean gates it cannot write."""
    import flowkit as fk

    name = entry.fcs.path.name
    sample_id = entry.sample_id or entry.fcs.sample.id
    try:
        strategy = split_quadrants(concrete_strategy(entry.strategy, sample_id=sample_id))
    except CikflowError as exc:
        raise ExportError(f"{name}: cannot export to FlowJo: {exc}") from exc
    booleans = []
    for gate_name, path in strategy.get_gate_ids():
        gate = strategy.get_gate(gate_name, path)
        if isinstance(gate, fk.gates.BooleanGate):
            if strategy.get_child_gate_ids(gate_name, path):
                raise ExportError(
                    f"{name}: cannot export to FlowJo: Boolean gate '{gate_name}' has child gates"
                )
            if any(ref["complement"] for ref in gate.gate_refs):
                raise ExportError(
                    f"{name}: cannot export to FlowJo: Boolean gate '{gate_name}' uses a "
                    "complement reference, which FlowJo workspaces cannot hold"
                )
            booleans.append((tuple(path), gate))
        elif not isinstance(gate, fk.gates.RectangleGate | fk.gates.PolygonGate):
            raise ExportError(
                f"{name}: cannot export to FlowJo: gate '{gate_name}' is a "
                f"{type(gate).__name__}; only rectangle, polygon, quadrant and Boolean "
                "gates are written"
            )
    for path, gate in booleans:
        strategy.remove_gate(gate.gate_name, path)
    return strategy, booleans


def _population(sample_node: Any, path: tuple[str, ...]) -> Any:
    """The ``Subpopulations`` element holding the children of gate path ``path``."""
    from lxml import etree

    node = sample_node
    for name in path[1:]:
        subs = node.find("Subpopulations")
        node = next(p for p in subs.findall("Population") if p.get("name") == name)
    subs = node.find("Subpopulations")
    if subs is None:
        subs = etree.SubElement(node, "Subpopulations")
    return subs


def _add_boolean_nodes(sample_node: Any, booleans: list[tuple[tuple[str, ...], Any]]) -> None:
    # FlowJo 10 stores a Boolean gate as <AndNode|OrNode|NotNode name=...> holding
    # <Dependents><Dependent name="A/B/C"/></Dependents>, each dependent named by its
    # gate path below the sample (flowkit's _parse_boolean_node reads exactly this).
    from lxml import etree

    tags = {"and": "AndNode", "or": "OrNode", "not": "NotNode"}
    for path, gate in booleans:
        node = etree.SubElement(_population(sample_node, path), tags[gate.type])
        node.set("name", gate.gate_name)
        node.set("annotation", "")
        node.set("owningGroup", "")
        deps = etree.SubElement(node, "Dependents")
        for ref in gate.gate_refs:
            dep = etree.SubElement(deps, "Dependent")
            dep.set("name", "/".join((*tuple(ref["path"])[1:], ref["ref"])))


def _matrix_key(matrix_el: Any) -> tuple[Any, ...]:
    coeffs = matrix_el.iter(_q("transforms", "coefficient"))
    values = tuple(c.get(_q("transforms", "value")) for c in coeffs)
    params = tuple(
        p.get(_q("data-type", "name")) for p in matrix_el.iter(_q("data-type", "parameter"))
    )
    return params, values


def export_flowjo_wsp(
    samples: Sequence[WorkspaceSample],
    path: str | Path,
    *,
    group: str = "All Samples",
    on_error: Literal["raise", "skip"] = "raise",
) -> list[str]:
    """Write a batch as a FlowJo 10 workspace (.wsp): each sample with its own gates.

    Parameters
    ----------
    samples : sequence of WorkspaceSample
        The batch's samples, each with its FCS file and applied strategy. Sample
        names in the workspace are the FCS file names (FlowJo's convention);
        ``DataSet`` holds each file's ``file:`` URI.
    path : str or pathlib.Path
        The ``.wsp`` file to write.
    group : str
        Sample group holding every sample (``All Samples`` exists in any case).
    on_error : {"raise", "skip"}
        What to do with a sample whose gates a FlowJo workspace cannot hold:
        raise, or leave it out and go on.

    Returns
    -------
    list of str
        Why each left-out sample was left out (empty unless ``on_error="skip"``).

    Raises
    ------
    ExportError
        Two samples share a file name, or (with ``on_error="raise"``) a gate
        cannot be held by a FlowJo workspace: ellipsoid gates, Boolean gates with
        children or complement references, transforms other than linear and
        logicle (flowkit writes no others), several transforms on one channel.

    Notes
    -----
    Every gate is written as a sample gate (``owningGroup=""``), the way FlowJo
    stores gates adjusted per sample; coordinates are in data units (FlowJo stores
    gates untransformed) with each channel's transform beside the sample. Each
    sample carries its own spillover matrix, and compensated channels are named
    ``Comp-<detector>``. Quadrant gates become one rectangle per quadrant under
    the quadrant gate's parent (as FlowJo stores them). ``flowkit.Workspace``
    reads the file back with the same counts.
    """
    import flowkit as fk
    from lxml import etree

    names = [s.fcs.path.name for s in samples]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ExportError(
            f"cannot export a FlowJo workspace: sample names (FCS file names) must be "
            f"unique, but {', '.join(dupes)} occur more than once"
        )
    root = None
    sample_els = []
    matrices: dict[tuple[Any, ...], str] = {}
    matrix_els = []
    skipped: list[str] = []
    for entry in samples:
        try:
            doc, booleans = _sample_document(entry, group=group)
        except ExportError as exc:
            if on_error == "raise":
                raise
            skipped.append(str(exc))
            continue
        k = len(sample_els) + 1
        root = doc if root is None else root
        sample_el = _numbered_sample(doc, entry, k=k, booleans=booleans)
        # the sample's matrix also goes inside its Sample element, after DataSet
        for matrix_el in doc.findall("Matrices/" + _q("transforms", "spilloverMatrix")):
            sample_el.insert(1, _copy(_shared_matrix(matrix_el, entry, matrices, matrix_els)))
        sample_els.append(sample_el)
    if root is None:  # an empty batch: flowkit writes the empty workspace
        buf = io.BytesIO()
        fk.Session().export_wsp(buf, group)
        root = etree.fromstring(buf.getvalue(), _parser())
    matrices_el = root.find("Matrices")
    for child in list(matrices_el):
        matrices_el.remove(child)
    for matrix_el in matrix_els:
        matrices_el.append(_copy(matrix_el))
    sample_list = root.find("SampleList")
    for child in list(sample_list):
        sample_list.remove(child)
    for sample_el in sample_els:
        sample_list.append(sample_el)
    _set_groups(root, group, n_samples=len(sample_els))
    _write_bytes(
        etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True),
        Path(path),
    )
    return skipped


def _numbered_sample(doc: Any, entry: WorkspaceSample, *, k: int, booleans: list[Any]) -> Any:
    """The Sample element of a one-sample document, renumbered as the batch's ``k``-th."""
    sample_el = doc.find("SampleList/Sample")
    # renumber: flowkit numbers the only sample "1" and its gates "ID1<n>"
    sample_el.find("DataSet").set("sampleID", str(k))
    sample_el.find("DataSet").set("uri", entry.fcs.path.resolve().as_uri())
    node = sample_el.find("SampleNode")
    node.set("sampleID", str(k))
    node.set("name", entry.fcs.path.name)
    for el in node.iter():
        for attr in (_q("gating", "id"), _q("gating", "parent_id")):
            old = el.get(attr)
            if old is not None:
                el.set(attr, f"ID{k}{int(old[3:]):05d}")
    _add_boolean_nodes(node, booleans)
    return sample_el


def _shared_matrix(
    matrix_el: Any,
    entry: WorkspaceSample,
    matrices: dict[tuple[Any, ...], str],
    matrix_els: list[Any],
) -> Any:
    """The batch's one element for this matrix (added, uniquely named, when first seen)."""
    key = _matrix_key(matrix_el)
    if key in matrices:
        return next(m for m in matrix_els if _matrix_key(m) == key)
    base = matrix_el.get("name")
    taken = set(matrices.values())
    name = base if base not in taken else f"{base} ({entry.fcs.path.stem})"
    matrices[key] = name
    matrix_el.set("name", name)
    matrix_el.set(_q("transforms", "id"), str(uuid.uuid5(uuid.NAMESPACE_OID, repr((name, key)))))
    matrix_els.append(matrix_el)
    return matrix_el


def _sample_document(entry: WorkspaceSample, *, group: str) -> tuple[Any, list[Any]]:
    """The one-sample workspace flowkit writes for ``entry``, and the Boolean gates to add."""
    import flowkit as fk
    from lxml import etree

    strategy, booleans = _flowjo_strategy(entry)
    buf = io.BytesIO()
    session = fk.Session(gating_strategy=strategy, fcs_samples=[entry.fcs.sample])
    try:
        session.export_wsp(buf, group)
    except (ValueError, NotImplementedError) as exc:
        raise ExportError(
            f"{entry.fcs.path.name}: cannot export to FlowJo ({type(exc).__name__}: {exc})"
        ) from exc
    return etree.fromstring(buf.getvalue(), _parser()), booleans


def _copy(el: Any) -> Any:
    import copy

    return copy.deepcopy(el)


def _set_groups(root: Any, group: str, *, n_samples: int) -> None:
    from lxml import etree

    groups = root.find("Groups")
    for child in list(groups):
        groups.remove(child)
    for name in dict.fromkeys(["All Samples", group]):
        node = etree.SubElement(groups, "GroupNode")
        node.set("name", name)
        node.set("annotation", "")
        node.set("owningGroup", name)
        grp = etree.SubElement(node, "Group")
        grp.set("name", name)
        refs = etree.SubElement(grp, "SampleRefs")
        for k in range(1, n_samples + 1):
            etree.SubElement(refs, "SampleRef").set("sampleID", str(k))
