from cikflow.worker import hand_over

hand_over(snakemake, script=__file__)  # in the run's warm worker, when there is one

import logging

from cikflow.steps import SampleFiles, cluster_and_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
i, o = dict(snakemake.input.items()), dict(snakemake.output.items())
cluster_and_report(
    SampleFiles(**{k: v for k, v in {**i, **o}.items() if k not in ("html", "template")}),
    template_path=snakemake.input.template,
    out_path=snakemake.output.html,
    config={"clustering": snakemake.params.clustering, "report": {"bins": snakemake.params.bins}},
    standalone=snakemake.params.standalone,
)
