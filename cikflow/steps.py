"""Workflow steps: read inputs, call the pure computation, write outputs.

Each step reads its inputs through :mod:`cikflow.io`, calls the computation, and
writes its outputs through :mod:`cikflow.io`. Every Snakemake script and every
``cikflow`` sub-command is one call to one of these functions. A per-sample step
never raises on bad input: it records the :class:`~cikflow.exceptions.CikflowError`
in the sample's ``status.json`` so the batch goes on and the reports list the failure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cikflow import __version__
from cikflow.exceptions import CikflowError
from cikflow.gating.apply import GATE_TABLE_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cikflow.runsummary import RunSummary

__all__ = [
    "FAILED_COLUMNS",
    "FLAG_COLUMNS",
    "SUMMARY_COLUMNS",
    "batch_kinetics",
    "batch_report",
    "cluster_batch",
    "collect_concordance",
    "export_workspace",
    "gate_file",
    "provenance",
    "release_verdicts",
    "run_summary",
    "sample_report",
    "simulate_demo",
    "summarize",
]

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = [
    "batch",
    "sample",
    "day",
    "population",
    "gate",
    "method",
    "events",
    "percent_of_base",
    "percent_parent",
    "review_required",
]
FLAG_COLUMNS = ["batch", "sample", "day", "gate", "flag", "reason"]
FAILED_COLUMNS = ["batch", "sample", "day", "fcs", "error", "message"]
_VERSIONED = (
    "flowkit",
    "flowio",
    "fcsparser",
    "numpy",
    "pandas",
    "scikit-learn",
    "plotly",
    "snakemake",
)


def _versions() -> dict[str, str]:
    out = {"cikflow": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of a configuration mapping in canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def provenance(
    *,
    step: str,
    config: Mapping[str, Any] | None = None,
    inputs: Mapping[str, str] | None = None,
    template: Mapping[str, Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance record written beside every table.

    It holds no time stamp, so that reruns on the same inputs write
    byte-identical sidecars.
    """
    from cikflow.io import file_sha256

    return {
        "step": step,
        "versions": _versions(),
        "config_sha256": config_hash(config) if config is not None else None,
        "template": dict(template or {}),
        "inputs": {
            name: {"path": str(p), "sha256": file_sha256(p) if Path(p).is_file() else None}
            for name, p in sorted((inputs or {}).items())
        },
        "parameters": dict(parameters or {}),
    }


def _row_value(row: Mapping[str, Any] | None, key: str, default: Any = None) -> Any:
    if row is None:
        return default
    value = row.get(key, default)
    if isinstance(value, float) and np.isnan(value):
        return default
    return value


