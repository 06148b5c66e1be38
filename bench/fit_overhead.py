"""Cost of fitting the default template's data-driven gates on a 1M-event file.

Simulates one 1,000,000-event day-14 tube, then times, in the same run,
gating it with the static template (config/gating/cik_static.yaml) and with the
data-driven default (config/gating/cik_default.yaml), best of ``--repeat`` runs
each. Prints both times, the extra seconds and the ratio; the last line is
machine-readable.

Usage: python bench/fit_overhead.py [--events 1000000] [--repeat 3]
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

REPO = Path(__file__).resolve().parents[1]
ALIASES = {"Viability": ["7-AAD"]}


def best_time(fcs, template, repeat: int) -> float:
    """Least wall time (s) of ``repeat`` gatings of ``fcs`` with ``template``."""
    return best(lambda: gate_fcs(fcs, template, aliases=ALIASES), repeat)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_simulated(
            simulate_batches(n_batches=1, days=(14,), n_events=args.events, seed=3), tmp
        )
        fcs = read_fcs(Path(tmp) / "B01_d14.fcs")
        static = read_template(REPO / "config" / "gating" / "cik_static.yaml")
        fitted = read_template(REPO / "config" / "gating" / "cik_default.yaml")
        best_time(fcs, fitted, 1)  # warm-up: imports, caches
        t_static = best_time(fcs, static, args.repeat)
        t_fitted = best_time(fcs, fitted, args.repeat)
    print(f"events                     {fcs.n_events:>12,}")
    print(f"static template            {t_static:>10.3f} s")
    print(f"data-driven template       {t_fitted:>10.3f} s")
    print(f"extra for fitting          {t_fitted - t_static:>10.3f} s")
    print(f"fit_extra_s={t_fitted - t_static:.3f} ratio={t_fitted / t_static:.3f}")


if __name__ == "__main__":
    main()
