import logging
from pathlib import Path

from cikflow.steps import export_workspace

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
export_workspace(
    [Path(p).parent for p in snakemake.input.status],
    out_path=snakemake.output[0],
    group=snakemake.wildcards.batch,
)