def gate_file(
    fcs_path: str | Path,
    *,
    template_path: str | Path,
    out_dir: str | Path,
    row: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    events_table: bool = False,
) -> dict[str, Any]:
    """Gate one FCS file and write its tables, plot data and status.

    Parameters
    ----------
    fcs_path : str or pathlib.Path
        The FCS file.
    template_path : str or pathlib.Path
        YAML or GatingML template.
    out_dir : str or pathlib.Path
        Folder for ``gates.tsv``, ``populations.tsv``, ``flags.tsv``,
        ``plots.json``, ``status.json``, ``gates.xml`` (the gates applied, with
        this sample's fitted coordinates, as GatingML 2.0; no gates when gating
        failed) and, with ``events_table``, ``events.tsv.gz``.
    row : mapping, optional
        The sample-sheet row (sample, batch, day …); without it the sample ID
        is the file stem.
    config : mapping, optional
        Workflow configuration (``panel``, ``compensation``, ``gating``,
        ``report`` sections); defaults apply where absent.
    events_table : bool
        Also write per-event membership: ``qc_removed``, then one 0/1 column per
        gate (empty for events acquisition QC removed).

    Returns
    -------
    dict
        The status written to ``status.json`` (``status`` is ``ok`` or ``failed``).
    """
    from cikflow.acquisition import _time_unit as acquisition_time_unit
    from cikflow.acquisition import run_acquisition_qc
    from cikflow.gating.apply import gate_fcs
    from cikflow.io import read_fcs, read_template, write_json, write_membership, write_table
    from cikflow.plotdata import gate_plot_data
    from cikflow.report.acquisition_view import acquisition_plot_data

    config = dict(config or {})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fcs_path = Path(fcs_path)
    sample = str(_row_value(row, "sample", fcs_path.stem))
    batch = str(_row_value(row, "batch", ""))
    day = _row_value(row, "day")
    panel = config.get("panel", {})
    comp_cfg = config.get("compensation", {})
    gating_cfg = config.get("gating", {})
    status: dict[str, Any] = {
        "sample": sample,
        "batch": batch,
        "day": day,
        "label": str(_row_value(row, "label", "")),
        "fcs": str(fcs_path),
        "file_name": fcs_path.name,
        "status": "ok",
    }
    gates = pd.DataFrame(columns=GATE_TABLE_COLUMNS)
    populations = pd.DataFrame(columns=SUMMARY_COLUMNS)
    flags = pd.DataFrame(columns=FLAG_COLUMNS)
    plots: list[dict[str, Any]] = []
    acquisition: dict[str, Any] | None = None  # event rate and signal over Time, binned
    clustered: Any = None  # cikflow.clustering.GatedClusters, or why clustering did not run
    template_info: dict[str, Any] = {"path": str(template_path)}
    try:
        template = read_template(template_path)
        template_info.update(name=template.name, version=template.version, sha256=template.sha256)
        fcs = read_fcs(fcs_path, sample_id=sample)
        kw = fcs.keywords
        status.update(
            sha256=fcs.sha256,
            events=fcs.n_events,
            channels=len(fcs.pnn),
            instrument=kw.get("cyt", ""),
            acquisition_date=kw.get("date", ""),
            acquisition_time=kw.get("btim", ""),
            fcs_fil=kw.get("fil", ""),
            fcs_smno=kw.get("smno", ""),
            fcs_version=fcs.version,
        )
        qc = run_acquisition_qc(fcs, settings=config.get("qc"))
        acquisition = acquisition_plot_data(
            fcs.by_channel(),
            channels=fcs.pnn,
            time_index=fcs.time_index,
            qc=qc.record,
            time_unit=acquisition_time_unit(fcs),
        )
        fcs = qc.fcs  # gating sees only the events acquisition QC kept
        status.update(qc=qc.record, read_warnings=list(fcs.warnings))
        matrix_file = comp_cfg.get("matrix_file")
        matrix_csv = (
            Path(matrix_file).read_text()
            if comp_cfg.get("source") == "file" and matrix_file
            else None
        )
        outcome = gate_fcs(
            fcs,
            template,
            aliases=panel.get("aliases"),
            overrides=panel.get("overrides"),
            compensation=comp_cfg.get("source", "fcs"),
            matrix_csv=matrix_csv,
            min_events=int(gating_cfg.get("min_events", 100)),
            fit_max_events=int(gating_cfg.get("fit_max_events", 50_000)),
            random_state=int(gating_cfg.get("random_state", 0)),
        )
        status.update(
            panel=outcome.channel_map,
            compensation=outcome.compensation,
            transforms={
                dim: template.spec["transforms"][tname]
                for dim in outcome.channel_map
                if (tname := _transform_of(template, dim)) is not None
            },
            fits=[_fit_summary(i) for i in outcome.infos if i.fit],
        )
        status.update(gatingml=_write_gatingml(outcome, out / "gates.xml"))
        gates = outcome.gates
        if template.kind == "yaml":
            plots = gate_plot_data(
                fcs,
                outcome,
                template=template,
                compensated=outcome.compensated,
                bins=int(config.get("report", {}).get("bins", 96)),
            )
            # the plots were the last step to read the file's values: keep the template's
            # channels and free the file before clustering (a million events' bytes)
            outcome.compensated.release(fcs.pnn.index(d) for d in outcome.channel_map.values())
            qc = replace(qc, fcs=None)
            fcs = None
            clustered = _cluster_gated(
                outcome, template=template, config=config, compensated=outcome.compensated
            )
        pop_map = template.populations or {g: g for g in gates["gate"]}
        review = bool(outcome.flags or qc.flags)
        by_gate = gates.set_index("gate")
        populations = pd.DataFrame(
            [
                {
                    "batch": batch,
                    "sample": sample,
                    "day": day,
                    "population": pop,
                    "gate": gate,
                    "method": "gate",
                    "events": int(by_gate.loc[gate, "events"]),
                    "percent_of_base": by_gate.loc[gate, "percent_of_base"],
                    "percent_parent": by_gate.loc[gate, "percent_parent"],
                    "review_required": review,
                }
                for pop, gate in pop_map.items()
            ],
            columns=SUMMARY_COLUMNS,
        )
        flags = pd.DataFrame(
            [
                {"batch": batch, "sample": sample, "day": day, **f}
                for f in [*qc.flags, *outcome.flags]
            ],
            columns=FLAG_COLUMNS,
        )
        if not isinstance(clustered, str | type(None)):  # cluster rows beside the gate rows
            populations, flags = _with_clusters(
                populations, flags, clustered, batch=batch, sample=sample, day=day
            )
        if events_table:  # QC-removed events: qc_removed 1, gate columns empty
            write_membership(outcome.membership, out / "events.tsv.gz", qc_keep=qc.keep)
    except CikflowError as exc:
        status.update(status="failed", error=type(exc).__name__, message=str(exc))
        log.error("%s failed: %s: %s", sample, type(exc).__name__, exc)
    if status["status"] != "ok":  # no stale gates from an earlier run
        status["gatingml"] = _write_gatingml(None, out / "gates.xml")
    status["flags"] = flags[["gate", "flag", "reason"]].to_dict("records")
    prov = provenance(
        step="gate",
        config=config,
        inputs={"fcs": str(fcs_path), "template": str(template_path)},
        template=template_info,
        parameters={"sample": sample, "batch": batch, "day": day},
    )
    write_table(gates, out / "gates.tsv", provenance=prov)
    write_table(populations, out / "populations.tsv", provenance=prov)
    write_table(flags, out / "flags.tsv")
    write_json(
        {
            "sample": sample,
            "gates": plots,
            **_cluster_plot(clustered),
            **({"acquisition": acquisition} if acquisition else {}),
        },
        out / "plots.json",
    )
    _write_clusters(clustered, out, status=status)
    write_json({**status, "provenance": prov}, out / "status.json")
    return status


