"""The Snakemake workflow end to end on the `.test/` scenario.

A tiny simulated batch plus one of each bad input, run in a temporary copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cikflow.io import read_table, read_template

pytestmark = pytest.mark.slow
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _run(repo: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [
            SNAKEMAKE,
            "-s",
            str(repo / "Snakefile"),
            "--directory",
            str(workdir),
            "--cores",
            "2",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def scenario(repo_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("wf")
    shutil.copytree(repo_dir / "config" / "gating", root / "config" / "gating")
    shutil.copytree(repo_dir / "config" / "release", root / "config" / "release")
    work = root / "scenario"
    shutil.copytree(repo_dir / ".test" / "config", work / "config")
    shutil.copytree(repo_dir / ".test" / "bad", work / "bad")
    result = _run(repo_dir, work)
    assert result.returncode == 0, result.stderr[-3000:]
    (work / "run.log").write_text(result.stderr)
    return work


def _with_pdf(jobs: dict[str, int]) -> dict[str, int]:
    """The jobs, and the batch PDF where a browser prints it (report.pdf: auto)."""
    from cikflow.report.pdf import ChromiumNotFoundError, find_chromium

    try:
        find_chromium()
    except ChromiumNotFoundError:
        return jobs
    return {**jobs, "batch_pdf": 1}


def test_run_ends_with_one_summary_line_naming_the_failed(scenario):
    lines = [x for x in (scenario / "run.log").read_text().splitlines() if "samples analysed" in x]
    summary = read_table(scenario / "results" / "summary.tsv")
    review = sorted(set(summary.loc[summary["review_required"].astype(bool), "sample"]))
    listed = f" ({', '.join(review)})" if review else ""
    assert lines == [
        "cikflow: 4 samples analysed, 4 failed (bad_not_fcs, bad_truncated, bad_no_cd56, "
        f"bad_missing), {len(review)} review required{listed}; "
        "report: results/report/index.html"
    ]


def test_the_terminal_shows_the_plan_and_a_line_per_stage_not_every_job(scenario):
    log = (scenario / "run.log").read_text()
    sheet = read_table(scenario / "config" / "samples.tsv")
    assert "Job stats:" in log
    assert f"gate: {len(sheet)} of {len(sheet)} done" in log
    assert "summarize: 1 of 1 done" in log
    # no job listing (rule, inputs, outputs, reason) and no scheduler chatter
    assert "localrule gate:" not in log
    assert "    input:" not in log
    assert "Select jobs to execute" not in log
    assert len(log.splitlines()) < 60


def test_strict_exits_non_zero_when_a_sample_failed(repo_dir, scenario, tmp_path):
    work = tmp_path / "strict"
    shutil.copytree(scenario.parent, work, symlinks=True)
    result = _run(repo_dir, work / "scenario", "--config", "strict=true", "--forcerun", "summarize")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "strict: true and samples failed" in result.stderr
    # every result is still there
    assert (work / "scenario" / "results" / "report" / "index.html").is_file()


def test_batch_survives_bad_inputs(scenario):
    failed = read_table(scenario / "results" / "failed.tsv").set_index("sample")
    assert failed["error"].to_dict() == {
        "bad_not_fcs": "FcsHeaderError",
        "bad_truncated": "FcsTruncatedError",
        "bad_no_cd56": "MissingMarkerError",
        "bad_missing": "FcsNotFoundError",
    }
    summary = read_table(scenario / "results" / "summary.tsv")
    assert sorted(summary["sample"].unique()) == ["B01_d00", "B01_d21", "B02_d00", "B02_d21"]
    index = (scenario / "results" / "report" / "index.html").read_text()
    for sample in ("B01_d00", "bad_missing", "bad_no_cd56"):
        assert f'href="samples/{sample}.html"' in index
        assert (scenario / "results" / "report" / "samples" / f"{sample}.html").is_file()


def test_batch_report_printed_to_pdf(scenario):
    from cikflow.report.pdf import ChromiumNotFoundError, find_chromium

    try:
        find_chromium()
    except ChromiumNotFoundError:
        # report.pdf: auto on a machine without a browser: the run finished without the PDF
        assert not (scenario / "results" / "report" / "index.pdf").exists()
        pytest.skip("no Chromium or Chrome: the run went on without the PDF (report.pdf: auto)")
    pdf = (scenario / "results" / "report" / "index.pdf").read_bytes()
    assert pdf[:5] == b"%PDF-"
    assert len(pdf) > 10_000, len(pdf)


def test_gates_exported_per_sample_and_per_batch(scenario):
    import flowkit as fk

    results = scenario / "results"
    for sample in ("B01_d00", "B02_d21"):
        assert read_template(results / "samples" / sample / "gates.xml").strategy.get_gate_ids()
    wsp = fk.parse_wsp(str(results / "batch" / "B01" / "workspace.wsp"))
    assert sorted(wsp["samples"]) == ["B01_d00.fcs", "B01_d21.fcs"]
    assert fk.parse_wsp(str(results / "batch" / "B09" / "workspace.wsp"))["samples"] == {}


def test_demo_data_made_by_the_workflow_matches_its_sheet(scenario):
    sheet = read_table(scenario / "config" / "samples.tsv")
    demo = read_table(scenario / "data" / "demo" / "samples.tsv")
    good = sheet[sheet["fcs"].str.startswith("data/demo/")].reset_index(drop=True)
    assert good.to_dict("records") == demo.to_dict("records")


def test_rerun_gives_byte_identical_tables(repo_dir, scenario):
    names = ["summary.tsv", "flags.tsv", "failed.tsv", "summary.tsv.provenance.json"]
    before = {n: (scenario / "results" / n).read_bytes() for n in names}
    result = _run(repo_dir, scenario, "--forceall")
    assert result.returncode == 0, result.stderr[-3000:]
    for n in names:
        assert (scenario / "results" / n).read_bytes() == before[n], n


def test_sheet_error_stops_before_any_job(repo_dir, scenario, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(scenario / "config", work / "config")
    sheet = work / "config" / "samples.tsv"
    lines = sheet.read_text().splitlines()
    lines[2] = lines[2].replace("\t21\t", "\ttwenty-one\t")
    sheet.write_text("\n".join(lines) + "\n")
    result = _run(repo_dir, work)
    assert result.returncode != 0
    assert (
        "cikflow SampleSheetError: config/samples.tsv line 3 (sample B01_d21): column 'day'"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (work / "results").exists()


def test_template_error_stops_before_any_job(repo_dir, scenario, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(scenario / "config", work / "config")
    template = tmp_path / "config" / "gating" / "cik_default.yaml"
    template.parent.mkdir(parents=True)
    text = (repo_dir / "config" / "gating" / "cik_default.yaml").read_text()
    template.write_text(text.replace("parent: viable", "parent: vaible"))
    result = _run(repo_dir, work)
    assert result.returncode != 0
    assert "cikflow GatingTemplateError" in result.stderr
    assert "gate 'lymphocytes': field 'parent': 'vaible'" in result.stderr
    assert not (work / "results").exists()


def test_a_run_killed_hard_resumes_with_the_documented_command(repo_dir, scenario, tmp_path):
    """A SIGKILL mid-run, then `snakemake --unlock && snakemake --rerun-incomplete`: same tables."""
    import signal
    import time

    root = tmp_path / "killed"
    shutil.copytree(scenario.parent, root, symlinks=True)
    work = root / "scenario"
    shutil.rmtree(work / "results")
    shutil.rmtree(work / ".snakemake", ignore_errors=True)
    cmd = [SNAKEMAKE, "-s", str(repo_dir / "Snakefile"), "--directory", str(work), "--cores", "2"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    gated = work / "results" / "samples"
    while time.monotonic() < deadline and len(list(gated.glob("*/gates.tsv"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # power loss: no clean-up at all
    proc.wait()
    assert not (work / "results" / "summary.tsv").exists()  # killed before the end
    resumed = subprocess.run(
        ["bash", "-c", f"{' '.join(cmd)} --unlock && {' '.join(cmd)} --rerun-incomplete"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for table in ("summary.tsv", "failed.tsv", "flags.tsv", "release.tsv"):
        got = (work / "results" / table).read_bytes()
        assert got == (scenario / "results" / table).read_bytes(), table


def test_h5ad_target_writes_one_readable_file_per_batch(repo_dir, scenario):
    anndata = pytest.importorskip("anndata", reason="the anndata extra is not installed")
    result = _run(repo_dir, scenario, "h5ad")
    assert result.returncode == 0, result.stderr[-3000:]
    batches = scenario / "results" / "batch"
    for batch in ("B01", "B02"):
        adata = anndata.read_h5ad(batches / batch / "events.h5ad")
        base = {
            s: int(read_table(scenario / "results" / "samples" / s / "gates.tsv")
                   .set_index("gate").loc["lymphocytes", "events"])
            for s in (f"{batch}_d00", f"{batch}_d21")
        }  # fmt: skip
        counts = adata.obs["sample"].value_counts().to_dict()
        assert counts == {s: min(n, 10_000) for s, n in base.items()}
        assert sorted(adata.var_names) == sorted(adata.uns["panel"][f"{batch}_d00"])
    failed = anndata.read_h5ad(batches / "B09" / "events.h5ad")  # every sample failed
    assert failed.shape == (0, 0)
    left_out = json.loads(failed.uns["provenance"])["parameters"]["left_out"]
    assert sorted(r.split(":")[0] for r in left_out) == sorted(
        ["bad_not_fcs", "bad_truncated", "bad_no_cd56", "bad_missing"]
    )


#: the jobs after a sample's own outputs change: every batch output that reads them
BATCH_JOBS = {
    "summarize": 1,
    "concordance": 1,
    "batch_kinetics": 3,
    "release": 1,
    "batch_report": 1,
    "all": 1,
}


def test_a_clustering_setting_reruns_no_gating(repo_dir, scenario, tmp_path, job_stats):
    """A clustering setting reruns each sample's report job (where it is clustered), no gate."""
    root = tmp_path / "reclustered"
    shutil.copytree(scenario.parent, root, symlinks=True)
    work = root / "scenario"
    samples = work / "results" / "samples"
    gated = sorted(samples.glob("*/base_events.npz")) + sorted(samples.glob("*/gates.tsv"))
    mtimes = {p: p.stat().st_mtime_ns for p in gated}
    config = work / "config" / "config.yaml"
    config.write_text(config.read_text() + "clustering:\n  n_clusters: 20\n")

    result = _run(repo_dir, work)
    assert result.returncode == 0, result.stderr[-3000:]
    sheet = read_table(work / "config" / "samples.tsv")
    assert job_stats(result.stderr) == _with_pdf(
        {**BATCH_JOBS, "sample_report": len(sheet), "cluster_batch": 3}
    )
    assert {p: p.stat().st_mtime_ns for p in gated} == mtimes  # no gate job ran
    assert len(read_table(samples / "B01_d00" / "clusters.tsv")) == 20
    summary = read_table(work / "results" / "summary.tsv")
    assert set(summary["method"]) == {"gate", "cluster"}
    # a failed sample still fails alone, with its reason, and has empty cluster files
    failed = read_table(work / "results" / "failed.tsv").set_index("sample")
    assert failed.loc["bad_no_cd56", "error"] == "MissingMarkerError"
    record = json.loads((samples / "bad_no_cd56" / "clustering.json").read_text())
    assert record["clustering"] == {"status": "not run", "reason": "failed"}
    assert read_table(samples / "bad_no_cd56" / "clusters.tsv").empty


