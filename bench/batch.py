"""A plate of files through the whole workflow, against the compute floor, in one run.

Simulates a plate (``--files`` tubes of ``--events`` events, ``realistic`` preset,
cultures × days 0/7/14/21, seeded) in a temporary folder and runs the workflow on it
end to end with ``snakemake --cores N`` and every default output (sample and batch
reports, PDF where a browser is installed, workspaces), recording each job's request
(:data:`cikflow.worker.RECORD_ENV`). Then, in the same run, the **floor**: the same
jobs — the same scripts with the same ``snakemake`` objects — replayed in a fresh copy
of the folder by N long-lived processes that imported cikflow once each, each job
started as soon as the jobs whose outputs it reads are done (no Snakemake, no process
per job). Both must give byte-identical ``results/summary.tsv``.

``--before`` also runs the workflow with ``CIKFLOW_WORKER=off`` (each job its own
process, as before the warm worker) on the same plate.

Prints per run total and per-file seconds; the last line is machine-readable:
``files=<n> e2e_s=<…> floor_s=<…> ratio=<e2e/floor>`` (and ``before_s=<…>
before_ratio=<…>`` with ``--before``).

Usage: python bench/batch.py [--files 96] [--events 100000] [--cores 2] [--before]
[--keep DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
DAYS = (0, 7, 14, 21)


def _plate(work: Path, *, files: int, events: int, seed: int) -> None:
    """The simulated plate and a configuration pointing at it, under ``work``."""
    from cikflow.steps import simulate_demo

    batches = -(-files // len(DAYS))
    simulate_demo(
        work / "data" / "plate",
        n_batches=batches,
        days=DAYS,
        n_events=events,
        seed=seed,
        preset="realistic",
        fcs_prefix="data/plate/",
    )
    sheet = (work / "data" / "plate" / "samples.tsv").read_text().splitlines()
    (work / "config").mkdir(exist_ok=True)
    (work / "config" / "samples.tsv").write_text("\n".join(sheet[: files + 1]) + "\n")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["template"] = str(REPO / "config" / "gating" / "cik_default.yaml")
    config["release_spec"] = str(REPO / "config" / "release" / "default.yaml")
    config["demo"]["folder"] = "data/none"  # the sheet's files exist: nothing to make
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def _workflow(work: Path, *, cores: int, env: dict[str, str]) -> float:
    """Run the workflow on ``work``; wall seconds."""
    start = time.perf_counter()
    command = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(work)]
    result = subprocess.run(
        [*command, "--cores", str(cores), "--quiet", "rules"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"workflow failed in {work}:\n{result.stderr[-3000:]}")
    return seconds


def _warm() -> None:
    """Pool initializer: import what the jobs use, once per process."""
    import importlib

    from cikflow.worker import WARM

    for name in WARM:
        importlib.import_module(name)


def _replay_one(args: tuple[str, str]) -> str:
    from cikflow.worker import replay

    record, cwd = args
    request = pickle.loads(Path(record).read_bytes())
    sm = request["snakemake"]
    for path in _files(sm.output) | _files(sm.log):  # as Snakemake makes them for a job
        (Path(cwd) / path).parent.mkdir(parents=True, exist_ok=True)
    replay(request, cwd=cwd)
    return record


def _files(named: Any) -> set[str]:
    out: set[str] = set()
    for item in named:
        if isinstance(item, (list, tuple)):
            out |= {str(x) for x in item}
        else:
            out.add(str(item))
    return out


def _floor(records: list[Path], *, work: Path, cores: int) -> float:
    """Replay the recorded jobs in ``work`` on ``cores`` warm processes; wall seconds.

    A job starts once every job writing one of its inputs is done.
    """
    jobs = {}
    for record in records:
        sm = pickle.loads(record.read_bytes())["snakemake"]
        jobs[str(record)] = (_files(sm.input), _files(sm.output))
    producer = {out: key for key, (_, outs) in jobs.items() for out in outs}
    needs = {
        key: {producer[i] for i in ins if i in producer} - {key} for key, (ins, _) in jobs.items()
    }
    ctx = mp.get_context("fork")
    with ctx.Pool(cores, initializer=_warm) as pool:
        pool.map(_warm_barrier, range(cores))  # imports done before the clock starts
        start = time.perf_counter()
        done: set[str] = set()
        pending: dict[str, Any] = {}
        while len(done) < len(jobs):
            for key in sorted(jobs):  # recorded order: the workflow's own priorities
                if key not in done and key not in pending and needs[key] <= done:
                    pending[key] = pool.apply_async(_replay_one, ((key, str(work)),))
            for key, result in list(pending.items()):
                if result.ready():
                    result.get()  # a job's error is the bench's
                    done.add(key)
                    del pending[key]
            time.sleep(0.005)
        return time.perf_counter() - start


def _warm_barrier(_: int) -> None:
    time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=96)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--before", action="store_true", help="also run with the worker off")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: temporary)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="cikflow-batch-"))
    root.mkdir(parents=True, exist_ok=True)
    plate = root / "plate"
    print(f"simulating {args.files} files x {args.events:,} events in {root} …", flush=True)
    _plate(plate, files=args.files, events=args.events, seed=args.seed)
    e2e_dir, floor_dir = root / "e2e", root / "floor"
    for target in (e2e_dir, floor_dir):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(plate, target)
    records = root / "jobs"
    shutil.rmtree(records, ignore_errors=True)
    records.mkdir()
    print(f"workflow, --cores {args.cores} …", flush=True)
    e2e = _workflow(e2e_dir, cores=args.cores, env={"CIKFLOW_RECORD_JOBS": str(records)})
    jobs = sorted(records.glob("*.pickle"))
    print(f"floor: {len(jobs)} jobs replayed on {args.cores} warm processes …", flush=True)
    floor = _floor(jobs, work=floor_dir, cores=args.cores)
    same = (e2e_dir / "results" / "summary.tsv").read_bytes() == (
        floor_dir / "results" / "summary.tsv"
    ).read_bytes()
    rows = [("workflow (warm worker)", e2e), ("floor (in-process)", floor)]
    before = None
    if args.before:
        before_dir = root / "before"
        shutil.rmtree(before_dir, ignore_errors=True)
        shutil.copytree(plate, before_dir)
        print("workflow, CIKFLOW_WORKER=off …", flush=True)
        before = _workflow(before_dir, cores=args.cores, env={"CIKFLOW_WORKER": "off"})
        rows.insert(0, ("workflow (a process per job)", before))
    n = args.files
    print(f"\n{'run':<30} {'total s':>9} {'s per file':>11} {'x floor':>8}")
    for name, seconds in rows:
        print(f"{name:<30} {seconds:9.1f} {seconds / n:11.2f} {seconds / floor:8.2f}")
    print(f"jobs={len(jobs)} cores={args.cores} summary_identical={same}")
    last = f"files={n} e2e_s={e2e:.1f} floor_s={floor:.1f} ratio={e2e / floor:.2f}"
    if before is not None:
        last += f" before_s={before:.1f} before_ratio={before / floor:.2f}"
    print(last)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
