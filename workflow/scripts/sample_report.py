import logging

from cikflow.steps import SampleFiles, sample_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
sample_report(
    SampleFiles(**dict(snakemake.input.items())),
    out_path=snakemake.output[0],
    standalone=snakemake.params.standalone,
)
