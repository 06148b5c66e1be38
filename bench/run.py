"""cikflow's per-sample path against flowkit's own, on simulated files, in one run.

Prints a table; the last line is machine-readable:
``speedup_vs_flowkit=<x> counts_identical=<True|False> scaling_5M_vs_100k=<x>
cores2_speedup=<x> rss_ratio=<x>``.

(a) flowkit reference: ``flowkit.Sample`` + ``GatingStrategy.gate_sample``
    (compensation and transforms) with the static template's strategy.
(b) cikflow: ``read_fcs`` → ``gate_fcs`` (compensate → transform → gate →
    counts) with the same static template.
Both on a simulated 1M-event × 14-channel file; best of ``--repeat`` runs each.
Then: the data-driven template's extra cost, clustering (when available), report
writing and the sample report's size; per-event cost at 5M vs 100k events;
the demo batch with ``snakemake --cores 2`` vs ``--cores 1``; and peak memory of
one sample's processing above the interpreter-plus-imports baseline, as a
ratio to the file's raw event bytes (measured in a child process, above the
interpreter plus every module the job imports — ``rss_ratio`` on the last line — and
also above that plus the same job on a 2,000-event file).

Usage: python bench/run.py [--repeat 3] [--skip-cores]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALIASES = {"Viability": ["7-AAD"]}
STATIC = REPO / "config" / "gating" / "cik_static.yaml"
DEFAULT = REPO / "config" / "gating" / "cik_default.yaml"


def make_file(folder: Path, n_events: int, *, name: str) -> Path:
    """Simulate one day-14 tube with ``n_events`` events, widened to 14 channels."""
    from cikflow.io import write_fcs
    from cikflow.simulate import extra_channels, simulate_batches

    tube = simulate_batches(n_batches=1, days=(14,), n_events=n_events, seed=3)[0].samples[0]
    events, pnn, pns = extra_channels(tube.events, n_extra=5, seed=3)
    path = folder / f"{name}.fcs"
    write_fcs(path, events, pnn=pnn, pns=pns, keywords=tube.keywords)
    return path


def best(func, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def flowkit_path(path: Path, strategy) -> dict[str, int]:
    import flowkit as fk

    sample = fk.Sample(str(path), sample_id=path.stem)
    report = strategy.gate_sample(sample).report
    return {str(r.gate_name): int(r["count"]) for _, r in report.iterrows()}


def cikflow_path(path: Path, template) -> dict[str, int]:
    from cikflow.gating import gate_fcs
    from cikflow.io import read_fcs

    outcome = gate_fcs(read_fcs(path), template, aliases=ALIASES)
    return dict(zip(outcome.gates["gate"], outcome.gates["events"].astype(int), strict=True))


# The child reads its peak RSS from /proc/self/status (VmHWM, the high-water mark of
# its own address space). ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is no use here:
# Linux carries it over fork and exec, so a child of this (large) process would start at
# the parent's peak and show no growth at all.
#
# The baseline is the interpreter plus every module a per-sample job imports (listed by
# running the job on a 2,000-event file in another process first: the job imports much
# of scikit-learn, plotly and jsonschema lazily). A second baseline adds that small job
# itself (what the libraries set up once on first use: BLAS and OpenMP buffers, caches).
_MODULES_CHILD = """
import json, sys
from cikflow.steps import gate_file
gate_file(sys.argv[1], template_path=sys.argv[2], out_dir=sys.argv[3],
          config={"panel": {"aliases": {"Viability": ["7-AAD"]}}})
print(json.dumps(sorted(sys.modules)))
"""

_RSS_CHILD = """
import importlib, json, resource, sys

def peak_kb():
    try:
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

for name in json.loads(sys.argv[5]):
    if name not in sys.modules and not name.startswith("__"):
        try:
            importlib.import_module(name)
        except Exception:
            pass
from cikflow.steps import gate_file

config = {"panel": {"aliases": {"Viability": ["7-AAD"]}}}
imports = peak_kb()
gate_file(sys.argv[4], template_path=sys.argv[2], out_dir=sys.argv[3] + "-tiny", config=config)
warm = peak_kb()
gate_file(sys.argv[1], template_path=sys.argv[2], out_dir=sys.argv[3], config=config)
print(json.dumps({"imports_kb": imports, "warm_kb": warm, "peak_kb": peak_kb()}))
"""


def rss_ratio(path: Path, tiny: Path, out: Path) -> dict[str, float]:
    """Peak RSS of one sample's gate job above each baseline, in MB and ÷ raw event bytes."""
    from cikflow.io import read_fcs

    fcs = read_fcs(path)
    raw_bytes = fcs.n_events * len(fcs.pnn) * 4
    listed = subprocess.run(
        [sys.executable, "-c", _MODULES_CHILD, str(tiny), str(DEFAULT), str(out) + "-modules"],
        capture_output=True,
        text=True,
        check=True,
    )
    modules = listed.stdout.strip().splitlines()[-1]
    child = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(path), str(DEFAULT), str(out), str(tiny), modules],
        capture_output=True,
        text=True,
        check=True,
    )
    rss = json.loads(child.stdout.strip().splitlines()[-1])
    above_imports = (rss["peak_kb"] - rss["imports_kb"]) * 1024
    above_warm = (rss["peak_kb"] - rss["warm_kb"]) * 1024
    return {
        "raw_mb": raw_bytes / 1e6,
        "imports_mb": above_imports / 1e6,
        "warm_mb": above_warm / 1e6,
        "ratio": above_imports / raw_bytes,
        "ratio_warm": above_warm / raw_bytes,
    }


