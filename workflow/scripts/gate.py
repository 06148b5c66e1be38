import logging
from pathlib import Path

from cikflow.steps import gate_file

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
gate_file(
    snakemake.params.row["fcs"],
    template_path=snakemake.input.template,
    out_dir=Path(snakemake.output.status).parent,
    row=snakemake.params.row,
    config={**snakemake.params.settings, "clustering": snakemake.params.clustering},
)
