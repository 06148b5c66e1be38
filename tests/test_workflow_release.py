"""The workflow's counts, kinetics and release verdicts on the `.test/` scenario.

Runs the scenario in a temporary copy, then edits the release spec's limit and
reruns: the verdict changes and only the jobs that depend on the spec rerun.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cikflow.counts import COUNT_COLUMNS, KINETICS_COLUMNS
from cikflow.io import read_json, read_table, sidecar_path
from cikflow.release import RELEASE_COLUMNS
from cikflow.report.pdf import ChromiumNotFoundError, find_chromium
from cikflow.steps import SUMMARY_COLUMNS

pytestmark = pytest.mark.slow
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
CRITERIA = ["viability", "identity_CIK", "dose_CIK"]


def _run(repo: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
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
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )


@pytest.fixture(scope="module")
def scenario(repo_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("release_wf")
    for name in ("gating", "release"):
        shutil.copytree(repo_dir / "config" / name, root / "config" / name)
    work = root / "scenario"
    shutil.copytree(repo_dir / ".test" / "config", work / "config")
    shutil.copytree(repo_dir / ".test" / "bad", work / "bad")
    result = _run(repo_dir, work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work


def test_summary_gains_counts_after_its_columns(scenario):
    summary = read_table(scenario / "results" / "summary.tsv")
    assert list(summary.columns) == SUMMARY_COLUMNS + COUNT_COLUMNS
    gated = summary[summary["method"] == "gate"]  # cluster-based rows carry no counts
    cells = gated[gated["population"] != "beads"]
    assert (cells["count_method"] == "single_platform").all()
    assert cells["cells_per_uL"].gt(0).all()
    assert cells["total_cells"].gt(0).all()
    day0 = cells[cells["day"] == 0]
    assert (day0["fold_expansion"] == 1.0).all()
    flags = read_table(scenario / "results" / "flags.tsv")
    beads_low = flags[flags["flag"] == "beads_low"]
    # 3,000-event tubes hold ~500 bead events: every analysed sample is flagged
    assert sorted(beads_low["sample"]) == ["B01_d00", "B01_d21", "B02_d00", "B02_d21"]
    assert beads_low["reason"].str.contains(r"bead events < 1000 \(count CV").all()


def test_kinetics_per_batch(scenario):
    for batch in ("B01", "B02", "B09"):
        kinetics = read_table(scenario / "results" / "batch" / batch / "kinetics.tsv")
        assert list(kinetics.columns) == KINETICS_COLUMNS
        assert (scenario / "results" / "batch" / batch / "harvest.tsv").is_file()
    kinetics = read_table(scenario / "results" / "batch" / "B01" / "kinetics.tsv")
    assert sorted(kinetics["day"].unique()) == [0, 21]
    cik = kinetics[kinetics["population"] == "CIK"].set_index("day")
    assert cik.loc[0, "fold_expansion"] == 1.0
    assert cik.loc[21, "fold_expansion"] == pytest.approx(
        cik.loc[21, "total_cells"] / cik.loc[0, "total_cells"]
    )
    # B09's files all failed: an empty table, and NOT EVALUABLE below
    assert read_table(scenario / "results" / "batch" / "B09" / "kinetics.tsv").empty


def test_release_table_and_provenance(scenario, repo_dir):
    release = read_table(scenario / "results" / "release.tsv")
    assert list(release.columns) == RELEASE_COLUMNS
    assert list(zip(release["batch"], release["criterion"], strict=True)) == [
        (b, c) for b in ("B01", "B02", "B09") for c in CRITERIA
    ]
    b09 = release[release["batch"] == "B09"]
    assert (b09["verdict"] == "NOT EVALUABLE").all()
    assert b09["reason"].str.endswith("no analysed sample of batch B09 on harvest day 21").all()
    good = release[release["batch"] != "B09"]
    assert good["value"].notna().all()
    assert good["verdict"].isin(["PASS", "FAIL"]).all()
    spec = scenario.parent / "config" / "release" / "default.yaml"
    prov = read_json(sidecar_path(scenario / "results" / "release.tsv"))
    assert prov["release_spec"]["sha256"] == hashlib.sha256(spec.read_bytes()).hexdigest()
    assert prov["release_spec"]["name"] == "cik_default"
    assert prov["inputs"]["release_spec"]["sha256"] == prov["release_spec"]["sha256"]
    index = (scenario / "results" / "report" / "index.html").read_text()
    assert index.index('id="release"') < index.index('id="batch-B01"')
    assert prov["release_spec"]["sha256"] in index


def test_editing_the_spec_limit_reruns_only_the_release(repo_dir, scenario, tmp_path, job_stats):
    work_root = tmp_path / "copy"
    shutil.copytree(scenario.parent, work_root, symlinks=True)
    work = work_root / "scenario"
    spec = work_root / "config" / "release" / "default.yaml"
    results = work / "results"
    before = read_table(results / "release.tsv")
    dose = before[before["criterion"] == "dose_CIK"].set_index("batch")
    # a limit between B01's and B02's measured doses flips exactly one verdict
    low, high = sorted(dose.loc[["B01", "B02"], "value"])
    assert dose.loc[["B01", "B02"], "verdict"].tolist() == ["PASS", "PASS"]
    limit = f"{(low * high) ** 0.5:.3e}"
    untouched = [
        results / "summary.tsv",
        results / "flags.tsv",
        results / "batch" / "B01" / "kinetics.tsv",
        results / "batch" / "B01" / "harvest.tsv",
    ]
    mtimes = {p: p.stat().st_mtime_ns for p in untouched}
    text = spec.read_text()
    assert "limit: 2.5e+6" in text
    spec.write_text(text.replace("limit: 2.5e+6", f"limit: {limit}"))

    result = _run(repo_dir, work)
    assert result.returncode == 0, result.stderr[-3000:]
    # the batch report (and its PDF) shows the verdicts, so they are remade too
    expected = {"release": 1, "batch_report": 1, "all": 1}
    try:  # report.pdf: auto prints the PDF only where a browser is found
        find_chromium()
        expected["batch_pdf"] = 1
    except ChromiumNotFoundError:
        pass
    assert job_stats(result.stderr) == expected
    assert {p: p.stat().st_mtime_ns for p in untouched} == mtimes
    after = read_table(results / "release.tsv")
    dose_after = after[after["criterion"] == "dose_CIK"].set_index("batch")
    assert dose_after["value"].equals(dose["value"])  # B09's NaN included
    assert dose_after["limit"].tolist() == [float(limit)] * 3
    lower = dose.loc[["B01", "B02"], "value"].idxmin()
    assert dose_after.loc[lower, "verdict"] == "FAIL"
    assert dose_after.loc[lower, "batch_verdict"] == "FAIL"
    assert (dose_after.drop(index=[lower, "B09"])["verdict"] == "PASS").all()
    prov = read_json(sidecar_path(results / "release.tsv"))
    assert prov["release_spec"]["sha256"] == hashlib.sha256(spec.read_bytes()).hexdigest()
    index = (results / "report" / "index.html").read_text()
    assert f'Batch {lower}: <span class="verdict fail">FAIL</span>' in index

    # nothing left to do
    result = _run(repo_dir, work, "--dry-run")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_missing_weight_is_not_evaluable(repo_dir, scenario, tmp_path):
    work_root = tmp_path / "copy"
    shutil.copytree(scenario.parent, work_root, symlinks=True)
    work = work_root / "scenario"
    sheet = work / "config" / "samples.tsv"
    lines = sheet.read_text().splitlines()
    header = lines[0].split("\t")
    col = header.index("weight_kg")
    for i, line in enumerate(lines[1:], start=1):
        cells = line.split("\t")
        if cells[header.index("batch")] == "B02":
            cells[col] = ""
            lines[i] = "\t".join(cells)
    sheet.write_text("\n".join(lines) + "\n")
    result = _run(repo_dir, work)
    assert result.returncode == 0, result.stderr[-3000:]
    release = read_table(work / "results" / "release.tsv").set_index(["batch", "criterion"])
    row = release.loc[("B02", "dose_CIK")]
    assert row["verdict"] == "NOT EVALUABLE"
    assert row["reason"] == "CIK_cells_per_kg not evaluable: weight_kg is empty for batch B02"
    assert row["batch_verdict"] == "NOT EVALUABLE"
    assert release.loc[("B02", "viability"), "verdict"] == "PASS"
    assert release.loc[("B01", "dose_CIK"), "verdict"] == "PASS"


def test_a_weight_that_puts_the_dose_on_the_limit_is_indeterminate(repo_dir, scenario, tmp_path):
    """B01's weight chosen so that its CIK dose is the release limit (2.5 × 10⁶ cells/kg).

    The dose is total CIK cells at harvest ÷ weight, so the weight is the sheet's times
    the measured dose ÷ the limit. Its interval then straddles the limit: the
    guard-banded decision is INDETERMINATE whatever side of the limit the point falls
    on, and the certificate shows value, interval, limit and rule.
    """
    work_root = tmp_path / "copy"
    shutil.copytree(scenario.parent, work_root, symlinks=True)
    work = work_root / "scenario"
    before = read_table(work / "results" / "release.tsv").set_index(["batch", "criterion"])
    dose = before.loc[("B01", "dose_CIK")]
    assert dose["limit"] == 2.5e6
    assert dose["decision"] == "PASS"  # far above the limit with the sheet's weight
    sheet = work / "config" / "samples.tsv"
    lines = sheet.read_text().splitlines()
    header = lines[0].split("\t")
    col = header.index("weight_kg")
    weights = set()
    for i, line in enumerate(lines[1:], start=1):
        cells = line.split("\t")
        if cells[header.index("batch")] == "B01":
            weights.add(float(cells[col]))
            cells[col] = f"{float(cells[col]) * dose['value'] / dose['limit']:.6f}"
            lines[i] = "\t".join(cells)
    assert len(weights) == 1
    sheet.write_text("\n".join(lines) + "\n")
    result = _run(repo_dir, work)
    assert result.returncode == 0, result.stderr[-3000:]
    release = read_table(work / "results" / "release.tsv").set_index(["batch", "criterion"])
    row = release.loc[("B01", "dose_CIK")]
    assert row["value"] == pytest.approx(2.5e6, rel=1e-5)
    assert row["value_low"] < 2.5e6 < row["value_high"]
    assert row["decision_rule"] == "guard_banded"
    assert row["decision"] == "INDETERMINATE"
    assert row["batch_decision"] == "INDETERMINATE"
    assert release.loc[("B02", "dose_CIK"), "decision"] == "PASS"
    index = (work / "results" / "report" / "index.html").read_text()
    assert 'Batch B01: <span class="verdict indeterminate">INDETERMINATE</span>' in index


def test_unknown_metric_in_spec_stops_before_any_job(repo_dir, scenario, tmp_path):
    work_root = tmp_path / "copy"
    shutil.copytree(scenario.parent / "config", work_root / "config")
    work = work_root / "scenario"
    shutil.copytree(scenario / "config", work / "config")
    spec = work_root / "config" / "release" / "default.yaml"
    spec.write_text(spec.read_text().replace("CIK_cells_per_kg", "CIK_cells_per_kilo"))
    result = _run(repo_dir, work)
    assert result.returncode != 0
    assert "cikflow ReleaseSpecError" in result.stderr
    assert "unknown metric 'CIK_cells_per_kilo' (did you mean 'CIK_cells_per_kg'?)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (work / "results").exists()
