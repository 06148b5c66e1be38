"""Acquisition QC on simulated clogs: share of anomalous events removed, and of clean ones.

    .venv/bin/python bench/qc_clog.py --seeds 10

For each culture (seed) and day, a clean tube is simulated (cikflow.simulate), QC runs on
it as it is, then on copies with one clog each (cikflow.simulate_anomaly.insert_clog: a
window of 5–15 s at a random time, every channel × signal factor, event rate × rate
factor). Every file goes through write_fcs, read_fcs and run_acquisition_qc, as in the
workflow.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from cikflow.acquisition import run_acquisition_qc
from cikflow.io import read_fcs, write_fcs
from cikflow.simulate import CHANNELS, TOP_OF_SCALE, simulate_batches
from cikflow.simulate_anomaly import insert_clog

CLOGS = [(0.6, 0.4), (0.7, 2.5), (0.8, 1.0), (1.0, 0.3), (0.85, 0.6), (0.5, 0.5), (0.9, 1.0)]
PNN = [c[0] for c in CHANNELS]
PNS = [c[1] for c in CHANNELS]


def _qc(folder: Path, events: np.ndarray, keywords: dict[str, str]) -> np.ndarray:
    path = folder / "tube.fcs"
    write_fcs(path, events, pnn=PNN, pns=PNS, keywords=keywords)
    return run_acquisition_qc(read_fcs(path)).keep


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="simulated cultures")
    parser.add_argument("--events", type=int, default=20000, help="events per tube")
    args = parser.parse_args()
    start = time.perf_counter()
    clean: list[float] = []
    caught: dict[tuple[float, float], list[float]] = {c: [] for c in CLOGS}
    collateral: dict[tuple[float, float], list[float]] = {c: [] for c in CLOGS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for seed in range(args.seeds):
            batch = simulate_batches(
                n_batches=1, days=(0, 7, 14, 21), n_events=args.events, seed=1000 + seed
            )[0]
            for tube in batch.samples:
                clean.append(1 - _qc(folder, tube.events, tube.keywords).mean())
                rng = np.random.default_rng([seed, tube.day])
                for signal, rate in CLOGS:
                    begin, duration = rng.uniform(1000, 10500), rng.uniform(500, 1500)
                    events, anomalous = insert_clog(
                        tube.events,
                        time_index=PNN.index("Time"),
                        start=begin,
                        duration=duration,
                        signal_factor=signal,
                        rate_factor=rate,
                        top=TOP_OF_SCALE - 1,
                        rng=rng,
                    )
                    removed = ~_qc(folder, events, tube.keywords)
                    caught[(signal, rate)].append((removed & anomalous).sum() / anomalous.sum())
                    collateral[(signal, rate)].append(
                        (removed & ~anomalous).sum() / (~anomalous).sum()
                    )
    print(f"clean tubes: {len(clean)}; removed: max {max(clean):.4%}, mean {np.mean(clean):.4%}")
    print("signal  rate  tubes  anomalous removed (min / mean)  clean events removed (max / mean)")
    for (signal, rate), values in caught.items():
        other = collateral[(signal, rate)]
        found = f"{min(values):>12.2%} / {np.mean(values):.2%}"
        lost = f"{max(other):>16.2%} / {np.mean(other):.2%}"
        print(f"{signal:>6}  {rate:>4}  {len(values):>5}  {found}  {lost}")
    print(f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