def demo_run(cores: int, folder: Path) -> float:
    """Wall time of the demo batch end to end with ``--cores N`` in a fresh copy."""
    work = folder / f"cores{cores}"
    shutil.copytree(REPO / "config", work / "config")
    demo = REPO / "data" / "demo"
    if demo.is_dir() and any(demo.glob("*.fcs")):
        shutil.copytree(demo, work / "data" / "demo")  # same inputs; simulation not timed
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    subprocess.run(
        [
            snakemake,
            "simulate_demo",  # the target before -q, which takes several values
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(work),
            "--cores",
            "1",
            "-q",
            "rules",
        ],
        check=True,
        capture_output=True,
    )
    start = time.perf_counter()
    subprocess.run(
        [
            snakemake,
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(work),
            "--cores",
            str(cores),
            "-q",
            "rules",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-cores", action="store_true", help="skip the snakemake --cores runs")
    args = parser.parse_args()

    from cikflow.gating import build_strategy, gate_fcs, template_dimensions
    from cikflow.io import read_fcs, read_template
    from cikflow.panel import resolve_panel
    from cikflow.preprocess import spillover_matrix

    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = make_file(tmp, 1_000_000, name="big")
        static, fitted = read_template(STATIC), read_template(DEFAULT)
        fcs = read_fcs(big)
        channel_map = resolve_panel(
            template_dimensions(static), pnn=fcs.pnn, pns=fcs.pns, aliases=ALIASES
        )
        strategy, _ = build_strategy(
            static, channel_map=channel_map, compensation=spillover_matrix(fcs)[0]
        )
        flowkit_path(big, strategy)  # warm-up: imports and caches on both sides
        cikflow_path(big, static)
        t_a, counts_a = best(lambda: flowkit_path(big, strategy), args.repeat)
        t_b, counts_b = best(lambda: cikflow_path(big, static), args.repeat)
        identical = all(counts_a.get(g) == n for g, n in counts_b.items()) and bool(counts_b)
        speedup = t_a / t_b
        rows += [
            ("file", f"{fcs.n_events:,} events x {len(fcs.pnn)} channels"),
            ("(a) flowkit Sample + gate_sample", f"{t_a:.3f} s"),
            ("(b) cikflow read + gate + counts", f"{t_b:.3f} s"),
            ("speed-up (a)/(b)", f"{speedup:.1f}x"),
            ("counts identical", str(identical)),
        ]

        t_fit, _ = best(lambda: gate_fcs(read_fcs(big), fitted, aliases=ALIASES), args.repeat)
        rows.append(("data-driven template, extra over (b)", f"{t_fit - t_b:.3f} s"))

        try:
            from cikflow import clustering  # noqa: F401
        except ImportError:
            rows.append(("clustering", "not available"))
        else:
            rows.append(("clustering", "see bench/clustering.py"))

        from cikflow.steps import gate_file, sample_report

        out = tmp / "sample"
        start = time.perf_counter()
        gate_file(big, template_path=DEFAULT, out_dir=out, config={"panel": {"aliases": ALIASES}})
        t_job = time.perf_counter() - start
        start = time.perf_counter()
        sample_report(out, out_path=tmp / "sample.html")
        t_report = time.perf_counter() - start
        size = (tmp / "sample.html").stat().st_size
        rows += [
            ("per-sample gate job (tables, plot data)", f"{t_job:.3f} s"),
            ("sample report writing", f"{t_report:.3f} s"),
            ("sample report size (plotly.js apart)", f"{size / 1e6:.2f} MB"),
        ]

        small = make_file(tmp, 100_000, name="small")
        huge = make_file(tmp, 5_000_000, name="huge")
        t_small, _ = best(lambda: cikflow_path(small, static), args.repeat)
        t_huge, _ = best(lambda: cikflow_path(huge, static), max(1, args.repeat - 1))
        n_small, n_huge = read_fcs(small).n_events, read_fcs(huge).n_events
        scaling = (t_huge / n_huge) / (t_small / n_small)
        rows += [
            ("(b) at 100k events", f"{t_small:.3f} s ({1e9 * t_small / n_small:.0f} ns/event)"),
            ("(b) at 5M events", f"{t_huge:.3f} s ({1e9 * t_huge / n_huge:.0f} ns/event)"),
            ("per-event cost 5M / 100k", f"{scaling:.2f}"),
        ]

        rss = rss_ratio(big, make_file(tmp, 2_000, name="tiny"), tmp / "rss")
        ratio = rss["ratio"]
        rows += [
            (
                "peak RSS above imports / raw event bytes",
                f"{rss['imports_mb']:.0f} MB / {rss['raw_mb']:.0f} MB = {ratio:.2f}",
            ),
            (
                "  same, above imports + a 2,000-event job",
                f"{rss['warm_mb']:.0f} MB / {rss['raw_mb']:.0f} MB = {rss['ratio_warm']:.2f}",
            ),
        ]

        if args.skip_cores:
            cores2 = float("nan")
        else:
            t1 = demo_run(1, tmp)
            t2 = demo_run(2, tmp)
            cores2 = t1 / t2
            rows += [
                ("demo batch, --cores 1", f"{t1:.1f} s"),
                ("demo batch, --cores 2", f"{t2:.1f} s"),
                ("speed-up with 2 cores", f"{cores2:.2f}x"),
            ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(
        f"speedup_vs_flowkit={speedup:.2f} counts_identical={identical} "
        f"scaling_5M_vs_100k={scaling:.2f} cores2_speedup={cores2:.2f} rss_ratio={ratio:.2f}"
    )


if __name__ == "__main__":
    main()
