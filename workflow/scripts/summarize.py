from cikflow.worker import hand_over

hand_over(snakemake, script=__file__)  # in the run's warm worker, when there is one

import logging

from cikflow.steps import sample_files, summarize

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
i, o = snakemake.input, snakemake.output
summarize(
    sample_files(status=i.status, populations=i.populations, flags=i.flags),
    summary_path=o.summary,
    flags_path=o.flags,
    failed_path=o.failed,
    sheet_path=i.sheet,
    template_path=i.template,
    drift_paths=i.drift,
    config={
        **snakemake.params.settings,
        "counts": snakemake.params.counts,
        "plausibility": snakemake.params.plausibility,
    },
)
