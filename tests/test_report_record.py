"""The batch record's header and MIFlowCyt annex, built from statuses and provenance."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from cikflow.report.record import miflowcyt_annex, record_header

TEMPLATE = {"name": "cik_default", "version": "2", "path": "t.yaml", "sha256": "a" * 64}
PROVENANCE = {
    "versions": {"cikflow": "9.8.7", "flowkit": "1.3.2", "python": "3.11.7", "pandas": "2.3"},
    "config_sha256": "c" * 64,
    "inputs": {"template": {"path": "t.yaml", "sha256": "a" * 64}},
}


def _status(sample: str, **extra: object) -> dict[str, object]:
    return {
        "sample": sample,
        "batch": "B1",
        "day": 7,
        "status": "ok",
        "instrument": "Aurora",
        "acquisition_date": "01-JAN-2026",
        "fcs_version": "3.1",
        "compensation": "$SPILLOVER (2 detectors)",
        "events": 5000,
        "pns": {"FSC-A": "", "FITC-A": "CD3 FITC", "PE-A": "CD56 PE"},
        "panel": {"FSC-A": "FSC-A", "CD3": "FITC-A", "CD56": "PE-A"},
        "transforms": {"CD3": {"type": "logicle", "t": 262144, "w": 0.5}},
        "fits": [{"gate": "viable", "method": "valley", "values": "", "flags": []}],
        "provenance": {"template": TEMPLATE},
        **extra,
    }


def test_record_header_names_date_version_template_and_spec() -> None:
    spec = {"name": "spec", "version": "1.0", "path": "r.yaml", "sha256": "b" * 64}
    header = record_header(
        PROVENANCE,
        statuses=[_status("s1"), _status("s2"), {"sample": "bad", "status": "failed"}],
        generated=dt.datetime(2026, 3, 4, 5, 6, tzinfo=dt.UTC),
        release_provenance={"release_spec": spec},
    )
    assert header["analysis_date"] == "2026-03-04 05:06 UTC"
    assert header["version"] == "9.8.7"
    assert header["config_sha256"] == "c" * 64
    assert header["templates"] == [{**TEMPLATE, "samples": ["s1", "s2"]}]
    assert header["release_spec"] == spec


def test_record_header_falls_back_to_the_summary_template_when_all_failed() -> None:
    header = record_header(
        PROVENANCE,
        statuses=[{"sample": "bad", "status": "failed"}],
        generated=dt.datetime(2026, 3, 4, tzinfo=dt.UTC),
    )
    assert header["templates"] == [
        {"name": "", "version": "", "path": "t.yaml", "sha256": "a" * 64, "samples": []}
    ]
    assert header["release_spec"] is None


def test_annex_groups_samples_by_channels_and_names_reagents() -> None:
    other = _status("s3", pns={"FSC-A": "", "FITC-A": "CD3 BB515", "PE-A": "CD56 PE"})
    statuses = [_status("s1"), _status("s2"), other, {"sample": "bad", "batch": "B2"}]
    gates = pd.DataFrame(
        {
            "gate": ["cells", "viable", "CIK"],
            "gate_path": ["root/cells", "root/cells/viable", "root/cells/viable/CIK"],
            "parent": ["root", "cells", "viable"],
            "gate_type": ["range", "range", "quadrant_child"],
        }
    )
    annex = miflowcyt_annex(statuses, provenance=PROVENANCE, gates={"a" * 64: gates})
    assert [p["samples"] for p in annex["panels"]] == [["s1", "s2"], ["s3"]]
    assert annex["panels"][0]["channels"] == [
        {"pnn": "FSC-A", "pns": "", "marker": "", "transform": ""},
        {
            "pnn": "FITC-A",
            "pns": "CD3 FITC",
            "marker": "CD3",
            "transform": "logicle (t=262144, w=0.5)",
        },
        {"pnn": "PE-A", "pns": "CD56 PE", "marker": "CD56", "transform": ""},
    ]
    assert annex["panels"][1]["channels"][1]["pns"] == "CD3 BB515"
    assert annex["instruments"] == "Aurora (3)"
    assert dict(annex["overview"])["samples"] == "4 (3 analysed, 1 failed)"
    assert dict(annex["overview"])["batches"] == "B1, B2"
    assert dict(annex["data"])["compensation"] == "$SPILLOVER (2 detectors) (3)"
    assert annex["software"] == [("cikflow", "9.8.7"), ("flowkit", "1.3.2"), ("python", "3.11.7")]
    [gating] = annex["gating"]
    assert gating["sha256"] == "a" * 64
    assert [(h["gate"], h["depth"], h["type"]) for h in gating["hierarchy"]] == [
        ("cells", 0, "range"),
        ("viable", 1, "range"),
        ("CIK", 2, "quadrant_child"),
    ]
    assert gating["fits"] == [("viable", "valley")]
