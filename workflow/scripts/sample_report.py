import logging
from pathlib import Path

from cikflow.steps import sample_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
sample_report(
    Path(snakemake.input.status).parent,
    out_path=snakemake.output[0],
    standalone=snakemake.params.standalone,
)
