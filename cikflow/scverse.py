"""A batch's base events as an annotated matrix: the parts of an AnnData object.

The scverse export (``results/batch/<batch>/events.h5ad``, written by
:func:`cikflow.io.h5ad.write_h5ad`) holds, per sample, a seeded subsample of the
template's base population (viable lymphocytes in the default template):

``X``
    float32, events × dimensions: every template dimension (markers, and scatter
    detectors) compensated and in its template transform, the scale the gates
    were drawn on (logicle: one unit spans ``m`` = 4.5 decades; a dimension
    whose transform is ``none``, scatter by default, stays in data units).
``layers["compensated"]``
    float32, the same events compensated, untransformed (data units).
``obs``
    ``sample``, ``batch`` (categorical), ``day`` (culture day), ``event`` (the
    event's 0-based position in its FCS file), one boolean column per reported
    population below the base (the gate's membership), ``cluster`` (the
    sample's own k-means cluster, the row of its ``clusters.tsv``; −1 when the
    sample was not clustered) and ``phenotype`` (that cluster's phenotype,
    categorical).
``var``
    indexed by template dimension: ``detector`` (``$PnN``), ``transform`` (its
    template transform's name) and ``compensated`` (whether the spillover
    matrix acts on the detector).
``uns``
    ``template`` (name, version, SHA-256 and text), ``transforms`` (the
    template's transform of every dimension), ``panel`` (each sample's
    dimension → detector), ``samples`` (each sample's base events and how many
    were kept), ``cikflow`` (version, batch, base gate, subsample size and seed)
    and ``provenance`` (the export's provenance record as JSON text, the same as
    its sidecar).

Nothing here reads or writes files: gating outcomes in, arrays and tables out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cikflow.exceptions import ExportError
from cikflow.gating.template import make_transform, transform_name

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cikflow.clustering import GatedClusters
    from cikflow.gating.apply import GatingOutcome
    from cikflow.gating.template import Template

__all__ = [
    "H5AD_DEFAULTS",
    "OBS_COLUMNS",
    "EventMatrix",
    "SampleEvents",
    "event_matrix",
    "sample_events",
    "subsample_rows",
]

#: defaults of the ``export`` config section
H5AD_DEFAULTS: dict[str, Any] = {"h5ad_events_per_sample": 10_000, "random_state": 0}

#: ``obs`` columns before the populations; ``cluster`` and ``phenotype`` follow them
OBS_COLUMNS = ["sample", "batch", "day", "event"]

NOT_CLUSTERED = "not clustered"


@dataclass(frozen=True)
class SampleEvents:
    """One sample's subsampled base events.

    Attributes
    ----------
    sample, batch : str
        Sample and batch IDs.
    day : int
        Culture day.
    dims : list of str
        Template dimensions, in the file's channel order.
    detectors : dict of str to str
        Dimension → detector (``$PnN``).
    compensated_detectors : list of str
        Detectors the spillover matrix acts on.
    event : numpy.ndarray
        int64, each kept event's 0-based position in the FCS file.
    values : numpy.ndarray
        float32 (n, len(dims)), in each dimension's template transform.
    compensated : numpy.ndarray
        float32 (n, len(dims)), compensated data units.
    populations : dict of str to numpy.ndarray
        Reported population below the base → boolean over the kept events.
    cluster : numpy.ndarray
        int32, the sample's cluster of each kept event (−1: not clustered).
    phenotype : numpy.ndarray
        object, that cluster's phenotype (``not clustered`` when none).
    n_base : int
        Events of the base population (before subsampling).
    """

    sample: str
    batch: str
    day: int
    dims: list[str]
    detectors: dict[str, str]
    compensated_detectors: list[str]
    event: np.ndarray
    values: np.ndarray
    compensated: np.ndarray
    populations: dict[str, np.ndarray]
    cluster: np.ndarray
    phenotype: np.ndarray
    n_base: int


@dataclass(frozen=True)
class EventMatrix:
    """The parts of an AnnData object (see the module's description).

    Attributes
    ----------
    X : numpy.ndarray
        float32 (n_obs, n_vars), transformed.
    obs, var : pandas.DataFrame
        Per-event and per-dimension annotation (string indexes).
    layers : dict of str to numpy.ndarray
        ``compensated``: float32 (n_obs, n_vars), data units.
    uns : dict
        Template, transforms, panel, samples, settings and provenance.
    """

    X: np.ndarray
    obs: pd.DataFrame
    var: pd.DataFrame
    layers: dict[str, np.ndarray] = field(default_factory=dict)
    uns: dict[str, Any] = field(default_factory=dict)


def subsample_rows(n: int, *, cap: int, random_state: int = 0) -> np.ndarray:
    """Rows of a seeded subsample of at most ``cap`` of ``n`` events, in order.

    Parameters
    ----------
    n : int
        Events to choose from.
    cap : int
        Most events kept; all ``n`` when ``n <= cap``.
    random_state : int
        Seed (same seed and ``n``, same rows).

    Returns
    -------
    numpy.ndarray
        int64, sorted, ``min(n, cap)`` distinct rows.

    Examples
    --------
    >>> subsample_rows(5, cap=10).tolist()
    [0, 1, 2, 3, 4]
    >>> rows = subsample_rows(1000, cap=10, random_state=1)
    >>> len(rows), bool((np.diff(rows) > 0).all())
    (10, True)
    """
    if cap < 1:
        raise ExportError(f"export: events per sample must be at least 1, got {cap}")
    if n <= cap:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=cap, replace=False)).astype(np.int64)


def _transformed(template: Template, dim: str, raw: np.ndarray) -> np.ndarray:
    xform = make_transform(template.spec["transforms"][transform_name(template.spec, dim)])
    if xform is None:
        return raw
    return xform.apply(raw.reshape(-1, 1))[:, 0]


def sample_events(
    outcome: GatingOutcome,
    *,
    template: Template,
    clustered: GatedClusters | None,
    kept: np.ndarray | None = None,
    ids: Mapping[str, Any],
    cap: int = 10_000,
    random_state: int = 0,
) -> SampleEvents:
    """A seeded subsample of one gated sample's base events, annotated.

    Parameters
    ----------
    outcome : GatingOutcome
        The sample's gating (compensated events, membership, channel map).
    template : Template
        The YAML template it was gated with (base, populations, transforms).
    clustered : GatedClusters, optional
        The sample's clustering (labels over its base events); None: not clustered.
    kept : numpy.ndarray, optional
        bool over the file's events: those acquisition QC kept (the events
        ``outcome`` gated); default all.
    ids : mapping
        ``sample``, ``batch`` and ``day``.
    cap : int
        Most base events kept per sample.
    random_state : int
        Seed of the subsample.

    Returns
    -------
    SampleEvents

    Raises
    ------
    ExportError
        The template has no base gate, or the events are not compensated
        (GatingML templates keep their own references).
    """
    from cikflow.clustering import tree_populations

    if not template.base or outcome.compensated is None:
        raise ExportError(
            f"{ids['sample']}: the scverse export needs a YAML template with a base gate"
        )
    base = np.asarray(outcome.membership[template.base], dtype=bool)
    base_rows = np.flatnonzero(base)
    rows = subsample_rows(len(base_rows), cap=cap, random_state=random_state)
    chosen = base_rows[rows]
    file_rows = np.arange(len(base)) if kept is None else np.flatnonzero(kept)
    comp = outcome.compensated
    order = sorted(outcome.channel_map, key=lambda d: comp.pnn.index(outcome.channel_map[d]))
    raw = np.column_stack(
        [
            np.asarray(comp.column(comp.pnn.index(outcome.channel_map[d]))[chosen], dtype=float)
            for d in order
        ]
    ).reshape(len(chosen), len(order))
    values = np.column_stack(
        [_transformed(template, d, raw[:, j]) for j, d in enumerate(order)]
    ).reshape(raw.shape)
    matrix = comp.matrix
    if clustered is not None:
        cluster = np.asarray(clustered.result.labels, dtype=np.int32)[rows]
        phenotype = clustered.result.event_phenotypes[rows]
    else:
        cluster = np.full(len(rows), -1, dtype=np.int32)
        phenotype = np.full(len(rows), NOT_CLUSTERED, dtype=object)
    return SampleEvents(
        sample=str(ids["sample"]),
        batch=str(ids["batch"]),
        day=int(ids["day"]),
        dims=order,
        detectors={d: outcome.channel_map[d] for d in order},
        compensated_detectors=list(matrix.detectors) if matrix is not None else [],
        event=file_rows[chosen].astype(np.int64),
        values=values.astype(np.float32),
        compensated=raw.astype(np.float32),
        populations={
            pop: np.asarray(outcome.membership[gate], dtype=bool)[chosen]
            for pop, gate in tree_populations(template).items()
        },
        cluster=cluster,
        phenotype=phenotype,
        n_base=len(base_rows),
    )


def _stack(arrays: Sequence[np.ndarray], dtype: Any) -> np.ndarray:
    """The arrays end to end, as ``dtype`` (empty when there are none)."""
    return np.concatenate([np.zeros(0, dtype=dtype), *arrays]).astype(dtype)


def _obs(parts: Sequence[SampleEvents], *, populations: Sequence[str]) -> pd.DataFrame:
    """One row per event: identity, population membership, cluster and phenotype."""
    clash = sorted(set(populations) & {*OBS_COLUMNS, "cluster", "phenotype"})
    if clash:
        raise ExportError(f"scverse export: population names clash with obs columns: {clash}")
    samples = [p.sample for p in parts]
    n = [len(p.event) for p in parts]
    phenotype = _stack([p.phenotype.astype(str) for p in parts], dtype=object)
    obs = pd.DataFrame(
        {
            "sample": pd.Categorical(_stack([np.repeat(samples, n)], object), categories=samples),
            "batch": pd.Categorical(
                _stack([np.repeat([p.batch for p in parts], n)], object),
                categories=sorted({p.batch for p in parts}),
            ),
            "day": _stack([np.full(len(p.event), p.day) for p in parts], np.int64),
            "event": _stack([p.event for p in parts], np.int64),
            **{pop: _stack([p.populations[pop] for p in parts], bool) for pop in populations},
            "cluster": _stack([p.cluster for p in parts], np.int32),
            "phenotype": pd.Categorical(phenotype, categories=sorted(set(phenotype))),
        }
    )
    obs.index = pd.Index(
        [f"{p.sample}:{e}" for p in parts for e in p.event.tolist()], dtype=object, name="event_id"
    )
    return obs


def _var(parts: Sequence[SampleEvents], *, template: Template) -> pd.DataFrame:
    """One row per dimension: detector(s), transform name, whether compensated."""
    if not parts:  # every sample of the batch failed: no events, no dimensions
        columns = {"detector": pd.Categorical([]), "transform": pd.Categorical([])}
        index = pd.Index([], dtype=object, name="dimension")
        return pd.DataFrame({**columns, "compensated": np.zeros(0, bool)}, index=index)
    dims = parts[0].dims
    missing = {p.sample: sorted(set(dims) ^ set(p.dims)) for p in parts if set(p.dims) != set(dims)}
    if missing:
        raise ExportError(f"scverse export: samples differ in template dimensions: {missing}")
    detectors = [" | ".join(sorted({p.detectors[d] for p in parts})) for d in dims]
    compensated = [any(p.detectors[d] in p.compensated_detectors for p in parts) for d in dims]
    names = [transform_name(template.spec, d) for d in dims]
    return pd.DataFrame(
        {
            "detector": pd.Categorical(detectors),
            "transform": pd.Categorical(names),
            "compensated": np.array(compensated, dtype=bool),
        },
        index=pd.Index(dims, dtype=object, name="dimension"),
    )


def _transforms(template: Template, dims: Sequence[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for d in dims:
        name = transform_name(template.spec, d)
        params = template.spec["transforms"][name]
        out[d] = {"name": name, **{k: v for k, v in params.items() if v is not None}}
    return out


def event_matrix(
    parts: Sequence[SampleEvents],
    *,
    template: Template,
    template_text: str = "",
    batch: str = "",
    settings: Mapping[str, Any] | None = None,
    provenance_json: str = "{}",
) -> EventMatrix:
    """Stack a batch's subsampled base events into the parts of one AnnData object.

    Parameters
    ----------
    parts : sequence of SampleEvents
        The batch's samples, in the order wanted (culture day, then sample).
    template : Template
        The YAML template they were gated with.
    template_text : str
        The template file's text, kept in ``uns["template"]["text"]``.
    batch : str
        The batch.
    settings : mapping, optional
        ``h5ad_events_per_sample`` and ``random_state`` (:data:`H5AD_DEFAULTS`
        fill gaps).
    provenance_json : str
        The export's provenance record, as JSON text.

    Returns
    -------
    EventMatrix

    Raises
    ------
    ExportError
        No sample to export, samples with different dimensions, or a population
        named like an ``obs`` column.
    """
    from cikflow import __version__
    from cikflow.clustering import tree_populations

    cfg = {**H5AD_DEFAULTS, **dict(settings or {})}
    populations = list(tree_populations(template))
    var = _var(parts, template=template)
    dims = list(var.index)
    cols = [[p.dims.index(d) for d in dims] for p in parts]
    uns = {
        "cikflow": {
            "version": __version__,
            "batch": batch,
            "base": str(template.base),
            "populations": {pop: tree_populations(template)[pop] for pop in populations},
            "events_per_sample": int(cfg["h5ad_events_per_sample"]),
            "random_state": int(cfg["random_state"]),
        },
        "template": {
            "name": str(template.name),
            "version": str(template.version),
            "sha256": str(template.sha256),
            "text": template_text,
        },
        "transforms": _transforms(template, dims),
        "panel": {p.sample: dict(p.detectors) for p in parts},
        "samples": {
            p.sample: {"day": p.day, "base_events": p.n_base, "exported_events": len(p.event)}
            for p in parts
        },
        "provenance": provenance_json,
    }
    empty = np.zeros((0, len(dims)), dtype=np.float32)
    return EventMatrix(
        X=np.vstack([empty, *(p.values[:, c] for p, c in zip(parts, cols, strict=True))]),
        obs=_obs(parts, populations=populations),
        var=var,
        layers={
            "compensated": np.vstack(
                [empty, *(p.compensated[:, c] for p, c in zip(parts, cols, strict=True))]
            )
        },
        uns=uns,
    )
