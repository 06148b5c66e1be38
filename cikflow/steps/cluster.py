"""Clustering as a second opinion on the gates: per sample, per batch, and their concordance.

Per sample, the gate step keeps the base events (``base_events.npz``) and the
sample's report step clusters them (:func:`cluster_gated_sample`), writing the
sample's final ``populations.tsv`` and ``flags.tsv`` (cluster rows beside the gate
rows), ``clusters.tsv``, ``concordance.tsv``, ``markers.tsv.gz`` and
``clustering.json``, or a :class:`Skipped` says why not: so a clustering setting
reruns no gating, and a sample still takes two jobs. (Given ``clusters``, the gate
step clusters the sample itself, as ``cikflow gate`` does.) Per batch, one
reference model is fitted on every day's marker subsample; the concordance of
every sample is stacked in one table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cikflow.exceptions import CikflowError
from cikflow.steps.files import SampleFiles, _out_path, sample_files
from cikflow.steps.provenance import provenance

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cikflow.clustering import BaseEvents, GatedClusters
    from cikflow.io.status import SampleStatus

__all__ = ["Skipped", "cluster_batch", "collect_concordance"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skipped:
    """A step that did not run, and why.

    Attributes
    ----------
    reason : str
        Why it did not run (shown in ``status.json`` and the reports).
    """

    reason: str


def cluster_gated(
    outcome: Any, *, template: Any, config: Mapping[str, Any]
) -> GatedClusters | Skipped:
    """Cluster a gated sample (:func:`cikflow.clustering.cluster_outcome`), or say why not.

    Parameters
    ----------
    outcome : GatingOutcome
        The sample's gating (its compensated, transformed events).
    template : Template
        The YAML template it was gated with.
    config : mapping
        Workflow configuration (``clustering``, ``report.bins`` sections).

    Returns
    -------
    GatedClusters or Skipped
        The clustering, or why it did not run (gating stands either way).
    """
    from cikflow.clustering import cluster_outcome

    try:
        return cluster_outcome(
            outcome,
            template=template,
            compensated=outcome.compensated,
            pnn=outcome.compensated.pnn,
            settings=config.get("clustering"),
            bins=int(config.get("report", {}).get("bins", 96)),
        )
    except CikflowError as exc:  # gating stands; the sample has no cluster-based values
        log.warning("%s: clustering not run: %s", outcome.sample, exc)
        return Skipped(str(exc))


def gate_base_events(outcome: Any, *, template: Any) -> BaseEvents | Skipped:
    """A gated sample's base events (:func:`cikflow.clustering.base_events`), or why none.

    Parameters
    ----------
    outcome : GatingOutcome
        The sample's gating (its compensated events).
    template : Template
        The YAML template it was gated with.

    Returns
    -------
    BaseEvents or Skipped
        The base events, or why there are none (gating stands either way).
    """
    from cikflow.clustering import base_events

    try:
        return base_events(outcome, template=template)
    except CikflowError as exc:  # gating stands; the sample has no cluster-based values
        log.warning("%s: clustering not run: %s", outcome.sample, exc)
        return Skipped(str(exc))


def cluster_events(
    base: BaseEvents | Skipped | None, *, template: Any, config: Mapping[str, Any] | None
) -> GatedClusters | Skipped | None:
    """Cluster a sample's base events (:func:`cikflow.clustering.cluster_base`), or say why not.

    Parameters
    ----------
    base : BaseEvents, Skipped or None
        The sample's base events (None: not gated).
    template : Template
        The YAML template it was gated with.
    config : mapping, optional
        Workflow configuration (``clustering``, ``report.bins`` sections).

    Returns
    -------
    GatedClusters, Skipped or None
        The clustering, or why it did not run, or None when the sample was not gated.
    """
    from cikflow.clustering import cluster_base

    if base is None or isinstance(base, Skipped):
        return base
    config = config or {}
    try:
        return cluster_base(
            base,
            template=template,
            settings=config.get("clustering"),
            bins=int(config.get("report", {}).get("bins", 96)),
        )
    except CikflowError as exc:  # gating stands; the sample has no cluster-based values
        log.warning("%s: clustering not run: %s", base.sample, exc)
        return Skipped(str(exc))


def with_clusters(
    populations: pd.DataFrame,
    flags: pd.DataFrame,
    *,
    clustered: GatedClusters | Skipped | None,
    status: SampleStatus,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sample's gate rows with the cluster rows and flags added, when it was clustered.

    Parameters
    ----------
    populations, flags : pandas.DataFrame
        The gate step's population and flag rows.
    clustered : GatedClusters, Skipped or None
        The sample's clustering.
    status : SampleStatus
        The sample (batch, sample, day of the cluster rows).

    Returns
    -------
    tuple of pandas.DataFrame
        Populations and flags (:func:`cikflow.summary.with_cluster_rows`).
    """
    from cikflow.summary import with_cluster_rows

    if clustered is None or isinstance(clustered, Skipped):
        return populations, flags
    return with_cluster_rows(
        populations,
        flags,
        clusters=clustered.populations,
        cluster_flags=clustered.flags,
        ids={"batch": status.batch, "sample": status.sample, "day": status.day},
    )


