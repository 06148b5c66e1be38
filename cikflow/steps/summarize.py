"""The summarize step: every sample's results in the batch tables, with absolute counts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cikflow.review import Override, mark_accepted
from cikflow.steps.files import SampleFiles, _out_path, sample_files
from cikflow.steps.provenance import provenance
from cikflow.summary import (
    FAILED_COLUMNS,
    FLAG_COLUMNS,
    SUMMARY_COLUMNS,
    cluster_rows,
    gate_rows,
    merge_cluster_rows,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cikflow.runsummary import RunSummary

__all__ = ["counts_settings", "run_summary", "summarize"]


def summarize(
    samples: Sequence[str | Path | SampleFiles],
    *,
    out_dir: str | Path | None = None,
    summary_path: str | Path | None = None,
    flags_path: str | Path | None = None,
    failed_path: str | Path | None = None,
    sheet_path: str | Path | None = None,
    template_path: str | Path | None = None,
    drift_paths: Sequence[str | Path] = (),
    config: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Collect per-sample results into the batch tables.

    Writes ``summary.tsv`` (long format: one row per sample and population),
    ``flags.tsv`` and ``failed.tsv``, each with a provenance sidecar listing
    every input's SHA-256. With a sample sheet, the summary gains absolute
    counts (:data:`cikflow.counts.COUNT_COLUMNS`, settings from
    ``config["counts"]``) and ``flags.tsv`` the count flags. A day that jumps
    against its batch's other days (``implausible_jump``) or drifted from them
    (``drift``, from the batches' ``drift.tsv``) asks for review on every row
    of its sample, unless a reviewer accepted the flag.

    Parameters
    ----------
    samples : sequence of str, pathlib.Path or SampleFiles
        Sample folders, or their files (``status``, ``populations``, ``flags``).
    out_dir : str or pathlib.Path, optional
        Folder of the three tables under their default names, where no path
        is given for one.
    summary_path, flags_path, failed_path : str or pathlib.Path, optional
        ``summary.tsv``, ``flags.tsv``, ``failed.tsv``.
    sheet_path : str or pathlib.Path, optional
        The sample sheet (counting beads, volumes) for absolute counts.
    template_path : str or pathlib.Path, optional
        The template (recorded in the provenance; its base is the gate a
        ``drift`` flag names).
    drift_paths : sequence of str or pathlib.Path
        Every batch's ``drift.tsv`` (:func:`cikflow.steps.cluster_batch`).
    config : mapping, optional
        Workflow configuration; its ``counts`` section (defaults apply).

    Returns
    -------
    pandas.DataFrame
        The summary table.
    """
    from cikflow.io import read_table, write_table
    from cikflow.io.status import read_status

    files = sample_files(samples)
    summaries, flags, failed, inputs, review = [], [], [], {}, []
    for f in files:
        status = read_status(f.status)
        inputs[status.sample] = {"fcs": status.fcs, "sha256": status.sha256}
        review.extend(status.review or [])
        if not status.ok:
            failed.append({k: getattr(status, k) for k in FAILED_COLUMNS})
            continue
        summaries.append(read_table(f.populations))
        flags.append(read_table(f.flags))
    counts_cfg = counts_settings(config)
    summary, count_flags = _summary_with_counts(
        summaries,
        sheet_path=sheet_path,
        settings=counts_cfg,
        uncertainty=(config or {}).get("uncertainty"),
    )
    if not count_flags.empty:
        flags.append(count_flags)
    summary, batch_flags = _batch_flags(
        summary, review=review, drift_paths=drift_paths, template_path=template_path, config=config
    )
    flags.extend(batch_flags)
    flag_df = pd.concat(flags, ignore_index=True) if flags else pd.DataFrame(columns=FLAG_COLUMNS)
    prov = provenance(
        step="summarize",
        config=config,
        inputs={
            **{
                k: str(v)
                for k, v in {"sample_sheet": sheet_path, "template": template_path}.items()
                if v
            },
            **{f"drift_{Path(p).parent.name}": str(p) for p in drift_paths},
        },
        parameters={"samples": len(files), "failed": len(failed), "counts": counts_cfg},
    )
    prov["fcs_inputs"] = inputs
    prov["review"] = review  # the reviewer entries applied (the audit trail records changes)
    write_table(summary, _out_path(summary_path, out_dir, "summary.tsv"), provenance=prov)
    write_table(flag_df, _out_path(flags_path, out_dir, "flags.tsv"), provenance=prov)
    write_table(
        pd.DataFrame(failed, columns=FAILED_COLUMNS),
        _out_path(failed_path, out_dir, "failed.tsv"),
        provenance=prov,
    )
    return summary


