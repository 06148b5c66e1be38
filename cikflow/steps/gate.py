"""The gate step: one FCS file gated with the template, its tables, plot data and status.

A per-sample step never raises on bad input: it records the
:class:`~cikflow.exceptions.CikflowError` in the sample's ``status.json`` so the
batch goes on and the reports list the failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cikflow.exceptions import CikflowError, EmptyBaseError
from cikflow.gating.apply import GATE_TABLE_COLUMNS
from cikflow.intervals import UNCERTAINTY_DEFAULTS
from cikflow.io.status import SampleStatus
from cikflow.review import needs_review, set_text
from cikflow.steps.cluster import (
    Skipped,
    accepted,
    cluster_events,
    cluster_plot,
    gate_base_events,
    status_flags,
    with_clusters,
    write_base_events,
    write_clusters,
)
from cikflow.steps.files import SampleFiles
from cikflow.steps.provenance import provenance
from cikflow.summary import (
    FLAG_COLUMNS,
    SUMMARY_COLUMNS,
    flag_table,
    population_table,
)
from cikflow.uncertainty import bias_flags, population_intervals

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cikflow.acquisition import QcOutcome
    from cikflow.clustering import BaseEvents, GatedClusters
    from cikflow.io.fcs import FcsData

__all__ = ["gate_file"]

log = logging.getLogger(__name__)


@dataclass
class _Gated:
    """What gating one file gave so far (a failure part way keeps what came before)."""

    gates: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=GATE_TABLE_COLUMNS))
    populations: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SUMMARY_COLUMNS))
    flags: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FLAG_COLUMNS))
    plots: list[dict[str, Any]] = field(default_factory=list)
    panels: dict[str, Any] = field(default_factory=dict)  # report panels' data, by name
    base: BaseEvents | Skipped | None = None  # what clustering needs (None: not to cluster)
    clustered: GatedClusters | Skipped | None = None  # None: not clustered here


def gate_file(
    fcs_path: str | Path,
    *,
    template_path: str | Path,
    out_dir: str | Path | None = None,
    files: SampleFiles | None = None,
    row: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    events_table: bool = False,
    review: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Gate one FCS file and write its tables, plot data and status.

    Parameters
    ----------
    fcs_path : str or pathlib.Path
        The FCS file.
    template_path : str or pathlib.Path
        YAML or GatingML template.
    out_dir : str or pathlib.Path, optional
        Folder for the files under their default names
        (:meth:`SampleFiles.in_folder`), when ``files`` is not given.
    files : SampleFiles, optional
        Where to write ``status`` (:class:`~cikflow.io.status.SampleStatus`),
        ``gates``, ``plots``, ``gatingml`` (the gates applied, with this
        sample's fitted coordinates, as GatingML 2.0; no gates when gating
        failed), ``gate_populations``, ``gate_flags`` and ``base`` (the gate
        rows and the base events, clustered later by the sample's report job,
        :func:`~cikflow.steps.cluster_and_report`), and ``events`` (per-event
        membership: one 0/1 column per gate), each when set. With ``clusters``
        the sample is clustered here too: ``populations`` and ``flags`` then
        carry the cluster rows beside the gate rows, ``clusters``,
        ``concordance`` and ``markers`` are written and ``status.json`` holds
        the clustering record (:meth:`SampleFiles.in_folder` names all of them).
    row : mapping, optional
        The sample-sheet row (sample, batch, day …); without it the sample ID
        is the file stem.
    config : mapping, optional
        Workflow configuration (``panel``, ``compensation``, ``gating``,
        ``report``, ``qc``, ``clustering`` sections); defaults apply where absent.
    events_table : bool
        With ``out_dir``, also write ``events.tsv.gz``: ``qc_removed``, then one 0/1
        column per gate (empty for events acquisition QC removed).
    review : sequence of mapping, optional
        A reviewer's entries for this sample (:meth:`cikflow.review.Override.as_record`,
        validated): gates set for it, flags accepted. Recorded in ``status.json``.

    Returns
    -------
    dict
        The status written to ``status.json`` without its provenance
        (``status`` is ``ok`` or ``failed``).
    """
    from cikflow.io import read_template

    config = dict(config or {})
    fcs_path = Path(fcs_path)
    if files is None:
        if out_dir is None:
            raise TypeError("gate_file: give out_dir or files")
        files = SampleFiles.in_folder(out_dir, events=events_table)
    Path(files.status).parent.mkdir(parents=True, exist_ok=True)
    status = _initial_status(fcs_path, row)
    status.review = [dict(r) for r in review] if review else None
    template_info: dict[str, Any] = {"path": str(template_path)}
    gated = _Gated()
    try:
        template = read_template(template_path)
        template_info.update(name=template.name, version=template.version, sha256=template.sha256)
        _gate_sample(
            fcs_path,
            template=template,
            status=status,
            config=config,
            files=files,
            gated=gated,
            # a tube the sheet gives no beads: what the bead gate catches is no reference
            beads=row is None or bool(_row_value(row, "beads_per_tube")),
        )
    except CikflowError as exc:
        status.status, status.error, status.message = "failed", type(exc).__name__, str(exc)
        log.error("%s failed: %s: %s", status.sample, type(exc).__name__, exc)
    prov = provenance(
        step="gate",
        config=config,
        inputs={"fcs": str(fcs_path), "template": str(template_path)},
        template=template_info,
        parameters={
            "sample": status.sample,
            "batch": status.batch,
            "day": status.day,
            **({"review": status.review} if status.review else {}),
        },
    )
    _write_outputs(gated, status=status, files=files, provenance=prov)
    return status.to_json()


