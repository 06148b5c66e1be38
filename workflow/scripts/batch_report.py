from cikflow.worker import hand_over

hand_over(snakemake, script=__file__)  # in the run's warm worker, when there is one

import logging

from cikflow.steps import ReportInputs, batch_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
batch_report(
    inputs=ReportInputs.from_named(snakemake.input),
    out_path=snakemake.output.index,
    notes=snakemake.params.notes,
)
