from __future__ import annotations

import hashlib
import shutil

import pytest

from cikflow.counts import COUNT_COLUMNS
from cikflow.io import read_json, read_table, sidecar_path
from cikflow.steps import (
    SUMMARY_COLUMNS,
    batch_kinetics,
    batch_report,
    gate_file,
    sample_report,
    simulate_demo,
    summarize,
)

CONFIG = {"panel": {"aliases": {"Viability": ["7-AAD"]}}, "gating": {"min_events": 50}}
REQUIRED = [
    "T",
    "CIK",
    "CIK_CD16pos",
    "CIK_CD16neg",
    "NK",
    "NK_CD56bright",
    "NK_CD56dim",
    "viable_lymphocytes",
]
BAD = {
    "bad_not_fcs": ("not_fcs.fcs", "FcsHeaderError", "not an FCS file"),
    "bad_truncated": ("truncated.fcs", "FcsTruncatedError", "greater than file size"),
    "bad_no_cd56": ("no_cd56.fcs", "MissingMarkerError", "marker 'CD56'"),
    "bad_missing": ("missing.fcs", "FcsNotFoundError", "file not found"),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, repo_dir):
    root = tmp_path_factory.mktemp("steps")
    sheet = simulate_demo(
        root / "data", n_batches=1, days=(0, 21), n_events=3000, fcs_prefix="data/"
    )
    shutil.copytree(repo_dir / ".test" / "bad", root / "bad")
    rows = sheet.to_dict("records")
    rows += [
        {"sample": s, "batch": "B09", "day": d, "fcs": f"bad/{f}", "label": ""}
        for d, (s, (f, _, _)) in enumerate(BAD.items())
    ]
    template = repo_dir / "config" / "gating" / "cik_default.yaml"
    dirs = []
    for row in rows:
        d = root / "results" / "samples" / row["sample"]
        gate_file(root / row["fcs"], template_path=template, out_dir=d, row=row, config=CONFIG)
        sample_report(d, out_path=root / "results" / "report" / "samples" / f"{row['sample']}.html")
        dirs.append(d)
    summarize(dirs, out_dir=root / "results", template_path=template, config=CONFIG)
    batch_report(
        root / "results", sample_dirs=dirs, out_path=root / "results" / "report" / "index.html"
    )
    return root, rows, template


def test_every_bad_input_fails_with_a_named_error(batch):
    root, _, _ = batch
    for sample, (fname, error, text) in BAD.items():
        status = read_json(root / "results" / "samples" / sample / "status.json")
        assert status["status"] == "failed"
        assert status["error"] == error
        assert fname in status["message"]
        assert text in status["message"]
        assert read_table(root / "results" / "samples" / sample / "gates.tsv").empty


def test_failed_table_lists_each_failure_and_good_samples_finish(batch):
    root, _, _ = batch
    failed = read_table(root / "results" / "failed.tsv").set_index("sample")
    assert sorted(failed.index) == sorted(BAD)
    for sample, (_, error, text) in BAD.items():
        assert failed.loc[sample, "error"] == error
        assert text in failed.loc[sample, "message"]
    summary = read_table(root / "results" / "summary.tsv")
    assert list(summary.columns) == SUMMARY_COLUMNS + COUNT_COLUMNS
    assert sorted(summary["sample"].unique()) == ["B01_d00", "B01_d21"]
    for sample in ("B01_d00", "B01_d21"):
        pops = set(summary.loc[summary["sample"] == sample, "population"])
        assert set(REQUIRED) <= pops


def test_reports_list_the_failures(batch):
    root, _, _ = batch
    index = (root / "results" / "report" / "index.html").read_text()
    for sample, (fname, error, _) in BAD.items():
        assert f'href="samples/{sample}.html"' in index
        assert f"bad/{fname}" in index
        assert error in index
    assert (root / "results" / "report" / "plotly.min.js").stat().st_size > 1_000_000
    assert "cdn.plot.ly" not in index
    assert "https://" not in index.split("<h2>Provenance")[0]
    page = (root / "results" / "report" / "samples" / "bad_no_cd56.html").read_text()
    assert "Analysis failed" in page
    assert "MissingMarkerError" in page


def test_provenance_names_inputs_and_their_hashes(batch):
    root, rows, template = batch
    prov = read_json(sidecar_path(root / "results" / "summary.tsv"))
    assert prov["inputs"]["template"]["sha256"] == hashlib.sha256(template.read_bytes()).hexdigest()
    fcs = root / rows[0]["fcs"]
    assert (
        prov["fcs_inputs"][rows[0]["sample"]]["sha256"]
        == hashlib.sha256(fcs.read_bytes()).hexdigest()
    )
    assert prov["versions"]["flowkit"].startswith("1.3")
    assert len(prov["config_sha256"]) == 64
    gate_prov = read_json(sidecar_path(root / "results" / "samples" / "B01_d00" / "gates.tsv"))
    assert gate_prov["inputs"]["fcs"]["sha256"] == prov["fcs_inputs"]["B01_d00"]["sha256"]