def test_a_changed_fcs_file_reruns_its_own_chain_and_the_batch_outputs(
    repo_dir, scenario, tmp_path, job_stats
):
    root = tmp_path / "changed"
    shutil.copytree(scenario.parent, root, symlinks=True)
    work = root / "scenario"
    reports = work / "results" / "report" / "samples"
    mates = {p: p.stat().st_mtime_ns for p in reports.glob("*.html") if p.stem != "B01_d21"}
    # a new file: Snakemake reruns nothing for a merely touched small file whose checksum
    # it recorded (the demo's 30,000-event files are too large for that: a touch reruns)
    demo = work / "data" / "demo"
    shutil.copyfile(demo / "B01_d00.fcs", demo / "B01_d21.fcs")

    result = _run(repo_dir, work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_stats(result.stderr) == _with_pdf(
        {
            **BATCH_JOBS,
            "gate": 1,
            "sample_report": 1,
            "cluster_batch": 1,
            "export_workspace": 1,
        }
    )
    assert {p: p.stat().st_mtime_ns for p in mates} == mates  # B01_d00's report stays
    assert (work / "results" / "samples" / "B01_d21" / "clustering.json").is_file()


def test_an_override_reruns_its_sample_and_the_batch_outputs_with_one_audit_record(
    repo_dir, scenario, tmp_path, job_stats
):
    root = tmp_path / "overridden"
    shutil.copytree(scenario.parent, root, symlinks=True)
    work = root / "scenario"
    results = work / "results"
    before = read_table(results / "summary.tsv")
    trail = (results / "audit.jsonl").read_text().splitlines()
    (work / "overrides.yaml").write_text(
        "- sample: B01_d21\n  gate: cd3_cd56\n  set: {x: {at: 2000}}\n"
        "  reason: CD3 set at the dim shoulder\n  by: AB\n"
    )
    args = ("--config", "overrides=overrides.yaml")
    plan = _run(repo_dir, work, "--dry-run", *args)
    assert plan.returncode == 0, plan.stderr[-3000:]
    expected = _with_pdf(
        {**BATCH_JOBS, "gate": 1, "sample_report": 1, "cluster_batch": 1, "export_workspace": 1}
    )
    assert job_stats(plan.stdout + plan.stderr) == expected

    result = _run(repo_dir, work, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    after = read_table(results / "summary.tsv")
    key = ["sample", "population", "method"]
    changed = before.merge(after, on=key, suffixes=("_was", "_now"))
    moved = changed[changed["percent_of_base_was"] != changed["percent_of_base_now"]]
    assert set(moved["sample"]) == {"B01_d21"}  # that sample's rows alone
    gate_rows = moved.loc[moved["method"] == "gate", "population"]
    assert set(gate_rows) & {"T", "CIK", "NK"}  # the quadrant's populations moved
    # the gate as applied, and the fitted one it replaced, in the sample's record
    status = json.loads((results / "samples" / "B01_d21" / "status.json").read_text())
    (fit,) = [f for f in status["fits"] if f["gate"] == "cd3_cd56"]
    assert fit["set"] == "CD3 at 2000"
    assert fit["method"].startswith("set by reviewer")
    # exactly one new audit record: the override, by its author, with its reason
    lines = (results / "audit.jsonl").read_text().splitlines()
    assert lines[: len(trail)] == trail
    (record,) = [json.loads(x) for x in lines[len(trail) :]]
    assert (record["what"], record["by"], record["sample"], record["gate"]) == (
        "override_added",
        "AB",
        "B01_d21",
        "cd3_cd56",
    )
    assert record["reason"] == "CD3 set at the dim shoulder"
    assert record["new"]["set"] == {"x": {"at": 2000}}


def test_a_bad_override_stops_before_any_job_naming_the_entry(repo_dir, scenario, tmp_path):
    work = tmp_path / "bad_override"
    shutil.copytree(scenario / "config", work / "config")
    for shared in ("gating", "release"):  # the scenario's ../config
        shutil.copytree(scenario.parent / "config" / shared, tmp_path / "config" / shared)
    (work / "overrides.yaml").write_text(
        "- {sample: B01_d21, gate: cd3_cd65, set: {x: {at: 2000}}, reason: '', by: AB}\n"
    )
    result = _run(repo_dir, work, "--config", "overrides=overrides.yaml")
    assert result.returncode != 0
    assert "cikflow OverrideError: overrides.yaml:" in result.stderr
    assert (
        "entry 1 (sample 'B01_d21', gate 'cd3_cd65'): unknown gate 'cd3_cd65' "
        "(did you mean 'cd3_cd56'?)" in result.stderr
    )
    assert "entry 1 (sample 'B01_d21', gate 'cd3_cd65'): reason is empty" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (work / "results").exists()
