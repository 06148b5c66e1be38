"""Absolute counts of the summary table and the per-batch kinetics table.

Cells/µL, total cells and fold expansion for every gate row, with the flags of
samples whose counts are not evaluable, and the interval of each
(:data:`COUNT_INTERVAL_COLUMNS`, 95 % by default):

- a single-platform count's by :func:`cikflow.intervals.cells_per_uL_interval`
  (the population's own interval, the bead count, the bead lot's and the
  pipetting CV); a dual-platform count's is the population's own relative
  interval (the external counter's imprecision is not known here);
- total cells = cells/µL × culture volume, the volume taken as exact: the same
  relative interval;
- fold expansion is a ratio of two totals
  (:func:`cikflow.intervals.ratio_interval`): the bead lot's CV cancels between
  single-platform tubes with the same beads per tube (one lot), the pipetting CV
  and the counts do not; the reference tube's own fold is exactly 1.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from cikflow.counts.formulas import (
    _missing,
    _number,
    count_cv_percent,
    dual_platform_cells_per_uL,
    fold_expansion,
    single_platform_cells_per_uL,
    total_cells_in_culture,
)
from cikflow.counts.methods import (
    DUAL_PLATFORM,
    NOT_EVALUABLE,
    SINGLE_PLATFORM,
    CountMethod,
    choose_count_method,
)
from cikflow.intervals import UNCERTAINTY_DEFAULTS, cells_per_uL_interval, ratio_interval

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "COUNTS_DEFAULTS",
    "COUNT_COLUMNS",
    "COUNT_INTERVAL_COLUMNS",
    "KINETICS_COLUMNS",
    "CountTables",
    "absolute_counts",
    "kinetics_table",
]

#: columns that :func:`absolute_counts` appends to the summary table, in order
COUNT_COLUMNS: list[str] = [
    "count_method",
    "bead_events",
    "bead_cv_percent",
    "cells_per_uL",
    "total_cells",
    "fold_expansion",
    "fold_reference_day",
    "count_reason",
    "cells_per_uL_low",
    "cells_per_uL_high",
    "total_cells_low",
    "total_cells_high",
    "fold_expansion_low",
    "fold_expansion_high",
]

#: interval columns of the counts (lower and upper bound of each count column)
COUNT_INTERVAL_COLUMNS: list[str] = [
    f"{column}_{side}"
    for column in ("cells_per_uL", "total_cells", "fold_expansion")
    for side in ("low", "high")
]

#: columns of ``results/batch/<batch>/kinetics.tsv``
KINETICS_COLUMNS: list[str] = [
    "batch",
    "day",
    "sample",
    "population",
    "events",
    "percent_of_base",
    "count_method",
    "cells_per_uL",
    "total_cells",
    "fold_expansion",
    "fold_reference_day",
    "review_required",
    "count_reason",
    *COUNT_INTERVAL_COLUMNS,
]


#: defaults of the ``counts`` section of the workflow configuration
COUNTS_DEFAULTS: dict[str, Any] = {
    "min_bead_events": 1000,
    "bead_population": "beads",
    "dual_platform_base": "viable_leukocytes",
    "viable_population": "viable_leukocytes",
    "leukocyte_population": "leukocytes",
    "harvest_day": None,
}


#: flag columns, as in ``results/flags.tsv``
_FLAG_COLUMNS = ["batch", "sample", "day", "gate", "flag", "reason"]


#: gate name of flags about a whole sample's counts
COUNTS_GATE = "counts"


class CountTables(NamedTuple):
    """Outcome of :func:`absolute_counts`.

    Attributes
    ----------
    summary : pandas.DataFrame
        The input summary with :data:`COUNT_COLUMNS` appended.
    flags : pandas.DataFrame
        Count flags (``batch, sample, day, gate, flag, reason``).
    """

    summary: pd.DataFrame
    flags: pd.DataFrame


#: summary ``method`` whose rows carry absolute counts (other methods, e.g. ``cluster``,
#: are concordance checks of the same tube and get NaN counts)
COUNTED_METHOD = "gate"


def _counted(table: pd.DataFrame) -> pd.Series:
    """Rows of ``table`` that get absolute counts: its gate rows (all rows without a method)."""
    if "method" not in table.columns:
        return pd.Series(data=True, index=table.index)
    return table["method"].astype(str).eq(COUNTED_METHOD)


def _events_by_population(rows: pd.DataFrame) -> dict[str, float]:
    return {str(p): _number(e) for p, e in zip(rows["population"], rows["events"], strict=True)}


def _sheet_lookup(sheet: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    if sheet is None or sheet.empty:
        return {}
    return {str(r["sample"]): r for r in sheet.to_dict("records")}


def _flag(row: Mapping[str, Any], gate: str, flag: str, reason: str) -> dict[str, Any]:
    return {
        "batch": row["batch"],
        "sample": row["sample"],
        "day": row["day"],
        "gate": gate,
        "flag": flag,
        "reason": reason,
    }


def absolute_counts(
    summary: pd.DataFrame,
    *,
    sheet: pd.DataFrame | None,
    bead_population: str = "beads",
    dual_platform_base: str = "viable_leukocytes",
    min_bead_events: int = 1000,
    uncertainty: Mapping[str, Any] | None = None,
) -> CountTables:
    """Absolute counts, total cells and fold expansion for every summary row, with intervals.

    Per sample the counting route is chosen by :func:`choose_count_method`;
    every gated population of the sample (``method`` ``gate``, or every row
    of a summary without a ``method`` column; not the beads) gets ``cells_per_uL``,
    ``total_cells`` (× the sheet's ``culture_volume_mL``) and
    ``fold_expansion`` against the same population's total cells on the
    batch's reference day: day 0, or the first day analysed (mean over
    replicate tubes of that day).

    Parameters
    ----------
    summary : pandas.DataFrame
        Long table (``batch, sample, day, population, events, …,
        review_required``), one row per sample and population.
    sheet : pandas.DataFrame or None
        The sample sheet (:func:`cikflow.io.samplesheet.read_sample_sheet`);
        None: no counts (every route ``not_evaluable``, no flags).
    bead_population : str
        Population of the counting beads.
    dual_platform_base : str
        Population whose concentration ``viable_cells_per_uL`` gives.
    min_bead_events : int
        A single-platform count from fewer bead events is flagged
        ``beads_low`` (CV ≈ 1/√n).
    uncertainty : mapping, optional
        The ``uncertainty`` config section (confidence, bead-lot, pipetting CV).

    Returns
    -------
    CountTables
        ``summary``: the input with :data:`COUNT_COLUMNS` appended, each count
        with its interval (module notes; ``review_required`` also set for
        flagged samples); ``flags``: one row
        per flag (``beads_low``, ``counts_not_evaluable``,
        ``culture_volume_missing``, ``fold_undefined``), with the reason.

    Examples
    --------
    >>> summary = pd.DataFrame({
    ...     "batch": "B1", "sample": ["s0", "s0", "s7", "s7"], "day": [0, 0, 7, 7],
    ...     "population": ["beads", "CIK", "beads", "CIK"],
    ...     "events": [5000, 100, 4000, 800], "review_required": False})
    >>> sheet = pd.DataFrame({"sample": ["s0", "s7"], "beads_per_tube": 50000.0,
    ...                       "sample_volume_uL": 100.0, "dilution": 1.0,
    ...                       "culture_volume_mL": [10.0, 50.0]})
    >>> out = absolute_counts(summary, sheet=sheet)
    >>> out.summary.loc[[1, 3], ["cells_per_uL", "total_cells", "fold_expansion"]]
       cells_per_uL  total_cells  fold_expansion
    1          10.0     100000.0             1.0
    3         100.0    5000000.0            50.0
    >>> out.flags.empty
    True
    """
    out = summary.copy()
    rows = out.to_dict("records")
    by_sample = _sheet_lookup(sheet)
    flags: list[dict[str, Any]] = []
    settings = {**UNCERTAINTY_DEFAULTS, **dict(uncertainty or {})}
    sample_method, columns, reasons = _count_rows(
        out,
        rows=rows,
        by_sample=by_sample,
        bead_population=bead_population,
        dual_platform_base=dual_platform_base,
        min_bead_events=min_bead_events,
        flags=flags,
    )
    for column, values in columns.items():
        out[column] = values
    flags += _culture_volume_flags(rows, sample_method=sample_method, by_sample=by_sample)
    folds, ref_days, fold_reasons = _folds(out, bead_population=bead_population, flags=flags)
    out["fold_expansion"] = folds
    out["fold_reference_day"] = ref_days
    out["count_reason"] = [
        "; ".join(r for r in (a, b) if r) for a, b in zip(reasons, fold_reasons, strict=True)
    ]
    out = _with_intervals(
        out,
        by_sample=by_sample,
        sample_method=sample_method,
        bead_population=bead_population,
        settings=settings,
    )
    flag_df = pd.DataFrame(flags, columns=_FLAG_COLUMNS)
    flagged = set(flag_df["sample"].astype(str))
    if "review_required" in out.columns and flagged:
        hit = out["sample"].astype(str).isin(flagged)
        out["review_required"] = out["review_required"].astype(bool) | hit
    return CountTables(summary=out, flags=flag_df)


def _count_rows(
    out: pd.DataFrame,
    *,
    rows: Sequence[Mapping[str, Any]],
    by_sample: Mapping[str, Mapping[str, Any]],
    bead_population: str,
    dual_platform_base: str,
    min_bead_events: int,
    flags: list[dict[str, Any]],
) -> tuple[dict[str, CountMethod], dict[str, Any], list[str]]:
    """Every sample's counting route, the count columns of every row and their reasons.

    Appends the samples' flags to ``flags``.
    """
    methods, reasons = [], []
    bead_n, bead_cv, per_uL, totals = [], [], [], []
    counted = _counted(out).tolist()
    sample_events = {
        str(s): _events_by_population(g)
        for s, g in out[_counted(out)].groupby("sample", sort=False)
    }
    sample_method: dict[str, CountMethod] = {}
    for row, is_counted in zip(rows, counted, strict=True):
        sample = str(row["sample"])
        events = sample_events.get(sample, {})
        sheet_row = by_sample.get(sample)
        beads = events.get(bead_population, math.nan)
        cv = count_cv_percent(beads).value
        if sample not in sample_method:
            sample_method[sample] = _sample_method(
                row,
                sheet_row=sheet_row,
                events=events,
                bead_population=bead_population,
                dual_platform_base=dual_platform_base,
                min_bead_events=min_bead_events,
                flags=flags,
            )
        method = sample_method[sample]
        value, total, reason = _row_count(
            row,
            is_counted=is_counted,
            method=method,
            events=events,
            sheet_row=sheet_row,
            bead_population=bead_population,
            dual_platform_base=dual_platform_base,
        )
        methods.append(method.method if is_counted else NOT_EVALUABLE)
        reasons.append(reason)
        bead_n.append(beads)
        bead_cv.append(cv)
        per_uL.append(value)
        totals.append(total)
    columns = {
        "count_method": methods,
        "bead_events": bead_n,
        "bead_cv_percent": bead_cv,
        "cells_per_uL": np.asarray(per_uL, dtype=float),
        "total_cells": np.asarray(totals, dtype=float),
    }
    return sample_method, columns, reasons


def _row_count(
    row: Mapping[str, Any],
    *,
    is_counted: bool,
    method: CountMethod,
    events: Mapping[str, float],
    sheet_row: Mapping[str, Any] | None,
    bead_population: str,
    dual_platform_base: str,
) -> tuple[float, float, str]:
    """Cells/µL, total cells and the reason of one summary row (NaN when undefined)."""
    value, reason, total = math.nan, method.reason, math.nan
    if str(row["population"]) == bead_population:
        reason = "counting beads, not cells"
    elif not is_counted:
        reason = f"absolute counts from the {COUNTED_METHOD} rows only"
    elif method.method != NOT_EVALUABLE and sheet_row is not None:
        if method.method == SINGLE_PLATFORM:
            res = single_platform_cells_per_uL(
                row["events"],
                events.get(bead_population, math.nan),
                beads_per_tube=sheet_row.get("beads_per_tube"),
                sample_volume_uL=sheet_row.get("sample_volume_uL"),
                dilution=_dilution(sheet_row),
            )
        else:
            res = dual_platform_cells_per_uL(
                row["events"],
                events.get(dual_platform_base, math.nan),
                viable_cells_per_uL=sheet_row.get("viable_cells_per_uL"),
            )
        value = res.value
        tot = total_cells_in_culture(value, culture_volume_mL=sheet_row.get("culture_volume_mL"))
        total = tot.value
        reason = "; ".join(r for r in (reason, res.reason, tot.reason) if r)
    return value, total, reason


def _with_intervals(
    table: pd.DataFrame,
    *,
    by_sample: Mapping[str, Mapping[str, Any]],
    sample_method: Mapping[str, CountMethod],
    bead_population: str,
    settings: Mapping[str, Any],
) -> pd.DataFrame:
    """The counted table with :data:`COUNT_INTERVAL_COLUMNS` appended."""
    out = table.copy()
    bounds = _count_bounds(
        out, sample_method=sample_method, bead_population=bead_population, settings=settings
    )
    for column, values in bounds.items():
        out[column] = values
    lots = [_lot(by_sample, sample=str(s), sample_method=sample_method) for s in out["sample"]]
    out["fold_expansion_low"], out["fold_expansion_high"] = _fold_bounds(
        out, lots=lots, bead_population=bead_population, settings=settings
    )
    return out


def _lot(
    by_sample: Mapping[str, Mapping[str, Any]],
    *,
    sample: str,
    sample_method: Mapping[str, CountMethod],
) -> float:
    """A single-platform sample's beads per tube (its bead lot), else NaN."""
    method = sample_method.get(sample, CountMethod(NOT_EVALUABLE, "")).method
    if method != SINGLE_PLATFORM:
        return math.nan
    return _number(by_sample.get(sample, {}).get("beads_per_tube"))


