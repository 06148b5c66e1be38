"""Absolute counts, expansion kinetics, viability and dose per kg.

The formulas (domain notes §5):

- single-platform count (cells/µL) = population events ÷ bead events ×
  beads per tube ÷ sample volume (µL) × dilution factor (bead counting tubes,
  e.g. BD Trucount);
- dual-platform count (cells/µL) = viable cells/µL measured by an external
  counter × population events ÷ events of the population that counter measures
  (viable CD45+ leukocytes by default);
- total cells = cells/µL × culture volume (mL) × 1,000 µL/mL;
- fold expansion = total cells on day *d* ÷ total cells on the reference day
  (day 0, or the first culture day present);
- dose (cells/kg) = cells ÷ patient weight (kg);
- viability (%) = viable CD45+ ÷ all CD45+ × 100;
- precision of a count from *n* Poisson events: CV ≈ 1/√n (1,000 events → 3.2 %).

Every scalar function returns a :class:`CountResult`: the value, and when it
cannot be computed NaN with a short ``flag`` (``zero_bead_events``,
``zero_reference``, ``missing_weight``, ``missing_concentration`` …) and a
``reason`` in words. No edge case raises. The table functions apply them to the
long ``summary.tsv`` table, one batch (patient culture) at a time.

Nothing here reads or writes files.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "BATCH_METRICS",
    "COUNTS_DEFAULTS",
    "COUNT_COLUMNS",
    "DUAL_PLATFORM",
    "HARVEST_COLUMNS",
    "KINETICS_COLUMNS",
    "NOT_EVALUABLE",
    "POPULATION_METRICS",
    "SINGLE_PLATFORM",
    "CountMethod",
    "CountResult",
    "CountTables",
    "absolute_counts",
    "cells_per_kg",
    "choose_count_method",
    "count_cv_percent",
    "dual_platform_cells_per_uL",
    "fold_expansion",
    "harvest_metrics",
    "infused_cells",
    "kinetics_table",
    "metric_names",
    "single_platform_cells_per_uL",
    "total_cells_in_culture",
    "viability_percent",
]

SINGLE_PLATFORM = "single_platform"
DUAL_PLATFORM = "dual_platform"
NOT_EVALUABLE = "not_evaluable"

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
UL_PER_ML = 1000.0


class CountResult(NamedTuple):
    """A computed quantity, or NaN with the reason it is undefined.

    Attributes
    ----------
    value : float
        The quantity in the unit its function names; NaN when undefined.
    flag : str
        ``""`` when defined; else a short name of the edge case
        (``zero_bead_events``, ``missing_weight`` …).
    reason : str
        ``""`` when defined; else what is missing, in words.
    """

    value: float
    flag: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the value is defined."""
        return not self.flag


class CountMethod(NamedTuple):
    """How a sample's absolute counts are obtained.

    Attributes
    ----------
    method : str
        :data:`SINGLE_PLATFORM`, :data:`DUAL_PLATFORM` or :data:`NOT_EVALUABLE`.
    reason : str
        Why the other route(s) were not taken ("" when single-platform).
    """

    method: str
    reason: str = ""


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


def _number(value: Any) -> float:
    """A float, or NaN for None, NA, text and other non-numbers."""
    if value is None or value is pd.NA:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _missing(value: float) -> bool:
    return not math.isfinite(value)


