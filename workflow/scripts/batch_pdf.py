from cikflow.worker import hand_over

hand_over(snakemake, script=__file__)  # in the run's warm worker, when there is one

import logging

from cikflow.report.pdf import print_pdf

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
print_pdf(snakemake.input.index, snakemake.output.pdf)
