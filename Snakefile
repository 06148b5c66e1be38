# cikflow: flow-cytometry QC of CIK cell cultures.
# Entry point only: configuration, rule files, final targets. See README.md.


include: "workflow/rules/config.smk"


configfile: CONFIG_FILE


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/gating.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/counts.smk"
include: "workflow/rules/clustering.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "results/summary.tsv",
        "results/release.tsv",
        "results/report/index.html",
        get_pdf,
        get_workspaces,


onstart:
    start_worker()


onsuccess:
    stop_worker()
    end_of_run()


onerror:
    stop_worker()