def _nan(flag: str, reason: str) -> CountResult:
    return CountResult(math.nan, flag, reason)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def single_platform_cells_per_uL(
    population_events: float,
    bead_events: float,
    *,
    beads_per_tube: float,
    sample_volume_uL: float,
    dilution: float = 1.0,
) -> CountResult:
    """Single-platform absolute count from counting beads.

    cells/µL = population events ÷ bead events × beads per tube ÷ sample
    volume (µL) × dilution factor.

    Parameters
    ----------
    population_events : float
        Events in the population's gate.
    bead_events : float
        Events in the bead gate of the same tube.
    beads_per_tube : float
        Beads added to the tube (lot-specific, e.g. 50,000).
    sample_volume_uL : float
        Culture sample stained in the tube (µL).
    dilution : float
        Dilution factor of the stained sample (1 = undiluted).

    Returns
    -------
    CountResult
        cells/µL of the culture; NaN with ``zero_bead_events``,
        ``missing_beads_per_tube``, ``missing_sample_volume``,
        ``missing_dilution`` or ``missing_events``.

    Examples
    --------
    1,200 CIK events and 5,000 bead events, 50,000 beads in 100 µL:

    >>> single_platform_cells_per_uL(1200, 5000, beads_per_tube=50000, sample_volume_uL=100)
    CountResult(value=120.0, flag='', reason='')
    >>> single_platform_cells_per_uL(1200, 5000, beads_per_tube=50000, sample_volume_uL=100,
    ...                              dilution=2).value
    240.0
    >>> single_platform_cells_per_uL(1200, 0, beads_per_tube=50000, sample_volume_uL=100)
    CountResult(value=nan, flag='zero_bead_events', reason='0 bead events in the tube')
    """
    events, beads = _number(population_events), _number(bead_events)
    per_tube, volume, factor = _number(beads_per_tube), _number(sample_volume_uL), _number(dilution)
    if _missing(per_tube) or per_tube <= 0:
        return _nan("missing_beads_per_tube", "beads_per_tube is empty or 0")
    if _missing(volume) or volume <= 0:
        return _nan("missing_sample_volume", "sample_volume_uL is empty or 0")
    if _missing(factor) or factor <= 0:
        return _nan("missing_dilution", "dilution is empty or 0")
    if _missing(beads):
        return _nan("missing_events", "no bead gate in the results")
    if beads <= 0:
        return _nan("zero_bead_events", "0 bead events in the tube")
    if _missing(events):
        return _nan("missing_events", "population events unknown")
    return CountResult(events / beads * per_tube / volume * factor)


def dual_platform_cells_per_uL(
    population_events: float,
    base_events: float,
    *,
    viable_cells_per_uL: float,
) -> CountResult:
    """Dual-platform absolute count from an external viable-cell concentration.

    cells/µL = viable cells/µL × population events ÷ base events, where the
    base is the population the external counter measures (viable CD45+
    leukocytes by default).

    Parameters
    ----------
    population_events : float
        Events in the population's gate.
    base_events : float
        Events in the base population's gate (same tube).
    viable_cells_per_uL : float
        Viable-cell concentration of the culture (cells/µL) from the external
        counter, already corrected for any dilution of the counted sample.

    Returns
    -------
    CountResult
        cells/µL of the culture; NaN with ``missing_concentration``,
        ``zero_base_events`` or ``missing_events``.

    Examples
    --------
    300 CIK events of 6,000 viable leukocytes, 2,400 viable cells/µL:

    >>> dual_platform_cells_per_uL(300, 6000, viable_cells_per_uL=2400)
    CountResult(value=120.0, flag='', reason='')
    >>> dual_platform_cells_per_uL(300, 6000, viable_cells_per_uL=float("nan"))
    CountResult(value=nan, flag='missing_concentration', reason='viable_cells_per_uL is empty')
    >>> dual_platform_cells_per_uL(0, 0, viable_cells_per_uL=2400).flag
    'zero_base_events'
    """
    events, base, conc = (
        _number(population_events),
        _number(base_events),
        _number(viable_cells_per_uL),
    )
    if _missing(conc) or conc < 0:
        return _nan("missing_concentration", "viable_cells_per_uL is empty")
    if _missing(base):
        return _nan("missing_events", "no base population in the results")
    if base <= 0:
        return _nan("zero_base_events", "0 events in the base population")
    if _missing(events):
        return _nan("missing_events", "population events unknown")
    return CountResult(conc * events / base)