def _count_bounds(
    table: pd.DataFrame,
    *,
    sample_method: Mapping[str, CountMethod],
    bead_population: str,
    settings: Mapping[str, Any],
) -> dict[str, list[float]]:
    """Intervals of every row's cells/µL and total cells (NaN where the count is)."""
    bounds: dict[str, list[float]] = {c: [] for c in COUNT_INTERVAL_COLUMNS[:4]}
    gates = table[_counted(table)]
    beads_of = {
        str(s): _number(e)
        for s, p, e in zip(gates["sample"], gates["population"], gates["events"], strict=True)
        if str(p) == bead_population
    }
    for row in table.to_dict("records"):
        value, total = _number(row["cells_per_uL"]), _number(row["total_cells"])
        method = sample_method.get(str(row["sample"]), CountMethod(NOT_EVALUABLE, "")).method
        low, high = _per_uL_interval(
            row,
            value=value,
            method=method,
            beads=beads_of.get(str(row["sample"])),
            settings=settings,
        )
        bounds["cells_per_uL_low"].append(low)
        bounds["cells_per_uL_high"].append(high)
        # total cells = cells/µL × culture volume (exact): the same relative interval
        bounds["total_cells_low"].append(total * low / value if value > 0 else math.nan)
        bounds["total_cells_high"].append(total * high / value if value > 0 else math.nan)
    return bounds


