# HTML reports: one per sample, and the batch report linking them (plotly.js written once).


rule sample_report:
    input:
        status="results/samples/{sample}/status.json",
        plots="results/samples/{sample}/plots.json",
        gates="results/samples/{sample}/gates.tsv",
        populations="results/samples/{sample}/populations.tsv",
        concordance="results/samples/{sample}/concordance.tsv",
    output:
        "results/report/samples/{sample}.html",
    log:
        "logs/report/{sample}.log",
    priority: 1  # the report chain before the workspace export (off its path)
    conda:
        "../envs/cikflow.yaml"
    params:
        standalone=lookup(dpath="report/standalone", within=config),
    script:
        "../scripts/sample_report.py"


rule batch_report:
    input:
        summary=rules.summarize.output.summary,
        flags=rules.summarize.output.flags,
        failed=rules.summarize.output.failed,
        status=sample_files("status.json"),
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