def accepted(flags: pd.DataFrame, *, status: SampleStatus) -> pd.DataFrame:
    """The sample's flag rows, those its reviewer accepted marked (:mod:`cikflow.review`)."""
    from cikflow.review import Override, mark_accepted

    entries = [Override.from_record(r) for r in status.review or ()]
    return mark_accepted(flags, entries)


def status_flags(flags: pd.DataFrame) -> list[dict[str, Any]]:
    """Flag rows as ``status.json`` keeps them: gate, flag, reason, and who accepted them."""
    records = []
    for row in flags.to_dict("records"):
        record = {k: row[k] for k in ("gate", "flag", "reason")}
        if row.get("accepted_by"):
            record.update(accepted_by=row["accepted_by"], accepted_reason=row["accepted_reason"])
        records.append(record)
    return records


def write_base_events(
    base: BaseEvents | Skipped | None, path: str | Path, *, status: SampleStatus
) -> None:
    """Write ``base_events.npz``: the base events, gate membership and fitted dividers.

    Parameters
    ----------
    base : BaseEvents, Skipped or None
        The sample's base events, or why there are none (None: not gated, or
        its template is not clustered).
    path : str or pathlib.Path
        The file (:func:`cikflow.io.write_arrays`): ``values`` (float32, data
        units, one column per template dimension) and ``membership`` (bool,
        one column per gate) of the base events.
    status : SampleStatus
        The sample.
    """
    from dataclasses import asdict

    import numpy as np

    from cikflow.io import write_arrays

    if base is None or not status.ok:  # not gated, or not clustered (a GatingML template)
        write_arrays({}, path, header={"sample": status.sample, "skipped": None})
        return
    if isinstance(base, Skipped):
        write_arrays({}, path, header={"sample": status.sample, "skipped": base.reason})
        return
    gates = list(base.membership)
    membership = np.column_stack([base.membership[g] for g in gates]) if gates else None
    header = {
        "sample": base.sample,
        "channel_map": [[d, c] for d, c in base.channel_map.items()],
        "gates": gates,
        "dividers": [asdict(d) for d in base.dividers.values()],
    }
    arrays = {"values": base.values}
    if membership is not None:
        arrays["membership"] = membership
    write_arrays(arrays, path, header=header)


def read_base_events(path: str | Path) -> BaseEvents | Skipped | None:
    """Read ``base_events.npz`` (:func:`write_base_events`).

    Parameters
    ----------
    path : str or pathlib.Path
        The file.

    Returns
    -------
    BaseEvents, Skipped or None
        The base events, or why the gate step kept none (None: not to be clustered).
    """
    from cikflow.clustering import BaseEvents, Divider
    from cikflow.io import read_arrays

    arrays, header = read_arrays(path)
    if "skipped" in header:
        return None if header["skipped"] is None else Skipped(str(header["skipped"]))
    membership = arrays.get("membership")
    dividers = [Divider(**d) for d in header["dividers"]]
    return BaseEvents(
        sample=header["sample"],
        values=arrays["values"],
        channel_map=dict(header["channel_map"]),
        membership={g: membership[:, j] for j, g in enumerate(header["gates"])},
        dividers={(d.gate, d.dimension): d for d in dividers},
    )