def total_cells_in_culture(cells_per_uL: float, *, culture_volume_mL: float) -> CountResult:
    """Total cells in the culture: cells/µL × culture volume (mL) × 1,000 µL/mL.

    Parameters
    ----------
    cells_per_uL : float
        Concentration (cells/µL).
    culture_volume_mL : float
        Culture volume on that day (mL).

    Returns
    -------
    CountResult
        Cells; NaN with ``missing_concentration`` or ``missing_culture_volume``.

    Examples
    --------
    >>> total_cells_in_culture(120.0, culture_volume_mL=500)
    CountResult(value=60000000.0, flag='', reason='')
    >>> total_cells_in_culture(120.0, culture_volume_mL=float("nan")).flag
    'missing_culture_volume'
    """
    conc, volume = _number(cells_per_uL), _number(culture_volume_mL)
    if _missing(conc):
        return _nan("missing_concentration", "no cells/µL")
    if _missing(volume) or volume <= 0:
        return _nan("missing_culture_volume", "culture_volume_mL is empty or 0")
    return CountResult(conc * volume * UL_PER_ML)


def fold_expansion(total_cells: float, *, reference_total_cells: float) -> CountResult:
    """Fold expansion: total cells ÷ total cells on the reference day.

    Parameters
    ----------
    total_cells : float
        Cells of the population on this day.
    reference_total_cells : float
        Cells of the same population on the reference day (day 0, or the
        first day present).

    Returns
    -------
    CountResult
        Fold (dimensionless); NaN with ``zero_reference`` (no cells of the
        population on the reference day), ``missing_reference`` or
        ``missing_total``.

    Examples
    --------
    >>> fold_expansion(6.0e8, reference_total_cells=2.0e7)
    CountResult(value=30.0, flag='', reason='')
    >>> fold_expansion(6.0e8, reference_total_cells=0)
    CountResult(value=nan, flag='zero_reference', reason='0 cells on the reference day')
    """
    total, ref = _number(total_cells), _number(reference_total_cells)
    if _missing(ref):
        return _nan("missing_reference", "no total cells on the reference day")
    if ref <= 0:
        return _nan("zero_reference", "0 cells on the reference day")
    if _missing(total):
        return _nan("missing_total", "no total cells on this day")
    return CountResult(total / ref)


def cells_per_kg(cells: float, *, weight_kg: float) -> CountResult:
    """Dose: cells ÷ patient weight (kg).

    Parameters
    ----------
    cells : float
        Cells harvested or infused.
    weight_kg : float
        Patient weight (kg).

    Returns
    -------
    CountResult
        cells/kg; NaN with ``missing_weight`` or ``missing_cells``.

    Examples
    --------
    >>> cells_per_kg(1.75e8, weight_kg=70)
    CountResult(value=2500000.0, flag='', reason='')
    >>> cells_per_kg(1.75e8, weight_kg=float("nan"))
    CountResult(value=nan, flag='missing_weight', reason='weight_kg is empty')
    """
    n, weight = _number(cells), _number(weight_kg)
    if _missing(weight) or weight <= 0:
        return _nan("missing_weight", "weight_kg is empty")
    if _missing(n):
        return _nan("missing_cells", "no cell number")
    return CountResult(n / weight)


def viability_percent(viable_events: float, *, all_events: float) -> CountResult:
    """Viability (%): viable CD45+ events ÷ all CD45+ events × 100.

    Parameters
    ----------
    viable_events : float
        Events of the viable leukocyte gate.
    all_events : float
        Events of its parent, all leukocytes (CD45+).

    Returns
    -------
    CountResult
        Percent; NaN with ``zero_events`` or ``missing_events``.

    Examples
    --------
    >>> viability_percent(9300, all_events=10000)
    CountResult(value=93.0, flag='', reason='')
    >>> viability_percent(0, all_events=0).flag
    'zero_events'
    """
    viable, total = _number(viable_events), _number(all_events)
    if _missing(viable) or _missing(total):
        return _nan("missing_events", "leukocyte gates not in the results")
    if total <= 0:
        return _nan("zero_events", "0 leukocyte events")
    return CountResult(100.0 * viable / total)