def _per_uL_interval(
    row: Mapping[str, Any],
    *,
    value: float,
    method: str,
    beads: float | None,
    settings: Mapping[str, Any],
) -> tuple[float, float]:
    """The interval of one row's cells/µL (NaN, NaN when the count is undefined)."""
    events = _number(row["events"])
    if not math.isfinite(value) or _missing(events):
        return math.nan, math.nan
    p = _number(row.get("percent_of_base"))
    low, high = _number(row.get("percent_of_base_low")), _number(row.get("percent_of_base_high"))
    if method == DUAL_PLATFORM:
        if not (p > 0 and math.isfinite(low) and math.isfinite(high)):
            return math.nan, math.nan
        return value * low / p, value * high / p
    if _missing(p) or _missing(low) or _missing(high):
        # no interval of the fraction: the population's events as a Poisson count alone
        p = low = high = 100.0
    return cells_per_uL_interval(
        value,
        percent=(p, low, high),
        events=int(events),
        bead_events=int(_number(beads)) if beads is not None and not _missing(beads) else 0,
        settings=settings,
    )


def _fold_bounds(
    table: pd.DataFrame,
    *,
    lots: Sequence[float],
    bead_population: str,
    settings: Mapping[str, Any],
) -> tuple[list[float], list[float]]:
    """Interval of every row's fold expansion: total cells ÷ the reference day's total.

    The reference total is the mean over the reference day's tubes (its interval the
    mean of their bounds). The bead lot's CV cancels when both tubes are single-platform
    counts with the same beads per tube (one lot); the reference tube's own fold (one
    tube that day) is exactly 1.
    """
    low = [math.nan] * len(table)
    high = [math.nan] * len(table)
    positions = {idx: i for i, idx in enumerate(table.index)}
    keys = (
        ["batch", "method", "population"] if "method" in table.columns else ["batch", "population"]
    )
    lot_cv = float(settings["bead_lot_cv_percent"])
    confidence = float(settings["confidence"])
    for key, group in table.groupby(keys, sort=False):
        if str(key[-1]) == bead_population or not _counted(group).all():
            continue
        ref = group[group["day"] == group["day"].min()]
        ref_lots = {lots[positions[i]] for i in ref.index}
        reference = tuple(
            float(ref[c].mean()) for c in ("total_cells", "total_cells_low", "total_cells_high")
        )
        for idx, row in group.iterrows():
            i = positions[idx]
            fold = _number(row["fold_expansion"])
            if not math.isfinite(fold):
                continue
            if len(ref) == 1 and idx == ref.index[0]:
                low[i] = high[i] = fold
                continue
            one_lot = len(ref_lots) == 1 and math.isfinite(lots[i]) and {lots[i]} == ref_lots
            low[i], high[i] = ratio_interval(
                (row["total_cells"], row["total_cells_low"], row["total_cells_high"]),
                reference,
                shared_cv_percent=lot_cv if one_lot else 0.0,
                confidence=confidence,
            )
    return low, high


