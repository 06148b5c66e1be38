from cikflow.worker import hand_over

hand_over(snakemake, script=__file__)  # in the run's warm worker, when there is one

import logging

from cikflow.steps import export_workspace, sample_files

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
export_workspace(
    sample_files(status=snakemake.input.status, gatingml=snakemake.input.gatingml),
    out_path=snakemake.output[0],
    group=snakemake.wildcards.batch,
)
