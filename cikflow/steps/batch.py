"""The batch steps: absolute counts over culture days, the harvest, the release verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cikflow.steps.files import _out_path
from cikflow.steps.provenance import provenance
from cikflow.steps.summarize import counts_settings
from cikflow.summary import gate_rows

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["batch_kinetics", "release_verdicts"]


def batch_kinetics(
    summary_path: str | Path,
    *,
    batch: str,
    out_dir: str | Path | None = None,
    kinetics_path: str | Path | None = None,
    harvest_path: str | Path | None = None,
    sheet_path: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Write a batch's ``kinetics.tsv`` and ``harvest.tsv`` from ``summary.tsv``.

    Parameters
    ----------
    summary_path : str or pathlib.Path
        ``results/summary.tsv`` with absolute counts.
    batch : str
        The batch (patient culture).
    out_dir : str or pathlib.Path, optional
        Folder of the two tables under their default names
        (``results/batch/<batch>``), where no path is given for one.
    kinetics_path, harvest_path : str or pathlib.Path, optional
        ``kinetics.tsv`` and ``harvest.tsv``.
    sheet_path : str or pathlib.Path, optional
        The sample sheet (weight, harvest day, infused fraction or volume).
    config : mapping, optional
        Workflow configuration; its ``counts`` section names the populations
        and the default harvest day.

    Returns
    -------
    pandas.DataFrame
        The harvest metrics (:func:`cikflow.counts.harvest_metrics`).
    """
    from cikflow.counts import harvest_metrics, kinetics_table
    from cikflow.intervals import UNCERTAINTY_DEFAULTS
    from cikflow.io import read_table, write_table
    from cikflow.io.samplesheet import read_sample_sheet

    settings = counts_settings(config)
    uncertainty = {**UNCERTAINTY_DEFAULTS, **dict((config or {}).get("uncertainty") or {})}
    summary = gate_rows(read_table(summary_path))
    sheet = read_sample_sheet(sheet_path) if sheet_path else None
    kinetics = kinetics_table(
        summary, batch=str(batch), bead_population=settings["bead_population"]
    )
    harvest = harvest_metrics(
        summary,
        sheet=sheet,
        batch=str(batch),
        harvest_day=settings["harvest_day"],
        bead_population=settings["bead_population"],
        viable_population=settings["viable_population"],
        leukocyte_population=settings["leukocyte_population"],
        confidence=float(uncertainty["confidence"]),
    )
    prov = provenance(
        step="batch_kinetics",
        config=config,
        inputs={
            k: str(v) for k, v in {"summary": summary_path, "sample_sheet": sheet_path}.items() if v
        },
        parameters={"batch": str(batch), "counts": settings},
    )
    write_table(kinetics, _out_path(kinetics_path, out_dir, "kinetics.tsv"), provenance=prov)
    write_table(harvest, _out_path(harvest_path, out_dir, "harvest.tsv"), provenance=prov)
    return harvest


def release_verdicts(
    harvest_paths: Sequence[str | Path],
    *,
    spec_path: str | Path,
    out_path: str | Path,
) -> pd.DataFrame:
    """Evaluate a release specification for every batch and write ``release.tsv``.

    Parameters
    ----------
    harvest_paths : sequence of str or pathlib.Path
        Every batch's ``harvest.tsv``.
    spec_path : str or pathlib.Path
        The release specification (``config/release/*.yaml``).
    out_path : str or pathlib.Path
        ``results/release.tsv``; its provenance sidecar holds the spec's name,
        version and SHA-256 and every input's SHA-256.

    Returns
    -------
    pandas.DataFrame
        The verdicts (:data:`cikflow.release.RELEASE_COLUMNS`).
    """
    from cikflow.io import read_table, write_table
    from cikflow.io.release import read_release_spec
    from cikflow.release import evaluate_release

    spec = read_release_spec(spec_path)
    # a batch is named by its folder (results/batch/<batch>/harvest.tsv): IDs such as
    # "007" stay text even where a table reader would make them numbers
    batches = [Path(p).parent.name for p in harvest_paths]
    tables = [read_table(p).assign(batch=b) for b, p in zip(batches, harvest_paths, strict=True)]
    tables = [t for t in tables if not t.empty]
    metrics = (
        pd.concat(tables, ignore_index=True)
        if tables
        else pd.DataFrame(columns=["batch", "metric", "value", "reason"])
    )
    verdicts = evaluate_release(metrics, spec=spec, batches=batches)
    prov = provenance(
        step="release",
        inputs={
            "release_spec": str(spec_path),
            **{f"harvest_{b}": str(p) for b, p in zip(batches, harvest_paths, strict=True)},
        },
        parameters={"batches": batches},
    )
    prov["release_spec"] = {
        "name": spec.name,
        "version": spec.version,
        "path": str(spec_path),
        "sha256": spec.sha256,
    }
    write_table(verdicts, out_path, provenance=prov)
    return verdicts