def _batch_flags(
    summary: pd.DataFrame,
    *,
    review: Sequence[Mapping[str, Any]],
    drift_paths: Sequence[str | Path],
    template_path: str | Path | None,
    config: Mapping[str, Any] | None,
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """The batch-level flags (``implausible_jump``, ``drift``), reviewers' acceptances marked.

    Returns the summary with ``review_required`` set on every row of a sample
    with a flag nobody accepted, and the flag tables.
    """
    entries = [Override.from_record(r) for r in review]
    summary = summary.copy()
    out = []
    for table in (
        _jumps(summary, template_path=template_path, config=config),
        _drifts(drift_paths, template_path=template_path),
    ):
        if table.empty:
            continue
        table = mark_accepted(table, entries)
        out.append(table)
        asking = table.loc[table["accepted_by"] == "", "sample"]
        summary.loc[summary["sample"].isin(set(asking)), "review_required"] = True
    return summary, out


def _jumps(
    summary: pd.DataFrame,
    *,
    template_path: str | Path | None,
    config: Mapping[str, Any] | None,
) -> pd.DataFrame:
    """``implausible_jump`` flags of the populations below the template's base."""
    from cikflow.io import read_template
    from cikflow.summary import jump_flags

    limit = ((config or {}).get("plausibility") or {}).get("max_jump_pp", 10)
    if limit is None or template_path is None or summary.empty:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    populations = read_template(template_path).below_base
    return jump_flags(summary, populations=populations, max_jump_pp=float(limit))


def _drifts(drift_paths: Sequence[str | Path], *, template_path: str | Path | None) -> pd.DataFrame:
    """``drift`` flags of the drifted days in the batches' ``drift.tsv``."""
    from cikflow.io import read_table, read_template
    from cikflow.summary import drift_flags

    tables = [read_table(p) for p in drift_paths]
    tables = [t for t in tables if not t.empty]
    if not tables:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    base = read_template(template_path).base if template_path else None
    return drift_flags(pd.concat(tables, ignore_index=True), gate=str(base or "base"))


def _summary_with_counts(
    tables: list[pd.DataFrame],
    *,
    sheet_path: str | Path | None,
    settings: Mapping[str, Any],
    uncertainty: Mapping[str, Any] | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stacked sample rows with absolute counts, and the count flags."""
    summary = (
        pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=SUMMARY_COLUMNS)
    )
    summary = summary.sort_values(["batch", "day", "sample"], kind="stable")[SUMMARY_COLUMNS]
    # absolute counts come from the gates; cluster-based rows follow each sample's gate rows
    clusters = cluster_rows(summary)
    summary, count_flags = _add_counts(
        gate_rows(summary), sheet_path=sheet_path, settings=settings, uncertainty=uncertainty
    )
    return merge_cluster_rows(summary, clusters), count_flags


def counts_settings(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``counts`` settings with their defaults filled in.

    Parameters
    ----------
    config : mapping, optional
        Workflow configuration (its ``counts`` section).

    Returns
    -------
    dict
        :data:`cikflow.counts.COUNTS_DEFAULTS` updated with the section.
    """
    from cikflow.counts import COUNTS_DEFAULTS

    return {**COUNTS_DEFAULTS, **dict((config or {}).get("counts") or {})}


def _add_counts(
    summary: pd.DataFrame,
    *,
    sheet_path: str | Path | None,
    settings: Mapping[str, Any],
    uncertainty: Mapping[str, Any] | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The summary with absolute counts appended, and the count flags."""
    from cikflow.counts import absolute_counts
    from cikflow.io.samplesheet import read_sample_sheet

    sheet = read_sample_sheet(sheet_path) if sheet_path else None
    tables = absolute_counts(
        summary,
        sheet=sheet,
        bead_population=settings["bead_population"],
        dual_platform_base=settings["dual_platform_base"],
        min_bead_events=int(settings["min_bead_events"]),
        uncertainty=uncertainty,
    )
    return tables.summary, tables.flags


def run_summary(
    results_dir: str | Path,
    *,
    summary_path: str | Path | None = None,
    failed_path: str | Path | None = None,
) -> RunSummary | None:
    """The run's :class:`cikflow.runsummary.RunSummary`, or None before ``summary.tsv`` exists.

    Parameters
    ----------
    results_dir : str or pathlib.Path
        The results folder (``summary.tsv`` and ``failed.tsv`` under their
        default names, where no path is given).
    summary_path, failed_path : str or pathlib.Path, optional
        ``summary.tsv`` and ``failed.tsv``.

    Returns
    -------
    RunSummary or None
        Samples, failures and flags of the run.
    """
    from cikflow.io import read_table
    from cikflow.runsummary import summarize_run

    summary = _out_path(summary_path, results_dir, "summary.tsv")
    failed = _out_path(failed_path, results_dir, "failed.tsv")
    if not summary.is_file() or not failed.is_file():
        return None
    return summarize_run(summary=read_table(summary), failed=read_table(failed))
