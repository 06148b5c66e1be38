from cikflow.worker import hand_over

hand_over(snakemake, script=__file__)  # in the run's warm worker, when there is one

import logging
from pathlib import Path

from cikflow.steps import simulate_demo

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
demo = snakemake.params.demo
simulate_demo(
    Path(snakemake.output.truth).parent,
    n_batches=demo["n_batches"],
    days=demo["days"],
    n_events=demo["n_events"],
    seed=demo["seed"],
    preset=demo.get("preset", "realistic"),
    fcs_prefix=f"{demo['folder']}/",
)