def cluster_plot(clustered: GatedClusters | Skipped | None) -> dict[str, Any]:
    """The ``clusters`` entry of ``plots.json``: the cluster map, when there is one.

    Parameters
    ----------
    clustered : GatedClusters, Skipped or None
        The sample's clustering (None: not tried).

    Returns
    -------
    dict
        ``{"clusters": map}`` or empty.
    """
    if clustered is None or isinstance(clustered, Skipped) or not clustered.map:
        return {}
    return {"clusters": clustered.map}


def write_clusters(
    clustered: GatedClusters | Skipped | None, *, files: SampleFiles, status: SampleStatus
) -> None:
    """Write ``clusters.tsv``, ``concordance.tsv``, ``markers.tsv.gz``; note the run in status.

    Parameters
    ----------
    clustered : GatedClusters, Skipped or None
        The sample's clustering (None: not tried, e.g. gating failed).
    files : SampleFiles
        Where to write (``clusters``, ``concordance``, ``markers``).
    status : SampleStatus
        Its ``clustering`` record is set.
    """
    from cikflow.clustering import CLUSTER_COLUMNS, CONCORDANCE_COLUMNS
    from cikflow.io import write_table, write_text_gz

    ids = {"batch": status.batch, "sample": status.sample, "day": status.day}
    if not status.ok or clustered is None or isinstance(clustered, Skipped):
        reason = f"not run: {clustered.reason}" if isinstance(clustered, Skipped) else None
        status.clustering = {"status": "not run", "reason": reason or status.status}
        write_table(pd.DataFrame(columns=CLUSTER_COLUMNS), files.clusters)
        write_table(pd.DataFrame(columns=[*ids, *CONCORDANCE_COLUMNS]), files.concordance)
        write_text_gz("", files.markers)
        return
    result = clustered.result
    status.clustering = {
        "status": "ok",
        "markers": clustered.markers,
        "n_clusters": len(result.model.cluster_centers_),
        "fit_events": result.model.n_fit_events_,
        "events": len(result.labels),
        "dividers": result.dividers.to_dict("records"),
        "levels": clustered.levels,
    }
    write_table(result.clusters, files.clusters)
    write_table(
        clustered.concordance.assign(**ids)[[*ids, *CONCORDANCE_COLUMNS]], files.concordance
    )
    text = clustered.pool.to_csv(sep="\t", index=False, float_format="%.6g", lineterminator="\n")
    write_text_gz(text, files.markers)


def cluster_gated_sample(
    files: SampleFiles, *, template_path: str | Path, config: Mapping[str, Any] | None = None
) -> None:
    """Cluster one gated sample from its ``base_events.npz``; write its final tables.

    Reads ``status``, ``gate_populations``, ``gate_flags`` and ``base`` (written
    by the gate step); writes ``populations`` and ``flags`` (the gate rows, and
    the cluster rows and flags when clustered: what the gate step writes when it
    clusters itself), ``clusters``, ``concordance``, ``markers`` and
    ``clustering`` (``clustering.json``: the clustering record, its flags and the
    cluster map). A sample that failed gating, or whose template is not
    clustered, gets empty cluster files.

    Parameters
    ----------
    files : SampleFiles
        The sample's files.
    template_path : str or pathlib.Path
        The template it was gated with.
    config : mapping, optional
        Workflow configuration (``clustering``, ``report.bins`` sections).
    """
    from cikflow.io import read_table, read_template, write_json, write_table
    from cikflow.io.status import read_status
    from cikflow.review import needs_review

    config = dict(config or {})
    status = read_status(files.status)
    base = read_base_events(files.base) if status.ok else None
    clustered = (
        cluster_events(base, template=read_template(template_path), config=config)
        if base is not None
        else None
    )
    gate_flags = read_table(files.gate_flags)
    populations, flags = with_clusters(
        read_table(files.gate_populations), gate_flags, clustered=clustered, status=status
    )
    flags = accepted(flags, status=status)
    if status.ok:  # a cluster flag the reviewer did not accept asks for review
        populations["review_required"] = needs_review(flags)
    prov = provenance(
        step="cluster_sample",
        config=config,
        inputs={
            "status": str(files.status),
            "gate_populations": str(files.gate_populations),
            "gate_flags": str(files.gate_flags),
            "base_events": str(files.base),
            "template": str(template_path),
        },
        template=(status.provenance or {}).get("template"),
        parameters={"sample": status.sample, "batch": status.batch, "day": status.day},
    )
    write_table(populations, files.populations, provenance=prov)
    write_table(flags, files.flags)
    write_clusters(clustered, files=files, status=status)
    added = flags.iloc[len(gate_flags) :]
    write_json(
        {
            "sample": status.sample,
            "clustering": status.clustering,
            "flags": status_flags(added),
            **cluster_plot(clustered),
        },
        files.clustering,
    )


