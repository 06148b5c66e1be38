import logging
from pathlib import Path

from cikflow.steps import collect_concordance

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
collect_concordance(
    [Path(p).parent for p in snakemake.input.concordance],
    out_path=snakemake.output.concordance,
)
