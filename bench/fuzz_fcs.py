"""Fuzz the FCS reader: mutated files must give a clean read or a CikflowError, fast.

    .venv/bin/python bench/fuzz_fcs.py --cases 100000 [--corpus ../shared/data/fcs-corpus]

Each case takes a seed file (small valid files of every supported layout, built by
cikflow.io._fcsbuild, plus corpus files under 100 kB when --corpus is given), applies 1–3
random mutations (HEADER offsets, TEXT keyword values, overwritten / inserted / deleted
bytes, truncation, DATA bytes, appended bytes) and calls read_fcs on the result.
Outcomes: ``read``, ``rejected`` (per CikflowError class), ``crashed`` (any other
exception: a bug) and ``hung`` (no answer within --timeout seconds: a bug). Also reported:
the slowest case and the largest peak of traced memory of a case (--memory, slower).
Exit status 1 when anything crashed or hung. Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

from cikflow.exceptions import CikflowError
from cikflow.io import read_fcs
from cikflow.io._fcsbuild import FUZZ_OPS, FUZZ_VALUES, fuzz_seeds, mutate_fcs

_SEEDS: list[bytes] = []
_FOLDER = ""


class _Hung(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hung


def _init(seeds: list[bytes], folder: str) -> None:
    global _SEEDS, _FOLDER
    _SEEDS, _FOLDER = seeds, folder
    signal.signal(signal.SIGALRM, _alarm)
    import flowkit  # noqa: F401 - its first import takes seconds; not a case's time


def _mutant(rng: np.random.Generator) -> bytes:
    raw = _SEEDS[int(rng.integers(len(_SEEDS)))]
    for _ in range(int(rng.integers(1, 4))):
        op = FUZZ_OPS[int(rng.integers(len(FUZZ_OPS)))]
        if rng.random() < 0.6:
            data = FUZZ_VALUES[int(rng.integers(len(FUZZ_VALUES)))]
        else:
            data = rng.integers(0, 256, int(rng.integers(1, 12)), dtype=np.uint8).tobytes()
        raw = mutate_fcs(
            raw, op, at=float(rng.random()), data=data, channel=int(rng.integers(1, 6))
        )
    return raw


def _case(args: tuple[int, int, float, bool]) -> tuple[str, str, float, float]:
    seed, case, timeout, memory = args
    rng = np.random.default_rng([seed, case])
    raw = _mutant(rng)
    path = Path(_FOLDER) / f"case{os.getpid()}.fcs"
    path.write_bytes(raw)
    if memory:
        import tracemalloc

        tracemalloc.start()
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        read_fcs(path)
        outcome, detail = "read", ""
    except CikflowError as exc:
        outcome, detail = "rejected", type(exc).__name__
    except _Hung:
        outcome, detail = "hung", f"case {case}"
    except Exception as exc:  # the point of fuzzing: any other exception is a bug
        outcome = "crashed"
        detail = f"case {case}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start
    peak = 0.0
    if memory:
        peak = float(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return outcome, detail or f"case {case}", seconds, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, help="folder of real FCS files to mutate too")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per case")
    parser.add_argument("--memory", action="store_true", help="trace peak memory per case")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    seeds = fuzz_seeds()
    if args.corpus:
        seeds += [
            p.read_bytes()
            for p in sorted(args.corpus.rglob("*"))
            if p.is_file() and p.suffix != ".tsv" and p.stat().st_size < 100_000
        ]
    outcomes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    bugs: list[str] = []
    slowest, slowest_case, peak = 0.0, "", 0.0
    start = time.perf_counter()
    work = ((args.seed, case, args.timeout, args.memory) for case in range(args.cases))
    with tempfile.TemporaryDirectory() as folder:
        pool = multiprocessing.Pool(args.jobs, initializer=_init, initargs=(seeds, folder))
        with pool:
            for outcome, detail, seconds, case_peak in pool.imap_unordered(
                _case, work, chunksize=64
            ):
                outcomes[outcome] += 1
                if outcome == "rejected":
                    errors[detail] += 1
                elif outcome in ("crashed", "hung"):
                    bugs.append(detail)
                if seconds > slowest:
                    slowest, slowest_case = seconds, detail.split(":")[0]
                peak = max(peak, case_peak)
    total = time.perf_counter() - start
    print(f"{args.cases} cases from {len(seeds)} seed files in {total:.0f} s ({args.jobs} jobs)")
    print(", ".join(f"{k} {outcomes.get(k, 0)}" for k in ("read", "rejected", "crashed", "hung")))
    print("rejected by: " + ", ".join(f"{k} {v}" for k, v in errors.most_common()))
    print(f"slowest case {slowest * 1000:.0f} ms ({slowest_case})", end="")
    print(f"; peak traced memory of a case {peak / 2**20:.1f} MiB" if args.memory else "")
    for bug in bugs[:5]:
        print(bug)
    return 1 if bugs else 0


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    sys.exit(main())
