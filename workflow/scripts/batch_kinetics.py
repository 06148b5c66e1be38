from cikflow.worker import hand_over

hand_over(snakemake, script=__file__)  # in the run's warm worker, when there is one

import logging

from cikflow.steps import batch_kinetics

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
batch_kinetics(
    snakemake.input.summary,
    batch=snakemake.wildcards.batch,
    kinetics_path=snakemake.output.kinetics,
    harvest_path=snakemake.output.harvest,
    sheet_path=snakemake.input.sheet,
    config={"counts": snakemake.params.counts},
)
