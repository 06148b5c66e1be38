"""The count formulas: one quantity each, a value or NaN with its reason.

Every function returns a :class:`CountResult`; no edge case raises (see
:mod:`cikflow.counts` for the formulas).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

if TYPE_CHECKING:
    pass

__all__ = [
    "CountResult",
    "cells_per_kg",
    "count_cv_percent",
    "dual_platform_cells_per_uL",
    "fold_expansion",
    "infused_cells",
    "single_platform_cells_per_uL",
    "total_cells_in_culture",
    "viability_percent",
]

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


def _first_missing(*results: CountResult) -> CountResult:
    """The first undefined result (its reason explains the rest), else the last one."""
    return next((r for r in results if not r.ok), results[-1])
