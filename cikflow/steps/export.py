"""The export step: a batch's samples with the gates each was gated with, as a FlowJo workspace."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cikflow.exceptions import CikflowError
from cikflow.steps.files import SampleFiles, sample_files

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["export_workspace"]

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