def clustering_record(files: SampleFiles) -> tuple[SampleStatus, dict[str, Any]]:
    """A sample's status with its clustering record and flags, wherever they were written.

    The gate step writes them in ``status.json`` when it clusters the sample
    itself; otherwise :func:`cluster_gated_sample` writes them in ``clustering.json``.

    Parameters
    ----------
    files : SampleFiles
        The sample's files (``status``, and ``clustering`` if any).

    Returns
    -------
    tuple
        The status (``clustering`` set, the cluster flags after the gate flags)
        and the cluster map (empty without one).
    """
    from cikflow.io import read_json
    from cikflow.io.status import read_status

    status = read_status(files.status)
    if status.clustering is not None or files.clustering is None:
        return status, {}
    if not files.clustering.is_file():
        return status, {}
    record = read_json(files.clustering)
    status.clustering = record["clustering"]
    status.flags = [*status.flags, *record["flags"]]
    return status, record.get("clusters") or {}


@dataclass
class _Subsamples:
    """The clustered samples of a batch: marker values, days, dividers, input files."""

    values: dict[str, Any]
    days: dict[str, Any]
    dividers: list[pd.DataFrame]
    inputs: dict[str, str]
    levels: dict[str, Any]


def _read_subsamples(samples: Sequence[SampleFiles], *, markers: list[str]) -> _Subsamples:
    """Each clustered sample's ``markers.tsv.gz``; failed or unclustered ones are left out."""
    from cikflow.io import read_table

    found = _Subsamples(values={}, days={}, dividers=[], inputs={}, levels={})
    for files in samples:
        status, _ = clustering_record(files)
        info = status.clustering or {}
        if not status.ok or info.get("status") != "ok" or info["markers"] != markers:
            log.warning(
                "%s left out of the reference model: %s", status.sample, info.get("reason", "")
            )
            continue
        values = read_table(files.markers)[markers].to_numpy(dtype=float)
        found.values[status.sample] = values
        found.days[status.sample] = status.day
        found.dividers.append(pd.DataFrame(info.get("dividers") or []))
        if info.get("levels"):
            found.levels[status.sample] = dict(info["levels"])
            if status.bead_levels:  # the instrument's own reference for drift
                found.levels[status.sample]["beads"] = status.bead_levels
        found.inputs[f"markers_{status.sample}"] = str(files.markers)
    return found