def count_cv_percent(events: float) -> CountResult:
    """Coefficient of variation (%) of a Poisson count of ``events``: 100 ÷ √n.

    Parameters
    ----------
    events : float
        Events counted (e.g. bead events).

    Returns
    -------
    CountResult
        CV in percent; NaN with ``zero_events`` or ``missing_events``.

    Examples
    --------
    >>> round(count_cv_percent(1000).value, 2)
    3.16
    >>> count_cv_percent(2500)
    CountResult(value=2.0, flag='', reason='')
    >>> count_cv_percent(0).flag
    'zero_events'
    """
    n = _number(events)
    if _missing(n):
        return _nan("missing_events", "no event count")
    if n <= 0:
        return _nan("zero_events", "0 events")
    return CountResult(100.0 / math.sqrt(n))


def infused_cells(
    harvest_total_cells: float,
    *,
    cells_per_uL: float = math.nan,
    infused_fraction: float = math.nan,
    infused_volume_mL: float = math.nan,
) -> CountResult:
    """Cells infused: a fraction of the harvest, or a volume of harvest culture.

    Parameters
    ----------
    harvest_total_cells : float
        Cells of the population in the culture at harvest.
    cells_per_uL : float
        The population's concentration at harvest (cells/µL); used with
        ``infused_volume_mL``.
    infused_fraction : float
        Fraction (0–1] of the harvested cells infused.
    infused_volume_mL : float
        Volume of harvest culture infused (mL).

    Returns
    -------
    CountResult
        Cells infused; NaN with ``missing_infusion`` (neither given),
        ``conflicting_infusion`` (both given) or the flag of the missing input.

    Examples
    --------
    >>> infused_cells(4.0e9, infused_fraction=0.5)
    CountResult(value=2000000000.0, flag='', reason='')
    >>> infused_cells(4.0e9, cells_per_uL=2000, infused_volume_mL=250)
    CountResult(value=500000000.0, flag='', reason='')
    >>> infused_cells(4.0e9).flag
    'missing_infusion'
    """
    total, conc = _number(harvest_total_cells), _number(cells_per_uL)
    fraction, volume = _number(infused_fraction), _number(infused_volume_mL)
    has_fraction, has_volume = not _missing(fraction), not _missing(volume)
    if has_fraction and has_volume:
        return _nan("conflicting_infusion", "both infused_fraction and infused_volume_mL are given")
    if has_fraction:
        if _missing(total):
            return _nan("missing_total", "no total cells at harvest")
        return CountResult(total * fraction)
    if has_volume:
        if _missing(conc):
            return _nan("missing_concentration", "no cells/µL at harvest")
        return CountResult(conc * volume * UL_PER_ML)
    return _nan("missing_infusion", "no infused_fraction or infused_volume_mL in the sample sheet")


