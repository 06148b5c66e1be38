"""Release specifications: reading, validation and verdicts against hand-computed values."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pandas as pd
import pytest

from cikflow.exceptions import ReleaseSpecError
from cikflow.io.release import read_release_spec
from cikflow.release import (
    FAIL,
    NOT_EVALUABLE,
    PASS,
    RELEASE_COLUMNS,
    Criterion,
    batch_verdict,
    evaluate_criterion,
    evaluate_release,
    spec_from_dict,
    spec_problems,
)

NAN = math.nan
DEFAULT_POPULATIONS = [
    "beads",
    "leukocytes",
    "viable_leukocytes",
    "viable_lymphocytes",
    "T",
    "CIK",
    "CIK_CD16pos",
    "CIK_CD16neg",
    "NK",
    "NK_CD56bright",
    "NK_CD56dim",
]


@pytest.fixture
def default_spec_path(repo_dir: Path) -> Path:
    return repo_dir / "config" / "release" / "default.yaml"


def test_default_spec(default_spec_path):
    spec = read_release_spec(default_spec_path)
    assert spec.name == "cik_default"
    assert spec.version == "1.0"
    assert spec.sha256 == hashlib.sha256(default_spec_path.read_bytes()).hexdigest()
    got = [(c.id, c.metric, c.operator, c.limit, c.unit) for c in spec.criteria]
    assert got == [
        ("viability", "viability_percent", ">=", 70.0, "%"),
        ("identity_CIK", "CIK_percent_of_base", ">=", 10.0, "%"),
        ("dose_CIK", "CIK_cells_per_kg", ">=", 2.5e6, "cells/kg"),
    ]
    assert all(c.description for c in spec.criteria)
    assert spec_problems(spec, populations=DEFAULT_POPULATIONS) == []


def _spec_text(limit="2.5e+6", operator='">="', extra=""):
    return (
        "name: test\n"
        'version: "2"\n'
        "criteria:\n"
        "  - metric: CIK_cells_per_kg\n"
        f"    operator: {operator}\n"
        f"    limit: {limit}\n"
        "    unit: cells/kg\n"
        f"{extra}"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "release specification not found"),
        ("name: [unclosed\n", "not valid YAML"),
        (_spec_text(operator='"=>"'), "criteria[0].operator: '=>' is not one of"),
        (_spec_text(limit="2.5e6"), "write 2.5e+6"),
        (_spec_text(extra="    colour: red\n"), "criteria[0]: Additional properties"),
        ("name: test\nversion: 1\ncriteria: []\n", "criteria: [] should be non-empty"),
        (
            _spec_text()
            + "  - metric: CIK_cells_per_kg\n    operator: '<'\n    limit: 1\n    unit: x\n",
            "id 'CIK_cells_per_kg' is used twice",
        ),
    ],
    ids=["missing", "not_yaml", "operator", "unsigned_exponent", "unknown_key", "empty", "dup_id"],
)
def test_invalid_spec_is_a_named_error(tmp_path, text, message):
    path = tmp_path / "spec.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ReleaseSpecError) as info:
        read_release_spec(path)
    assert message in str(info.value)


def test_unknown_metric_is_named_with_a_hint():
    spec = spec_from_dict(
        {
            "name": "x",
            "version": "1",
            "criteria": [
                {"metric": "CIK_cells_per_kilo", "operator": ">=", "limit": 1, "unit": "x"},
                {"metric": "viability_percent", "operator": ">=", "limit": 70, "unit": "%"},
            ],
        }
    )
    assert spec_problems(spec, populations=DEFAULT_POPULATIONS) == [
        "criterion 'CIK_cells_per_kilo': unknown metric 'CIK_cells_per_kilo' "
        "(did you mean 'CIK_cells_per_kg'?)"
    ]


@pytest.mark.parametrize(
    ("operator", "value", "limit", "verdict", "reason"),
    [
        (">=", 70.0, 70.0, PASS, "70 % ≥ 70 %"),
        (">=", 69.99, 70.0, FAIL, "69.99 % < 70 %"),
        (">", 70.0, 70.0, FAIL, "70 % ≤ 70 %"),
        (">", 70.5, 70.0, PASS, "70.5 % > 70 %"),
        ("<=", 5.0, 5.0, PASS, "5 % ≤ 5 %"),
        ("<", 5.0, 5.0, FAIL, "5 % ≥ 5 %"),
        ("<", 4.0, 5.0, PASS, "4 % < 5 %"),
        (">=", NAN, 70.0, NOT_EVALUABLE, "m not evaluable: why"),
    ],
    ids=["ge_equal", "ge_below", "gt_equal", "gt_above", "le_equal", "lt_equal", "lt_below", "nan"],
)
def test_evaluate_criterion(operator, value, limit, verdict, reason):
    criterion = Criterion(id="c", metric="m", operator=operator, limit=limit, unit="%")
    assert evaluate_criterion(value, criterion=criterion, reason="why") == (verdict, reason)


@pytest.mark.parametrize(
    ("verdicts", "overall"),
    [
        ([PASS, PASS, PASS], PASS),
        ([PASS, FAIL, PASS], FAIL),
        ([PASS, NOT_EVALUABLE], NOT_EVALUABLE),
        ([NOT_EVALUABLE, FAIL], FAIL),
        ([], NOT_EVALUABLE),
    ],
    ids=["all_pass", "one_fail", "one_not_evaluable", "fail_wins", "no_criteria"],
)
def test_batch_verdict(verdicts, overall):
    assert batch_verdict(verdicts) == overall


def _metrics(rows):
    return pd.DataFrame(
        [
            {
                "batch": b,
                "metric": m,
                "value": v,
                "unit": "",
                "day": 21,
                "samples": f"{b}_d21",
                "review_required": False,
                "reason": r,
            }
            for b, m, v, r in rows
        ]
    )


@pytest.fixture
def metrics():
    # weights 80 kg; CIK harvested 3.2e8 (B01: 4.0e6/kg), 8.0e7 (B03: 1.0e6/kg); B02: no weight
    return _metrics(
        [
            ("B01", "viability_percent", 91.5, ""),
            ("B01", "CIK_percent_of_base", 31.0, ""),
            ("B01", "CIK_cells_per_kg", 3.2e8 / 80, ""),
            ("B02", "viability_percent", 88.0, ""),
            ("B02", "CIK_percent_of_base", 35.0, ""),
            ("B02", "CIK_cells_per_kg", NAN, "weight_kg is empty for batch B02"),
            ("B03", "viability_percent", 84.0, ""),
            ("B03", "CIK_percent_of_base", 14.0, ""),
            ("B03", "CIK_cells_per_kg", 8.0e7 / 80, ""),
        ]
    )


def test_release_verdicts(metrics, default_spec_path):
    spec = read_release_spec(default_spec_path)
    table = evaluate_release(metrics, spec=spec, batches=["B01", "B02", "B03", "B04"])
    assert list(table.columns) == RELEASE_COLUMNS
    got = {(r["batch"], r["criterion"]): r for r in table.to_dict("records")}
    assert {b: got[(b, "dose_CIK")]["batch_verdict"] for b in ("B01", "B02", "B03", "B04")} == {
        "B01": PASS,
        "B02": NOT_EVALUABLE,
        "B03": FAIL,
        "B04": NOT_EVALUABLE,
    }
    below = got[("B03", "dose_CIK")]
    assert below["verdict"] == FAIL
    assert below["value"] == pytest.approx(1.0e6)
    assert below["limit"] == 2.5e6
    assert below["reason"] == "1e+06 cells/kg < 2.5e+06 cells/kg"
    assert got[("B03", "viability")]["verdict"] == PASS
    no_weight = got[("B02", "dose_CIK")]
    assert no_weight["verdict"] == NOT_EVALUABLE
    assert math.isnan(no_weight["value"])
    assert no_weight["reason"] == "CIK_cells_per_kg not evaluable: weight_kg is empty for batch B02"
    assert got[("B01", "dose_CIK")]["reason"] == "4e+06 cells/kg ≥ 2.5e+06 cells/kg"
    assert got[("B04", "viability")]["reason"].endswith("no metric viability_percent for batch B04")
    assert set(table["spec"]) == {"cik_default"}
    assert set(table["spec_version"]) == {"1.0"}


def test_editing_the_limit_changes_the_verdict(metrics, default_spec_path, tmp_path):
    text = default_spec_path.read_text()
    assert "limit: 2.5e+6" in text
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text(text.replace("limit: 2.5e+6", "limit: 5.0e+6"))
    laxer = tmp_path / "laxer.yaml"
    laxer.write_text(text.replace("limit: 2.5e+6", "limit: 1.0e+6"))

    def dose(path):
        table = evaluate_release(metrics, spec=read_release_spec(path))
        return table[table["criterion"] == "dose_CIK"].set_index("batch")["verdict"].to_dict()

    assert dose(default_spec_path) == {"B01": PASS, "B02": NOT_EVALUABLE, "B03": FAIL}
    assert dose(stricter) == {"B01": FAIL, "B02": NOT_EVALUABLE, "B03": FAIL}
    assert dose(laxer) == {"B01": PASS, "B02": NOT_EVALUABLE, "B03": PASS}
    assert read_release_spec(stricter).sha256 != read_release_spec(default_spec_path).sha256


def test_review_required_is_carried(metrics, default_spec_path):
    flagged = metrics.assign(review_required=metrics["batch"] == "B01")
    table = evaluate_release(flagged, spec=read_release_spec(default_spec_path))
    assert table.groupby("batch")["review_required"].all().to_dict() == {
        "B01": True,
        "B02": False,
        "B03": False,
    }
