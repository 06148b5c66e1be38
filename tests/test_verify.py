"""``cikflow verify``: recompute recorded input hashes and name what changed since."""

from __future__ import annotations

import shutil

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
