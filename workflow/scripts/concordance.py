from cikflow.worker import hand_over

hand_over(snakemake, script=__file__)  # in the run's warm worker, when there is one

import logging

from cikflow.steps import collect_concordance, sample_files

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
collect_concordance(
    sample_files(concordance=snakemake.input.concordance),
    out_path=snakemake.output.concordance,
)
