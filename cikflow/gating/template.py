"""Gating templates: validated YAML gate trees in marker space → flowkit GatingStrategy.

A template names dimensions by marker (``CD3``) or detector (``FSC-A``); a file's
panel (:func:`cikflow.panel.resolve_panel`) maps them to its detectors. Gate
coordinates are written in data units and converted here, with the same flowkit
transform objects that gate the events, into the transformed scale in which
GatingML 2.0 applies them (GatingML 2.0 §5: a gate's coordinates are in the
scale of its dimensions' transformation). Range bounds follow GatingML: minimum
inclusive, maximum exclusive.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np
import yaml

from cikflow.exceptions import GatingTemplateError
from cikflow.gating.model import Gate, from_spec, identity_scale, spec_dims, tree_order

if TYPE_CHECKING:
    from collections.abc import Mapping

    import flowkit


__all__ = [
    "GateInfo",
    "Template",
    "apply_set",
    "build_strategy",
    "settable_fields",
    "template_dimensions",
    "validate_template",
]

#: transform used when a template has none (Moore & Parks 2012 defaults for 18-bit data)
DEFAULT_TRANSFORMS: dict[str, dict[str, Any]] = {
    "logicle": {"type": "logicle", "t": 262144, "w": 0.5, "m": 4.5, "a": 0},
    "none": {"type": "none"},
}
#: detectors that stay linear unless a template says otherwise
SCATTER_PREFIXES = ("FSC", "SSC", "Time", "TIME")


class FitEvents(Protocol):
    """The events data-driven gates are fitted on (:class:`cikflow.gating.apply.FitValues`)."""

    n_events: int

    def __call__(self, dim: str, mask: np.ndarray | None) -> np.ndarray:
        """Transformed values of dimension ``dim`` of the events in ``mask`` (all when None)."""
        ...


@dataclass(frozen=True)
class Template:
    """A validated gating template.

    Attributes
    ----------
    name, version : str
        From the template.
    kind : {"yaml", "gatingml"}
        Source format.
    spec : dict
        The validated YAML document (``{}`` for GatingML).
    sha256 : str
        Hex SHA-256 of the template file's bytes.
    strategy : flowkit.GatingStrategy or None
        For GatingML templates, the strategy parsed by flowkit (dimensions are
        already detector names).
    """

    name: str
    version: str
    kind: str
    spec: dict[str, Any]
    sha256: str = ""
    strategy: flowkit.GatingStrategy | None = None

    @property
    def base(self) -> str | None:
        """Gate whose events are 100 % for ``percent_of_base``."""
        return self.spec.get("base")

    @property
    def aliases(self) -> dict[str, list[str]]:
        """Marker → other $PnS spellings the template itself declares."""
        return {k: list(v) for k, v in self.spec.get("aliases", {}).items()}

    @property
    def populations(self) -> dict[str, str]:
        """Reported population name → gate name."""
        return dict(self.spec.get("populations", {}))

    @property
    def below_base(self) -> list[str]:
        """Reported populations whose gate lies below the base (none without a base).

        >>> spec = {"base": "b", "populations": {"B": "b", "X": "x", "Y": "y"}, "gates": [
        ...     {"name": "b", "parent": "root", "type": "range", "dimensions": {"A": {}}},
        ...     {"name": "x", "parent": "b", "type": "range", "dimensions": {"A": {}}},
        ...     {"name": "y", "parent": "root", "type": "range", "dimensions": {"A": {}}}]}
        >>> Template(name="t", version="1", kind="yaml", spec=spec).below_base
        ['X']
        """
        if not self.base:
            return []
        gates = [from_spec(g, scale=identity_scale) for g in self.spec["gates"]]
        under = {self.base}
        for population, parent in tree_order(gates):
            if parent in under:
                under.add(population)
        return [name for name, gate in self.populations.items() if gate in under - {self.base}]

    @property
    def reported(self) -> list[str]:
        """The populations results name: a YAML template's ``populations``, else its gates.

        A GatingML or FlowJo template reports every gate (quadrants included) by name.
        """
        if self.populations:
            return list(self.populations)
        if self.strategy is not None:
            return [name for name, _ in self.strategy.get_gate_ids()]
        return []


@dataclass(frozen=True)
class GateInfo:
    """How a gate was built: what a report needs to draw it.

    Attributes
    ----------
    name, parent, gate_type : str
        Gate name, parent gate (``root`` at the top), template type.
    path : tuple of str
        flowkit gate path (ancestors, starting with ``root``).
    dims : tuple of str
        Template dimension names (marker or detector), x then y.
    detectors : tuple of str
        The matching $PnN of the file.
    gate : Gate
        The gate as applied (fitted, transformed units): a quadrant's row
        holds its quadrant gate. A row is a population when its name is one
        of ``gate.populations()``.
    method : str
        ``static`` or the data-driven method that placed the gate.
    fit : dict
        For fitted gates: what was fitted (thresholds in data units, vertices)
        and its flags.
    fitted : Gate or None
        For a gate a reviewer's override set (:mod:`cikflow.review`): the gate as
        fitted (or as the template wrote it), which ``gate`` replaced.
    override : dict or None
        That override's ``set`` fields (data units).
    """

    name: str
    parent: str
    gate_type: str
    path: tuple[str, ...]
    dims: tuple[str, ...] = ()
    detectors: tuple[str, ...] = ()
    gate: Gate | None = None
    method: str = "static"
    fit: dict[str, Any] = field(default_factory=dict)
    fitted: Gate | None = None
    override: dict[str, Any] | None = None


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files("cikflow").joinpath("schemas/template.schema.yaml").read_text()
    return yaml.safe_load(text)


def _where(spec: Mapping[str, Any], path: list[Any]) -> str:
    """Human location of a schema error: gate name and field."""
    if len(path) >= 2 and path[0] == "gates" and isinstance(path[1], int):
        gates = spec.get("gates") or []
        name = gates[path[1]].get("name", "?") if path[1] < len(gates) else "?"
        fieldname = ".".join(str(p) for p in path[2:]) or "(gate)"
        return f"gate '{name}' (gates[{path[1]}]) field '{fieldname}'"
    return f"field '{'.'.join(str(p) for p in path) or '(top level)'}'"


def validate_template(spec: Any, *, source: str = "template") -> dict[str, Any]:
    """Validate a YAML template document; return it with defaults filled in.

    Raises
    ------
    GatingTemplateError
        Naming the gate and the field that is wrong: a schema violation, a
        duplicate gate name, an unknown parent or boolean operand, a quadrant
        child used before its quadrant, an unknown transform or population.
    """
    import jsonschema

    if not isinstance(spec, dict):
        raise GatingTemplateError(
            f"{source}: a template must be a mapping, not {type(spec).__name__}"
        )
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(spec), key=lambda e: list(e.absolute_path))
    if errors:
        err = min(errors, key=lambda e: -len(e.absolute_path))
        raise GatingTemplateError(
            f"{source}: {_where(spec, list(err.absolute_path))}: {err.message}"
        )
    spec = copy.deepcopy(spec)
    spec.setdefault("transforms", {})
    for key, value in DEFAULT_TRANSFORMS.items():
        spec["transforms"].setdefault(key, value)
    spec.setdefault("default_transform", "logicle")
    spec.setdefault("channels", {})
    for tname in [spec["default_transform"], *spec["channels"].values()]:
        if tname not in spec["transforms"]:
            raise GatingTemplateError(
                f"{source}: transform '{tname}' is not defined in 'transforms'"
            )
    for tname, params in spec["transforms"].items():
        if (problem := transform_problem(params)) is not None:
            raise GatingTemplateError(f"{source}: field 'transforms.{tname}': {problem}")

    known: set[str] = {"root"}
    for entry in spec["gates"]:
        name = entry["name"]
        if name in known:
            raise GatingTemplateError(f"{source}: gate '{name}': field 'name': duplicate gate name")
        if entry["parent"] not in known:
            raise GatingTemplateError(
                f"{source}: gate '{name}': field 'parent': '{entry['parent']}' is not a gate "
                "defined above it (gates must be listed parents first)"
            )
        try:
            gate = from_spec(entry, scale=identity_scale)
        except GatingTemplateError as exc:
            raise GatingTemplateError(f"{source}: {exc}") from None
        for ref in gate.references:
            if ref not in known:
                raise GatingTemplateError(
                    f"{source}: gate '{name}': field 'of': '{ref}' is not a gate defined above it"
                )
        known.add(name)
        for pop, _ in gate.populations():
            if pop != name:
                if pop in known:
                    raise GatingTemplateError(
                        f"{source}: gate '{name}': field 'quadrants': duplicate name '{pop}'"
                    )
                known.add(pop)
    for key in ("base",):
        if key in spec and spec[key] not in known:
            raise GatingTemplateError(f"{source}: field '{key}': unknown gate '{spec[key]}'")
    for pop, gate_name in spec.get("populations", {}).items():
        if gate_name not in known:
            raise GatingTemplateError(
                f"{source}: field 'populations.{pop}': unknown gate '{gate_name}'"
            )
    return spec


def template_dimensions(template: Template) -> list[str]:
    """Dimension names (markers or detectors) the template's gates use, in first-use order."""
    seen: dict[str, None] = {}
    for gate in template.spec.get("gates", []):
        for dim in spec_dims(gate):
            seen.setdefault(dim, None)
    return list(seen)


