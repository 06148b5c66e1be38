"""Absolute counts, kinetics and harvest metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cikflow.counts import (
    COUNT_COLUMNS,
    DUAL_PLATFORM,
    KINETICS_COLUMNS,
    NOT_EVALUABLE,
    SINGLE_PLATFORM,
    absolute_counts,
    cells_per_kg,
    choose_count_method,
    count_cv_percent,
    dual_platform_cells_per_uL,
    fold_expansion,
    harvest_metrics,
    infused_cells,
    kinetics_table,
    metric_names,
    single_platform_cells_per_uL,
    total_cells_in_culture,
    viability_percent,
)

NAN = math.nan


def _check(result, value, flag):
    assert result.flag == flag
    if math.isnan(value):
        assert math.isnan(result.value)
        assert result.reason, "an undefined value carries its reason"
    else:
        assert result.value == pytest.approx(value, rel=1e-12)
        assert result.reason == ""


# --------------------------------------------------------------------------- scalar formulas


@pytest.mark.parametrize(
    ("events", "beads", "per_tube", "volume", "dilution", "value", "flag"),
    [
        # 1200 / 5000 x 50000 / 100 = 120
        (1200, 5000, 50000, 100, 1.0, 120.0, ""),
        (1200, 5000, 50000, 100, 2.0, 240.0, ""),
        # 250 / 1000 x 48500 / 50 = 0.25 x 970 = 242.5
        (250, 1000, 48500, 50, 1.0, 242.5, ""),
        (0, 1000, 48500, 50, 1.0, 0.0, ""),
        (1200, 0, 50000, 100, 1.0, NAN, "zero_bead_events"),
        (1200, NAN, 50000, 100, 1.0, NAN, "missing_events"),
        (1200, 5000, NAN, 100, 1.0, NAN, "missing_beads_per_tube"),
        (1200, 5000, 0, 100, 1.0, NAN, "missing_beads_per_tube"),
        (1200, 5000, 50000, NAN, 1.0, NAN, "missing_sample_volume"),
        (1200, 5000, 50000, 100, NAN, NAN, "missing_dilution"),
    ],
    ids=[
        "basic",
        "dilution_2",
        "other_lot",
        "zero_population",
        "zero_beads",
        "no_bead_gate",
        "no_beads_per_tube",
        "beads_per_tube_0",
        "no_sample_volume",
        "nan_dilution",
    ],
)
def test_single_platform(events, beads, per_tube, volume, dilution, value, flag):
    result = single_platform_cells_per_uL(
        events, beads, beads_per_tube=per_tube, sample_volume_uL=volume, dilution=dilution
    )
    _check(result, value, flag)


@pytest.mark.parametrize(
    ("events", "base", "conc", "value", "flag"),
    [
        (300, 6000, 2400.0, 120.0, ""),  # 2400 x 300 / 6000
        (6000, 6000, 2400.0, 2400.0, ""),
        (0, 6000, 2400.0, 0.0, ""),
        (300, 6000, NAN, NAN, "missing_concentration"),
        (300, 0, 2400.0, NAN, "zero_base_events"),
        (300, NAN, 2400.0, NAN, "missing_events"),
    ],
    ids=["basic", "base_itself", "zero_population", "nan_concentration", "zero_base", "no_base"],
)
def test_dual_platform(events, base, conc, value, flag):
    _check(dual_platform_cells_per_uL(events, base, viable_cells_per_uL=conc), value, flag)


@pytest.mark.parametrize(
    ("per_uL", "volume_mL", "value", "flag"),
    [
        (120.0, 500.0, 6.0e7, ""),  # 120 /µL x 500 mL x 1000 µL/mL
        (0.0, 500.0, 0.0, ""),
        (120.0, NAN, NAN, "missing_culture_volume"),
        (NAN, 500.0, NAN, "missing_concentration"),
    ],
    ids=["basic", "zero", "no_volume", "nan_concentration"],
)
def test_total_cells(per_uL, volume_mL, value, flag):
    _check(total_cells_in_culture(per_uL, culture_volume_mL=volume_mL), value, flag)


@pytest.mark.parametrize(
    ("total", "reference", "value", "flag"),
    [
        (6.0e8, 2.0e7, 30.0, ""),
        (2.0e7, 2.0e7, 1.0, ""),
        (0.0, 2.0e7, 0.0, ""),
        (6.0e8, 0.0, NAN, "zero_reference"),
        (0.0, 0.0, NAN, "zero_reference"),
        (6.0e8, NAN, NAN, "missing_reference"),
        (NAN, 2.0e7, NAN, "missing_total"),
    ],
    ids=["basic", "reference_day", "lost", "zero_day0", "zero_both", "no_day0", "no_total"],
)
def test_fold_expansion(total, reference, value, flag):
    _check(fold_expansion(total, reference_total_cells=reference), value, flag)


@pytest.mark.parametrize(
    ("cells", "weight", "value", "flag"),
    [
        (1.75e8, 70.0, 2.5e6, ""),
        (4.65e8, 100.0, 4.65e6, ""),
        (1.75e8, NAN, NAN, "missing_weight"),
        (1.75e8, 0.0, NAN, "missing_weight"),
        (NAN, 70.0, NAN, "missing_cells"),
    ],
    ids=["target_dose", "median_dose", "no_weight", "zero_weight", "no_cells"],
)
def test_cells_per_kg(cells, weight, value, flag):
    _check(cells_per_kg(cells, weight_kg=weight), value, flag)


@pytest.mark.parametrize(
    ("viable", "total", "value", "flag"),
    [
        (9300, 10000, 93.0, ""),
        (7000, 10000, 70.0, ""),
        (0, 0, NAN, "zero_events"),
        (NAN, 10000, NAN, "missing_events"),
    ],
    ids=["basic", "at_limit", "no_leukocytes", "no_gate"],
)
def test_viability(viable, total, value, flag):
    _check(viability_percent(viable, all_events=total), value, flag)


@pytest.mark.parametrize(
    ("events", "value", "flag"),
    [
        (10000, 1.0, ""),
        (2500, 2.0, ""),
        (1000, 100 / math.sqrt(1000), ""),  # 3.16 %
        (0, NAN, "zero_events"),
        (NAN, NAN, "missing_events"),
    ],
    ids=["10000", "2500", "1000", "zero", "missing"],
)
def test_count_cv(events, value, flag):
    _check(count_cv_percent(events), value, flag)


@pytest.mark.parametrize(
    ("kwargs", "value", "flag"),
    [
        ({"infused_fraction": 0.5}, 2.0e9, ""),
        ({"infused_fraction": 1.0}, 4.0e9, ""),
        # 2000 cells/µL x 250 mL x 1000 µL/mL
        ({"infused_volume_mL": 250.0, "cells_per_uL": 2000.0}, 5.0e8, ""),
        ({"infused_fraction": 0.5, "infused_volume_mL": 250.0}, NAN, "conflicting_infusion"),
        ({}, NAN, "missing_infusion"),
        ({"infused_volume_mL": 250.0}, NAN, "missing_concentration"),
    ],
    ids=["half", "all", "volume", "both", "neither", "volume_no_concentration"],
)
def test_infused_cells(kwargs, value, flag):
    _check(infused_cells(4.0e9, **kwargs), value, flag)


@pytest.mark.parametrize(
    ("kwargs", "method"),
    [
        ({}, SINGLE_PLATFORM),
        ({"viable_cells_per_uL": 2000.0}, SINGLE_PLATFORM),
        ({"bead_events": 0, "viable_cells_per_uL": 2000.0}, DUAL_PLATFORM),
        ({"beads_per_tube": NAN, "viable_cells_per_uL": 2000.0}, DUAL_PLATFORM),
        ({"sample_volume_uL": NAN, "viable_cells_per_uL": 2000.0}, DUAL_PLATFORM),
        ({"bead_events": 0}, NOT_EVALUABLE),
        ({"beads_per_tube": NAN}, NOT_EVALUABLE),
        ({"beads_per_tube": NAN, "viable_cells_per_uL": 2000.0, "base_events": 0}, NOT_EVALUABLE),
    ],
    ids=[
        "beads",
        "beads_preferred",
        "zero_beads_dual",
        "no_beads_dual",
        "no_volume_dual",
        "zero_beads_nothing",
        "nothing",
        "dual_empty_base",
    ],
)
def test_choose_count_method(kwargs, method):
    args = {
        "beads_per_tube": 50000,
        "sample_volume_uL": 100.0,
        "bead_events": 4000,
        "viable_cells_per_uL": NAN,
        "base_events": 9000,
        **kwargs,
    }
    chosen = choose_count_method(**args)
    assert chosen.method == method
    assert bool(chosen.reason) == (method != SINGLE_PLATFORM)


# --------------------------------------------------------------------------- tables


def _rows(batch, sample, day, events):
    return [
        {
            "batch": batch,
            "sample": sample,
            "day": day,
            "population": pop,
            "events": n,
            "percent_of_base": 100.0 * n / events["viable_lymphocytes"],
            "review_required": False,
        }
        for pop, n in events.items()
    ]


@pytest.fixture
def summary():
    """Hand-made batches.

    B1 (beads_per_tube 50,000, sample 100 µL):
      s0  day 0:  4,000 bead events -> 0.125 cells/µL per event, culture 20 mL
      s7  day 7:    800 bead events, dilution 2 -> 1.25 cells/µL per event, 40 mL
      s14 day 14: no beads; viable_cells_per_uL 3,000 over 10,000 viable leukocytes
                  -> 0.3 cells/µL per event, 100 mL
    B2: no beads, no concentration.  B3: beads added, 0 bead events.
    B4: beads, no culture volume.
    """
    rows = []
    rows += _rows(
        "B1",
        "s0",
        0,
        {
            "beads": 4000,
            "leukocytes": 20000,
            "viable_leukocytes": 16000,
            "viable_lymphocytes": 12000,
            "CIK": 80,
            "NK": 0,
        },
    )
    rows += _rows(
        "B1",
        "s7",
        7,
        {
            "beads": 800,
            "leukocytes": 10000,
            "viable_leukocytes": 9000,
            "viable_lymphocytes": 8000,
            "CIK": 400,
            "NK": 40,
        },
    )
    rows += _rows(
        "B1",
        "s14",
        14,
        {
            "beads": 0,
            "leukocytes": 12500,
            "viable_leukocytes": 10000,
            "viable_lymphocytes": 9000,
            "CIK": 2500,
            "NK": 100,
        },
    )
    base = {"beads": 3000, "leukocytes": 9000, "viable_leukocytes": 8000}
    rows += _rows("B2", "b0", 0, {**base, "viable_lymphocytes": 6000, "CIK": 60, "NK": 600})
    rows += _rows("B3", "c0", 0, {**base, "beads": 0, "viable_lymphocytes": 6000, "CIK": 60})
    rows += _rows("B4", "d0", 0, {**base, "viable_lymphocytes": 6000, "CIK": 60})
    return pd.DataFrame(rows)


@pytest.fixture
def sheet():
    return pd.DataFrame(
        [
            # sample, batch, day, beads_per_tube, sample_volume_uL, viable/µL, dilution, mL, kg
            ("s0", "B1", 0, 50000.0, 100.0, NAN, 1.0, 20.0, 70.0),
            ("s7", "B1", 7, 50000.0, 100.0, NAN, 2.0, 40.0, 70.0),
            ("s14", "B1", 14, NAN, NAN, 3000.0, 1.0, 100.0, 70.0),
            ("b0", "B2", 0, NAN, NAN, NAN, 1.0, 10.0, NAN),
            ("c0", "B3", 0, 50000.0, 100.0, NAN, 1.0, 10.0, 60.0),
            ("d0", "B4", 0, 50000.0, 100.0, NAN, 1.0, NAN, 60.0),
        ],
        columns=[
            "sample",
            "batch",
            "day",
            "beads_per_tube",
            "sample_volume_uL",
            "viable_cells_per_uL",
            "dilution",
            "culture_volume_mL",
            "weight_kg",
        ],
    )


@pytest.fixture
def counted(summary, sheet):
    return absolute_counts(summary, sheet=sheet)


def _value(table, sample, population, column):
    rows = table[(table["sample"] == sample) & (table["population"] == population)]
    assert len(rows) == 1
    return float(rows[column].iloc[0])


def test_count_columns_appended_after_existing(summary, counted):
    assert list(counted.summary.columns) == [*summary.columns, *COUNT_COLUMNS]
    assert len(counted.summary) == len(summary)


@pytest.mark.parametrize(
    ("sample", "population", "per_uL", "total", "fold"),
    [
        ("s0", "CIK", 10.0, 2.0e5, 1.0),  # 80 x 0.125; x 20 mL x 1000
        ("s0", "viable_leukocytes", 2000.0, 4.0e7, 1.0),
        ("s7", "CIK", 500.0, 2.0e7, 100.0),  # 400 x 1.25; x 40 mL; / 2e5
        ("s7", "viable_leukocytes", 11250.0, 4.5e8, 11.25),
        ("s14", "CIK", 750.0, 7.5e7, 375.0),  # 3000 x 2500 / 10000; x 100 mL
        ("s14", "viable_leukocytes", 3000.0, 3.0e8, 7.5),
        ("s14", "leukocytes", 3750.0, 3.75e8, 3.75e8 / 5.0e7),
        ("d0", "CIK", 60 * 50000 / 100 / 3000, NAN, NAN),  # no culture volume
    ],
    ids=[
        "d0_CIK",
        "d0_viable",
        "d7_CIK_diluted",
        "d7_viable",
        "d14_dual",
        "d14_base",
        "d14_all",
        "no_vol",
    ],
)
def test_counts_by_hand(counted, sample, population, per_uL, total, fold):
    table = counted.summary
    assert _value(table, sample, population, "cells_per_uL") == pytest.approx(per_uL)
    for column, expected in (("total_cells", total), ("fold_expansion", fold)):
        got = _value(table, sample, population, column)
        assert math.isnan(got) if math.isnan(expected) else got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("sample", "method", "bead_events", "cv"),
    [
        ("s0", SINGLE_PLATFORM, 4000, 100 / math.sqrt(4000)),
        ("s7", SINGLE_PLATFORM, 800, 100 / math.sqrt(800)),
        ("s14", DUAL_PLATFORM, 0, NAN),
        ("b0", NOT_EVALUABLE, 3000, 100 / math.sqrt(3000)),
        ("c0", NOT_EVALUABLE, 0, NAN),
    ],
    ids=["beads", "beads_low", "dual", "nothing", "zero_beads"],
)
def test_method_and_bead_precision(counted, sample, method, bead_events, cv):
    rows = counted.summary[counted.summary["sample"] == sample]
    assert set(rows["count_method"]) == {method}
    assert set(rows["bead_events"]) == {bead_events}
    got = rows["bead_cv_percent"].iloc[0]
    assert math.isnan(got) if math.isnan(cv) else got == pytest.approx(cv)


def test_not_evaluable_samples_have_nan_counts_and_a_reason(counted):
    for sample in ("b0", "c0"):
        rows = counted.summary[counted.summary["sample"] == sample]
        assert rows["cells_per_uL"].isna().all()
        assert rows["total_cells"].isna().all()
        assert rows["fold_expansion"].isna().all()
        cells = rows[rows["population"] != "beads"]
        assert cells["count_reason"].str.contains("viable_cells_per_uL is empty").all()
    c0 = counted.summary[
        (counted.summary["sample"] == "c0") & (counted.summary["population"] != "beads")
    ]
    assert c0["count_reason"].str.contains("0 bead events").all()
    beads = counted.summary[counted.summary["population"] == "beads"]
    assert beads["cells_per_uL"].isna().all()
    assert (beads["count_reason"] == "counting beads, not cells").all()


def test_count_flags_with_reasons(counted):
    flags = counted.flags
    got = sorted(zip(flags["sample"], flags["gate"], flags["flag"], strict=True))
    assert got == [
        ("c0", "beads", "beads_low"),
        ("c0", "counts", "counts_not_evaluable"),
        ("d0", "counts", "culture_volume_missing"),
        ("s0", "NK", "fold_undefined"),
        ("s14", "NK", "fold_undefined"),
        ("s7", "NK", "fold_undefined"),
        ("s7", "beads", "beads_low"),
    ]
    reasons = dict(
        zip(zip(flags["sample"], flags["flag"], strict=True), flags["reason"], strict=True)
    )
    assert reasons[("s7", "beads_low")].startswith("800 bead events < 1000 (count CV ≈ 3.5 %)")
    assert "0 cells on the reference day (day 0)" in reasons[("s7", "fold_undefined")]
    assert "beads: 0 bead events in the tube" in reasons[("c0", "counts_not_evaluable")]
    # B2 gave no counting information at all: no flag, counts simply absent
    assert "b0" not in set(flags["sample"])


def test_flagged_samples_require_review(counted):
    review = counted.summary.groupby("sample")["review_required"].all().to_dict()
    assert review == {
        "b0": False,
        "c0": True,
        "d0": True,
        "s0": True,
        "s14": True,
        "s7": True,
    }


def test_zero_day0_population_gives_nan_fold_not_a_crash(counted):
    nk = counted.summary[
        (counted.summary["batch"] == "B1") & (counted.summary["population"] == "NK")
    ]
    assert nk["total_cells"].tolist() == [0.0, 2.0e6, 3.0e6]
    assert nk["fold_expansion"].isna().all()
    assert nk["count_reason"].str.contains("fold: 0 cells on the reference day").all()


def test_reference_is_first_day_present(summary, sheet):
    later = summary[summary["sample"] != "s0"]
    table = absolute_counts(later, sheet=sheet).summary
    cik = table[(table["batch"] == "B1") & (table["population"] == "CIK")]
    assert cik["fold_reference_day"].tolist() == [7.0, 7.0]
    assert cik["fold_expansion"].tolist() == pytest.approx([1.0, 7.5e7 / 2.0e7])


def test_without_sheet_no_counts_and_no_flags(summary):
    out = absolute_counts(summary, sheet=None)
    assert out.summary["cells_per_uL"].isna().all()
    assert set(out.summary["count_method"]) == {NOT_EVALUABLE}
    assert out.flags.empty


def test_min_bead_events_is_configurable(summary, sheet):
    flags = absolute_counts(summary, sheet=sheet, min_bead_events=500).flags
    assert ("s7", "beads_low") not in set(zip(flags["sample"], flags["flag"], strict=True))
    flags = absolute_counts(summary, sheet=sheet, min_bead_events=5000).flags
    assert ("s0", "beads_low") in set(zip(flags["sample"], flags["flag"], strict=True))


def test_empty_summary(sheet):
    empty = pd.DataFrame(
        columns=["batch", "sample", "day", "population", "events", "review_required"]
    )
    out = absolute_counts(empty, sheet=sheet)
    assert out.summary.empty
    assert list(out.summary.columns)[-len(COUNT_COLUMNS) :] == COUNT_COLUMNS
    assert out.flags.empty


def test_kinetics_table(counted):
    table = kinetics_table(counted.summary, batch="B1")
    assert list(table.columns) == KINETICS_COLUMNS
    assert "beads" not in set(table["population"])
    assert table["day"].tolist() == sorted(table["day"])
    cik = table[table["population"] == "CIK"]
    assert cik["day"].tolist() == [0, 7, 14]
    assert cik["total_cells"].tolist() == pytest.approx([2.0e5, 2.0e7, 7.5e7])
    assert cik["fold_expansion"].tolist() == pytest.approx([1.0, 100.0, 375.0])
    assert kinetics_table(counted.summary, batch="nope").empty


# --------------------------------------------------------------------------- harvest


def _metrics(counted, sheet, **kwargs):
    table = harvest_metrics(counted.summary, sheet=sheet, batch="B1", **kwargs)
    return table.set_index("metric")


def test_harvest_default_is_last_day(counted, sheet):
    m = _metrics(counted, sheet)
    assert set(m["day"]) == {14}
    assert m.loc["harvest_day", "value"] == 14
    assert m.loc["weight_kg", "value"] == 70.0
    assert m.loc["viability_percent", "value"] == pytest.approx(80.0)  # 10000 / 12500
    assert m.loc["CIK_total_cells", "value"] == pytest.approx(7.5e7)
    assert m.loc["CIK_cells_per_kg", "value"] == pytest.approx(7.5e7 / 70)
    assert m.loc["CIK_cells_per_kg", "unit"] == "cells/kg"
    assert m.loc["CIK_fold_expansion", "value"] == pytest.approx(375.0)
    assert m.loc["CIK_percent_of_base", "value"] == pytest.approx(100 * 2500 / 9000)
    assert math.isnan(m.loc["NK_fold_expansion", "value"])
    assert "0 cells on the reference day" in m.loc["NK_fold_expansion", "reason"]
    assert m.loc["CIK_cells_per_kg", "samples"] == "s14"
    assert bool(m.loc["CIK_cells_per_kg", "review_required"]) is True
    assert "beads_total_cells" not in m.index
    assert list(m.index) == metric_names(list(dict.fromkeys(counted.summary["population"])))


@pytest.mark.parametrize(
    ("how", "day", "dose"),
    [
        ("config", 7, 2.0e7 / 70),
        ("sheet", 7, 2.0e7 / 70),
        ("sheet_over_config", 7, 2.0e7 / 70),
    ],
    ids=["config", "sheet", "sheet_over_config"],
)
def test_harvest_day_from_sheet_or_config(counted, sheet, how, day, dose):
    kwargs = {}
    if how in ("config",):
        kwargs["harvest_day"] = day
    if how.startswith("sheet"):
        sheet = sheet.assign(harvest_day=[NAN, day, NAN, NAN, NAN, NAN])
    if how == "sheet_over_config":
        kwargs["harvest_day"] = 14
    m = _metrics(counted, sheet, **kwargs)
    assert m.loc["harvest_day", "value"] == day
    assert m.loc["CIK_cells_per_kg", "value"] == pytest.approx(dose)


@pytest.mark.parametrize(
    ("columns", "value"),
    [
        ({"infused_fraction": 0.5}, 0.5 * 7.5e7 / 70),
        ({"infused_volume_mL": 10.0}, 750 * 10 * 1000 / 70),  # 750 cells/µL x 10 mL
    ],
    ids=["fraction", "volume"],
)
def test_infused_dose(counted, sheet, columns, value):
    sheet = sheet.assign(**{k: [v, NAN, NAN, NAN, NAN, NAN] for k, v in columns.items()})
    m = _metrics(counted, sheet)
    assert m.loc["CIK_infused_cells_per_kg", "value"] == pytest.approx(value)


@pytest.mark.parametrize(
    ("change", "metric", "reason"),
    [
        ({"weight_kg": [NAN] * 6}, "CIK_cells_per_kg", "weight_kg is empty for batch B1"),
        (
            {"weight_kg": [70.0, 72.0, 70.0, NAN, 60.0, 60.0]},
            "CIK_cells_per_kg",
            "weight_kg differs between rows of batch B1 (70, 72)",
        ),
        (
            {"harvest_day": [21, NAN, NAN, NAN, NAN, NAN]},
            "CIK_cells_per_kg",
            "no analysed sample of batch B1 on harvest day 21",
        ),
        (
            {"harvest_day": [7, 14, NAN, NAN, NAN, NAN]},
            "CIK_cells_per_kg",
            "harvest_day differs between rows of batch B1 (7, 14)",
        ),
        (
            {"infused_fraction": [0.5] * 6, "infused_volume_mL": [10.0] * 6},
            "CIK_infused_cells_per_kg",
            "both infused_fraction and infused_volume_mL are given",
        ),
        ({}, "CIK_infused_cells_per_kg", "no infused_fraction or infused_volume_mL"),
    ],
    ids=[
        "missing_weight",
        "conflicting_weight",
        "no_harvest_sample",
        "conflicting_harvest_day",
        "both_infusions",
        "no_infusion",
    ],
)
def test_harvest_not_evaluable_has_reason(counted, sheet, change, metric, reason):
    m = _metrics(counted, sheet.assign(**change))
    assert math.isnan(m.loc[metric, "value"])
    assert reason in m.loc[metric, "reason"]


def test_harvest_of_batch_without_counts(counted, sheet):
    m = harvest_metrics(counted.summary, sheet=sheet, batch="B2").set_index("metric")
    assert math.isnan(m.loc["CIK_cells_per_kg", "value"])
    assert "viable_cells_per_uL is empty" in m.loc["CIK_cells_per_kg", "reason"]
    # fractions need no count
    assert m.loc["CIK_percent_of_base", "value"] == pytest.approx(1.0)


def test_harvest_of_batch_with_no_analysed_sample(counted, sheet):
    extra = pd.DataFrame(
        [{"sample": "f0", "batch": "B9", "day": 5, "weight_kg": 80.0}],
    )
    m = harvest_metrics(counted.summary, sheet=pd.concat([sheet, extra]), batch="B9")
    m = m.set_index("metric")
    assert m.loc["harvest_day", "value"] == 5
    assert np.isnan(m.drop(["harvest_day", "weight_kg"])["value"].astype(float)).all()
    assert m.loc["CIK_cells_per_kg", "reason"] == "no analysed sample of batch B9 on harvest day 5"


def test_cluster_rows_get_no_counts_and_leave_gate_counts_alone(summary, sheet, counted):
    gate = summary.assign(method="gate")
    # cluster-based rows of the same tubes, with other event numbers
    cluster = gate[gate["population"].isin(["CIK", "NK"])].assign(
        method="cluster", events=lambda t: t["events"] * 2 + 1
    )
    both = pd.concat([gate, cluster], ignore_index=True)
    out = absolute_counts(both, sheet=sheet)
    rows = out.summary
    gate_rows = rows[rows["method"] == "gate"].drop(columns="method").reset_index(drop=True)
    pd.testing.assert_frame_equal(gate_rows, counted.summary, check_dtype=False)
    clustered = rows[rows["method"] == "cluster"]
    assert clustered["cells_per_uL"].isna().all()
    assert clustered["fold_expansion"].isna().all()
    assert (clustered["count_reason"] == "absolute counts from the gate rows only").all()
    assert sorted(out.flags["flag"]) == sorted(counted.flags["flag"])
    kinetics = kinetics_table(rows, batch="B1")
    assert len(kinetics) == len(kinetics_table(counted.summary, batch="B1"))
    m = harvest_metrics(rows, sheet=sheet, batch="B1").set_index("metric")
    assert m.loc["CIK_cells_per_kg", "value"] == pytest.approx(7.5e7 / 70)
