# The demo batch: simulated on first run (deterministic, seeded), never committed.


rule simulate_demo:
    output:
        fcs=DEMO_FILES,
        truth=f"{DEMO['folder']}/truth.tsv",
        sheet=f"{DEMO['folder']}/samples.tsv",
        simulation=f"{DEMO['folder']}/simulation.json",
    log:
        "logs/simulate_demo.log",
    conda:
        "../envs/cikflow.yaml"
    params:
        demo=lookup(dpath="demo", within=config),
    script:
        "../scripts/simulate_demo.py"
