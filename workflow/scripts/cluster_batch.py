import logging

from cikflow.steps import cluster_batch, sample_files

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
o = snakemake.output
cluster_batch(
    sample_files(status=snakemake.input.status, markers=snakemake.input.markers),
    template_path=snakemake.input.template,
    reference_path=o.reference,
    drift_path=o.drift,
    populations_path=o.populations,
    batch=snakemake.wildcards.batch,
    config={"clustering": snakemake.params.clustering},
)
