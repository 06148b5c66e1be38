import logging
from pathlib import Path

from cikflow.steps import batch_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
batch_report(
    Path(snakemake.input.summary).parent,
    sample_dirs=[Path(p).parent for p in snakemake.input.status],
    out_path=snakemake.output.index,
    release_path=snakemake.input.release,
    batch_dirs=[Path(p).parent for p in snakemake.input.harvest],
    notes=snakemake.params.notes,
)