#: FlowJo 10's biex defaults (flowkit.transforms.WSPBiexTransform): top of scale, positive
#: decades, extra negative decades, width basis
BIEX_DEFAULTS: dict[str, float] = {"max": 262144, "pos": 4.418540, "neg": 0, "width": -10}
#: FlowJo's biex maps data onto a 4096-channel axis; templates use channel / 4096 (0 to 1,
#: the scale of logicle and hyperlog, in which bandwidths and fitted offsets are set)
BIEX_CHANNELS = 4096


def make_transform(params: Mapping[str, Any]) -> flowkit.transforms.Transform | None:
    """The flowkit transform of a template's transform entry (None for ``none``).

    Parameters
    ----------
    params : mapping
        ``type`` and its parameters, as in ``$defs/transform`` of the template schema:
        logicle, hyperlog (GatingML 2.0: ``t`` data units, ``w``, ``m``, ``a``
        decades), asinh, linear, log, or FlowJo's ``biex`` (``max`` data units, ``pos``
        and ``neg`` decades, ``width`` basis, as FlowJo stores them).

    Returns
    -------
    flowkit.transforms.Transform or None
        biex is FlowJo 10's lookup table (:class:`flowkit.transforms.WSPBiexTransform`),
        its 4096 channels divided by 4096 so the scale runs 0 to 1 like logicle's;
        a FlowJo workspace keeps it as biex with the same parameters.
    """
    import flowkit as fk

    kind = params["type"]
    t = params.get("t", 262144)
    if kind == "logicle":
        return fk.transforms.LogicleTransform(
            t, params.get("w", 0.5), params.get("m", 4.5), params.get("a", 0)
        )
    if kind == "hyperlog":
        return fk.transforms.HyperlogTransform(
            t, params.get("w", 0.5), params.get("m", 4.5), params.get("a", 0)
        )
    if kind == "biex":
        return _biex({**BIEX_DEFAULTS, **params})
    if kind == "asinh":
        return fk.transforms.AsinhTransform(t, params.get("m", 4.5), params.get("a", 0))
    if kind == "linear":
        return fk.transforms.LinearTransform(t, params.get("a", 0))
    if kind == "log":
        return fk.transforms.LogTransform(t, params.get("m", 4.5))
    return None


