"""Product metrics of a batch at harvest: the values release criteria test.

Each metric's interval (``value_low`` / ``value_high``): viability's is the Wilson
interval of viable of all CD45+ events; a population's percent of base, cells/µL,
total cells and fold expansion carry the summary's ``_low`` / ``_high`` columns (the
mean of the bounds over replicate tubes); a dose per kg (total × infused fraction ÷
weight) has the total's relative interval, weight and infused fraction taken as
exact. Other metrics have none (NaN).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from cikflow.counts.formulas import (
    CountResult,
    _first_missing,
    _fmt,
    _missing,
    _nan,
    _number,
    cells_per_kg,
    count_cv_percent,
    infused_cells,
    viability_percent,
)
from cikflow.counts.tables import _counted
from cikflow.intervals import count_interval

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "BATCH_METRICS",
    "HARVEST_COLUMNS",
    "POPULATION_METRICS",
    "harvest_metrics",
    "metric_names",
]

#: columns of ``results/batch/<batch>/harvest.tsv``
HARVEST_COLUMNS: list[str] = [
    "batch",
    "metric",
    "value",
    "unit",
    "day",
    "samples",
    "review_required",
    "reason",
    "value_low",
    "value_high",
]


def _batch_value(
    sheet_rows: Sequence[Mapping[str, Any]], column: str, *, batch: str
) -> CountResult:
    """The one value of a per-batch sheet column (NaN if empty or conflicting)."""
    values = sorted({v for r in sheet_rows if not _missing(v := _number(r.get(column)))})
    if not values:
        return _nan(f"missing_{column}", f"{column} is empty for batch {batch}")
    if len(values) > 1:
        shown = ", ".join(_fmt(v) for v in values)
        return _nan(
            f"conflicting_{column}", f"{column} differs between rows of batch {batch} ({shown})"
        )
    return CountResult(values[0])


def harvest_metrics(
    summary: pd.DataFrame,
    *,
    sheet: pd.DataFrame | None,
    batch: str,
    harvest_day: int | None = None,
    populations: Sequence[str] | None = None,
    bead_population: str = "beads",
    viable_population: str = "viable_leukocytes",
    leukocyte_population: str = "leukocytes",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Product metrics of one batch at harvest: the values release criteria test.

    The harvest day is the sheet's ``harvest_day`` for the batch, else
    ``harvest_day``, else the batch's last day in the sheet. Values are
    from the gate rows of the analysed sample(s) of that day (mean over
    replicate tubes).

    Metrics (``unit``): ``viability_percent`` (%), ``bead_events`` (events),
    ``bead_cv_percent`` (%), ``weight_kg`` (kg), and per population *P*:
    ``P_percent_of_base`` (%), ``P_cells_per_uL`` (cells/µL),
    ``P_total_cells`` (cells), ``P_fold_expansion`` (fold),
    ``P_cells_per_kg`` (cells/kg, harvested dose) and
    ``P_infused_cells_per_kg`` (cells/kg, from the sheet's
    ``infused_fraction`` or ``infused_volume_mL``).

    Parameters
    ----------
    summary : pandas.DataFrame
        The summary with :data:`COUNT_COLUMNS` (from :func:`absolute_counts`).
    sheet : pandas.DataFrame or None
        The sample sheet.
    batch : str
        The batch.
    harvest_day : int, optional
        Harvest day for batches whose sheet rows give none.
    populations : sequence of str, optional
        Populations reported; default every population of ``summary``
        except the beads.
    bead_population, viable_population, leukocyte_population : str
        Populations of the counting beads, the viable CD45+ and all CD45+
        cells (viability = viable ÷ all × 100).
    confidence : float
        Confidence level of the viability's Wilson interval.

    Returns
    -------
    pandas.DataFrame
        :data:`HARVEST_COLUMNS`; a metric that cannot be computed has value
        NaN and the ``reason``; ``value_low`` / ``value_high`` its interval
        (module notes).

    Examples
    --------
    >>> s = pd.DataFrame({"batch": "B1", "sample": ["s0", "s21"], "day": [0, 21],
    ...                   "population": "CIK", "events": [10, 900],
    ...                   "percent_of_base": [4.0, 30.0], "cells_per_uL": [10.0, 200.0],
    ...                   "total_cells": [1e5, 3.5e8], "fold_expansion": [1.0, 3500.0],
    ...                   "review_required": False})
    >>> sheet = pd.DataFrame({"sample": ["s0", "s21"], "batch": "B1", "day": [0, 21],
    ...                       "weight_kg": 70.0})
    >>> m = harvest_metrics(s, sheet=sheet, batch="B1").set_index("metric")
    >>> dose = m.loc["CIK_cells_per_kg"]
    >>> float(dose["value"]), dose["unit"], int(dose["day"])
    (5000000.0, 'cells/kg', 21)
    >>> m.loc["CIK_infused_cells_per_kg", "reason"]
    'no infused_fraction or infused_volume_mL in the sample sheet'
    """
    batch = str(batch)
    cells = summary[(summary["batch"].astype(str) == batch) & _counted(summary)]
    if populations is None:
        populations = [p for p in dict.fromkeys(summary["population"].astype(str))]
    populations = [p for p in populations if p != bead_population]
    sheet_rows = _batch_sheet_rows(sheet, batch=batch)
    day_res = _harvest_day(cells, sheet_rows=sheet_rows, batch=batch, default=harvest_day)
    weight = _batch_value(sheet_rows, "weight_kg", batch=batch)
    at, where, blank = _harvest_samples(cells, day=day_res, batch=batch)
    metrics = [("harvest_day", day_res, "day"), ("weight_kg", weight, "kg")]
    if blank.flag:
        metrics += _blank_metrics(populations, blank=blank)
        return _metric_table(metrics, batch=batch, where=where)
    metrics += _sample_metrics(
        at,
        bead_population=bead_population,
        viable_population=viable_population,
        leukocyte_population=leukocyte_population,
    )
    infusion = {
        column: _batch_value(sheet_rows, column, batch=batch)
        for column in ("infused_fraction", "infused_volume_mL")
    }
    viable = (viable_population, leukocyte_population)
    bounds = {"viability_percent": _viability_bounds(at, populations=viable, confidence=confidence)}
    for pop in populations:
        metrics += _population_metrics(at, population=pop, weight=weight, infusion=infusion)
        bounds.update(_population_bounds(at, population=pop, metrics=metrics))
    return _metric_table(metrics, batch=batch, where=where, bounds=bounds)