def test_rerun_is_byte_identical(batch, tmp_path):
    root, rows, template = batch
    row = rows[1]
    gate_file(root / row["fcs"], template_path=template, out_dir=tmp_path, row=row, config=CONFIG)
    first = root / "results" / "samples" / row["sample"]
    for name in ("gates.tsv", "populations.tsv", "flags.tsv", "plots.json", "status.json"):
        assert (tmp_path / name).read_bytes() == (first / name).read_bytes(), name


def test_sample_report_shows_every_gate(batch):
    root, _, _ = batch
    page = (root / "results" / "report" / "samples" / "B01_d00.html").read_text()
    plots = read_json(root / "results" / "samples" / "B01_d00" / "plots.json")["gates"]
    # the acquisition view, all 11 gates of the default template (none is boolean) in 9 plots
    # (CD16+/- of CIK and CD56 bright/dim of NK each share one divider), the cluster map
    assert page.count('class="plotly-graph-div"') == len(plots) + 2 == 11
    drawn = [g for p in plots for g in p.get("gates", [p["gate"]])]
    gates = read_table(root / "results" / "samples" / "B01_d00" / "gates.tsv")
    quadrants = {"T", "CIK", "NK", "CD3neg_CD56neg"}  # drawn on their gate, cd3_cd56
    assert sorted(drawn) == sorted({*gates["gate"], "cd3_cd56"} - quadrants)
    assert ["CIK_CD16pos", "CIK_CD16neg"] in [p.get("gates") for p in plots]
    assert 'id="acquisition-plot"' in page
    assert 'id="cluster-map"' in page
    status = read_json(root / "results" / "samples" / "B01_d00" / "status.json")
    assert status["sha256"] in page
    assert "$SPILLOVER (5 detectors)" in page


def test_numeric_looking_ids_keep_their_zeros(tmp_path, repo_dir):
    """A sample ``007`` of batch ``01`` stays ``007`` / ``01`` in every table read back."""
    sheet = simulate_demo(tmp_path / "data", n_batches=1, days=(0, 7), n_events=3000)
    template = repo_dir / "config" / "gating" / "cik_default.yaml"
    dirs = []
    for row, sample in zip(sheet.to_dict("records"), ("007", "0101"), strict=True):
        row = {**row, "sample": sample, "batch": "01"}
        d = tmp_path / "results" / "samples" / sample
        gate_file(
            tmp_path / "data" / row["fcs"],
            template_path=template,
            out_dir=d,
            row=row,
            config=CONFIG,
        )
        dirs.append(d)
    summarize(dirs, out_dir=tmp_path / "results", template_path=template, config=CONFIG)
    summary = read_table(tmp_path / "results" / "summary.tsv")
    assert sorted(summary["sample"].unique()) == ["007", "0101"]
    assert set(summary["batch"]) == {"01"}
    lines = (tmp_path / "results" / "summary.tsv").read_text().splitlines()[1:]
    assert {line.split("\t")[1] for line in lines} == {"007", "0101"}
    harvest = batch_kinetics(
        tmp_path / "results" / "summary.tsv",
        batch="01",
        out_dir=tmp_path / "results" / "batch" / "01",
        config=CONFIG,
    )
    assert set(harvest["batch"]) == {"01"}
    kinetics = read_table(tmp_path / "results" / "batch" / "01" / "kinetics.tsv")
    assert sorted(kinetics["sample"].unique()) == ["007", "0101"]


def test_named_arrays_round_trip_exactly_and_write_the_same_bytes(tmp_path):
    import numpy as np

    from cikflow.io import read_arrays, write_arrays

    values = np.array([[1.5, 2.0e-7], [3.25, -4.0]], dtype=np.float64)
    narrow = np.array([0.1, 0.2], dtype=np.float32)
    inside = np.array([[True, False], [False, True]])
    arrays = {"values": values, "narrow": narrow, "membership": inside}
    header = {"sample": "S1", "gates": ["a", "b"]}
    write_arrays(arrays, tmp_path / "a.npz", header=header)
    write_arrays(arrays, tmp_path / "b.npz", header=header)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    got, got_header = read_arrays(tmp_path / "a.npz")
    assert got_header == header
    assert {n: a.dtype for n, a in got.items()} == {
        "values": np.float64,
        "narrow": np.float32,
        "membership": np.bool_,
    }
    for name, array in arrays.items():
        assert np.array_equal(got[name], array), name
    assert np.load(tmp_path / "a.npz")["values"][1, 1] == -4.0  # numpy reads it too
