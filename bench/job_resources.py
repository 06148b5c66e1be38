"""Peak memory and wall time of every rule's job, to size the cluster profile.

For each event count, simulates one day-14 tube (or ``--batches`` x ``--days`` tubes),
copies ``config/`` beside it and runs the whole workflow one job at a time
(``--cores 1``) through a Snakefile that includes the repository's and gives every
rule a ``benchmark:`` file. Prints, per job, the wall time (s), the CPU time (s) and the
peak resident memory (MB) of the job's process tree (the rule's script); ``all`` is the Snakemake
process itself, which a cluster job runs as well, so a cluster job needs about
``all`` + the rule's peak.

The numbers behind ``workflow/profiles/slurm/config.yaml`` come from this script.

Usage: python bench/job_resources.py [--events 30000 1000000] [--batches 1] [--days 14]
       [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
CIKFLOW = str(Path(sys.executable).with_name("cikflow"))
BENCH_SNAKEFILE = """\
include: "{snakefile}"


for _rule in workflow.rules:
    _rule.benchmark_modifier = workflow.modifier.path_modifier
    _wildcards = "".join(f".{{{{{{w}}}}}}" for w in sorted(_rule.wildcard_names))
    _rule.benchmark = f"benchmarks/{{_rule.name}}{{_wildcards}}.tsv"
"""


def measure(
    events: int, work: Path, *, batches: int, days: list[int]
) -> list[tuple[str, float, float, float]]:
    """Run the workflow on simulated ``events``-event tubes; (job, s, CPU s, MB) per job."""
    subprocess.run(
        [
            CIKFLOW,
            "simulate",
            "--out",
            str(work / "data"),
            "--batches",
            str(batches),
            "--days",
            *map(str, days),
            "--events",
            str(events),
            "--fcs-prefix",
            "data/",
        ],
        check=True,
        capture_output=True,
    )
    shutil.copytree(REPO / "config", work / "config")
    shutil.copy(work / "data" / "samples.tsv", work / "config" / "samples.tsv")
    bench = work / "bench.smk"
    bench.write_text(BENCH_SNAKEFILE.format(snakefile=REPO / "Snakefile"))
    subprocess.run(
        [SNAKEMAKE, "all", "-s", str(bench), "--directory", str(work), "--cores", "1", "--quiet"],
        check=True,
    )
    rows = []
    for path in sorted((work / "benchmarks").glob("*.tsv")):
        with path.open() as handle:
            record = next(csv.DictReader(handle, delimiter="\t"))
        rows.append(
            (path.stem, float(record["s"]), float(record["cpu_time"]), float(record["max_rss"]))
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[30_000, 1_000_000])
    parser.add_argument("--batches", type=int, default=1, help="cultures (default 1)")
    parser.add_argument("--days", type=int, nargs="+", default=[14], help="default: 14")
    parser.add_argument("--keep", type=Path, help="keep the work folders under DIR")
    args = parser.parse_args()
    print("events\tjob\tseconds\tcpu_seconds\tmax_rss_MB")
    for events in args.events:
        with tempfile.TemporaryDirectory() as tmp:
            work = (args.keep or Path(tmp)) / f"events_{events}"
            work.mkdir(parents=True, exist_ok=True)
            for job, seconds, cpu, rss in measure(
                events, work, batches=args.batches, days=args.days
            ):
                print(f"{events}\t{job}\t{seconds:.1f}\t{cpu:.1f}\t{rss:.0f}", flush=True)


if __name__ == "__main__":
    main()
