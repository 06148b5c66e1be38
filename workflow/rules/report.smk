# HTML reports: one per sample, and the batch report linking them (plotly.js written once).
# A sample's report job first clusters it from the base events rule gate kept (the sample's
# final populations and flags, its cluster tables and clustering.json): a clustering setting
# reruns these jobs and the batch tables, no gating, and a sample still takes two jobs.


rule sample_report:
    input:
        status="results/samples/{sample}/status.json",
        plots="results/samples/{sample}/plots.json",
        gates="results/samples/{sample}/gates.tsv",
        gate_populations="results/samples/{sample}/gate_populations.tsv",
        gate_flags="results/samples/{sample}/gate_flags.tsv",
        base="results/samples/{sample}/base_events.npz",
        template=config["template"],
    output:
        html="results/report/samples/{sample}.html",
        populations="results/samples/{sample}/populations.tsv",
        flags="results/samples/{sample}/flags.tsv",
        clusters="results/samples/{sample}/clusters.tsv",
        concordance="results/samples/{sample}/concordance.tsv",
        markers="results/samples/{sample}/markers.tsv.gz",
        clustering="results/samples/{sample}/clustering.json",
    log:
        "logs/report/{sample}.log",
    priority: 1  # the report chain before the workspace export (off its path)
    conda:
        "../envs/cikflow.yaml"
    params:
        clustering=lookup(dpath="clustering", within=config),
        bins=lookup(dpath="report/bins", within=config),
        standalone=lookup(dpath="report/standalone", within=config),
    script:
        "../scripts/sample_report.py"


rule batch_report:
    input:
        summary=rules.summarize.output.summary,
        flags=rules.summarize.output.flags,
        failed=rules.summarize.output.failed,
        status=sample_files("status.json"),
        clustering=sample_files("clustering.json"),
        gates=sample_files("gates.tsv"),
        samples=expand("results/report/samples/{sample}.html", sample=SAMPLES),
        release=rules.release.output.release,
        kinetics=batch_files("kinetics.tsv"),
        harvest=batch_files("harvest.tsv"),
        concordance=rules.concordance.output.concordance,
        drift=batch_files("drift.tsv"),
    output:
        index=report(
            "results/report/index.html",
            caption="../report/index.rst",
            category="Reports",
        ),
        plotly="results/report/plotly.min.js",
    log:
        "logs/report/index.log",
    priority: 1  # the report chain before the workspace export (off its path)
    conda:
        "../envs/cikflow.yaml"
    params:
        notes=REPORT_NOTES,
    script:
        "../scripts/batch_report.py"


rule batch_pdf:
    input:
        index=rules.batch_report.output.index,
        plotly=rules.batch_report.output.plotly,
    output:
        pdf=report(
            "results/report/index.pdf",
            caption="../report/index_pdf.rst",
            category="Reports",
        ),
    log:
        "logs/report/index_pdf.log",
    priority: 1  # the report chain before the workspace export (off its path)
    conda:
        "../envs/cikflow.yaml"
    script:
        "../scripts/batch_pdf.py"
