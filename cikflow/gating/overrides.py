"""Data-driven ``method:`` overrides on the named gates of an imported template.

A lab that already has a GatingML 2.0 file or a FlowJo workspace keeps its gate
tree and lets cikflow fit chosen gates per sample: a YAML template

.. code-block:: yaml

    name: lab_panel
    version: "1"
    import: lab_gates.xml            # or a FlowJo .wsp (relative to this file)
    overrides:
      Lymphocytes: {method: blob, params: {n_components: 3}}
      CD3pos: {method: valley, params: {search: [300, 5000]}}

Each overridden gate is fitted on its parent's events in its own dimensions'
compensated, transformed scale (``search`` in data units) and added as the
sample's custom gate, in hierarchy order, so children are fitted on the fitted
parents.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.exceptions import GatingTemplateError
from cikflow.gating.imported import from_flowkit
from cikflow.gating.registry import (
    METHODS,
    blob_estimator,
    get_method,
    singlet_estimator,
    threshold_estimator,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import flowkit

__all__ = ["OVERRIDE_METHODS", "apply_overrides"]

#: methods that fit a gate of an imported template
OVERRIDE_METHODS = tuple(m.name for m in METHODS.values() if m.imported)


def _find(strategy: flowkit.GatingStrategy, name: str) -> tuple[str, ...]:
    paths = strategy.find_matching_gate_paths(name)
    if not paths:
        raise GatingTemplateError(
            f"override '{name}': no gate of that name in the imported template"
        )
    if len(paths) > 1:
        raise GatingTemplateError(f"override '{name}': several gates have that name ({paths})")
    return tuple(paths[0])


def _columns(strategy: flowkit.GatingStrategy, sample: flowkit.Sample, gate: Any) -> np.ndarray:
    # flowkit has no public call for "this gate's compensated, transformed dimensions";
    # its own _preprocess_sample_events is exactly the preprocessing gate_sample applies.
    frame = strategy._preprocess_sample_events(sample, gate)
    return frame.to_numpy(dtype=float)


def apply_overrides(
    strategy: flowkit.GatingStrategy,
    sample: flowkit.Sample,
    *,
    overrides: Mapping[str, Mapping[str, Any]],
    random_state: int = 0,
) -> list[dict[str, Any]]:
    """Fit the overridden gates of ``strategy`` on ``sample``; add them as custom gates.

    Parameters
    ----------
    strategy : flowkit.GatingStrategy
        The imported template's strategy (changed in place: custom sample gates
        are added for ``sample.id``).
    sample : flowkit.Sample
        The sample.
    overrides : mapping
        Gate name → ``{"method": ..., "params": {...}}``. Range and rectangle
        gates take ``valley``/``quantile``/``tail`` on one dimension
        (``params.dimension``, default the first; ``params.bound`` min or max);
        polygons take ``blob``/``singlets``.
    random_state : int
        Seed of every fit.

    Returns
    -------
    list of dict
        One fit record per overridden gate: ``gate``, ``method``, ``fits``, ``flags``.
    """
    order = {(*path, name): i for i, (name, path) in enumerate(strategy.get_gate_ids())}
    targets = sorted(
        ((_find(strategy, n), n) for n in overrides), key=lambda t: order[(*t[0], t[1])]
    )
    records = []
    for path, name in targets:
        spec = overrides[name]
        method, params = spec.get("method"), dict(spec.get("params", {}))
        where = f"override '{name}'"
        # FlowJo workspaces carry per-sample gates already: start from this sample's own
        gate = strategy.get_gate(name, path, sample_id=sample.id)
        kind = from_flowkit(gate, parent=path[-1]).kind
        registered = get_method(str(method), kind=kind, where=where, imported=True)
        results = strategy.gate_sample(sample)
        parent = path[-1]
        mask = (
            np.ones(sample.event_count, dtype=bool)
            if parent == "root"
            else np.asarray(results.get_gate_membership(parent, path[:-1]), dtype=bool)
        )
        values = _columns(strategy, sample, gate)[mask]
        record: dict[str, Any] = {"gate": name, "method": method, "fits": [], "flags": []}
        new_gate = copy.deepcopy(gate)
        if registered.divider:
            ids = [d.id for d in new_gate.dimensions]
            wanted = params.pop("dimension", ids[0])
            if wanted not in ids:
                raise GatingTemplateError(
                    f"override '{name}': dimension '{wanted}' is not one of {ids}"
                )
            column = ids.index(wanted)
            dim = new_gate.dimensions[column]
            xform = (
                strategy.transformations.get(dim.transformation_ref)
                if dim.transformation_ref
                else None
            )
            if "search" in params and xform is not None:
                params["search"] = [
                    float(v)
                    for v in xform.apply(np.asarray(params["search"], float).reshape(-1, 1))[:, 0]
                ]
            side = params.pop("bound", None) or ("min" if dim.min is not None else "max")
            est = threshold_estimator(
                registered.name, params, where=where, random_state=random_state
            ).fit(values[:, column])
            setattr(dim, side, est.threshold_)
            record["fits"].append({"dimension": dim.id, "threshold_transformed": est.threshold_})

            record["flags"] = [
                {"flag": f.flag, "reason": f"{dim.id}: {f.text(_data_units(xform))}"}
                for f in est.flags_
            ]
        else:
            if method == "blob":
                linear = all(d.transformation_ref is None for d in gate.dimensions)
                est = blob_estimator(
                    params, linear=linear, where=where, random_state=random_state
                ).fit(values)
            else:
                est = singlet_estimator(params, where=where).fit(values)
            if est.vertices_:
                new_gate.vertices = [tuple(v) for v in est.vertices_]
            record["fits"].append({"vertices": len(est.vertices_)})
            record["flags"] = [{"flag": f.flag, "reason": f.text()} for f in est.flags_]
        if strategy.is_custom_gate(sample.id, name, path):
            strategy.remove_gate(name, path, sample_id=sample.id)
        strategy.add_gate(new_gate, path, sample_id=sample.id)
        records.append(record)
    return records


def _data_units(xform: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Transformed values back to data units (unchanged without a transform)."""
    if xform is None:
        return lambda v: v
    return lambda v: xform.inverse(v.reshape(-1, 1))[:, 0]
