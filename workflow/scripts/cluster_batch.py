from cikflow.worker import hand_over

hand_over(snakemake, script=__file__)  # in the run's warm worker, when there is one

import logging

from cikflow.steps import cluster_batch, sample_files

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
i, o = snakemake.input, snakemake.output
cluster_batch(
    sample_files(status=i.status, markers=i.markers, clustering=i.clustering),
    template_path=i.template,
    reference_path=o.reference,
    drift_path=o.drift,
    populations_path=o.populations,
    batch=snakemake.wildcards.batch,
    config={"clustering": snakemake.params.clustering},
)
