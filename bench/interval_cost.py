"""Cost of the intervals on a 1M-event file, against gating it.

Simulates one 1,000,000-event day-14 tube (``realistic``), gates it with the default
template, then times, in the same run, the gating (the baseline) and
:func:`cikflow.uncertainty.population_intervals` on its outcome (counting and the
placement bands of every fitted divider), best of ``--repeat`` runs each. Prints
both times and the ratio; the last line is machine-readable:
``intervals_s=<…> gating_s=<…> ratio=<…>``. The target is ≤ 1 s for the intervals.

Usage: python bench/interval_cost.py [--events 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from run import best  # bench/run.py: least wall time of repeated calls, and the last result

from cikflow.gating import gate_fcs
from cikflow.io import read_fcs, read_template
from cikflow.io.simulated import write_simulated
from cikflow.simulate import simulate_batches
from cikflow.uncertainty import population_intervals

REPO = Path(__file__).resolve().parents[1]
ALIASES = {"Viability": ["7-AAD"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    template = read_template(REPO / "config" / "gating" / "cik_default.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        write_simulated(
            simulate_batches(
                n_batches=1, days=(14,), n_events=args.events, seed=3, preset="realistic"
            ),
            tmp,
        )
        fcs = read_fcs(Path(tmp) / "B01_d14.fcs")
    gate_fcs(fcs, template, aliases=ALIASES)  # warm-up: imports, caches
    t_gate, outcome = best(lambda: gate_fcs(fcs, template, aliases=ALIASES), args.repeat)
    t_int, rows = best(lambda: population_intervals(outcome, template=template), args.repeat)
    print(f"events                     {fcs.n_events:>12,}")
    print(f"populations with intervals {len(rows):>12}")
    print(f"gating (baseline)          {t_gate:>10.3f} s")
    print(f"intervals                  {t_int:>10.3f} s")
    print(f"intervals_s={t_int:.3f} gating_s={t_gate:.3f} ratio={t_int / t_gate:.3f}")


if __name__ == "__main__":
    main()