def _biex(params: Mapping[str, Any]) -> flowkit.transforms.Transform:
    """FlowJo's biex with its output divided by :data:`BIEX_CHANNELS`."""
    import flowkit as fk
    from scipy import interpolate

    xform = fk.transforms.WSPBiexTransform(
        negative=params["neg"],
        width=params["width"],
        positive=params["pos"],
        max_value=params["max"],
    )
    # flowkit 1.3.2 keeps FlowJo's table as interpolators over (data, channel); rescale
    # the channel axis (beyond the table, values clamp to its ends, as in flowkit)
    data, channel = xform._lut_func.x, xform._lut_func.y / BIEX_CHANNELS
    xform._lut_func = interpolate.interp1d(
        data, channel, bounds_error=False, fill_value=(channel.min(), channel.max())
    )
    xform._inverse_lut_func = interpolate.interp1d(
        channel, data, bounds_error=False, fill_value=(data.min(), data.max())
    )
    xform.channel_scale = 1 / BIEX_CHANNELS  # public, so it takes part in flowkit's __eq__
    return xform


def transform_problem(params: Mapping[str, Any]) -> str | None:
    """Why a transform entry's parameters are out of the transform's domain (None if fine).

    Hyperlog (GatingML 2.0) needs ``0 < w <= m/2``; the schema bounds the rest.
    """
    if params["type"] == "hyperlog":
        w, m = params.get("w", 0.5), params.get("m", 4.5)
        if not 0 < w <= m / 2:
            return f"hyperlog needs 0 < w <= m/2 (w={w:g}, m={m:g})"
    return None