def _row_value(row: Mapping[str, Any] | None, key: str, default: Any = None) -> Any:
    if row is None:
        return default
    value = row.get(key, default)
    if isinstance(value, float) and np.isnan(value):
        return default
    return value


def _initial_status(fcs_path: Path, row: Mapping[str, Any] | None) -> SampleStatus:
    """The sample's identity from its sheet row (the sample defaults to the file stem)."""
    return SampleStatus(
        sample=str(_row_value(row, "sample", fcs_path.stem)),
        batch=str(_row_value(row, "batch", "")),
        day=_row_value(row, "day"),
        label=str(_row_value(row, "label", "")),
        fcs=str(fcs_path),
        file_name=fcs_path.name,
    )


def _gate_sample(
    fcs_path: Path,
    *,
    template: Any,
    status: SampleStatus,
    config: Mapping[str, Any],
    files: SampleFiles,
    gated: _Gated,
    beads: bool = True,
) -> None:
    """Read, QC, gate and plot one file, keep its base events; fill ``gated`` and ``status``.

    The sample is clustered here only when ``files`` names ``clusters``; its counting
    beads' levels are kept only when it has ``beads``.
    """
    from cikflow.plotdata import gate_plot_data
    from cikflow.report.panels import PanelContext, panel_data

    fcs, qc = _read_with_qc(fcs_path, status=status, config=config, gated=gated)
    bins = int(config.get("report", {}).get("bins", 96))
    try:
        outcome = _run_gating(fcs, template=template, config=config, review=status.review)
    except EmptyBaseError as exc:  # the report shows the gates up to the one that emptied
        partial = exc.outcome
        _note_gating(status, outcome=partial, template=template)
        gated.gates = partial.gates
        gated.plots = gate_plot_data(
            fcs, partial, template=template, compensated=partial.compensated, bins=bins
        )
        status.emptied = exc.emptied
        raise
    _note_gating(status, outcome=outcome, template=template)
    status.gatingml = _write_gatingml(outcome, files.gatingml)
    gated.gates = outcome.gates
    gated.plots = gate_plot_data(
        fcs, outcome, template=template, compensated=outcome.compensated, bins=bins
    )
    context = PanelContext(fcs=fcs, outcome=outcome, template=template)
    gated.panels.update(panel_data("gated", context))
    if template.kind == "yaml":
        # the plots were the last step to read the file's values: keep the template's
        # channels and free the file before taking the base events (a million events' bytes)
        outcome.compensated.release(fcs.pnn.index(d) for d in outcome.channel_map.values())
        fcs = None
        gated.base = gate_base_events(outcome, template=template)
        if beads:
            status.bead_levels = _bead_levels(outcome, template=template, config=config)
        if files.clusters is not None:  # clustered here, not by the sample's report job
            gated.clustered = cluster_events(gated.base, template=template, config=config)
    intervals = population_intervals(outcome, template=template, settings=config.get("uncertainty"))
    _tabulate(
        gated,
        status=status,
        outcome=outcome,
        template=template,
        qc=qc,
        config=config,
        intervals=intervals,
    )
    if files.events is not None:
        _write_events(outcome, keep=qc.keep, path=files.events)