def cluster_batch(
    samples: Sequence[str | Path | SampleFiles],
    *,
    template_path: str | Path,
    out_dir: str | Path | None = None,
    reference_path: str | Path | None = None,
    drift_path: str | Path | None = None,
    populations_path: str | Path | None = None,
    batch: str = "",
    config: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Fit a batch's reference clusters on all its days and measure each day's drift.

    Reads each clustered sample's ``markers.tsv.gz`` (a seeded subsample of its
    base events' transformed markers) and the thresholds its cluster labels
    used (``clustering.json``, or ``status.json`` when the gate step clustered
    the sample itself), and writes (:func:`cikflow.reference.batch_reference`):

    - ``reference.tsv``: one row per reference cluster (pooled events,
      phenotype, centroid per marker in transformed units);
    - ``drift.tsv``: per day, the mean distance of its events to the nearest
      reference centroid, and its ``drift_ratio`` against the same model fitted
      on the other days, ``drifted`` above ``clustering.drift_limit``
      (:func:`~cikflow.clustering.drift_table`);
    - ``reference_populations.tsv``: per day and population, the events and
      percent the reference clusters give.

    Samples that failed or were not clustered are left out (logged).

    Parameters
    ----------
    samples : sequence of str, pathlib.Path or SampleFiles
        The batch's sample folders, or their files (``status``, ``markers``
        and, where the clustering record is apart, ``clustering``).
    template_path : str or pathlib.Path
        The YAML template.
    out_dir : str or pathlib.Path, optional
        Folder of the three tables under their default names, where no path
        is given for one.
    reference_path, drift_path, populations_path : str or pathlib.Path, optional
        ``reference.tsv``, ``drift.tsv``, ``reference_populations.tsv``.
    batch : str
        The batch.
    config : mapping, optional
        Workflow configuration; its ``clustering`` section (defaults apply).

    Returns
    -------
    pandas.DataFrame
        The drift table.
    """
    from cikflow.clustering import CLUSTERING_DEFAULTS
    from cikflow.io import read_template, write_table
    from cikflow.reference import batch_reference

    cfg = {**CLUSTERING_DEFAULTS, **dict((config or {}).get("clustering") or {})}
    found = _read_subsamples(sample_files(samples), markers=[str(m) for m in cfg["markers"]])
    tables = batch_reference(
        found.values,
        days=found.days,
        dividers=found.dividers,
        template=read_template(template_path) if found.values else None,
        settings=cfg,
        batch=batch,
        levels=found.levels,
    )
    drift = tables.drift
    if found.values:
        for r in drift[drift["drifted"]].to_dict("records"):
            log.warning("%s drifted: %s", r["sample"], r["reason"])
    prov = provenance(
        step="cluster_batch",
        config=config,
        inputs={"template": str(template_path), **found.inputs},
        parameters={"batch": batch, "clustering": cfg, "samples": sorted(found.values)},
    )
    write_table(
        tables.reference, _out_path(reference_path, out_dir, "reference.tsv"), provenance=prov
    )
    write_table(drift, _out_path(drift_path, out_dir, "drift.tsv"), provenance=prov)
    write_table(
        tables.populations,
        _out_path(populations_path, out_dir, "reference_populations.tsv"),
        provenance=prov,
    )
    return drift


def collect_concordance(
    samples: Sequence[str | Path | SampleFiles], *, out_path: str | Path
) -> pd.DataFrame:
    """Stack every sample's ``concordance.tsv`` into one table (``results/concordance.tsv``).

    Parameters
    ----------
    samples : sequence of str, pathlib.Path or SampleFiles
        Sample folders, or their files (``concordance``).
    out_path : str or pathlib.Path
        The table to write (with a provenance sidecar).

    Returns
    -------
    pandas.DataFrame
        One row per sample and population: gate-based and cluster-based
        percent of base, their difference (percentage points), the per-event
        F1 of the two labelings and ``discordant``
        (:data:`cikflow.clustering.CONCORDANCE_COLUMNS`).
    """
    from cikflow.clustering import CONCORDANCE_COLUMNS
    from cikflow.io import read_table, write_table

    files = sample_files(samples)
    columns = ["batch", "sample", "day", *CONCORDANCE_COLUMNS]
    tables = [read_table(f.concordance) for f in files]
    tables = [t for t in tables if not t.empty]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)
    table = table.sort_values(["batch", "day", "sample"], kind="stable")[columns]
    prov = provenance(
        step="concordance",
        inputs={f"concordance_{f.concordance.parent.name}": str(f.concordance) for f in files},
    )
    write_table(table, out_path, provenance=prov)
    return table
