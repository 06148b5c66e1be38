# Per batch: absolute counts over culture days and the product at harvest (dose per kg);
# then the release specification's verdict for every batch.


rule batch_kinetics:
    input:
        summary=rules.summarize.output.summary,
        sheet=config["samples"],
    output:
        kinetics="results/batch/{batch}/kinetics.tsv",
        harvest="results/batch/{batch}/harvest.tsv",
    log:
        "logs/batch/{batch}.log",
    priority: 1  # the report chain before the workspace export (off its path)
    conda:
        "../envs/cikflow.yaml"
    params:
        counts=lookup(dpath="counts", within=config),
    script:
        "../scripts/batch_kinetics.py"


rule release:
    input:
        harvest=batch_files("harvest.tsv"),
        spec=config["release_spec"],
    output:
        release=report(
            "results/release.tsv",
            caption="../report/release.rst",
            category="Tables",
        ),
    log:
        "logs/release.log",
    priority: 1  # the report chain before the workspace export (off its path)
    conda:
        "../envs/cikflow.yaml"
    script:
        "../scripts/release.py"
