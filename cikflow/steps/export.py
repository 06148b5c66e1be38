"""The export steps: a batch as a FlowJo workspace, and its base events as an AnnData file.

:func:`export_workspace` writes every sample with the gates it was gated with;
:func:`export_h5ad` gates every sample again, exactly as the gate step did (same
file, template and settings; the gate counts are checked against the sample's
``gates.tsv``), and writes a seeded subsample of each sample's base events,
annotated (:mod:`cikflow.scverse`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cikflow.exceptions import CikflowError, ExportError
from cikflow.steps.cluster import Skipped, cluster_gated
from cikflow.steps.files import SampleFiles, sample_files
from cikflow.steps.gate import _Gated, _initial_status, _read_with_qc, _run_gating
from cikflow.steps.provenance import provenance

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cikflow.gating.template import Template
    from cikflow.io.status import SampleStatus
    from cikflow.scverse import SampleEvents

__all__ = ["export_h5ad", "export_workspace"]

log = logging.getLogger(__name__)


def export_workspace(
    samples: Sequence[str | Path | SampleFiles],
    *,
    out_path: str | Path,
    group: str | None = None,
) -> list[str]:
    """Write a batch's samples, each with the gates it was gated with, as a FlowJo workspace.

    Reads each sample's ``status.json`` and ``gates.xml`` (written by the gate
    step) and its FCS file; samples that failed, or whose gates could not be
    exported, are left out and logged.

    Parameters
    ----------
    samples : sequence of str, pathlib.Path or SampleFiles
        Per-sample result folders of one batch, or their files (``status``,
        ``gatingml``).
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
    from cikflow.io import WorkspaceSample, export_flowjo_wsp, read_fcs, read_template
    from cikflow.io.status import read_status

    entries, skipped = [], []
    for files in sample_files(samples):
        status = read_status(files.status)
        group = group or status.batch or None
        if not status.ok or status.gatingml != "gates.xml":
            reason = status.message or status.gatingml or "no gates.xml"
            skipped.append(f"{status.sample}: {reason}")
            continue
        try:
            strategy = read_template(files.gatingml).strategy
            fcs = read_fcs(status.fcs, sample_id=status.sample)
        except CikflowError as exc:
            skipped.append(f"{status.sample}: {exc}")
            continue
        entries.append(WorkspaceSample(fcs, strategy))
    skipped += export_flowjo_wsp(entries, out_path, group=group or "All Samples", on_error="skip")
    for reason in skipped:
        log.warning("left out of %s: %s", out_path, reason)
    return skipped


def export_h5ad(
    samples: Sequence[str | Path | SampleFiles],
    *,
    template_path: str | Path,
    out_path: str | Path,
    batch: str = "",
    config: Mapping[str, Any] | None = None,
) -> list[str]:
    """Write a batch's base events, subsampled per sample and annotated, as ``.h5ad``.

    Every sample the gate step gated is read and gated again with the same
    template and settings (QC, compensation, fits and clustering are seeded, so
    the events, gates and clusters are those of the gate step; the gate counts
    are checked against its ``gates.tsv``). Of each sample's base population at
    most ``export.h5ad_events_per_sample`` events are kept (seeded by
    ``export.random_state``). What the file holds: :mod:`cikflow.scverse`.
    Samples that failed are left out and logged.

    Parameters
    ----------
    samples : sequence of str, pathlib.Path or SampleFiles
        Per-sample result folders of one batch, or their files (``status``, and
        ``gates`` to check the counts against).
    template_path : str or pathlib.Path
        The YAML template the samples were gated with.
    out_path : str or pathlib.Path
        The ``.h5ad`` file (a provenance sidecar is written beside it).
    batch : str
        The batch.
    config : mapping, optional
        Workflow configuration as the gate step had it (``panel``,
        ``compensation``, ``gating``, ``qc``, ``clustering``), and ``export``.

    Returns
    -------
    list of str
        Why each left-out sample was left out.

    Raises
    ------
    ExportError
        anndata is not installed (checked first), the template is not YAML, or
        a sample's file or gate counts differ from its gate step's (results out
        of date). A batch whose every sample failed gives a file without events.
    """
    from cikflow.io import read_status, read_template, require_anndata, write_h5ad
    from cikflow.scverse import H5AD_DEFAULTS, event_matrix

    require_anndata()
    config = dict(config or {})
    settings = {**H5AD_DEFAULTS, **dict(config.get("export") or {})}
    template = read_template(template_path)
    if template.kind != "yaml":
        raise ExportError(f"the .h5ad export needs a YAML template, not {template_path}")
    parts, skipped, inputs = [], [], {"template": str(template_path)}
    for files in sample_files(samples):
        status = read_status(files.status)
        if not status.ok:
            skipped.append(f"{status.sample}: {status.message or status.status}")
            continue
        parts.append(_sample_events(status, files=files, template=template, config=config))
        inputs |= {f"fcs_{status.sample}": status.fcs, f"status_{status.sample}": files.status}
    parts.sort(key=lambda p: (p.day, p.sample))
    for reason in skipped:
        log.warning("left out of %s: %s", out_path, reason)
    prov = provenance(
        step="export_h5ad",
        config=config,
        inputs={k: str(v) for k, v in inputs.items()},
        template={"name": template.name, "version": template.version, "sha256": template.sha256},
        parameters={
            "batch": batch,
            **settings,
            "samples": [p.sample for p in parts],
            "left_out": skipped,
        },
    )
    matrix = event_matrix(
        parts,
        template=template,
        template_text=Path(template_path).read_text(),
        batch=batch,
        settings=settings,
        provenance_json=json.dumps(prov, sort_keys=True),
    )
    write_h5ad(matrix, out_path, provenance=prov)
    log.info("%s: %d events x %d dimensions", out_path, *matrix.X.shape)
    return skipped


def _sample_events(
    status: SampleStatus, *, files: SampleFiles, template: Template, config: Mapping[str, Any]
) -> SampleEvents:
    """Gate one sample again as the gate step did; its subsampled, annotated base events."""
    from cikflow.io import read_table
    from cikflow.scverse import H5AD_DEFAULTS, sample_events

    fcs_path = Path(status.fcs)
    again = _initial_status(fcs_path, {"sample": status.sample})
    fcs, qc = _read_with_qc(fcs_path, status=again, config=config, gated=_Gated())
    stale = f"{status.sample}: results out of date (gate the sample again)"
    if again.sha256 != status.sha256:
        raise ExportError(f"{stale}: {fcs_path} changed since it was gated")
    outcome = _run_gating(fcs, template=template, config=config)
    if files.gates is not None:
        gated = read_table(files.gates).set_index("gate")["events"]
        now = outcome.gates.set_index("gate")["events"]
        if not gated.astype(int).equals(now.astype(int)):
            raise ExportError(f"{stale}: its gate counts differ from {files.gates}")
    clustered = cluster_gated(outcome, template=template, config=config)
    settings = {**H5AD_DEFAULTS, **dict(config.get("export") or {})}
    return sample_events(
        outcome,
        template=template,
        clustered=None if isinstance(clustered, Skipped) else clustered,
        kept=qc.keep,
        ids={"sample": status.sample, "batch": status.batch, "day": status.day},
        cap=int(settings["h5ad_events_per_sample"]),
        random_state=int(settings["random_state"]),
    )