def choose_count_method(
    *,
    beads_per_tube: float,
    sample_volume_uL: float,
    bead_events: float,
    viable_cells_per_uL: float,
    base_events: float,
) -> CountMethod:
    """Choose a sample's counting route.

    Beads (single-platform) when the tube had beads (``beads_per_tube`` > 0),
    its sample volume is known and bead events > 0; else dual-platform when
    the sheet gives ``viable_cells_per_uL`` and the base population has
    events; else not evaluable.

    Parameters
    ----------
    beads_per_tube, sample_volume_uL : float
        From the sample sheet (NaN when empty).
    bead_events : float
        Events of the bead gate (NaN when the template has none).
    viable_cells_per_uL : float
        From the sample sheet (NaN when empty).
    base_events : float
        Events of the dual-platform base population.

    Returns
    -------
    CountMethod
        The route and, unless single-platform, why the beads were not used.

    Examples
    --------
    >>> choose_count_method(beads_per_tube=50000, sample_volume_uL=100, bead_events=4000,
    ...                     viable_cells_per_uL=float("nan"), base_events=9000)
    CountMethod(method='single_platform', reason='')
    >>> choose_count_method(beads_per_tube=50000, sample_volume_uL=100, bead_events=0,
    ...                     viable_cells_per_uL=2000, base_events=9000)
    CountMethod(method='dual_platform', reason='beads: 0 bead events in the tube')
    >>> choose_count_method(beads_per_tube=float("nan"), sample_volume_uL=100, bead_events=0,
    ...                     viable_cells_per_uL=float("nan"), base_events=9000).method
    'not_evaluable'
    """
    beads = single_platform_cells_per_uL(
        1.0, bead_events, beads_per_tube=beads_per_tube, sample_volume_uL=sample_volume_uL
    )
    if beads.ok:
        return CountMethod(SINGLE_PLATFORM)
    dual = dual_platform_cells_per_uL(1.0, base_events, viable_cells_per_uL=viable_cells_per_uL)
    if dual.ok:
        return CountMethod(DUAL_PLATFORM, f"beads: {beads.reason}")
    return CountMethod(NOT_EVALUABLE, f"beads: {beads.reason}; dual-platform: {dual.reason}")


