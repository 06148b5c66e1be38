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
