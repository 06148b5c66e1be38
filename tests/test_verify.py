"""``cikflow verify``: recompute recorded input hashes and name what changed since."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from cikflow.cli import main
from cikflow.io.simulated import write_simulated
from cikflow.simulate import simulate_batches
from cikflow.steps import gate_file, summarize
from cikflow.verify import verify_results

CONFIG = {"panel": {"aliases": {"Viability": ["7-AAD"]}}, "gating": {"min_events": 50}}


@pytest.fixture(scope="module")
def made(tmp_path_factory, repo_dir):
    """A working directory as the workflow leaves it: data/, config/, results/."""
    work = tmp_path_factory.mktemp("verify")
    batches = simulate_batches(n_batches=1, days=(0, 14), n_events=2000, seed=21)
    sheet = write_simulated(batches, work / "data" / "demo", fcs_prefix="data/demo/")
    (work / "config").mkdir()
    shutil.copy(repo_dir / "config" / "gating" / "cik_static.yaml", work / "config" / "t.yaml")
    shutil.copy(work / "data" / "demo" / "samples.tsv", work / "config" / "samples.tsv")
    return work, sheet.to_dict("records")


@pytest.fixture
def work(made, tmp_path, monkeypatch):
    """A fresh copy of the working directory, results made from inside it (relative paths)."""
    source, rows = made
    work = tmp_path / "w"
    shutil.copytree(source, work)
    monkeypatch.chdir(work)
    dirs = []
    for row in rows:
        out = f"results/samples/{row['sample']}"
        gate_file(row["fcs"], template_path="config/t.yaml", out_dir=out, row=row, config=CONFIG)
        dirs.append(out)
    summarize(
        dirs,
        out_dir="results",
        sheet_path="config/samples.tsv",
        template_path="config/t.yaml",
        config=CONFIG,
    )
    return work


def test_unchanged_inputs_verify(work, capsys):
    table = verify_results(work / "results")
    assert set(table["status"]) == {"ok"}
    assert set(table["path"]) == {
        "config/samples.tsv",
        "config/t.yaml",
        "data/demo/B01_d00.fcs",
        "data/demo/B01_d14.fcs",
    }
    assert main(["verify", "results"]) == 0
    assert "4 inputs checked: 4 ok" in capsys.readouterr().out


def test_one_changed_byte_is_named(work, capsys):
    fcs = work / "data" / "demo" / "B01_d14.fcs"
    data = bytearray(fcs.read_bytes())
    data[-5] ^= 0x01  # one bit of one event value
    fcs.write_bytes(bytes(data))
    assert main(["verify", str(work / "results")]) == 1
    out = capsys.readouterr().out
    changed = [line for line in out.splitlines() if line.startswith("changed")]
    assert len(changed) == 1
    assert "data/demo/B01_d14.fcs" in changed[0]
    assert "B01_d00" not in out
    table = verify_results("results").set_index("path")
    assert table.loc["data/demo/B01_d14.fcs", "status"] == "changed"
    assert table.loc["data/demo/B01_d14.fcs", "records"] >= 3  # summary + the sample's tables


def test_missing_and_edited_inputs(work, capsys):
    (work / "data" / "demo" / "B01_d00.fcs").unlink()
    template = work / "config" / "t.yaml"
    template.write_text(template.read_text() + "\n# edited\n")
    assert main(["verify", "results", "--all"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "missing      data/demo/B01_d00.fcs" in lines
    assert any(line.startswith("changed      config/t.yaml") for line in lines)
    assert any(line.startswith("ok           config/samples.tsv") for line in lines)


def test_relative_paths_from_another_directory(work, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = verify_results(work / "results")
    assert set(table["status"]) == {"ok"}
    assert main(["verify", str(work / "results"), "--base", str(tmp_path)]) == 1  # wrong base


def test_no_records(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    assert "no provenance records" in capsys.readouterr().out


def test_a_failed_sample_is_checked_like_the_others(work, capsys):
    (work / "data" / "bad.fcs").write_text("not an FCS file\n")
    row = {"sample": "bad", "batch": "B01", "day": 30, "fcs": "data/bad.fcs"}
    status = gate_file(
        "data/bad.fcs", template_path="config/t.yaml", out_dir="results/samples/bad", row=row
    )
    assert status["status"] == "failed"
    dirs = ["results/samples/B01_d00", "results/samples/B01_d14", "results/samples/bad"]
    summarize(
        dirs, out_dir="results", sheet_path="config/samples.tsv", template_path="config/t.yaml"
    )
    table = verify_results("results").set_index("path")
    assert table.loc["data/bad.fcs", "status"] == "ok"  # hashed by the gate step only
    assert set(table["status"]) == {"ok"}


def test_results_of_samples_dropped_from_the_sheet_are_stale(tmp_path):
    from cikflow.io import write_table
    from cikflow.verify import remove_stale, stale_samples

    results = tmp_path / "results"
    for sample in ("keep", "gone", "broken"):
        (results / "samples" / sample).mkdir(parents=True)
    (results / "report" / "samples").mkdir(parents=True)
    (results / "report" / "samples" / "old.html").write_text("<html></html>")
    # before any run there is nothing to compare with
    assert stale_samples(results) == []
    write_table(pd.DataFrame({"sample": ["keep"], "population": ["T"]}), results / "summary.tsv")
    write_table(pd.DataFrame({"sample": ["broken"], "error": ["X"]}), results / "failed.tsv")
    assert stale_samples(results) == ["gone", "old"]
    removed = remove_stale(results)
    assert sorted(p.name for p in removed) == ["gone", "old.html"]
    assert sorted(p.name for p in (results / "samples").iterdir()) == ["broken", "keep"]
    assert stale_samples(results) == []


def test_a_stale_sample_raises_no_false_alarm(work, capsys):
    """A sample dropped from the sheet: its old record names a file since deleted."""
    old = work / "results" / "samples" / "OLD_d99"
    shutil.copytree(work / "results" / "samples" / "B01_d14", old)
    status = json.loads((old / "status.json").read_text())
    status["provenance"]["inputs"]["fcs"] = {"path": "data/demo/OLD_d99.fcs", "sha256": "0" * 64}
    (old / "status.json").write_text(json.dumps(status))
    table = verify_results(work / "results")
    assert set(table["status"]) == {"ok"}
    assert "data/demo/OLD_d99.fcs" not in set(table["path"])
    assert main(["verify", "results"]) == 0
    out = capsys.readouterr().out
    assert "1 stale samples ignored" in out
    assert "OLD_d99" in out
    assert main(["clean", "results"]) == 0
    assert not old.exists()