def _blank_metrics(
    populations: Sequence[str], *, blank: CountResult
) -> list[tuple[str, CountResult, str]]:
    """Every sample metric, each with the same missing result (no harvest sample)."""
    names = [("viability_percent", "%"), ("bead_events", "events"), ("bead_cv_percent", "%")]
    names += [
        (f"{pop}_{suffix}", unit) for pop in populations for suffix, unit in POPULATION_METRICS
    ]
    return [(metric, blank, unit) for metric, unit in names]


def _population_bounds(
    at: pd.DataFrame, *, population: str, metrics: Sequence[tuple[str, CountResult, str]]
) -> dict[str, tuple[float, float]]:
    """Metric → (low, high) of one population: from the summary's bounds, doses scaled."""
    pop = population
    bounds = {
        f"{pop}_{column}": (
            _mean(at, pop, f"{column}_low").value,
            _mean(at, pop, f"{column}_high").value,
        )
        for column in ("percent_of_base", "cells_per_uL", "total_cells", "fold_expansion")
    }
    total = _mean(at, pop, "total_cells").value
    low, high = bounds[f"{pop}_total_cells"]
    values = {metric: res.value for metric, res, _ in metrics}
    for metric in (f"{pop}_cells_per_kg", f"{pop}_infused_cells_per_kg"):
        dose = values.get(metric, math.nan)
        # dose = total × infused fraction ÷ weight: the total's relative interval
        if total > 0 and not _missing(dose):
            bounds[metric] = (dose * low / total, dose * high / total)
    return bounds


