# Configuration and sample-sheet validation, wildcard constraints and input functions.
# A sheet or template error stops here, before any job runs, naming the row or gate.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import min_version

from cikflow.check import check_clustering_markers, check_files
from cikflow.exceptions import CikflowError
from cikflow.io import read_template
from cikflow.io.config import check_config
from cikflow.io.release import read_release_spec
from cikflow.io.overrides import read_overrides
from cikflow.io.samplesheet import read_sample_sheet
from cikflow.io.terminal import show_stages
from cikflow.release import spec_problems
from cikflow.report.pdf import pdf_plan
from cikflow.review import for_sample, override_problems, with_covers

min_version("9.0")

# the terminal: the plan, warnings, errors and a line per stage (a dry run and --verbose
# keep Snakemake's full job listing)
if not workflow.dryrun and not workflow.output_settings.verbose:
    show_stages(logger)


try:  # the configuration (schema defaults filled in), then the sheet and the template
    config.update(check_config(config, source=CONFIG_FILE, node=CONFIG_NODE))
    SHEET = read_sample_sheet(config["samples"]).set_index("sample", drop=False)
    TEMPLATE = read_template(config["template"])  # fail fast on an invalid template
except CikflowError as exc:  # a named error, not a traceback
    raise WorkflowError(f"cikflow {type(exc).__name__}: {exc}") from None
try:  # a release spec error, or a criterion on a metric no population gives, stops here too
    RELEASE_SPEC = read_release_spec(config["release_spec"])
    POPULATIONS = TEMPLATE.reported  # a GatingML or FlowJo template's gates
    SPEC_PROBLEMS = (
        spec_problems(
            RELEASE_SPEC,
            populations=POPULATIONS,
            bead_population=config["counts"]["bead_population"],
        )
        if POPULATIONS
        else []
    )
except CikflowError as exc:
    raise WorkflowError(f"cikflow {type(exc).__name__}: {exc}") from None
if SPEC_PROBLEMS:
    raise WorkflowError(
        f"cikflow ReleaseSpecError: {config['release_spec']}: "
        + "; ".join(SPEC_PROBLEMS)
    )
# every FCS file's panel against the template (keywords only), once, not in every job
if workflow.is_main_process:
    CHECK = check_files(
        sheet=SHEET, template=TEMPLATE, panel=config["panel"], label=config["template"]
    )
    if any(p.fatal for p in CHECK):
        raise WorkflowError(
            "cikflow check:\n  " + "\n  ".join(str(p) for p in CHECK if p.fatal)
        )
    for problem in CHECK:
        logger.warning(f"cikflow: {problem}")
try:  # the reviewer's corrections against the sheet and the template
    OVERRIDES = with_covers(
        read_overrides(config["overrides"]) if config["overrides"] else [],
        template=TEMPLATE,
    )
    OVERRIDE_PROBLEMS = override_problems(
        OVERRIDES, samples=list(SHEET.index), template=TEMPLATE
    )
except CikflowError as exc:
    raise WorkflowError(f"cikflow {type(exc).__name__}: {exc}") from None
if OVERRIDE_PROBLEMS:
    raise WorkflowError(
        f"cikflow OverrideError: {config['overrides']}:\n  "
        + "\n  ".join(OVERRIDE_PROBLEMS)
    )
try:  # the cluster second opinion's markers against the template (after a marker typo's hint)
    check_clustering_markers(
        config["clustering"], template=TEMPLATE, label=config["template"]
    )
except CikflowError as exc:
    raise WorkflowError(f"cikflow {type(exc).__name__}: {exc}") from None
try:  # the browser that prints the batch report, and notes for the report (report.pdf)
    PDF_BROWSER, REPORT_NOTES = pdf_plan(config["report"]["pdf"])
except CikflowError as exc:
    raise WorkflowError(f"cikflow {type(exc).__name__}: {exc}") from None
for note in REPORT_NOTES:
    logger.warning(f"cikflow: {note}")
SAMPLES = list(SHEET.index)
BATCHES = sorted(SHEET["batch"].astype(str).unique())
DEMO = config["demo"]
DEMO_SAMPLES = [
    f"B{b + 1:02d}_d{day:02d}" for b in range(DEMO["n_batches"]) for day in DEMO["days"]
]
DEMO_FILES = [f"{DEMO['folder']}/{s}.fcs" for s in DEMO_SAMPLES]


wildcard_constraints:
    sample="|".join(SAMPLES) if SAMPLES else "NO_SAMPLES",
    batch="|".join(BATCHES) if BATCHES else "NO_BATCHES",


