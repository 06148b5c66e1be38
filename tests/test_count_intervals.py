"""Intervals of counts, totals, fold expansion, viability and dose; the dose's release decision.

Expected values are hand-computed (delta method on the log scale, z = 1.959964 for 95 %):

- day 0, CIK 100 of 5,000 bead events, 4.0 % of base (3.0–5.0): 10 cells/µL; the relative
  half-width 0.25 and z² (0.04/100 + 1/5000 + 0.02² + 0.01²) give s0² = 0.0667256,
  10 × exp(∓0.258313) = 7.72353 / 12.94744 cells/µL;
- day 7, CIK 800 of 4,000 bead events, 20 % of base (18–22): 100 cells/µL; 0.1 and
  z² (0.2/800 + 1/4000 + 0.02² + 0.01²) give s7² = 0.0138415, 88.90074 / 112.48500;
- fold day 7 = 5e6 / 1e5 = 50; one bead lot: the lot's (z × 0.02)² = 0.0015366 leaves
  both sides, 50 × exp(∓√(s7² + s0² − 2 × 0.0015366)) = 37.85056 / 66.04922; two lots:
  50 × exp(∓√(s7² + s0²)) = 37.64423 / 66.41124.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cikflow.counts import (
    COUNT_INTERVAL_COLUMNS,
    KINETICS_COLUMNS,
    absolute_counts,
    harvest_metrics,
    kinetics_table,
)
from cikflow.intervals import ratio_interval
from cikflow.release import INDETERMINATE, evaluate_release, spec_from_dict

SETTINGS = {"confidence": 0.95, "bead_lot_cv_percent": 2.0, "pipetting_cv_percent": 1.0}


def _summary(batch: str = "B1") -> pd.DataFrame:
    rows = [
        # sample, day, population, events, percent_of_base, low, high
        ("s0", 0, "beads", 5000, math.nan, math.nan, math.nan),
        ("s0", 0, "CIK", 100, 4.0, 3.0, 5.0),
        ("s0", 0, "viable_leukocytes", 9000, math.nan, math.nan, math.nan),
        ("s0", 0, "leukocytes", 10000, math.nan, math.nan, math.nan),
        ("s7", 7, "beads", 4000, math.nan, math.nan, math.nan),
        ("s7", 7, "CIK", 800, 20.0, 18.0, 22.0),
        ("s7", 7, "viable_leukocytes", 900, math.nan, math.nan, math.nan),
        ("s7", 7, "leukocytes", 1000, math.nan, math.nan, math.nan),
    ]
    cols = ["sample", "day", "population", "events", "percent_of_base"]
    cols += ["percent_of_base_low", "percent_of_base_high"]
    table = pd.DataFrame(rows, columns=cols)
    table.insert(0, "batch", batch)
    table["sample"] = batch + "_" + table["sample"]
    table["review_required"] = False
    return table


def _sheet(batch: str = "B1", *, lots=(50000.0, 50000.0), weight: float = 70.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample": [f"{batch}_s0", f"{batch}_s7"],
            "batch": batch,
            "day": [0, 7],
            "beads_per_tube": list(lots),
            "sample_volume_uL": 100.0,
            "dilution": 1.0,
            "culture_volume_mL": [10.0, 50.0],
            "weight_kg": weight,
        }
    )


def _row(table: pd.DataFrame, sample: str, population: str = "CIK") -> pd.Series:
    hit = table[(table["sample"] == sample) & (table["population"] == population)]
    return hit.iloc[0]


@pytest.fixture
def counted() -> pd.DataFrame:
    return absolute_counts(_summary(), sheet=_sheet(), uncertainty=SETTINGS).summary


def test_ratio_interval_by_hand():
    # ln(100/90) = 0.105361, ln(11/10) = 0.095310: 10 × exp(−√(0.0111+0.009084))
    assert ratio_interval((100.0, 90.0, 110.0), (10.0, 9.0, 11.0)) == pytest.approx(
        (8.675575, 11.526613), rel=1e-6
    )
    # a shared CV wider than either interval leaves the ratio exact
    assert ratio_interval((4.0, 3.9, 4.1), (2.0, 1.95, 2.05), shared_cv_percent=50) == (2.0, 2.0)
    assert all(math.isnan(v) for v in ratio_interval((1.0, 0.0, 2.0), (1.0, 1.0, 1.0)))


@pytest.mark.parametrize(
    ("sample", "column", "low", "high"),
    [
        ("B1_s0", "cells_per_uL", 7.723534, 12.947440),
        ("B1_s7", "cells_per_uL", 88.900739, 112.485004),
        # total = cells/µL × culture volume (exact): 10 mL, 50 mL
        ("B1_s0", "total_cells", 7.723534e4, 12.947440e4),
        ("B1_s7", "total_cells", 88.900739 * 5e4, 112.485004 * 5e4),
        ("B1_s0", "fold_expansion", 1.0, 1.0),
        ("B1_s7", "fold_expansion", 37.850559, 66.049223),
    ],
    ids=["per_uL-d0", "per_uL-d7", "total-d0", "total-d7", "fold-ref", "fold-d7"],
)
def test_count_intervals_by_hand(counted, sample, column, low, high):
    row = _row(counted, sample)
    assert (row[f"{column}_low"], row[f"{column}_high"]) == pytest.approx((low, high), rel=1e-6)
    assert row[f"{column}_low"] <= row[column] <= row[f"{column}_high"]


def test_bead_lot_cv_cancels_only_within_one_lot():
    two_lots = absolute_counts(
        _summary(), sheet=_sheet(lots=(50000.0, 48000.0)), uncertainty=SETTINGS
    ).summary
    row = _row(two_lots, "B1_s7")
    # 800/4000 × 48000/100 = 96 cells/µL; fold 4.8e6 / 1e5 = 48, no cancellation
    assert row["fold_expansion"] == pytest.approx(48.0)
    expected = (37.644228 * 48 / 50, 66.411244 * 48 / 50)
    assert (row["fold_expansion_low"], row["fold_expansion_high"]) == pytest.approx(
        expected, rel=1e-6
    )


def test_beads_and_uncounted_rows_have_no_interval(counted):
    beads = _row(counted, "B1_s0", "beads")
    assert all(math.isnan(beads[c]) for c in COUNT_INTERVAL_COLUMNS)


def test_kinetics_carries_the_intervals(counted):
    table = kinetics_table(counted, batch="B1")
    assert list(table.columns) == KINETICS_COLUMNS
    cik = table[table["population"] == "CIK"]
    assert cik["fold_expansion_low"].tolist() == pytest.approx([1.0, 37.850559], rel=1e-6)
    assert cik["cells_per_uL_high"].tolist() == pytest.approx([12.947440, 112.485004], rel=1e-6)


def test_harvest_intervals_dose_and_viability(counted):
    m = harvest_metrics(counted, sheet=_sheet(), batch="B1").set_index("metric")
    # dose = 5e6 / 70 kg = 71,428.6 cells/kg; its interval the total's / 70
    dose = m.loc["CIK_cells_per_kg"]
    assert dose["value"] == pytest.approx(5e6 / 70)
    assert (dose["value_low"], dose["value_high"]) == pytest.approx(
        (88.900739 * 5e4 / 70, 112.485004 * 5e4 / 70), rel=1e-6
    )
    fold = m.loc["CIK_fold_expansion"]
    assert (fold["value_low"], fold["value_high"]) == pytest.approx((37.850559, 66.049223))
    # viability 900 of 1000: Wilson centre 0.898470, half-width 0.018622
    via = m.loc["viability_percent"]
    assert via["value"] == pytest.approx(90.0)
    assert (via["value_low"], via["value_high"]) == pytest.approx((87.9848, 91.7091), abs=1e-4)


def test_infused_dose_interval_scales_with_the_total(counted):
    sheet = _sheet().assign(infused_fraction=0.5)
    m = harvest_metrics(counted, sheet=sheet, batch="B1").set_index("metric")
    infused = m.loc["CIK_infused_cells_per_kg"]
    assert infused["value"] == pytest.approx(0.5 * 5e6 / 70)
    assert (infused["value_low"], infused["value_high"]) == pytest.approx(
        (0.5 * 88.900739 * 5e4 / 70, 0.5 * 112.485004 * 5e4 / 70), rel=1e-6
    )


@pytest.mark.parametrize(
    ("weight", "verdict", "decision"),
    [
        # dose 5e6 / w against a limit of 62,500 cells/kg (interval ×0.889 – ×1.125)
        (80.0, "PASS", INDETERMINATE),  # 62,500: on the limit
        (75.0, "PASS", INDETERMINATE),  # 66,667: 6.7 % above, within the interval
        (85.0, "FAIL", INDETERMINATE),  # 58,824: 5.9 % below, within the interval
        (50.0, "PASS", "PASS"),  # 100,000: far above
        (120.0, "FAIL", "FAIL"),  # 41,667: far below
    ],
    ids=["on-limit", "just-above", "just-below", "far-above", "far-below"],
)
def test_dose_near_the_limit_is_indeterminate(weight, verdict, decision):
    batch = f"W{int(weight)}"
    sheet = _sheet(batch, weight=weight)
    summary = absolute_counts(_summary(batch), sheet=sheet, uncertainty=SETTINGS).summary
    metrics = harvest_metrics(summary, sheet=sheet, batch=batch)
    spec = spec_from_dict(
        {
            "name": "t",
            "version": "1",
            "criteria": [
                {"metric": "CIK_cells_per_kg", "operator": ">=", "limit": 62500.0, "unit": "x"}
            ],
        }
    )
    row = evaluate_release(metrics, spec=spec).iloc[0]
    assert (row["verdict"], row["decision"], row["batch_decision"]) == (
        verdict,
        decision,
        decision,
    )
    assert row["value_low"] < row["value"] < row["value_high"]
