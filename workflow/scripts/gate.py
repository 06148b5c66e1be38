from cikflow.worker import hand_over

hand_over(snakemake, script=__file__)  # in the run's warm worker, when there is one

import logging

from cikflow.steps import SampleFiles, gate_file

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
gate_file(
    snakemake.params.row["fcs"],
    template_path=snakemake.input.template,
    files=SampleFiles(**dict(snakemake.output.items())),
    row=snakemake.params.row,
    config=snakemake.params.settings,
    review=snakemake.params.review,
)