def get_fcs(wildcards):
    """The FCS file as a job input, unless it is missing (then the job records the failure)."""
    path = SHEET.loc[wildcards.sample, "fcs"]
    return path if Path(path).exists() or path in DEMO_FILES else []


def get_row(wildcards):
    """The sample-sheet row, JSON-safe (NaN -> None)."""
    row = SHEET.loc[wildcards.sample].to_dict()
    return {k: (None if v != v else v) for k, v in row.items()}


def get_review(wildcards):
    """The sample's reviewer entries (empty for most samples: no rerun of theirs)."""
    return [o.as_record() for o in for_sample(OVERRIDES, wildcards.sample)]


def get_settings(wildcards):
    """The science settings rule gate uses (a change reruns it; clustering is not one)."""
    keys = ("panel", "compensation", "gating")
    plots = {"bins": config["report"]["bins"]}  # pdf, standalone: not the gating's
    return {
        **{key: config[key] for key in keys},
        "report": plots,
        "qc": config.get("qc", {}),
    }


WORKER = None  # the run's warm worker process (cikflow.worker), local execution only


def start_worker():
    """Start the process that runs the jobs' scripts with cikflow already imported."""
    from cikflow.worker import start_server

    global WORKER
    if workflow.local_exec and not workflow.dryrun and not workflow.touch:
        WORKER = start_server()


def stop_worker():
    """End the run's worker (the jobs are done)."""
    from cikflow.worker import stop_server

    stop_server(WORKER)


def end_of_run():
    """The run's summary line and audit records; ``strict: true``: exit 1 on a failed sample."""
    from cikflow.steps import run_summary  # only at the end of a run
    from cikflow.steps.audit import audit_run
    from cikflow.verify import stale_samples

    summary = run_summary("results")
    if summary is None:  # a partial target: no batch results to sum up
        return
    print(summary.line(report="results/report/index.html"), file=sys.stderr)
    try:  # one record per input the run changed, appended to results/audit.jsonl
        added = audit_run("results", by=config["audit_by"])
    except CikflowError as exc:  # a broken trail: nothing appended, the run fails
        print(f"cikflow {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    if added:
        print(
            f"cikflow: {len(added)} audit records appended to results/audit.jsonl",
            file=sys.stderr,
        )
    stale = stale_samples("results")
    if stale:
        print(
            f"cikflow: {len(stale)} stale samples in results/ (no longer in the sheet; "
            f"ignored): {', '.join(stale[:10])}; remove with `cikflow clean results`",
            file=sys.stderr,
        )
    if config["strict"] and summary.failed:
        print(
            "cikflow: strict: true and samples failed: exit status 1", file=sys.stderr
        )
        sys.exit(1)


def get_pdf(wildcards):
    """The batch report's PDF, when a browser can print it (``report.pdf``)."""
    return ["results/report/index.pdf"] if PDF_BROWSER else []


def sample_files(name):
    """One per-sample result file for every sample of the sheet."""
    return expand("results/samples/{sample}/{name}", sample=SAMPLES, name=name)


def batch_files(name):
    """One per-batch result file for every batch of the sheet."""
    return expand("results/batch/{batch}/{name}", batch=BATCHES, name=name)


def get_batch_files(wildcards):
    """Each sample's status and exported gates, for every sample of the job's batch."""
    samples = SHEET.index[SHEET["batch"].astype(str) == wildcards.batch]
    return {
        name: expand("results/samples/{sample}/{file}", sample=samples, file=file)
        for name, file in (("status", "status.json"), ("gatingml", "gates.xml"))
    }


def get_workspaces(wildcards):
    """The FlowJo workspace of every batch."""
    return expand("results/batch/{batch}/workspace.wsp", batch=BATCHES)


def get_batch_clusters(wildcards):
    """Each sample's status, marker subsample and clustering record, for the job's batch."""
    samples = SHEET.index[SHEET["batch"].astype(str) == wildcards.batch]
    files = (
        ("status", "status.json"),
        ("markers", "markers.tsv.gz"),
        ("clustering", "clustering.json"),
    )
    return {
        name: expand("results/samples/{sample}/{file}", sample=samples, file=file)
        for name, file in files
    }


def get_batch_h5ad(wildcards):
    """Each sample's status and gate counts for the batch's ``.h5ad`` (needs anndata)."""
    from cikflow.io import require_anndata

    try:  # before any job runs, not after the batch was gated
        require_anndata()
    except CikflowError as exc:
        raise WorkflowError(f"cikflow {type(exc).__name__}: {exc}") from None
    samples = SHEET.index[SHEET["batch"].astype(str) == wildcards.batch]
    return {
        name: expand("results/samples/{sample}/{file}", sample=samples, file=file)
        for name, file in (("status", "status.json"), ("gates", "gates.tsv"))
    }