def _culture_volume_flags(
    rows: Sequence[Mapping[str, Any]],
    *,
    sample_method: Mapping[str, CountMethod],
    by_sample: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """A ``culture_volume_missing`` flag for every counted sample without a culture volume."""
    flags: list[dict[str, Any]] = []
    for sample, method in sample_method.items():
        row = next(r for r in rows if str(r["sample"]) == sample)
        sheet_row = by_sample.get(sample)
        if method.method != NOT_EVALUABLE and sheet_row is not None:
            volume = total_cells_in_culture(
                1.0, culture_volume_mL=sheet_row.get("culture_volume_mL")
            )
            if not volume.ok:
                flags.append(
                    _flag(
                        row,
                        COUNTS_GATE,
                        "culture_volume_missing",
                        f"{volume.reason}: cells/µL reported, total cells and fold undefined",
                    )
                )
    return flags


def _dilution(sheet_row: Mapping[str, Any]) -> float:
    """The sheet's dilution factor; an empty cell means 1 (undiluted)."""
    value = _number(sheet_row.get("dilution"))
    return 1.0 if _missing(value) else value


def _sample_method(
    row: Mapping[str, Any],
    *,
    sheet_row: Mapping[str, Any] | None,
    events: Mapping[str, float],
    bead_population: str,
    dual_platform_base: str,
    min_bead_events: int,
    flags: list[dict[str, Any]],
) -> CountMethod:
    """The counting route of one sample, appending its flags."""
    if sheet_row is None:
        return CountMethod(NOT_EVALUABLE, "sample not in the sample sheet")
    beads = events.get(bead_population, math.nan)
    per_tube = _number(sheet_row.get("beads_per_tube"))
    conc = _number(sheet_row.get("viable_cells_per_uL"))
    method = choose_count_method(
        beads_per_tube=per_tube,
        sample_volume_uL=_number(sheet_row.get("sample_volume_uL")),
        bead_events=beads,
        viable_cells_per_uL=conc,
        base_events=events.get(dual_platform_base, math.nan),
    )
    had_beads = not _missing(per_tube) and per_tube > 0
    if had_beads and not _missing(beads) and beads < min_bead_events:
        cv = count_cv_percent(beads)
        precision = f"count CV ≈ {cv.value:.1f} %" if cv.ok else "no count"
        used = {
            SINGLE_PLATFORM: "single-platform count reported",
            DUAL_PLATFORM: "dual-platform count used instead",
            NOT_EVALUABLE: "no count",
        }[method.method]
        flags.append(
            _flag(
                row,
                bead_population,
                "beads_low",
                f"{int(beads)} bead events < {min_bead_events} ({precision}); {used}",
            )
        )
    if method.method == NOT_EVALUABLE and (had_beads or not _missing(conc)):
        flags.append(_flag(row, COUNTS_GATE, "counts_not_evaluable", method.reason))
    return method


def _folds(
    table: pd.DataFrame, *, bead_population: str, flags: list[dict[str, Any]]
) -> tuple[list[float], list[float], list[str]]:
    """Fold expansion of every row against its batch's reference day."""
    folds = [math.nan] * len(table)
    ref_days = [math.nan] * len(table)
    reasons = [""] * len(table)
    records = table.to_dict("records")
    positions = {idx: i for i, idx in enumerate(table.index)}
    keys = (
        ["batch", "method", "population"] if "method" in table.columns else ["batch", "population"]
    )
    for key, group in table.groupby(keys, sort=False):
        population = key[-1]
        if str(population) == bead_population or not _counted(group).all():
            continue
        ref_day = group["day"].min()
        ref_total = float(group.loc[group["day"] == ref_day, "total_cells"].mean())
        for idx, total in zip(group.index, group["total_cells"], strict=True):
            i = positions[idx]
            ref_days[i] = float(ref_day)
            res = fold_expansion(total, reference_total_cells=ref_total)
            folds[i] = res.value
            if res.ok or res.flag == "missing_total":
                continue
            reasons[i] = f"fold: {res.reason} (day {int(ref_day)})"
            if math.isfinite(_number(total)):
                flags.append(
                    _flag(
                        records[i],
                        str(population),
                        "fold_undefined",
                        f"{population}: {res.reason} (day {int(ref_day)}); fold expansion "
                        "undefined",
                    )
                )
    return folds, ref_days, reasons


def kinetics_table(
    summary: pd.DataFrame, *, batch: str, bead_population: str = "beads"
) -> pd.DataFrame:
    """Per-day absolute counts and fold expansion of one batch.

    Parameters
    ----------
    summary : pandas.DataFrame
        The summary with :data:`COUNT_COLUMNS` (from :func:`absolute_counts`).
    batch : str
        The batch (patient culture).
    bead_population : str
        Population left out (counting beads are not cells).

    Returns
    -------
    pandas.DataFrame
        :data:`KINETICS_COLUMNS`, one row per sample and population (gate
        rows; cluster rows of the same tube are left out), sorted by day; days
        without an analysed sample are absent.

    Examples
    --------
    >>> s = pd.DataFrame({"batch": "B1", "sample": ["a", "b", "a"], "day": [7, 0, 7],
    ...                   "population": ["CIK", "CIK", "beads"], "events": [9, 3, 50],
    ...                   "total_cells": [9e6, 1e6, None], "fold_expansion": [9.0, 1.0, None]})
    >>> kinetics_table(s, batch="B1")[["day", "population", "total_cells", "fold_expansion"]]
       day population  total_cells  fold_expansion
    0    0        CIK    1000000.0             1.0
    1    7        CIK    9000000.0             9.0
    """
    rows = summary[
        (summary["batch"].astype(str) == str(batch))
        & (summary["population"].astype(str) != bead_population)
        & _counted(summary)
    ]
    rows = rows.sort_values(["day", "sample"], kind="stable").reset_index(drop=True)
    return rows.reindex(columns=KINETICS_COLUMNS)
