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

from cikflow.counts.formulas import (
    CountResult,
    cells_per_kg,
    count_cv_percent,
    dual_platform_cells_per_uL,
    fold_expansion,
    infused_cells,
    single_platform_cells_per_uL,
    total_cells_in_culture,
    viability_percent,
)
from cikflow.counts.harvest import (
    BATCH_METRICS,
    HARVEST_COLUMNS,
    POPULATION_METRICS,
    harvest_metrics,
    metric_names,
)
from cikflow.counts.methods import (
    DUAL_PLATFORM,
    NOT_EVALUABLE,
    SINGLE_PLATFORM,
    CountMethod,
    choose_count_method,
)
from cikflow.counts.tables import (
    COUNT_COLUMNS,
    COUNT_INTERVAL_COLUMNS,
    COUNTS_DEFAULTS,
    KINETICS_COLUMNS,
    CountTables,
    absolute_counts,
    kinetics_table,
)

__all__ = [
    "BATCH_METRICS",
    "COUNTS_DEFAULTS",
    "COUNT_COLUMNS",
    "COUNT_INTERVAL_COLUMNS",
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
