import logging

from cikflow.report.pdf import print_pdf

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
print_pdf(snakemake.input.index, snakemake.output.pdf)
