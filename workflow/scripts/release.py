from cikflow.worker import hand_over

hand_over(snakemake, script=__file__)  # in the run's warm worker, when there is one

import logging

from cikflow.steps import release_verdicts

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
release_verdicts(
    snakemake.input.harvest,
    spec_path=snakemake.input.spec,
    out_path=snakemake.output.release,
)