def transform_name(spec: Mapping[str, Any], dim: str) -> str:
    """Name of the transform a template applies to dimension ``dim``."""
    if dim in spec["channels"]:
        return spec["channels"][dim]
    if dim.startswith(SCATTER_PREFIXES):
        return "none"
    return spec["default_transform"]


def build_strategy(
    template: Template,
    *,
    channel_map: Mapping[str, str],
    compensation: flowkit.Matrix | None,
    values: FitEvents | None = None,
    sample_id: str | None = None,
    random_state: int = 0,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[flowkit.GatingStrategy, list[GateInfo]]:
    """Turn a template into a flowkit GatingStrategy for one file.

    Static gates become template gates. With ``values`` given, every
    data-driven gate (``method`` other than ``static``) is fitted on its
    parent's events, in template order, and its concrete gate is added as the
    sample's custom gate (flowkit ``add_gate(..., sample_id=...)``), so the gates
    actually applied are plain GatingML.

    Parameters
    ----------
    template : Template
        A validated YAML template.
    channel_map : mapping of str to str
        Template dimension → the file's $PnN (see :func:`cikflow.panel.resolve_panel`).
    compensation : flowkit.Matrix or None
        Spillover matrix to compensate fluorescence with, registered in the
        strategy as ``spill``; None leaves events uncompensated.
    values : FitEvents, optional
        The fitting events: ``values(dim, mask)`` gives the compensated,
        transformed values of the events in ``mask`` (what flowkit gates), and
        ``values.n_events`` their number; needed to fit data-driven gates.
    sample_id : str, optional
        Sample the fitted gates are added for (required with ``values``).
    random_state : int
        Seed of every fit.
    overrides : mapping, optional
        Gate name → a reviewer's ``set`` fields for this sample (data units,
        :func:`cikflow.review.apply_set`): the gate is fitted as usual (kept in
        :attr:`GateInfo.fitted`), then replaced by the set coordinates as the
        sample's custom gate; a quadrant's divider not set is fitted within them.

    Returns
    -------
    strategy : flowkit.GatingStrategy
    gates : list of GateInfo
        One per gate (quadrants: the quadrant gate, then one per quadrant), in
        template order, with the geometry and fit actually used.
    """
    if values is not None and sample_id is None:
        msg = "build_strategy: fitting data-driven gates needs a sample_id"
        raise ValueError(msg)
    scales = _Scales(template, channel_map=channel_map, compensation=compensation)
    strategy = scales.strategy
    memberships = _Memberships(values, channel_map=channel_map) if values is not None else None
    paths: dict[str, tuple[str, ...]] = {"root": ()}
    infos: list[GateInfo] = []
    for spec_gate in template.spec["gates"]:
        name, parent = spec_gate["name"], spec_gate["parent"]
        gate_path = (*paths[parent], parent) if parent != "root" else ("root",)
        fk_gates, gate = scales.make_gate(spec_gate, paths)
        for fk_gate in fk_gates:
            strategy.add_gate(fk_gate, gate_path)
        override = (overrides or {}).get(name)
        placed = _Placed(fk_gates, gate)
        if memberships is not None and gate.method != "static":
            placed = _fitted(
                spec_gate,
                fitting={
                    "values": values,
                    "mask": memberships.parent(parent),
                    "scale": scales.scale,
                    "unscale": scales.unscale,
                    "random_state": random_state,
                },
                scales=scales,
                paths=paths,
            )
        if override is not None:
            placed = _overridden(spec_gate, placed, override=override, scales=scales, paths=paths)
        if placed.custom:  # this sample's own gate (fitted or set by a reviewer)
            for fk_gate in placed.fk_gates:
                strategy.add_gate(fk_gate, gate_path, sample_id=sample_id)
        fk_gates, gate = placed.fk_gates, placed.gate
        if memberships is not None:
            memberships.apply(fk_gates, gate)
        paths[name] = gate_path
        detectors = tuple(channel_map[d] for d in gate.dims)
        info = GateInfo(name, parent, gate.kind, gate_path, gate.dims, detectors, gate, gate.method)
        override_copy = copy.deepcopy(dict(override)) if override is not None else None
        infos.append(
            replace(info, fit=placed.fit or {}, fitted=placed.replaced, override=override_copy)
        )
        for pop, kind in gate.populations():
            if pop == name:
                continue
            paths[pop] = gate.population_path(gate_path)
            infos.append(
                GateInfo(pop, name, kind, paths[pop], gate.dims, detectors, gate, gate.method)
            )
    return strategy, infos


def settable_fields(gate: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields a reviewer's override may set on a template gate (:attr:`Gate.settable`).

    >>> q = {"name": "q", "parent": "root", "type": "quadrant", "quadrants": {"A": "++"},
    ...      "x": {"dimension": "CD3", "at": 1}, "y": {"dimension": "CD56", "at": 1}}
    >>> r = {"name": "r", "parent": "root", "type": "range", "dimensions": {"CD3": {}}}
    >>> settable_fields(q), settable_fields(r)
    (('x', 'y'), ('dimensions',))
    """
    return from_spec(gate, scale=identity_scale).settable


def apply_set(gate: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A template gate with an override's ``set`` fields applied: a static gate.

    Parameters
    ----------
    gate : mapping
        The template gate, or its fitted form (data units).
    values : mapping
        The override's ``set`` fields.

    Returns
    -------
    dict
        The gate with those coordinates, ``method: static`` and no ``params``.

    Examples
    --------
    >>> g = {"name": "v", "parent": "root", "type": "range", "method": "valley",
    ...      "params": {}, "dimensions": {"Viability": {"min": None, "max": 3000}}}
    >>> apply_set(g, {"dimensions": {"Viability": {"max": 2500}}})["dimensions"]
    {'Viability': {'min': None, 'max': 2500}}
    >>> q = {"name": "q", "parent": "root", "type": "quadrant",
    ...      "x": {"dimension": "CD3", "at": 1500, "search": [300, 5000]},
    ...      "y": {"dimension": "CD56", "at": {"-": 600, "+": 700}, "per_side": True}}
    >>> apply_set(q, {"x": {"at": 2000}})["x"]
    {'dimension': 'CD3', 'at': 2000}
    """
    spec = copy.deepcopy(dict(gate))
    spec["method"] = "static"
    spec.pop("params", None)
    for key, value in values.items():
        if key == "dimensions":
            spec["dimensions"] = {
                dim: {**spec["dimensions"][dim], **dict(value.get(dim, {}))}
                for dim in spec["dimensions"]
            }
        elif key in ("x", "y"):
            kept = {"dimension": spec[key]["dimension"], "at": value["at"]}
            if spec[key].get("per_side"):
                kept["per_side"] = True
            if "notch" in value or "notch" in spec[key]:  # a set x keeps its notch's setting
                kept["notch"] = value.get("notch", spec[key].get("notch"))
            spec[key] = kept
        else:
            spec[key] = copy.deepcopy(value)
    return spec


class _Placed(NamedTuple):
    """A gate as placed for one sample: its flowkit gates, model, fit record."""

    fk_gates: list[Any]
    gate: Gate
    fit: dict[str, Any] | None = None  # what was fitted (None: nothing)
    custom: bool = False  # the sample's own gate, not the template's
    fitting: Mapping[str, Any] | None = None  # what it was fitted with
    spec: Mapping[str, Any] | None = None  # its fitted coordinates (data units)
    replaced: Gate | None = None  # the gate a reviewer's override replaced


def _fitted(
    spec_gate: Mapping[str, Any],
    *,
    fitting: Mapping[str, Any],
    scales: _Scales,
    paths: Mapping[str, tuple[str, ...]],
) -> _Placed:
    """A data-driven gate fitted on its parent's events (:func:`cikflow.gating.fit.fit_gate`)."""
    from cikflow.gating.fit import fit_gate

    fitted, fit = fit_gate(spec_gate, **fitting)
    fk_gates, gate = scales.make_gate(fitted, paths)
    gate = replace(gate, method=spec_gate.get("method", "static"))
    return _Placed(fk_gates, gate, fit, custom=True, fitting=fitting, spec=fitted)


def _overridden(
    spec_gate: Mapping[str, Any],
    placed: _Placed,
    *,
    override: Mapping[str, Any],
    scales: _Scales,
    paths: Mapping[str, tuple[str, ...]],
) -> _Placed:
    """A gate a reviewer set for this sample, replacing ``placed`` (fitted or template).

    A fitted quadrant is refitted with the set dividers fixed (a y fitted per side
    is fitted within the sides of the set x); any other gate takes the set fields
    over its fitted (or template) coordinates. The record keeps the fit it replaced
    under ``replaced`` (its flags no longer raised: the fitted gate is not applied).
    """
    from cikflow.gating.fit import fit_gate

    record: dict[str, Any] = {"gate": spec_gate["name"], "method": "override", "fits": []}
    if placed.fitting is not None and placed.gate.refits_unset:
        refitted, record = fit_gate(spec_gate, **placed.fitting, fixed=override)
        record["method"] = "override"
        applied = apply_set(refitted, override)
    else:
        applied = apply_set(placed.spec or spec_gate, override)
    record.setdefault("flags", [])
    record["replaced"] = placed.fit or {}
    fk_gates, gate = scales.make_gate(applied, paths)
    gate = replace(gate, method=spec_gate.get("method", "static"))
    return _Placed(fk_gates, gate, record, custom=True, replaced=placed.gate)


class _Scales:
    """A template's transforms and compensation for one file, registered in a strategy."""

    def __init__(
        self,
        template: Template,
        *,
        channel_map: Mapping[str, str],
        compensation: flowkit.Matrix | None,
    ) -> None:
        import flowkit as fk

        spec = template.spec
        self.channel_map = channel_map
        self.strategy = fk.GatingStrategy()
        self.comp_ref = "uncompensated"
        if compensation is not None:
            self.strategy.add_comp_matrix("spill", compensation)
            self.comp_ref = "spill"
        self.xforms: dict[str, Any] = {}
        made: dict[str, Any] = {}
        for dim in template_dimensions(template):
            tname = transform_name(spec, dim)
            if tname not in made:
                made[tname] = make_transform(spec["transforms"][tname])
                if made[tname] is not None:
                    self.strategy.add_transform(tname, made[tname])
            self.xforms[dim] = (tname if made[tname] is not None else None, made[tname])

    def scale(self, dim: str, data: Any) -> np.ndarray:
        """Data units → the dimension's transformed units."""
        arr = np.asarray(data, dtype=float)
        xform = self.xforms[dim][1]
        return arr if xform is None else xform.apply(arr.reshape(-1, 1))[:, 0]

    def unscale(self, dim: str, data: Any) -> np.ndarray:
        """Transformed units → data units."""
        arr = np.asarray(data, dtype=float)
        xform = self.xforms[dim][1]
        return arr if xform is None else xform.inverse(arr.reshape(-1, 1))[:, 0]

    def dimension(self, dim: str, lo: float | None, hi: float | None) -> Any:
        """A gate dimension, its range in transformed units."""
        import flowkit as fk

        return fk.Dimension(
            self.channel_map[dim],
            compensation_ref=self.comp_ref,
            transformation_ref=self.xforms[dim][0],
            range_min=lo,
            range_max=hi,
        )

    def divider(self, div_id: str, dim: str, value: float) -> Any:
        """A quadrant divider at ``value`` (transformed units)."""
        import flowkit as fk

        return fk.QuadrantDivider(
            div_id, self.channel_map[dim], self.comp_ref, [value], self.xforms[dim][0]
        )

    def make_gate(
        self, spec: Mapping[str, Any], paths: Mapping[str, tuple[str, ...]]
    ) -> tuple[list[Any], Gate]:
        """The flowkit gates of a template gate (one, or one per population) and its model."""
        gate = from_spec(spec, scale=self.scale)
        made = gate.to_flowkit(dimension=self.dimension, divider=self.divider, paths=paths)
        return (made if isinstance(made, list) else [made]), gate


class _Memberships:
    """Memberships of the fitting events, gate by gate, as flowkit computes them."""

    def __init__(self, values: FitEvents, *, channel_map: Mapping[str, str]) -> None:
        self.values = values
        self.channel_map = channel_map
        self.masks: dict[str, np.ndarray] = {}

    def parent(self, name: str) -> np.ndarray:
        """Membership of a population (all events for ``root``)."""
        if name == "root":
            return np.ones(self.values.n_events, dtype=bool)
        return self.masks[name]

    def apply(self, fk_gates: list[Any], gate: Gate) -> None:
        """Membership of the gate's flowkit gates (parent applied)."""
        import pandas as pd

        parent = self.parent(gate.parent)
        if not gate.dims:  # a Boolean gate: from the memberships it refers to
            self.masks.update(gate.members({}, parent=parent, populations=self.masks))
            return
        # only the parent's events are transformed and tested
        frame = pd.DataFrame({self.channel_map[d]: self.values(d, parent) for d in gate.dims})

        def spread(inside: Any) -> np.ndarray:
            full = np.zeros(len(parent), dtype=bool)
            full[parent] = np.asarray(inside, dtype=bool)
            return full

        for fk_gate in fk_gates:
            result = fk_gate.apply(frame)
            if isinstance(result, dict):  # one membership per population
                for pop, inside in result.items():
                    self.masks[pop] = spread(inside)
            else:
                self.masks[fk_gate.gate_name] = spread(result)
        self.masks.setdefault(gate.name, parent.copy())  # a gate of several: its parent's


def spec_hash(spec: Mapping[str, Any]) -> str:
    """Stable hash of a template document (for provenance of in-memory templates)."""
    import hashlib

    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
