import logging
from pathlib import Path

from cikflow.steps import cluster_batch

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
cluster_batch(
    [Path(p).parent for p in snakemake.input.status],
    template_path=snakemake.input.template,
    out_dir=Path(snakemake.output.drift).parent,
    batch=snakemake.wildcards.batch,
    config={"clustering": snakemake.params.clustering},
)
