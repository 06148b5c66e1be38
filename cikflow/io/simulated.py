"""Write a simulated batch to disk: FCS files, per-event truth labels, truth table, sample sheet."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from cikflow.io.fcs import write_fcs
from cikflow.io.samplesheet import COLUMNS
from cikflow.io.tables import write_json, write_table, write_text_gz
from cikflow.simulate import CHANNELS, FLUOROCHROMES, LABELS

if TYPE_CHECKING:
    from cikflow.simulate import SimulatedBatch

__all__ = ["write_simulated"]

#: the sample-sheet columns the simulator fills, in the standard order
SHEET_COLUMNS = list(COLUMNS[:8])


def write_simulated(
    batches: list[SimulatedBatch],
    out_dir: str | Path,
    *,
    fcs_prefix: str = "",
) -> pd.DataFrame:
    """Write every tube of ``batches`` under ``out_dir``.

    Writes ``<sample>.fcs``, ``<sample>.labels.tsv.gz`` (one truth label per
    event, in event order), ``truth.tsv`` (long format, as ``summary.tsv``),
    ``samples.tsv`` (a sample sheet whose ``fcs`` column is ``fcs_prefix`` +
    file name) and ``simulation.json`` (the preset, its difficulty parameters, and
    per tube the true spillover and detector gains the events were made with,
    beside the matrix written in the file).

    Returns
    -------
    pandas.DataFrame
        The sample sheet written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pnn = [c[0] for c in CHANNELS]
    pns = [c[1] for c in CHANNELS]
    truth, sheet = [], []
    tubes: dict[str, dict[str, object]] = {}
    for batch in batches:
        for s in batch.samples:
            tubes[s.sample] = {
                "preset": s.preset,
                "true_spillover": s.true_spillover.tolist(),
                "gains": dict(zip(pnn[:-1], s.gains.tolist(), strict=True)),
            }
            write_fcs(out / f"{s.sample}.fcs", s.events, pnn=pnn, pns=pns, keywords=s.keywords)
            write_text_gz(
                "label\n" + "\n".join(LABELS[c] for c in s.labels) + "\n",
                out / f"{s.sample}.labels.tsv.gz",
            )
            truth.extend(s.truth)
            sheet.append({**s.sheet, "fcs": fcs_prefix + str(s.sheet["fcs"])})
    write_table(pd.DataFrame(truth), out / "truth.tsv")
    write_json(
        {
            "fluorochromes": list(FLUOROCHROMES),
            "file_spillover": batches[0].samples[0].file_spillover.tolist() if batches else [],
            "preset": batches[0].samples[0].preset if batches else "",
            "difficulty": batches[0].difficulty.as_dict() if batches else {},
            "tubes": tubes,
        },
        out / "simulation.json",
    )
    sheet_df = pd.DataFrame(sheet)[SHEET_COLUMNS]
    write_table(sheet_df, out / "samples.tsv")
    return sheet_df
