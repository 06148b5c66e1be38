from cikflow.worker import hand_over

hand_over(snakemake, script=__file__)  # in the run's warm worker, when there is one

import logging

from cikflow.steps import export_h5ad, sample_files

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
export_h5ad(
    sample_files(status=snakemake.input.status, gates=snakemake.input.gates),
    template_path=snakemake.input.template,
    out_path=snakemake.output[0],
    batch=snakemake.wildcards.batch,
    config={
        **snakemake.params.settings,
        "clustering": snakemake.params.clustering,
        "export": snakemake.params.export,
    },
)