# ---------------------------------------------------------------------------------------
# tables


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
) -> CountTables:
    """Absolute counts, total cells and fold expansion for every summary row.

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

    Returns
    -------
    CountTables
        ``summary``: the input with :data:`COUNT_COLUMNS` appended
        (``review_required`` also set for flagged samples); ``flags``: one row
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
        value, reason, total = math.nan, method.reason, math.nan
        if str(row["population"]) == bead_population:
            reason = "counting beads, not cells"
        elif not is_counted:
            reason = f"absolute counts from the {COUNTED_METHOD} rows only"
        elif method.method != NOT_EVALUABLE and sheet_row is not None:
            if method.method == SINGLE_PLATFORM:
                res = single_platform_cells_per_uL(
                    row["events"],
                    beads,
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
            tot = total_cells_in_culture(
                value, culture_volume_mL=sheet_row.get("culture_volume_mL")
            )
            total = tot.value
            reason = "; ".join(r for r in (reason, res.reason, tot.reason) if r)
        methods.append(method.method if is_counted else NOT_EVALUABLE)
        reasons.append(reason)
        bead_n.append(beads)
        bead_cv.append(cv)
        per_uL.append(value)
        totals.append(total)
    out["count_method"] = methods
    out["bead_events"] = bead_n
    out["bead_cv_percent"] = bead_cv
    out["cells_per_uL"] = np.asarray(per_uL, dtype=float)
    out["total_cells"] = np.asarray(totals, dtype=float)
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
    folds, ref_days, fold_reasons = _folds(out, bead_population=bead_population, flags=flags)
    out["fold_expansion"] = folds
    out["fold_reference_day"] = ref_days
    out["count_reason"] = [
        "; ".join(r for r in (a, b) if r) for a, b in zip(reasons, fold_reasons, strict=True)
    ]
    flag_df = pd.DataFrame(flags, columns=_FLAG_COLUMNS)
    flagged = set(flag_df["sample"].astype(str))
    if "review_required" in out.columns and flagged:
        hit = out["sample"].astype(str).isin(flagged)
        out["review_required"] = out["review_required"].astype(bool) | hit
    return CountTables(summary=out, flags=flag_df)


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

    Returns
    -------
    pandas.DataFrame
        :data:`HARVEST_COLUMNS`; a metric that cannot be computed has value
        NaN and the ``reason``.

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
    sheet_rows = (
        []
        if sheet is None or sheet.empty
        else [r for r in sheet.to_dict("records") if str(r["batch"]) == batch]
    )
    out: list[dict[str, Any]] = []

    def add(metric: str, res: CountResult, unit: str, **where: Any) -> None:
        out.append(
            {
                "batch": batch,
                "metric": metric,
                "value": res.value,
                "unit": unit,
                "day": where.get("day"),
                "samples": where.get("samples", ""),
                "review_required": bool(where.get("review", False)),
                "reason": res.reason,
            }
        )

    day_res = _harvest_day(cells, sheet_rows=sheet_rows, batch=batch, default=harvest_day)
    weight = _batch_value(sheet_rows, "weight_kg", batch=batch)
    if not day_res.ok:
        blank = day_res
        where: dict[str, Any] = {}
    else:
        day = int(day_res.value)
        at = cells[cells["day"] == day]
        where = {
            "day": day,
            "samples": ",".join(dict.fromkeys(at["sample"].astype(str))),
            "review": bool(at["review_required"].astype(bool).any()) if len(at) else False,
        }
        blank = (
            _nan(
                "no_harvest_sample",
                f"no analysed sample of batch {batch} on harvest day {day}",
            )
            if at.empty
            else CountResult(math.nan)
        )
    add("harvest_day", day_res, "day", **where)
    add("weight_kg", weight, "kg", **where)
    if blank.flag:
        for metric, unit in (
            ("viability_percent", "%"),
            ("bead_events", "events"),
            ("bead_cv_percent", "%"),
        ):
            add(metric, blank, unit, **where)
        for pop in populations:
            for suffix, unit in POPULATION_METRICS:
                add(f"{pop}_{suffix}", blank, unit, **where)
        return pd.DataFrame(out, columns=HARVEST_COLUMNS)

    def mean(population: str, column: str) -> CountResult:
        rows = at[at["population"].astype(str) == population]
        if rows.empty or column not in rows:
            return _nan("missing_population", f"population {population} not in the results")
        values = pd.to_numeric(rows[column], errors="coerce")
        if values.isna().all():
            reasons = rows.get("count_reason", pd.Series(dtype=object)).dropna().astype(str)
            why = "; ".join(dict.fromkeys(r for r in reasons if r)) or f"no {column}"
            return _nan(f"missing_{column}", why)
        return CountResult(float(values.mean()))

    viable = mean(viable_population, "events")
    leuko = mean(leukocyte_population, "events")
    viability = viability_percent(viable.value, all_events=leuko.value)
    add(
        "viability_percent",
        viability if viable.ok and leuko.ok else _first_missing(viable, leuko),
        "%",
        **where,
    )
    beads = mean(bead_population, "events")
    add("bead_events", beads, "events", **where)
    add("bead_cv_percent", count_cv_percent(beads.value) if beads.ok else beads, "%", **where)
    infusion = {
        column: _batch_value(sheet_rows, column, batch=batch)
        for column in ("infused_fraction", "infused_volume_mL")
    }
    for pop in populations:
        per_uL = mean(pop, "cells_per_uL")
        total = mean(pop, "total_cells")
        add(f"{pop}_percent_of_base", mean(pop, "percent_of_base"), "%", **where)
        add(f"{pop}_cells_per_uL", per_uL, "cells/µL", **where)
        add(f"{pop}_total_cells", total, "cells", **where)
        add(f"{pop}_fold_expansion", mean(pop, "fold_expansion"), "fold", **where)
        dose = cells_per_kg(total.value, weight_kg=weight.value)
        add(f"{pop}_cells_per_kg", _first_missing(total, weight, dose), "cells/kg", **where)
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
        add(f"{pop}_infused_cells_per_kg", infused, "cells/kg", **where)
    return pd.DataFrame(out, columns=HARVEST_COLUMNS)


def _first_missing(*results: CountResult) -> CountResult:
    """The first undefined result (its reason explains the rest), else the last one."""
    return next((r for r in results if not r.ok), results[-1])


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
