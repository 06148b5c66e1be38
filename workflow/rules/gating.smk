# Per sample: read the FCS file, compensate, gate with the template, write tables and plot data.


rule gate:
    input:
        fcs=get_fcs,
        template=config["template"],
    output:
        status="results/samples/{sample}/status.json",
        gates="results/samples/{sample}/gates.tsv",
        populations="results/samples/{sample}/populations.tsv",
        flags="results/samples/{sample}/flags.tsv",
        plots="results/samples/{sample}/plots.json",
        gatingml="results/samples/{sample}/gates.xml",
        clusters="results/samples/{sample}/clusters.tsv",
        concordance="results/samples/{sample}/concordance.tsv",
        markers="results/samples/{sample}/markers.tsv.gz",
    log:
        "logs/gate/{sample}.log",
    priority: 1  # the report chain before the workspace export (off its path)
    conda:
        "../envs/cikflow.yaml"
    params:
        row=get_row,
        settings=get_settings,
        clustering=lookup(dpath="clustering", within=config),
    script:
        "../scripts/gate.py"


rule summarize:
    input:
        status=sample_files("status.json"),
        populations=sample_files("populations.tsv"),
        flags=sample_files("flags.tsv"),
        sheet=config["samples"],
        template=config["template"],
    output:
        summary=report(
            "results/summary.tsv",
            caption="../report/summary.rst",
            category="Tables",
        ),
        flags="results/flags.tsv",
        failed="results/failed.tsv",
    log:
        "logs/summarize.log",
    priority: 1  # the report chain before the workspace export (off its path)
    conda:
        "../envs/cikflow.yaml"
    params:
        settings=get_settings,
        counts=lookup(dpath="counts", within=config),
        plausibility=lookup(dpath="plausibility", within=config),
    script:
        "../scripts/summarize.py"