def _viability_bounds(
    at: pd.DataFrame, *, populations: tuple[str, str], confidence: float
) -> tuple[float, float]:
    """Wilson interval (%) of viability: viable of all CD45+ events (mean over tubes)."""
    viable, leuko = (_mean(at, pop, "events") for pop in populations)
    if not (viable.ok and leuko.ok) or leuko.value <= 0:
        return math.nan, math.nan
    return count_interval(viable.value, leuko.value, confidence=confidence)


def _batch_sheet_rows(sheet: pd.DataFrame | None, *, batch: str) -> list[dict[str, Any]]:
    """The sample-sheet rows of one batch (none without a sheet)."""
    if sheet is None or sheet.empty:
        return []
    return [r for r in sheet.to_dict("records") if str(r["batch"]) == batch]


def _sample_metrics(
    at: pd.DataFrame, *, bead_population: str, viable_population: str, leukocyte_population: str
) -> list[tuple[str, CountResult, str]]:
    """(metric, result, unit) of viability and bead events at harvest."""
    viable = _mean(at, viable_population, "events")
    leuko = _mean(at, leukocyte_population, "events")
    viability = viability_percent(viable.value, all_events=leuko.value)
    beads = _mean(at, bead_population, "events")
    return [
        (
            "viability_percent",
            viability if viable.ok and leuko.ok else _first_missing(viable, leuko),
            "%",
        ),
        ("bead_events", beads, "events"),
        ("bead_cv_percent", count_cv_percent(beads.value) if beads.ok else beads, "%"),
    ]


def _harvest_samples(
    cells: pd.DataFrame, *, day: CountResult, batch: str
) -> tuple[pd.DataFrame, dict[str, Any], CountResult]:
    """The gate rows of the harvest day, where they come from, and why they are missing.

    The third item has a flag when no metric can be computed (no harvest day, or no
    analysed sample that day); it is then the value of every sample metric.
    """
    if not day.ok:
        return cells.iloc[:0], {}, day
    harvest = int(day.value)
    at = cells[cells["day"] == harvest]
    where = {
        "day": harvest,
        "samples": ",".join(dict.fromkeys(at["sample"].astype(str))),
        "review": bool(at["review_required"].astype(bool).any()) if len(at) else False,
    }
    blank = (
        _nan(
            "no_harvest_sample",
            f"no analysed sample of batch {batch} on harvest day {harvest}",
        )
        if at.empty
        else CountResult(math.nan)
    )
    return at, where, blank


def _mean(at: pd.DataFrame, population: str, column: str) -> CountResult:
    """Mean of ``column`` over the population's rows (replicate tubes), or why undefined."""
    rows = at[at["population"].astype(str) == population]
    if rows.empty or column not in rows:
        return _nan("missing_population", f"population {population} not in the results")
    values = pd.to_numeric(rows[column], errors="coerce")
    if values.isna().all():
        reasons = rows.get("count_reason", pd.Series(dtype=object)).dropna().astype(str)
        why = "; ".join(dict.fromkeys(r for r in reasons if r)) or f"no {column}"
        return _nan(f"missing_{column}", why)
    return CountResult(float(values.mean()))


def _population_metrics(
    at: pd.DataFrame,
    *,
    population: str,
    weight: CountResult,
    infusion: Mapping[str, CountResult],
) -> list[tuple[str, CountResult, str]]:
    """(metric, result, unit) of one population at harvest (:data:`POPULATION_METRICS`)."""
    pop = population
    per_uL = _mean(at, pop, "cells_per_uL")
    total = _mean(at, pop, "total_cells")
    dose = cells_per_kg(total.value, weight_kg=weight.value)
    infused = infused_cells(
        total.value,
        cells_per_uL=per_uL.value,
        infused_fraction=infusion["infused_fraction"].value,
        infused_volume_mL=infusion["infused_volume_mL"].value,
    )
    conflicts = [r.reason for r in infusion.values() if r.flag.startswith("conflicting")]
    if conflicts:
        infused = _nan("conflicting_infusion", "; ".join(conflicts))
    elif infused.ok:
        infused = _first_missing(weight, cells_per_kg(infused.value, weight_kg=weight.value))
    elif infused.flag in ("missing_total", "missing_concentration"):
        infused = _first_missing(total, per_uL)
    return [
        (f"{pop}_percent_of_base", _mean(at, pop, "percent_of_base"), "%"),
        (f"{pop}_cells_per_uL", per_uL, "cells/µL"),
        (f"{pop}_total_cells", total, "cells"),
        (f"{pop}_fold_expansion", _mean(at, pop, "fold_expansion"), "fold"),
        (f"{pop}_cells_per_kg", _first_missing(total, weight, dose), "cells/kg"),
        (f"{pop}_infused_cells_per_kg", infused, "cells/kg"),
    ]


