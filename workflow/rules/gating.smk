# Per sample: read the FCS file, compensate, gate with the template, write tables and plot data,
# and keep the base events the sample's report job clusters (rule sample_report), so that a
# clustering setting reruns no gating. Plot binning (report.bins) stays here: it needs every
# event, which only this job reads.


rule gate:
    input:
        fcs=get_fcs,
        template=config["template"],
    output:
        status="results/samples/{sample}/status.json",
        gates="results/samples/{sample}/gates.tsv",
        gate_populations="results/samples/{sample}/gate_populations.tsv",
        gate_flags="results/samples/{sample}/gate_flags.tsv",
        plots="results/samples/{sample}/plots.json",
        gatingml="results/samples/{sample}/gates.xml",
        base="results/samples/{sample}/base_events.npz",
    log:
        "logs/gate/{sample}.log",
    priority: 1  # the report chain before the workspace export (off its path)
    conda:
        "../envs/cikflow.yaml"
    params:
        row=get_row,
        settings=get_settings,
        review=get_review,  # this sample's reviewer entries: a change reruns it alone
    script:
        "../scripts/gate.py"


rule summarize:
    input:
        status=sample_files("status.json"),
        populations=sample_files("populations.tsv"),
        flags=sample_files("flags.tsv"),
        sheet=config["samples"],
        template=config["template"],
        drift=batch_files("drift.tsv"),
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
