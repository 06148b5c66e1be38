import logging
from pathlib import Path

from cikflow.steps import summarize

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
summarize(
    [Path(p).parent for p in snakemake.input.status],
    out_dir=Path(snakemake.output.summary).parent,
    sheet_path=snakemake.input.sheet,
    template_path=snakemake.input.template,
    config={**snakemake.params.settings, "counts": snakemake.params.counts},
)
