"""Workflow steps: read inputs, call the pure computation, write outputs.

One module per stage: :mod:`~cikflow.steps.gate` (one FCS file),
:mod:`~cikflow.steps.summarize` (the batch tables), :mod:`~cikflow.steps.batch`
(kinetics, harvest, release), :mod:`~cikflow.steps.cluster` (clustering as a second
opinion), :mod:`~cikflow.steps.report`, :mod:`~cikflow.steps.export` and
:mod:`~cikflow.steps.demo`; :mod:`~cikflow.steps.provenance` writes what every
table was made from. Each step reads its inputs through :mod:`cikflow.io`, calls the
computation, and writes its outputs through :mod:`cikflow.io`, to the paths it is
given (:class:`~cikflow.steps.files.SampleFiles`) or under default names in a
folder. Every Snakemake script and every ``cikflow`` sub-command is one call to one
of these functions.
"""

from __future__ import annotations

from cikflow.steps.batch import batch_kinetics, release_verdicts
from cikflow.steps.cluster import Skipped, cluster_batch, collect_concordance
from cikflow.steps.demo import simulate_demo
from cikflow.steps.export import export_h5ad, export_workspace
from cikflow.steps.files import SampleFiles, sample_files
from cikflow.steps.gate import gate_file
from cikflow.steps.provenance import config_hash, provenance
from cikflow.steps.report import ReportInputs, batch_report, cluster_and_report, sample_report
from cikflow.steps.summarize import run_summary, summarize
from cikflow.summary import FAILED_COLUMNS, FLAG_COLUMNS, SUMMARY_COLUMNS

__all__ = [
    "FAILED_COLUMNS",
    "FLAG_COLUMNS",
    "SUMMARY_COLUMNS",
    "ReportInputs",
    "SampleFiles",
    "Skipped",
    "batch_kinetics",
    "batch_report",
    "cluster_and_report",
    "cluster_batch",
    "collect_concordance",
    "config_hash",
    "export_h5ad",
    "export_workspace",
    "gate_file",
    "provenance",
    "release_verdicts",
    "run_summary",
    "sample_files",
    "sample_report",
    "simulate_demo",
    "summarize",
]
