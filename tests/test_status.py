"""A sample's status.json as SampleStatus; the files a step is given; a skipped clustering."""

from __future__ import annotations

import json

import pytest

from cikflow.exceptions import StatusError
from cikflow.io import read_table
from cikflow.io.status import SampleStatus, read_status, write_status
from cikflow.steps import SampleFiles, Skipped, gate_file, sample_files, summarize
from cikflow.steps.cluster import cluster_plot, write_clusters


def _status(**extra):
    return SampleStatus(
        sample="S1", batch="B01", day=None, label="", fcs="x.fcs", file_name="x.fcs", **extra
    )


def test_status_round_trip_writes_only_what_is_known(tmp_path):
    status = _status(flags=[], gatingml="none", clustering={"status": "not run", "reason": "x"})
    path = tmp_path / "status.json"
    write_status(status, path)
    data = json.loads(path.read_text())
    assert data["day"] is None  # the sheet's day is always written
    assert "sha256" not in data
    assert "error" not in data
    assert read_status(path) == status
    assert SampleStatus.from_json(data).to_json() == data


@pytest.mark.parametrize(
    ("change", "field"),
    [({"status": "maybe"}, ": status: "), ({"events": -1}, ": events: "), ({"colour": "x"}, "top")],
)
def test_a_status_off_its_schema_is_refused(tmp_path, change, field):
    data = _status(flags=[], gatingml="none", clustering={"status": "ok"}).to_json()
    path = tmp_path / "status.json"
    path.write_text(json.dumps({**data, **change}))
    with pytest.raises(StatusError, match=field):
        read_status(path)
    with pytest.raises(StatusError):
        write_status(SampleStatus(**{**data, "status": "maybe"}), path)


def test_sample_files_from_folders_or_lists(tmp_path):
    (a,) = sample_files([tmp_path / "S1"])
    assert a.status == tmp_path / "S1" / "status.json"
    assert a.events is None
    both = sample_files(status=["a/s.json", "b/s.json"], flags=["a/f.tsv", "b/f.tsv"])
    assert [f.flags.as_posix() for f in both] == ["a/f.tsv", "b/f.tsv"]
    assert both[0].populations is None
    with pytest.raises(ValueError, match=r"shorter|longer"):
        sample_files(status=["a"], flags=["a", "b"])


def test_gate_and_summarize_write_where_they_are_told(tmp_path, repo_dir):
    names = ("status", "gates", "populations", "flags", "plots", "gatingml", "clusters")
    files = SampleFiles(
        **{n: tmp_path / "x" / f"{n}.out" for n in names},
        concordance=tmp_path / "y" / "c.tsv",
        markers=tmp_path / "y" / "m.gz",
    )
    template = repo_dir / "config" / "gating" / "cik_default.yaml"
    row = {"sample": "S1", "batch": "B01", "day": 3, "fcs": "missing.fcs"}
    status = gate_file(tmp_path / "missing.fcs", template_path=template, files=files, row=row)
    assert status["status"] == "failed"
    assert all(getattr(files, n).is_file() for n in (*names, "concordance", "markers"))
    saved = read_status(files.status)
    assert saved.error == "FcsNotFoundError"
    assert saved.day == 3
    assert saved.clustering == {"status": "not run", "reason": "failed"}
    out = {n: tmp_path / "z" / f"{n}.tsv" for n in ("summary", "flags", "failed")}
    summarize(
        [files], summary_path=out["summary"], flags_path=out["flags"], failed_path=out["failed"]
    )
    assert read_table(out["failed"])["sample"].tolist() == ["S1"]
    with pytest.raises(TypeError):
        summarize([files])  # neither a folder nor a path for the tables


def test_a_skipped_clustering_writes_empty_files_and_says_why(tmp_path):
    status = _status(flags=[], gatingml="gates.xml")
    files = SampleFiles.in_folder(tmp_path)
    write_clusters(Skipped("marker 'CD4' not in the panel"), files=files, status=status)
    assert status.clustering == {
        "status": "not run",
        "reason": "not run: marker 'CD4' not in the panel",
    }
    assert read_table(files.clusters).empty
    assert list(read_table(files.concordance).columns)[:3] == ["batch", "sample", "day"]
    assert cluster_plot(Skipped("no")) == {}
    assert cluster_plot(None) == {}
