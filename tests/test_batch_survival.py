"""A batch survives anything: one bad file among good ones, an empty gate, an empty base.

Each per-sample failure is recorded with its named error and reason; every other sample
finishes; the batch report lists the failures. (A sample-sheet or template error that
makes the whole run meaningless stops before any job: tests/test_workflow.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from cikflow.exceptions import GatingTemplateError
from cikflow.io import read_json, read_table, read_template, write_fcs
from cikflow.io.simulated import write_simulated
from cikflow.simulate import CHANNELS, TOP_OF_SCALE, simulate_batches
from cikflow.steps import batch_report, gate_file, sample_report, summarize

PNN = [c[0] for c in CHANNELS]
PNS = [c[1] for c in CHANNELS]
CONFIG = {"panel": {"aliases": {"Viability": ["7-AAD"]}}, "gating": {"min_events": 50}}


def _bad_files(folder, tube):
    """Bad variants of a good tube: sample → (file, expected error, text in its message)."""
    good = folder / "good_copy.fcs"
    write_fcs(good, tube.events, pnn=PNN, pns=PNS, keywords=tube.keywords)
    raw = good.read_bytes()
    files = {}
    (folder / "cut.fcs").write_bytes(raw[: len(raw) * 7 // 10])
    files["bad_cut"] = ("cut.fcs", "FcsTruncatedError", "greater than file size")
    (folder / "ascii.fcs").write_bytes(raw.replace(b"/$DATATYPE/F/", b"/$DATATYPE/A/"))
    files["bad_ascii"] = ("ascii.fcs", "FcsUnsupportedError", "$DATATYPE A")
    (folder / "empty.fcs").write_bytes(b"")
    files["bad_empty"] = ("empty.fcs", "FcsHeaderError", "not an FCS file")
    saturated = tube.events.copy()
    saturated[:, PNN.index("SSC-A")] = TOP_OF_SCALE - 1
    write_fcs(folder / "saturated.fcs", saturated, pnn=PNN, pns=PNS, keywords=tube.keywords)
    files["bad_saturated"] = ("saturated.fcs", "GatingError", "acquisition QC removed all")
    no_cd45 = tube.events.copy()
    no_cd45[:, PNN.index("APC-Cy7-A")] = 0.0  # CD45 stain failed: no leukocytes, no base
    write_fcs(folder / "no_cd45.fcs", no_cd45, pnn=PNN, pns=PNS, keywords=tube.keywords)
    files["bad_no_cd45"] = ("no_cd45.fcs", "EmptyBaseError", "gate 'leukocytes' holds none")
    return files


@pytest.fixture(scope="module")
def batch(tmp_path_factory, repo_dir):
    root = tmp_path_factory.mktemp("survival")
    batches = simulate_batches(n_batches=1, days=(0, 7, 14), n_events=3000, seed=11)
    sheet = write_simulated(batches, root / "data", fcs_prefix="data/")
    bad = _bad_files(root / "data", batches[0].samples[0])
    rows = sheet.to_dict("records")
    rows += [
        {"sample": s, "batch": "B01", "day": 30 + i, "fcs": f"data/{f}"}
        for i, (s, (f, _, _)) in enumerate(bad.items())
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
    return root, bad


def test_each_bad_file_fails_alone_with_its_reason(batch):
    root, bad = batch
    failed = read_table(root / "results" / "failed.tsv").set_index("sample")
    assert sorted(failed.index) == sorted(bad)
    for sample, (name, error, text) in bad.items():
        assert failed.loc[sample, "error"] == error, sample
        assert name in failed.loc[sample, "message"]
        assert text in failed.loc[sample, "message"], failed.loc[sample, "message"]
    summary = read_table(root / "results" / "summary.tsv")
    assert sorted(summary["sample"].unique()) == ["B01_d00", "B01_d07", "B01_d14"]
    index = (root / "results" / "report" / "index.html").read_text()
    for sample, (name, error, _) in bad.items():
        assert f'href="samples/{sample}.html"' in index
        assert name in index
        assert error in index


def test_empty_base_names_the_gate(batch):
    root, _ = batch
    status = read_json(root / "results" / "samples" / "bad_no_cd45" / "status.json")
    assert "base gate 'lymphocytes' is empty" in status["message"]
    assert status["qc"]["kept"] == status["events"]  # QC ran and kept everything
    assert status["emptied"] == "leukocytes"


def test_a_sample_whose_base_emptied_shows_its_gates_up_to_the_failure(batch):
    root, _ = batch
    folder = root / "results" / "samples" / "bad_no_cd45"
    gates = read_table(folder / "gates.tsv").set_index("gate")
    status = read_json(folder / "status.json")
    # every gate is counted, the events run out at the leukocyte gate
    assert gates.loc["cells", "events"] > 0
    assert gates.loc["singlets", "events"] > 0
    assert gates.loc["leukocytes", "events"] == 0
    assert f"the {gates.loc['singlets', 'events']:,} events of its parent" in status["message"]
    plots = read_json(folder / "plots.json")["gates"]
    assert [p["gate"] for p in plots][:3] == ["beads", "cells", "singlets"]
    page = (root / "results" / "report" / "samples" / "bad_no_cd45.html").read_text()
    assert 'id="emptied-gate"><td>leukocytes</td>' in page
    assert 'id="gate-plots"' in page


def test_a_range_whose_min_is_not_below_its_max_is_refused(tmp_path, repo_dir):
    text = (repo_dir / "config" / "gating" / "cik_default.yaml").read_text()
    bad = text.replace("FSC-A: {min: 25000, max: null}", "FSC-A: {min: 25000, max: 2000}")
    assert bad != text
    (tmp_path / "bad.yaml").write_text(bad)
    with pytest.raises(GatingTemplateError, match=r"gate 'cells': field 'dimensions.FSC-A': min"):
        read_template(tmp_path / "bad.yaml")


def test_an_empty_gate_is_reported_not_fatal(tmp_path, repo_dir):
    batches = simulate_batches(n_batches=1, days=(0,), n_events=3000, seed=12)
    write_simulated(batches, tmp_path)
    text = (repo_dir / "config" / "gating" / "cik_static.yaml").read_text()
    empty = text.replace("FSC-A: {min: null, max: 30000}", "FSC-A: {min: null, max: -1.0e+6}")
    assert empty != text
    template = tmp_path / "empty_beads.yaml"
    template.write_text(empty)
    status = gate_file(
        tmp_path / "B01_d00.fcs", template_path=template, out_dir=tmp_path / "out", config=CONFIG
    )
    assert status["status"] == "ok"
    gates = read_table(tmp_path / "out" / "gates.tsv").set_index("gate")
    assert gates.loc["beads", "events"] == 0
    assert gates.loc["lymphocytes", "events"] > 1000
    populations = read_table(tmp_path / "out" / "populations.tsv")
    populations = populations[populations["method"] == "gate"].set_index("population")
    assert populations.loc["beads", "events"] == 0
    assert np.isfinite(populations.loc["T", "percent_of_base"])


def test_batch_report_shows_notes_about_the_run_as_text(batch, tmp_path):
    """E.g. why no PDF was made; a note is text, never markup."""
    root, _ = batch
    out = tmp_path / "index.html"
    note = "No PDF of this report was made: <b>no Chromium</b> was found."
    dirs = sorted(p for p in (root / "results" / "samples").iterdir() if p.is_dir())
    batch_report(root / "results", sample_dirs=dirs, out_path=out, notes=[note])
    html = out.read_text()
    assert (
        '<p class="note" id="note-1">No PDF of this report was made: &lt;b&gt;no Chromium' in html
    )
