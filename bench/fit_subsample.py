"""How many events the data-driven gates need: accuracy against the truth by subsample size.

Simulates one 1,000,000-event tube per culture day (0, 7, 14, 21), gates each
with the data-driven default template (config/gating/cik_default.yaml) fitted on
subsamples of several sizes (``gating.fit_max_events``), and prints, per tube and
size, the gating time, the largest |percent_of_base − truth| (percentage points)
and the smallest per-event F1 over T, CIK, NK, CIK_CD16pos and NK_CD56bright,
and the flags raised. The last line is machine-readable: the largest error and
the smallest F1 over every tube, per size.

Usage: python bench/fit_subsample.py [--events 1000000] [--sizes 20000 50000 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cikflow.evaluate import f1_score
from cikflow.gating import gate_fcs
from cikflow.io import read_fcs, read_template
from cikflow.io.simulated import write_simulated
from cikflow.simulate import simulate_batches

REPO = Path(__file__).resolve().parents[1]
ALIASES = {"Viability": ["7-AAD"]}
POPULATIONS = ("T", "CIK", "NK", "CIK_CD16pos", "NK_CD56bright")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 50_000, 100_000])
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    template = read_template(REPO / "config" / "gating" / "cik_default.yaml")
    worst = {size: (0.0, 1.0) for size in args.sizes}
    print(f"{'tube':<10}{'fit events':>11}{'time s':>9}{'max |err| pp':>14}{'min F1':>9}  flags")
    with tempfile.TemporaryDirectory() as tmp:
        batches = simulate_batches(
            n_batches=1, days=(0, 7, 14, 21), n_events=args.events, seed=args.seed
        )
        write_simulated(batches, tmp)
        warm = read_fcs(Path(tmp) / f"{batches[0].samples[0].sample}.fcs")
        gate_fcs(warm, template, aliases=ALIASES)  # warm-up: imports, caches
        for tube in batches[0].samples:
            fcs = read_fcs(Path(tmp) / f"{tube.sample}.fcs")
            truth = {r["population"]: r["percent_of_base"] for r in tube.truth}
            for size in args.sizes:
                start = time.perf_counter()
                outcome = gate_fcs(fcs, template, aliases=ALIASES, fit_max_events=size)
                seconds = time.perf_counter() - start
                gates = outcome.gates.set_index("gate")
                errors, f1s = [], []
                for pop in POPULATIONS:
                    gate = template.populations[pop]
                    errors.append(abs(gates.loc[gate, "percent_of_base"] - truth[pop]))
                    f1s.append(f1_score(outcome.membership[gate], tube.members(pop)))
                flags = ",".join(sorted({f["flag"] for f in outcome.flags})) or "-"
                print(
                    f"{tube.sample:<10}{size:>11,}{seconds:>9.3f}"
                    f"{max(errors):>14.3f}{min(f1s):>9.4f}  {flags}"
                )
                err, f1 = worst[size]
                worst[size] = (max(err, max(errors)), min(f1, min(f1s)))
    print(" ".join(f"n{size}:max_err={e:.3f},min_f1={f:.4f}" for size, (e, f) in worst.items()))


if __name__ == "__main__":
    main()
