# Clustering as a second opinion on the gates (each sample is clustered in its report job,
# rule sample_report, from the base events rule gate kept):
# per batch, one reference clustering of all culture days and each day's drift from it;
# the gate vs cluster concordance of every sample in one table.


rule cluster_batch:
    input:
        unpack(get_batch_clusters),
        template=config["template"],
    output:
        reference="results/batch/{batch}/reference.tsv",
        drift="results/batch/{batch}/drift.tsv",
        populations="results/batch/{batch}/reference_populations.tsv",
    log:
        "logs/cluster_batch/{batch}.log",
    priority: 1  # the report chain before the workspace export (off its path)
    conda:
        "../envs/cikflow.yaml"
    params:
        clustering=lookup(dpath="clustering", within=config),
    script:
        "../scripts/cluster_batch.py"


rule concordance:
    input:
        concordance=sample_files("concordance.tsv"),
    output:
        concordance="results/concordance.tsv",
    log:
        "logs/concordance.log",
    priority: 1  # the report chain before the workspace export (off its path)
    conda:
        "../envs/cikflow.yaml"
    script:
        "../scripts/concordance.py"