def _metric_table(
    metrics: Sequence[tuple[str, CountResult, str]],
    *,
    batch: str,
    where: Mapping[str, Any],
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """The harvest table (:data:`HARVEST_COLUMNS`) of (metric, result, unit) triples.

    ``bounds``: metric → (low, high) interval, where one is known.
    """
    bounds = bounds or {}
    out = [
        {
            "batch": batch,
            "metric": metric,
            "value": res.value,
            "unit": unit,
            "day": where.get("day"),
            "samples": where.get("samples", ""),
            "review_required": bool(where.get("review", False)),
            "reason": res.reason,
            "value_low": bounds.get(metric, (math.nan, math.nan))[0],
            "value_high": bounds.get(metric, (math.nan, math.nan))[1],
        }
        for metric, res, unit in metrics
    ]
    return pd.DataFrame(out, columns=HARVEST_COLUMNS)


#: per-population harvest metrics: (suffix, unit)
POPULATION_METRICS: tuple[tuple[str, str], ...] = (
    ("percent_of_base", "%"),
    ("cells_per_uL", "cells/µL"),
    ("total_cells", "cells"),
    ("fold_expansion", "fold"),
    ("cells_per_kg", "cells/kg"),
    ("infused_cells_per_kg", "cells/kg"),
)


#: batch-level harvest metrics: (name, unit)
BATCH_METRICS: tuple[tuple[str, str], ...] = (
    ("harvest_day", "day"),
    ("weight_kg", "kg"),
    ("viability_percent", "%"),
    ("bead_events", "events"),
    ("bead_cv_percent", "%"),
)


def metric_names(populations: Sequence[str], *, bead_population: str = "beads") -> list[str]:
    """Every metric :func:`harvest_metrics` computes for these populations.

    Parameters
    ----------
    populations : sequence of str
        Reported populations (the template's ``populations``).
    bead_population : str
        Population of the counting beads (no per-population metrics).

    Returns
    -------
    list of str
        Batch metrics first, then ``<population>_<metric>`` in population order.

    Examples
    --------
    >>> metric_names(["beads", "CIK"])[-2:]
    ['CIK_cells_per_kg', 'CIK_infused_cells_per_kg']
    """
    names = [name for name, _ in BATCH_METRICS]
    for pop in populations:
        if pop != bead_population:
            names += [f"{pop}_{suffix}" for suffix, _ in POPULATION_METRICS]
    return names


def _harvest_day(
    cells: pd.DataFrame,
    *,
    sheet_rows: Sequence[Mapping[str, Any]],
    batch: str,
    default: int | None,
) -> CountResult:
    """The batch's harvest day: sheet, else ``default``, else its last day."""
    from_sheet = _batch_value(sheet_rows, "harvest_day", batch=batch)
    if from_sheet.ok or from_sheet.flag.startswith("conflicting"):
        return from_sheet
    if default is not None:
        return CountResult(float(default))
    days = [_number(r.get("day")) for r in sheet_rows] or [
        _number(d) for d in cells.get("day", pd.Series(dtype=float))
    ]
    days = [d for d in days if not _missing(d)]
    if not days:
        return _nan("missing_harvest_day", f"no sample of batch {batch}")
    return CountResult(max(days))
