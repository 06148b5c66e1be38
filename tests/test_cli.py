from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from cikflow.cli import main
from cikflow.io import read_json, read_table, write_membership


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    assert (
        main(
            [
                "-q",
                "simulate",
                "--out",
                str(out),
                "--batches",
                "1",
                "--days",
                "0",
                "7",
                "--events",
                "2000",
            ]
        )
        == 0
    )
    return out


def test_gate_writes_tables_and_per_event_membership(demo, repo_dir, tmp_path):
    code = main(
        [
            "-q",
            "gate",
            str(demo / "B01_d00.fcs"),
            "--template",
            str(repo_dir / "config" / "gating" / "cik_default.yaml"),
            "--config",
            str(repo_dir / "config" / "config.yaml"),
            "--out",
            str(tmp_path),
            "--events",
        ]
    )
    assert code == 0
    gates = read_table(tmp_path / "gates.tsv").set_index("gate")
    with gzip.open(tmp_path / "events.tsv.gz", "rt") as fh:
        events = pd.read_csv(fh, sep="\t", dtype="Int8")
    truth_n = len(pd.read_csv(demo / "B01_d00.labels.tsv.gz", sep="\t"))
    assert len(events) == truth_n
    assert list(events.columns) == ["qc_removed", *gates.index]
    status = read_json(tmp_path / "status.json")
    assert events["qc_removed"].sum() == status["qc"]["events"] - status["qc"]["kept"]
    assert events.loc[events["qc_removed"] == 1, list(gates.index)].isna().all().all()
    for gate in ("T", "CIK", "NK", "lymphocytes", "CIK_CD16pos"):
        assert events[gate].sum() == gates.loc[gate, "events"]
    # children lie inside their parents
    assert not (events["CIK"] & ~events["lymphocytes"]).fillna(value=False).any()


def test_membership_table_marks_qc_removed_events(tmp_path):
    membership = {"cells": np.array([True, False, True]), "T": np.array([True, False, False])}
    keep = np.array([True, False, True, False, True])
    write_membership(membership, tmp_path / "e.tsv.gz", qc_keep=keep)
    with gzip.open(tmp_path / "e.tsv.gz", "rt") as fh:
        text = fh.read()
    assert text == "qc_removed\tcells\tT\n0\t1\t1\n1\t\t\n0\t0\t0\n1\t\t\n0\t1\t0\n"
    with pytest.raises(ValueError, match="membership holds 3 events, but QC kept 2"):
        write_membership(membership, tmp_path / "f.tsv.gz", qc_keep=keep[:4])


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"not an fcs file at all, just text" * 3, "FcsHeaderError"), (b"", "FcsHeaderError")],
    ids=["text", "empty"],
)
def test_gate_bad_file_exits_2_without_traceback(repo_dir, tmp_path, capsys, content, expected):
    bad = tmp_path / "bad.fcs"
    bad.write_bytes(content)
    template = str(repo_dir / "config" / "gating" / "cik_default.yaml")
    assert main(["gate", str(bad), "--template", template, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "bad.fcs" in err
    assert "Traceback" not in err


def test_bad_template_exits_2(demo, tmp_path, capsys):
    template = tmp_path / "t.yaml"
    template.write_text("name: x\nversion: 1\ngates: []\n")
    assert (
        main(
            ["gate", str(demo / "B01_d00.fcs"), "--template", str(template), "--out", str(tmp_path)]
        )
        == 2
    )
    assert "GatingTemplateError" in capsys.readouterr().err


def test_scan_drafts_a_sheet(demo, tmp_path):
    out = tmp_path / "sheet.tsv"
    assert main(["-q", "scan", str(demo), "--out", str(out)]) == 0
    sheet = read_table(out)
    assert sheet["sample"].tolist() == ["B01_d00", "B01_d07"]
    assert sheet["batch"].tolist() == ["B01", "B01"]
    assert sheet["day"].tolist() == [0, 7]


def test_compare_prints_errors(demo, capsys):
    truth = demo / "truth.tsv"
    assert main(["compare", str(truth), str(truth)]) == 0
    out = capsys.readouterr().out
    assert "mean 0.00 pp, max 0.00 pp" in out


def test_scan_of_a_folder_without_fcs_files_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "sheet.tsv"
    assert main(["scan", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "no readable FCS file" in capsys.readouterr().err
    assert not out.exists()