def _cluster_gated(
    outcome: Any, *, template: Any, compensated: Any, config: Mapping[str, Any]
) -> Any:
    """Cluster a gated sample (:func:`cikflow.clustering.cluster_outcome`), or say why not."""
    from cikflow.clustering import cluster_outcome

    try:
        return cluster_outcome(
            outcome,
            template=template,
            compensated=compensated,
            pnn=compensated.pnn,
            settings=config.get("clustering"),
            bins=int(config.get("report", {}).get("bins", 96)),
        )
    except CikflowError as exc:  # gating stands; the sample has no cluster-based values
        log.warning("%s: clustering not run: %s", outcome.sample, exc)
        return f"not run: {exc}"


def _with_clusters(
    populations: pd.DataFrame,
    flags: pd.DataFrame,
    clustered: Any,
    *,
    batch: str,
    sample: str,
    day: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add the cluster-based rows (``method`` = ``cluster``) and the discordance flags."""
    review = bool(populations["review_required"].any()) or bool(clustered.flags)
    ids = {"batch": batch, "sample": sample, "day": day}
    rows = clustered.populations.assign(**ids, method="cluster", review_required=review)
    populations = pd.concat(
        [populations.assign(review_required=review), rows[SUMMARY_COLUMNS]], ignore_index=True
    )
    extra = pd.DataFrame([{**ids, **f} for f in clustered.flags], columns=FLAG_COLUMNS)
    if not extra.empty:
        flags = pd.concat([flags, extra], ignore_index=True) if not flags.empty else extra
    return populations, flags


def _cluster_plot(clustered: Any) -> dict[str, Any]:
    return {"clusters": clustered.map} if hasattr(clustered, "map") and clustered.map else {}


def _write_clusters(clustered: Any, out: Path, *, status: dict[str, Any]) -> None:
    """Write ``clusters.tsv``, ``concordance.tsv``, ``markers.tsv.gz``; note the run in status."""
    from cikflow.clustering import CLUSTER_COLUMNS, CONCORDANCE_COLUMNS
    from cikflow.io import write_table, write_text_gz

    ids = {k: status.get(k) for k in ("batch", "sample", "day")}
    if status["status"] != "ok" or not hasattr(clustered, "result"):
        status["clustering"] = {"status": "not run", "reason": clustered or status["status"]}
        write_table(pd.DataFrame(columns=CLUSTER_COLUMNS), out / "clusters.tsv")
        write_table(pd.DataFrame(columns=[*ids, *CONCORDANCE_COLUMNS]), out / "concordance.tsv")
        write_text_gz("", out / "markers.tsv.gz")
        return
    result = clustered.result
    status["clustering"] = {
        "status": "ok",
        "markers": clustered.markers,
        "n_clusters": len(result.model.cluster_centers_),
        "fit_events": result.model.n_fit_events_,
        "events": len(result.labels),
        "dividers": result.dividers.to_dict("records"),
    }
    write_table(result.clusters, out / "clusters.tsv")
    write_table(
        clustered.concordance.assign(**ids)[[*ids, *CONCORDANCE_COLUMNS]], out / "concordance.tsv"
    )
    text = clustered.pool.to_csv(sep="\t", index=False, float_format="%.6g", lineterminator="\n")
    write_text_gz(text, out / "markers.tsv.gz")


def _write_gatingml(outcome: Any, path: Path) -> str:
    """Write the gates a sample was gated with (none without an outcome); say what was written."""
    import flowkit as fk

    from cikflow.exceptions import ExportError
    from cikflow.io import export_gatingml

    if outcome is None:
        export_gatingml(fk.GatingStrategy(), path)
        return "none"
    try:
        export_gatingml(outcome.strategy, path, sample_id=outcome.sample)
    except ExportError as exc:  # gating stands; only the exchange file is missing
        log.warning("%s: %s", outcome.sample, exc)
        export_gatingml(fk.GatingStrategy(), path)
        return f"not written: {exc}"
    return "gates.xml"


def _fit_summary(info: Any) -> dict[str, Any]:
    """What a data-driven gate fitted, for the report: method, values (data units), flags."""
    values = []
    for fit in info.fit.get("fits", []):
        if "threshold" in fit:
            values.append(f"{fit['dimension']} {fit['threshold']:.4g}")
        elif "thresholds" in fit:
            values.extend(
                f"{d} {t:.4g}" for d, t in zip(fit["dimensions"], fit["thresholds"], strict=True)
            )
        elif "vertices" in fit:
            values.append(f"{' x '.join(fit['dimensions'])}: {len(fit['vertices'])}-vertex polygon")
    if info.fit.get("band"):
        lo, hi = info.fit["band"]
        values.append(f"height/area ratio {lo:.3f} to {hi:.3f}")
    flags = [f["flag"] for f in info.fit.get("flags", [])]
    return {"gate": info.name, "method": info.method, "values": "; ".join(values), "flags": flags}


def _transform_of(template: Any, dim: str) -> str | None:
    from cikflow.gating.template import transform_name

    if template.kind != "yaml":
        return None
    return transform_name(template.spec, dim)


def summarize(
    sample_dirs: Sequence[str | Path],
    *,
    out_dir: str | Path,
    sheet_path: str | Path | None = None,
    template_path: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Collect per-sample results into the batch tables.

    Writes ``summary.tsv`` (long format: one row per sample and population),
    ``flags.tsv`` and ``failed.tsv`` in ``out_dir``, each with a provenance
    sidecar listing every input's SHA-256. With a sample sheet, the summary
    gains absolute counts (:data:`cikflow.counts.COUNT_COLUMNS`, settings from
    ``config["counts"]``) and ``flags.tsv`` the count flags.

    Returns
    -------
    pandas.DataFrame
        The summary table.
    """
    from cikflow.io import read_json, read_table, write_table

    summaries, flags, failed, inputs = [], [], [], {}
    for d in sample_dirs:
        d = Path(d)
        status = read_json(d / "status.json")
        inputs[status["sample"]] = {"fcs": status["fcs"], "sha256": status.get("sha256")}
        if status["status"] != "ok":
            failed.append(
                {k: status.get(k) for k in ("batch", "sample", "day", "fcs", "error", "message")}
            )
            continue
        summaries.append(read_table(d / "populations.tsv"))
        flags.append(read_table(d / "flags.tsv"))
    summary = (
        pd.concat(summaries, ignore_index=True)
        if summaries
        else pd.DataFrame(columns=SUMMARY_COLUMNS)
    )
    summary = summary.sort_values(["batch", "day", "sample"], kind="stable")[SUMMARY_COLUMNS]
    counts_cfg = _counts_settings(config)
    # absolute counts come from the gates; cluster-based rows follow each sample's gate rows
    clustered = summary["method"].astype(str) == "cluster"
    cluster_rows = summary[clustered]
    summary, count_flags = _add_counts(
        summary[~clustered].reset_index(drop=True), sheet_path=sheet_path, settings=counts_cfg
    )
    if not cluster_rows.empty:
        review = summary.groupby("sample")["review_required"].any()
        cluster_rows = cluster_rows.assign(
            review_required=cluster_rows["sample"].isin(review[review].index)
            | cluster_rows["review_required"].astype(bool)
        )
        summary = pd.concat([summary, cluster_rows], ignore_index=True).sort_values(
            ["batch", "day", "sample"], kind="stable", ignore_index=True
        )
    if not count_flags.empty:
        flags.append(count_flags)
    flag_df = pd.concat(flags, ignore_index=True) if flags else pd.DataFrame(columns=FLAG_COLUMNS)
    failed_df = pd.DataFrame(failed, columns=FAILED_COLUMNS)
    prov = provenance(
        step="summarize",
        config=config,
        inputs={
            k: str(v)
            for k, v in {"sample_sheet": sheet_path, "template": template_path}.items()
            if v
        },
        parameters={"samples": len(sample_dirs), "failed": len(failed), "counts": counts_cfg},
    )
    prov["fcs_inputs"] = inputs
    out = Path(out_dir)
    write_table(summary, out / "summary.tsv", provenance=prov)
    write_table(flag_df, out / "flags.tsv", provenance=prov)
    write_table(failed_df, out / "failed.tsv", provenance=prov)
    return summary


def _gate_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The gate-based rows of a summary (cluster-based rows are a second opinion only)."""
    if "method" not in summary.columns:
        return summary
    return summary[summary["method"].astype(str) != "cluster"].reset_index(drop=True)


def _counts_settings(config: Mapping[str, Any] | None) -> dict[str, Any]:
    from cikflow.counts import COUNTS_DEFAULTS

    return {**COUNTS_DEFAULTS, **dict((config or {}).get("counts") or {})}


def _add_counts(
    summary: pd.DataFrame, *, sheet_path: str | Path | None, settings: Mapping[str, Any]
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
    )
    return tables.summary, tables.flags


def batch_kinetics(
    summary_path: str | Path,
    *,
    batch: str,
    out_dir: str | Path,
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
    out_dir : str or pathlib.Path
        Folder of the two tables (``results/batch/<batch>``).
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
    from cikflow.io import read_table, write_table
    from cikflow.io.samplesheet import read_sample_sheet

    settings = _counts_settings(config)
    summary = _gate_rows(read_table(summary_path))
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
    )
    prov = provenance(
        step="batch_kinetics",
        config=config,
        inputs={
            k: str(v) for k, v in {"summary": summary_path, "sample_sheet": sheet_path}.items() if v
        },
        parameters={"batch": str(batch), "counts": settings},
    )
    out = Path(out_dir)
    write_table(kinetics, out / "kinetics.tsv", provenance=prov)
    write_table(harvest, out / "harvest.tsv", provenance=prov)
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


def simulate_demo(
    out_dir: str | Path,
    *,
    n_batches: int = 3,
    days: Sequence[int] = (0, 7, 14, 21),
    n_events: int | None = None,
    seed: int = 20120801,
    preset: str = "realistic",
    fcs_prefix: str = "",
) -> pd.DataFrame:
    """Simulate a CIK culture batch and write it (see :mod:`cikflow.simulate`).

    ``preset`` names a :data:`cikflow.simulate.PRESETS` entry; ``n_events`` defaults
    to the preset's.

    Returns
    -------
    pandas.DataFrame
        The sample sheet written to ``out_dir/samples.tsv``.
    """
    from cikflow.io.simulated import write_simulated
    from cikflow.simulate import simulate_batches

    batches = simulate_batches(
        n_batches=n_batches, days=tuple(days), n_events=n_events, seed=seed, preset=preset
    )
    return write_simulated(batches, out_dir, fcs_prefix=fcs_prefix)


def sample_report(
    sample_dir: str | Path, *, out_path: str | Path, standalone: bool = False
) -> None:
    """Write a sample's HTML report from its ``status.json``, ``plots.json`` and ``gates.tsv``.

    ``standalone`` inlines plotly.js so that the page works away from its report folder.
    """
    from cikflow.io import read_json, read_table
    from cikflow.report import write_sample_report

    d = Path(sample_dir)
    plots = read_json(d / "plots.json")
    concordance = d / "concordance.tsv"  # with the cluster map in plots.json, when clustered
    write_sample_report(
        out_path,
        status=read_json(d / "status.json"),
        plots=plots["gates"],
        gates=read_table(d / "gates.tsv"),
        clusters=plots.get("clusters"),
        concordance=read_table(concordance) if concordance.is_file() else None,
        acquisition=plots.get("acquisition"),
        standalone=standalone,
    )


def batch_report(
    results_dir: str | Path,
    *,
    sample_dirs: Sequence[str | Path],
    out_path: str | Path,
    release_path: str | Path | None = None,
    batch_dirs: Sequence[str | Path] = (),
    notes: Sequence[str] = (),
) -> None:
    """Write the batch report from ``summary.tsv``, ``flags.tsv``, ``failed.tsv`` and statuses.

    ``notes`` are lines about the run shown under the title (e.g. why there is no PDF).

    With ``release_path`` (``release.tsv``) the report opens with the release
    certificate; with ``batch_dirs`` (``results/batch/<batch>``, each holding
    ``kinetics.tsv`` and ``harvest.tsv``) it draws absolute counts and fold
    expansion over culture days and states the dose. Where present, the gate vs
    cluster concordance (``concordance.tsv`` beside ``summary.tsv``) and each
    batch's drift from its reference clusters (``drift.tsv`` in its folder) are
    shown too; the fractions drawn are the gate-based ones.
    """
    from cikflow.io import read_json, read_table, sidecar_path
    from cikflow.report import write_batch_report

    r = Path(results_dir)

    def stacked(name: str) -> pd.DataFrame | None:
        tables = [read_table(Path(d) / name).assign(batch=Path(d).name) for d in batch_dirs]
        tables = [t for t in tables if not t.empty]
        return pd.concat(tables, ignore_index=True) if tables else None

    drift_files = [Path(d) / "drift.tsv" for d in batch_dirs if (Path(d) / "drift.tsv").is_file()]
    # a batch whose samples all failed has a header-only table: nothing to stack
    drift = [t for t in (read_table(p) for p in drift_files) if not t.empty]
    write_batch_report(
        out_path,
        summary=_gate_rows(read_table(r / "summary.tsv")),
        flags=read_table(r / "flags.tsv"),
        failed=read_table(r / "failed.tsv"),
        statuses=[read_json(Path(d) / "status.json") for d in sample_dirs],
        provenance=read_json(sidecar_path(r / "summary.tsv")),
        release=read_table(release_path) if release_path else None,
        release_provenance=read_json(sidecar_path(release_path)) if release_path else None,
        kinetics=stacked("kinetics.tsv"),
        harvest=stacked("harvest.tsv"),
        concordance=(
            read_table(r / "concordance.tsv") if (r / "concordance.tsv").is_file() else None
        ),
        drift=pd.concat(drift, ignore_index=True) if drift else None,
        notes=notes,
    )


def export_workspace(
    sample_dirs: Sequence[str | Path],
    *,
    out_path: str | Path,
    group: str | None = None,
) -> list[str]:
    """Write a batch's samples, each with the gates it was gated with, as a FlowJo workspace.

    Reads each sample's ``status.json`` and ``gates.xml`` (written by
    :func:`gate_file`) and its FCS file; samples that failed, or whose gates
    could not be exported, are left out and logged.

    Parameters
    ----------
    sample_dirs : sequence of str or pathlib.Path
        Per-sample result folders of one batch.
    out_path : str or pathlib.Path
        The ``.wsp`` file to write.
    group : str, optional
        FlowJo sample group holding the samples (besides ``All Samples``);
        default the batch of the first sample.

    Returns
    -------
    list of str
        Why each left-out sample was left out.
    """
    from cikflow.io import (
        WorkspaceSample,
        export_flowjo_wsp,
        read_fcs,
        read_json,
        read_template,
    )

    entries, skipped = [], []
    for d in sample_dirs:
        status = read_json(Path(d) / "status.json")
        group = group or status.get("batch") or None
        if status["status"] != "ok" or status.get("gatingml") != "gates.xml":
            reason = status.get("message") or status.get("gatingml", "no gates.xml")
            skipped.append(f"{status['sample']}: {reason}")
            continue
        try:
            strategy = read_template(Path(d) / "gates.xml").strategy
            fcs = read_fcs(status["fcs"], sample_id=status["sample"])
        except CikflowError as exc:
            skipped.append(f"{status['sample']}: {exc}")
            continue
        entries.append(WorkspaceSample(fcs, strategy))
    skipped += export_flowjo_wsp(entries, out_path, group=group or "All Samples", on_error="skip")
    for reason in skipped:
        log.warning("left out of %s: %s", out_path, reason)
    return skipped


def cluster_batch(
    sample_dirs: Sequence[str | Path],
    *,
    template_path: str | Path,
    out_dir: str | Path,
    batch: str = "",
    config: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Fit a batch's reference clusters on all its days and measure each day's drift.

    Reads each clustered sample's ``markers.tsv.gz`` (a seeded subsample of its
    base events' transformed markers, written by :func:`gate_file`) and the
    thresholds its cluster labels used (``status.json``). Fits one
    :class:`~cikflow.clustering.ClusterModel` on an equal share of every day's
    events (:func:`~cikflow.clustering.balanced_pool`), names its clusters
    against the batch's median thresholds, and writes in ``out_dir``:

    - ``reference.tsv``: one row per reference cluster (pooled events,
      phenotype, centroid per marker in transformed units);
    - ``drift.tsv``: per day, the mean distance of its events to the nearest
      reference centroid, and its ``drift_ratio`` against the same model fitted
      on the other days, ``drifted`` above ``clustering.drift_limit``
      (:func:`~cikflow.clustering.drift_table`);
    - ``reference_populations.tsv``: per day and population, the events and
      percent the reference clusters give.

    Samples that failed or were not clustered are left out (logged).

    Returns
    -------
    pandas.DataFrame
        The drift table.
    """
    from cikflow.clustering import (
        CLUSTERING_DEFAULTS,
        DRIFT_COLUMNS,
        ClusterModel,
        balanced_pool,
        drift_table,
        label_clusters,
        median_dividers,
        resolve_dividers,
        tree_populations,
    )
    from cikflow.io import read_json, read_table, read_template, write_table

    cfg = {**CLUSTERING_DEFAULTS, **dict((config or {}).get("clustering") or {})}
    markers = [str(m) for m in cfg["markers"]]
    seed = int(cfg["random_state"])
    values: dict[str, np.ndarray] = {}
    days: dict[str, Any] = {}
    dividers: list[pd.DataFrame] = []
    inputs: dict[str, str] = {"template": str(template_path)}
    for d in sample_dirs:
        status = read_json(Path(d) / "status.json")
        info = status.get("clustering") or {}
        sample = str(status["sample"])
        if status["status"] != "ok" or info.get("status") != "ok" or info["markers"] != markers:
            log.warning("%s left out of the reference model: %s", sample, info.get("reason", ""))
            continue
        values[sample] = read_table(Path(d) / "markers.tsv.gz")[markers].to_numpy(dtype=float)
        days[sample] = status.get("day")
        dividers.append(pd.DataFrame(info.get("dividers") or []))
        inputs[f"markers_{sample}"] = str(Path(d) / "markers.tsv.gz")
    reference = pd.DataFrame(columns=["batch", "cluster", "events", "phenotype"])
    drift = pd.DataFrame(columns=DRIFT_COLUMNS)
    per_day = pd.DataFrame(columns=["batch", "sample", "day", "population", "events", "percent"])
    if values:
        template = read_template(template_path)
        pool = balanced_pool(values, max_events=int(cfg["subsample"]), random_state=seed)
        model = ClusterModel(
            n_clusters=int(cfg["n_clusters"]), max_events=len(pool), random_state=seed
        ).fit(pool)
        labels = model.predict(pool)
        named = label_clusters(
            pool,
            labels,
            template=template,
            markers=markers,
            dividers=resolve_dividers(template, overrides=median_dividers(dividers)),
            random_state=seed,
        )
        k = len(model.cluster_centers_)
        reference = pd.DataFrame(
            {
                "batch": batch,
                "cluster": np.arange(k),
                "events": np.bincount(labels, minlength=k),
                "phenotype": named.phenotypes,
                **{f"centroid_{m}": model.cluster_centers_[:, j] for j, m in enumerate(markers)},
            }
        )
        drift = drift_table(
            model,
            values,
            days=days,
            batch=batch,
            drift_limit=float(cfg["drift_limit"]),
            pool_events=int(cfg["subsample"]),
        )
        rows = []
        for sample, x in values.items():
            assigned = model.predict(x)
            for pop, gate in tree_populations(template).items():
                n = int(named.gates[gate][assigned].sum())
                rows.append(
                    {
                        "batch": batch,
                        "sample": sample,
                        "day": days[sample],
                        "population": pop,
                        "events": n,
                        "percent": 100.0 * n / len(x) if len(x) else np.nan,
                    }
                )
        per_day = pd.DataFrame(rows, columns=per_day.columns)
        for r in drift[drift["drifted"]].to_dict("records"):
            log.warning("%s drifted from the reference: ratio %.2f", r["sample"], r["drift_ratio"])
    prov = provenance(
        step="cluster_batch",
        config=config,
        inputs=inputs,
        parameters={"batch": batch, "clustering": cfg, "samples": sorted(values)},
    )
    out = Path(out_dir)
    write_table(reference, out / "reference.tsv", provenance=prov)
    write_table(drift, out / "drift.tsv", provenance=prov)
    write_table(per_day, out / "reference_populations.tsv", provenance=prov)
    return drift


def collect_concordance(sample_dirs: Sequence[str | Path], *, out_path: str | Path) -> pd.DataFrame:
    """Stack every sample's ``concordance.tsv`` into one table (``results/concordance.tsv``).

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

    columns = ["batch", "sample", "day", *CONCORDANCE_COLUMNS]
    tables = [read_table(Path(d) / "concordance.tsv") for d in sample_dirs]
    tables = [t for t in tables if not t.empty]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)
    table = table.sort_values(["batch", "day", "sample"], kind="stable")[columns]
    prov = provenance(
        step="concordance",
        inputs={
            f"concordance_{Path(d).name}": str(Path(d) / "concordance.tsv") for d in sample_dirs
        },
    )
    write_table(table, out_path, provenance=prov)
    return table


def run_summary(results_dir: str | Path) -> RunSummary | None:
    """The run's :class:`cikflow.runsummary.RunSummary`, or None before ``summary.tsv`` exists."""
    from cikflow.io import read_table
    from cikflow.runsummary import summarize_run

    d = Path(results_dir)
    if not (d / "summary.tsv").is_file() or not (d / "failed.tsv").is_file():
        return None
    return summarize_run(summary=read_table(d / "summary.tsv"), failed=read_table(d / "failed.tsv"))
