"""A small simulated culture through cikflow's public steps, as the Snakemake rules run them.

Shared by the report tests (browser, PDF, reviewer corrections): simulate, gate each
tube, summarize with the sheet, batch kinetics, release verdicts, the sample reports
and the batch report, into ``root/results``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from cikflow.io import write_table
from cikflow.io.simulated import write_simulated
from cikflow.simulate import simulate_batches
from cikflow.steps import (
    batch_kinetics,
    batch_report,
    gate_file,
    release_verdicts,
    sample_report,
    summarize,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

CONFIG = {"panel": {"aliases": {"Viability": ["7-AAD"]}}}


@dataclass
class StepsRun:
    """Where a run of the steps wrote: ``results``, the batch report and the sample reports."""

    results: Path
    index: Path
    samples: dict[str, Path]


def run_steps(
    root: Path,
    *,
    repo_dir: Path,
    seed: int,
    review: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    sample_reports: bool = True,
) -> StepsRun:
    """One simulated culture (days 0 and 21, 3,000 events per tube) through every step.

    ``review``: sample → its reviewer entries (``Override.as_record``), passed to its
    gate step. Every tube must gate (asserted).
    """
    data, results = root / "data", root / "results"
    template = repo_dir / "config" / "gating" / "cik_default.yaml"
    batches = simulate_batches(n_batches=1, days=(0, 21), n_events=3000, seed=seed)
    write_simulated(batches, data)
    rows = [{**s.sheet, "fcs": str(data / str(s.sheet["fcs"]))} for s in batches[0].samples]
    sheet = data / "samples.tsv"
    write_table(pd.DataFrame(rows), sheet)
    dirs = []
    for row in rows:
        out = results / "samples" / row["sample"]
        entries = (review or {}).get(row["sample"])
        status = gate_file(
            row["fcs"], template_path=template, out_dir=out, row=row, config=CONFIG, review=entries
        )
        assert status["status"] == "ok", status
        dirs.append(out)
    summarize(dirs, out_dir=results, sheet_path=sheet, template_path=template, config=CONFIG)
    batch_dir = results / "batch" / "B01"
    batch_kinetics(results / "summary.tsv", batch="B01", out_dir=batch_dir, sheet_path=sheet)
    release_verdicts(
        [batch_dir / "harvest.tsv"],
        spec_path=repo_dir / "config" / "release" / "default.yaml",
        out_path=results / "release.tsv",
    )
    samples = {}
    if sample_reports:
        for d in dirs:
            samples[d.name] = results / "report" / "samples" / f"{d.name}.html"
            sample_report(d, out_path=samples[d.name])
    index = results / "report" / "index.html"
    batch_report(
        results,
        sample_dirs=dirs,
        out_path=index,
        release_path=results / "release.tsv",
        batch_dirs=[batch_dir],
    )
    return StepsRun(results=results, index=index, samples=samples)


def gated_days(root: Path, *, repo_dir: Path, config: Mapping[str, Any]) -> list[Path]:
    """One simulated culture on days 0/7/14/21 (3,000 events), each tube gated.

    Returns the sample folders (``root/results/<sample>``), in day order.
    """
    from cikflow.steps.demo import simulate_demo

    sheet = simulate_demo(root / "data", n_batches=1, days=(0, 7, 14, 21), n_events=3000)
    template = repo_dir / "config" / "gating" / "cik_default.yaml"
    dirs = []
    for row in sheet.to_dict("records"):
        folder = root / "results" / row["sample"]
        fcs = root / "data" / f"{row['sample']}.fcs"
        gate_file(fcs, template_path=template, out_dir=folder, row=row, config=config)
        dirs.append(folder)
    return dirs
