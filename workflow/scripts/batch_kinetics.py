import logging
from pathlib import Path

from cikflow.steps import batch_kinetics

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
batch_kinetics(
    snakemake.input.summary,
    batch=snakemake.wildcards.batch,
    out_dir=Path(snakemake.output.kinetics).parent,
    sheet_path=snakemake.input.sheet,
    config={"counts": snakemake.params.counts},
)