def _bead_levels(
    outcome: Any, *, template: Any, config: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The counting beads' levels (:func:`cikflow.clustering.gate_levels`), or None."""
    from cikflow.clustering import gate_levels

    population = str(config.get("counts", {}).get("bead_population", "beads"))
    return gate_levels(outcome, gate=str(template.populations.get(population, population)))


def _read_with_qc(
    fcs_path: Path, *, status: SampleStatus, config: Mapping[str, Any], gated: _Gated
) -> tuple[FcsData, QcOutcome]:
    """The file after acquisition QC, and the QC (without the file); notes both in status."""
    from cikflow.acquisition import run_acquisition_qc, time_unit
    from cikflow.io import read_fcs
    from cikflow.report.panels import PanelContext, panel_data

    fcs = read_fcs(fcs_path, sample_id=status.sample)
    kw = fcs.keywords
    status.sha256, status.events, status.channels = fcs.sha256, fcs.n_events, len(fcs.pnn)
    status.instrument = kw.get("cyt", "")
    status.acquisition_date, status.acquisition_time = kw.get("date", ""), kw.get("btim", "")
    status.fcs_fil, status.fcs_smno = kw.get("fil", ""), kw.get("smno", "")
    status.fcs_version = fcs.version
    status.pns = dict(zip(fcs.pnn, fcs.pns, strict=True))
    qc = run_acquisition_qc(fcs, settings=config.get("qc"))
    context = PanelContext(fcs=fcs, qc=qc.record, time_unit=time_unit(fcs))
    gated.panels.update(panel_data("read", context))  # the file as read, before QC
    kept = qc.fcs  # gating sees only the events acquisition QC kept
    status.qc, status.read_warnings = qc.record, list(kept.warnings)
    return kept, replace(qc, fcs=None)


def _run_gating(
    fcs: FcsData,
    *,
    template: Any,
    config: Mapping[str, Any],
    review: Sequence[Mapping[str, Any]] | None = None,
) -> Any:
    """Compensate and gate the file (:func:`cikflow.gating.apply.gate_fcs`) as configured."""
    from cikflow.gating.apply import gate_fcs

    panel = config.get("panel", {})
    comp_cfg = config.get("compensation", {})
    gating_cfg = config.get("gating", {})
    matrix_file = comp_cfg.get("matrix_file")
    matrix_csv = (
        Path(matrix_file).read_text() if comp_cfg.get("source") == "file" and matrix_file else None
    )
    return gate_fcs(
        fcs,
        template,
        aliases=panel.get("aliases"),
        overrides=panel.get("overrides"),
        compensation=comp_cfg.get("source", "fcs"),
        matrix_csv=matrix_csv,
        min_events=int(gating_cfg.get("min_events", 100)),
        fit_max_events=int(gating_cfg.get("fit_max_events", 50_000)),
        random_state=int(gating_cfg.get("random_state", 0)),
        gate_overrides={r["gate"]: r["set"] for r in review or () if r.get("set")},
    )


def _note_gating(status: SampleStatus, *, outcome: Any, template: Any) -> None:
    """Panel, compensation, transforms and fitted values of the gating, in status."""
    status.panel = outcome.channel_map
    status.base = template.base if template.kind == "yaml" else None
    status.compensation = outcome.compensation
    status.transforms = {
        dim: template.spec["transforms"][tname]
        for dim in outcome.channel_map
        if (tname := _transform_of(template, dim)) is not None
    }
    status.fits = [_fit_summary(i) for i in outcome.infos if i.fit]


def _tabulate(
    gated: _Gated,
    *,
    status: SampleStatus,
    outcome: Any,
    template: Any,
    qc: QcOutcome,
    config: Mapping[str, Any],
    intervals: pd.DataFrame | None = None,
) -> None:
    """The sample's gate-based population and flag rows (and ``estimated_bias`` flags)."""
    ids = {"batch": status.batch, "sample": status.sample, "day": status.day}
    pop_map = template.populations or {g: g for g in gated.gates["gate"]}
    settings = {**UNCERTAINTY_DEFAULTS, **dict(config.get("uncertainty") or {})}
    bias = (
        []
        if intervals is None
        else bias_flags(intervals, populations=pop_map, limit_pp=settings["bias_flag_pp"])
    )
    gated.flags = accepted(flag_table([*qc.flags, *outcome.flags, *bias], ids=ids), status=status)
    gated.populations = population_table(
        gated.gates,
        populations=pop_map,
        ids=ids,
        review=needs_review(gated.flags),
        intervals=intervals,
    )


def _write_events(outcome: Any, *, keep: np.ndarray, path: Path) -> None:
    """Per-event membership: ``qc_removed``, then a 0/1 column per gate (empty if removed)."""
    from cikflow.io import write_membership

    write_membership(outcome.membership, path, qc_keep=keep)


def _write_outputs(
    gated: _Gated, *, status: SampleStatus, files: SampleFiles, provenance: dict[str, Any]
) -> None:
    """Write the sample's tables, plot data, base events, cluster files and ``status.json``."""
    from cikflow.io import write_json, write_table
    from cikflow.io.status import write_status

    if not status.ok:  # no stale gates from an earlier run
        status.gatingml = _write_gatingml(None, files.gatingml)
    write_table(gated.gates, files.gates, provenance=provenance)
    if files.gate_populations is not None:
        write_table(gated.populations, files.gate_populations, provenance=provenance)
    if files.gate_flags is not None:
        write_table(gated.flags, files.gate_flags)
    if files.base is not None:
        write_base_events(gated.base, files.base, status=status)
    clustered = gated.clustered
    populations, flags = with_clusters(
        gated.populations, gated.flags, clustered=clustered, status=status
    )
    flags = accepted(flags, status=status)
    if not populations.empty:  # a cluster flag the reviewer did not accept asks for review
        populations["review_required"] = needs_review(flags)
    if files.populations is not None:
        write_table(populations, files.populations, provenance=provenance)
    if files.flags is not None:
        write_table(flags, files.flags)
    status.flags = status_flags(flags)
    write_json(
        {
            "sample": status.sample,
            "gates": gated.plots,
            **cluster_plot(clustered),
            **({"panels": gated.panels} if gated.panels else {}),
        },
        files.plots,
    )
    if files.clusters is not None:
        write_clusters(clustered, files=files, status=status)
    write_status(replace(status, provenance=provenance), files.status)


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
    """What a data-driven gate fitted, for the report: method, values (data units), flags.

    A gate a reviewer set also gives ``set`` (its set fields, data units) and
    ``replaced`` (what the fit it replaced gave; empty for a static gate).
    """
    summary = {
        "gate": info.name,
        "method": info.method,
        "values": _fit_values(info.fit),
        "flags": [f["flag"] for f in info.fit.get("flags", [])],
    }
    if info.override is not None:
        summary["method"] = f"set by reviewer (template: {info.method})"
        summary["set"] = set_text(info.override, axes=info.dims)
        summary["replaced"] = _fit_values(info.fit.get("replaced") or {})
    return summary


def _fit_values(fit: Mapping[str, Any]) -> str:
    """A fit record's values, in data units: ``CD3 626.2; CD56 within CD3- 957.9``."""
    values = []
    for one in fit.get("fits", []):
        if "threshold" in one:
            within = f" within {one['within']}" if one.get("within") else ""
            values.append(f"{one['dimension']}{within} {one['threshold']:.4g}")
            placed = {"edge": "no valley: ", "valley edge": "below the valley: "}
            if one.get("placed") in placed:
                values[-1] += f" ({placed[one['placed']]}the count-balanced edge)"
            if one.get("intermediate_share"):
                values.append(f"intermediate staining {one['intermediate_share']:.1%}")
        elif "thresholds" in one:
            values.extend(
                f"{d} {t:.4g}" for d, t in zip(one["dimensions"], one["thresholds"], strict=True)
            )
        elif "vertices" in one:
            values.append(f"{' x '.join(one['dimensions'])}: {len(one['vertices'])}-vertex polygon")
    if fit.get("band"):
        lo, hi = fit["band"]
        values.append(f"height/area ratio {lo:.3f} to {hi:.3f}")
    return "; ".join(values)


def _transform_of(template: Any, dim: str) -> str | None:
    from cikflow.gating.template import transform_name

    if template.kind != "yaml":
        return None
    return transform_name(template.spec, dim)
