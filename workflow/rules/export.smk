# Per batch: every sample with the gates it was gated with, as a FlowJo workspace to review.


rule export_workspace:
    input:
        unpack(get_batch_files),
    output:
        "results/batch/{batch}/workspace.wsp",
    log:
        "logs/export/{batch}.log",
    conda:
        "../envs/cikflow.yaml"
    script:
        "../scripts/export_workspace.py"


# Opt-in (`snakemake h5ad`, needs the anndata extra): per batch, a seeded subsample of every
# sample's base events, compensated and transformed, annotated, as AnnData (scverse).
rule export_h5ad:
    input:
        unpack(get_batch_h5ad),
        template=config["template"],
    output:
        "results/batch/{batch}/events.h5ad",
    log:
        "logs/export_h5ad/{batch}.log",
    conda:
        "../envs/cikflow.yaml"
    params:
        settings=get_settings,
        clustering=lookup(dpath="clustering", within=config),
        export=lookup(dpath="export", within=config),
    script:
        "../scripts/export_h5ad.py"


rule h5ad:
    input:
        batch_files("events.h5ad"),
