"""The audit trail: hash chain, replayed inputs, a run's records, signatures, verify."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from cikflow.audit import (
    GENESIS,
    SIGNATURE_BEGIN,
    SIGNATURE_END,
    chain_lines,
    check_chain,
    check_signatures,
    input_changes,
    input_state,
    parse_trail,
    replay,
    report_digest,
    signature_record,
)
from cikflow.cli import main
from cikflow.exceptions import AuditError
from cikflow.io.audit import append_lines, read_lines
from cikflow.report.signatures import signature_block, with_signature_block
from cikflow.steps.audit import audit_run, sign_results
from cikflow.verify import verify_audit

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _records() -> list[dict]:
    base = {"time": "2026-01-02T03:04:05Z", "by": "ann"}
    return [
        {**base, "what": "baseline", "item": "template", "path": "t.yaml", "old": None, "new": "a"},
        {**base, "what": "baseline", "item": "fcs:S1", "path": "s1.fcs", "old": None, "new": "b"},
        {
            **base,
            "what": "input_changed",
            "item": "template",
            "path": "t.yaml",
            "old": "a",
            "new": "c",
        },
    ]


def test_chain_of_three_records_computed_by_hand():
    lines = chain_lines(_records(), last_line=None)
    docs = [json.loads(line) for line in lines]
    assert docs[0]["prev"] == "0" * 64 == GENESIS
    assert docs[1]["prev"] == hashlib.sha256(lines[0].encode("utf-8")).hexdigest()
    assert docs[2]["prev"] == hashlib.sha256(lines[1].encode("utf-8")).hexdigest()
    assert list(docs[0])[:3] == ["time", "by", "what"]
    assert list(docs[0])[-2:] == ["reason", "prev"]
    assert docs[0]["reason"] == ""
    assert check_chain(lines) is None
    # appending continues the chain from the last line
    more = chain_lines(_records()[:1], last_line=lines[-1])
    assert json.loads(more[0])["prev"] == _sha(lines[-1])
    assert check_chain(lines + more) is None


def test_tampered_line_breaks_the_chain_at_the_next_record():
    lines = chain_lines(_records(), last_line=None)
    lines[1] = lines[1].replace('"new": "b"', '"new": "x"')
    broken = check_chain(lines)
    assert broken is not None
    assert (broken.line, broken.time, broken.what) == (3, "2026-01-02T03:04:05Z", "input_changed")
    assert "line 2 was edited" in str(broken)


def test_broken_prev_names_its_record():
    lines = chain_lines(_records(), last_line=None)
    doc = json.loads(lines[1])
    doc["prev"] = "f" * 64
    lines[1] = json.dumps(doc)
    broken = check_chain(lines)
    assert broken is not None
    assert broken.line == 2
    assert broken.what == "baseline"
    first = chain_lines(_records()[:1], last_line="not the genesis")
    assert check_chain(first).line == 1


def test_unparseable_line_and_unknown_kind_are_named():
    lines = chain_lines(_records(), last_line=None)
    assert check_chain([*lines[:1], "{not json", *lines[2:]]).problem == "not a JSON record"
    with pytest.raises(AuditError, match="line 2 is not a JSON record"):
        parse_trail([lines[0], "[1, 2]"])
    with pytest.raises(AuditError, match="'edited' is not one of"):
        chain_lines([{**_records()[0], "what": "edited"}], last_line=None)


def test_replay_and_changes():
    state = replay(_records())
    assert state == {
        "template": {"path": "t.yaml", "sha256": "c"},
        "fcs:S1": {"path": "s1.fcs", "sha256": "b"},
    }
    assert input_changes(state, state) == []
    new = {
        "template": {"path": "t.yaml", "sha256": "d"},
        "fcs:S2": {"path": "s2.fcs", "sha256": "e"},
    }
    changes = {c["item"]: (c["what"], c["old"], c["new"]) for c in input_changes(state, new)}
    assert changes == {
        "fcs:S1": ("input_removed", "b", None),
        "fcs:S2": ("input_added", None, "e"),
        "template": ("input_changed", "c", "d"),
    }
    removed = replay([*_records(), {"what": "input_removed", "item": "fcs:S1"}])
    assert set(removed) == {"template"}
    first = input_changes({}, new, baseline=True)
    assert [c["what"] for c in first] == ["baseline", "baseline"]


def test_input_state_leaves_out_tables_a_step_made():
    summary = {
        "inputs": {"template": {"path": "t.yaml", "sha256": "a"}},
        "fcs_inputs": {"S1": {"fcs": "s1.fcs", "sha256": None}},
    }
    release = {
        "inputs": {
            "release_spec": {"path": "spec.yaml", "sha256": "s"},
            "harvest_B1": {"path": "results/batch/B1/harvest.tsv", "sha256": "h"},
        }
    }
    assert input_state(summary, release_provenance=release) == {
        "template": {"path": "t.yaml", "sha256": "a"},
        "fcs:S1": {"path": "s1.fcs", "sha256": None},
        "release_spec": {"path": "spec.yaml", "sha256": "s"},
    }


def test_report_digest_ignores_the_signature_block():
    block = signature_block([], as_of="2026-01-02T03:04:05Z")
    html = f"<p>report</p>{block}<p>end</p>"
    assert SIGNATURE_BEGIN in block
    assert SIGNATURE_END in block
    signed = with_signature_block(html, f"{SIGNATURE_BEGIN}<b>Ann</b>{SIGNATURE_END}")
    assert report_digest(signed) == report_digest(html)
    assert report_digest(html.replace("report", "edited")) != report_digest(html)
    with pytest.raises(AuditError, match="no signature block"):
        with_signature_block("<p>old report</p>", block)


def test_signature_meaning_and_name_are_checked():
    with pytest.raises(AuditError, match="'ok' is not one of reviewed, approved"):
        signature_record("ann", meaning="ok", time="t", release_sha256="r", report_sha256="p")
    with pytest.raises(AuditError, match="needs a name"):
        signature_record(" ", meaning="reviewed", time="t", release_sha256="r", report_sha256="p")


def test_check_signatures_names_the_changed_file_and_later_signatures():
    sig = signature_record(
        "ann", meaning="reviewed", time="t", release_sha256="r", report_sha256="p"
    )
    again = {**sig, "release_sha256": "r2"}
    checks = check_signatures([_records()[0], sig, again], release_sha256="r2", report_sha256="p")
    assert [(c.line, c.changed, c.superseded) for c in checks] == [
        (2, ("release.tsv",), True),
        (3, (), False),
    ]
    assert check_signatures([sig], release_sha256="r", report_sha256="q")[0].changed == (
        "report/index.html",
    )
    assert check_signatures([sig], release_sha256="r")[0].matches  # the report not compared


def test_append_is_one_line_per_record_and_a_torn_line_is_named(tmp_path):
    path = tmp_path / "audit.jsonl"
    assert read_lines(path) == []
    lines = chain_lines(_records(), last_line=None)
    append_lines(path, lines[:2])
    append_lines(path, lines[2:])
    assert read_lines(path) == lines
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(AuditError, match="no newline"):
        read_lines(path)


def _results(tmp_path: Path) -> Path:
    """A results folder with the summary and release sidecars, a release table, a report."""
    (tmp_path / "t.yaml").write_text("gates: []\n")
    (tmp_path / "spec.yaml").write_text("name: x\n")
    (tmp_path / "s1.fcs").write_bytes(b"FCS3.1")
    results = tmp_path / "results"
    (results / "report").mkdir(parents=True)
    summary = {
        "inputs": {"template": {"path": "t.yaml", "sha256": _sha("gates: []\n")}},
        "fcs_inputs": {"S1": {"fcs": "s1.fcs", "sha256": _sha("FCS3.1")}},
    }
    release = {"inputs": {"release_spec": {"path": "spec.yaml", "sha256": _sha("name: x\n")}}}
    (results / "summary.tsv.provenance.json").write_text(json.dumps(summary))
    (results / "release.tsv.provenance.json").write_text(json.dumps(release))
    (results / "release.tsv").write_text("batch\tverdict\nB1\tPASS\n")
    block = signature_block([], as_of="2026-01-02T03:04:05Z")
    (results / "report" / "index.html").write_text(f"<h1>Batch</h1>{block}\n")
    return results


def test_audit_run_baseline_then_nothing_then_one_change(tmp_path):
    results = _results(tmp_path)
    first = audit_run(results, by="ann", now=T0)
    assert [(r["what"], r["item"]) for r in first] == [
        ("baseline", "fcs:S1"),
        ("baseline", "release_spec"),
        ("baseline", "template"),
    ]
    before = (results / "audit.jsonl").read_bytes()
    assert audit_run(results, by="ann", now=T0) == []  # nothing changed: nothing appended
    assert (results / "audit.jsonl").read_bytes() == before
    sidecar = results / "release.tsv.provenance.json"
    doc = json.loads(sidecar.read_text())
    doc["inputs"]["release_spec"]["sha256"] = "f" * 64
    sidecar.write_text(json.dumps(doc))
    (change,) = audit_run(results, by="bob", now=T0)
    assert (change["what"], change["item"], change["new"], change["by"]) == (
        "input_changed",
        "release_spec",
        "f" * 64,
        "bob",
    )
    assert check_chain(read_lines(results / "audit.jsonl")) is None


def test_audit_run_refuses_a_broken_trail(tmp_path):
    results = _results(tmp_path)
    audit_run(results, by="ann", now=T0)
    trail = results / "audit.jsonl"
    trail.write_text(trail.read_text().replace('"by": "ann"', '"by": "eve"', 1))
    before = trail.read_bytes()
    with pytest.raises(AuditError, match="broken at line 2"):
        audit_run(results, by="ann", now=T0)
    assert trail.read_bytes() == before


def test_sign_then_verify_then_a_changed_release(tmp_path):
    results = _results(tmp_path)
    audit_run(results, by="ann", now=T0)
    record = sign_results(results, by="Ann Reviewer", meaning="reviewed", now=T0)
    assert record["batch"] == "all"
    assert record["release_sha256"] == _sha("batch\tverdict\nB1\tPASS\n")
    html = (results / "report" / "index.html").read_text()
    assert "Ann Reviewer" in html
    assert "matches release.tsv" in html
    assert "Signatures as of 2026-01-02T03:04:05Z" in html
    check = verify_audit(results)
    assert check.ok
    assert check.records == 4
    assert len(check.signatures) == 1
    (results / "release.tsv").write_text("batch\tverdict\nB1\tFAIL\n")
    check = verify_audit(results)
    assert not check.ok
    assert check.signatures[0].changed == ("release.tsv",)
    report = results / "report" / "index.html"
    report.write_text(report.read_text().replace("<h1>Batch</h1>", "<h1>Edited</h1>"))
    assert verify_audit(results).signatures[0].changed == ("release.tsv", "report/index.html")


def test_sign_errors_are_named(tmp_path):
    results = _results(tmp_path)
    with pytest.raises(AuditError, match="no batch 'B9'"):
        sign_results(results, by="ann", meaning="approved", batch="B9")
    (results / "release.tsv").unlink()
    with pytest.raises(AuditError, match="nothing to sign"):
        sign_results(results, by="ann", meaning="approved")


def test_cli_sign_and_verify(tmp_path, capsys, monkeypatch):
    results = _results(tmp_path)
    monkeypatch.chdir(tmp_path)
    audit_run(results, by="ann", now=T0)
    assert main(["sign", "results", "--by", "ann", "--meaning", "maybe"]) == 2
    assert "AuditError: signature meaning 'maybe'" in capsys.readouterr().err
    assert main(["sign", "results", "--by", "ann", "--meaning", "approved", "--batch", "B1"]) == 0
    assert main(["verify", "results"]) == 0
    assert "chain intact, 1 signatures" in capsys.readouterr().out
    trail = results / "audit.jsonl"
    lines = trail.read_text().splitlines(keepends=True)
    lines[0] = lines[0].replace('"by": "ann"', '"by": "eve"')
    trail.write_text("".join(lines))
    assert main(["verify", "results"]) == 1
    out = capsys.readouterr().out
    assert "broken at line 2 (2026-01-02T03:04:05Z, baseline)" in out
