"""Clustering as a second opinion on the gates: per sample, per batch, and their concordance.

Per sample (inside the gate step), the gated events are clustered and the result
written (``clusters.tsv``, ``concordance.tsv``, ``markers.tsv.gz``), or a
:class:`Skipped` says why not. Per batch, one reference model is fitted on every
day's marker subsample; the concordance of every sample is stacked in one table.
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

    from cikflow.clustering import GatedClusters
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
    }
    write_table(result.clusters, files.clusters)
    write_table(
        clustered.concordance.assign(**ids)[[*ids, *CONCORDANCE_COLUMNS]], files.concordance
    )
    text = clustered.pool.to_csv(sep="\t", index=False, float_format="%.6g", lineterminator="\n")
    write_text_gz(text, files.markers)


@dataclass
class _Subsamples:
    """The clustered samples of a batch: marker values, days, dividers, input files."""

    values: dict[str, Any]
    days: dict[str, Any]
    dividers: list[pd.DataFrame]
    inputs: dict[str, str]


def _read_subsamples(samples: Sequence[SampleFiles], *, markers: list[str]) -> _Subsamples:
    """Each clustered sample's ``markers.tsv.gz``; failed or unclustered ones are left out."""
    from cikflow.io import read_table
    from cikflow.io.status import read_status

    found = _Subsamples(values={}, days={}, dividers=[], inputs={})
    for files in samples:
        status = read_status(files.status)
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
    base events' transformed markers, written by the gate step) and the
    thresholds its cluster labels used (``status.json``), and writes
    (:func:`cikflow.reference.batch_reference`):

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
        The batch's sample folders, or their files (``status``, ``markers``).
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
    )
    drift = tables.drift
    if found.values:
        for r in drift[drift["drifted"]].to_dict("records"):
            log.warning("%s drifted from the reference: ratio %.2f", r["sample"], r["drift_ratio"])
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
