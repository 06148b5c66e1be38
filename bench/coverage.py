"""Coverage of the 95 % intervals against the simulator's truth.

Simulates cultures of a simulator preset (``--preset``, ``realistic`` by default;
``--batches`` × days 0/7/14/21 per seed, ``--events`` per tube), gates every tube
as the workflow's gate step does (acquisition QC, then the default template with
``config/config.yaml``), computes each population's interval
(:func:`cikflow.uncertainty.population_intervals`) and the CIK single-platform
count's (:func:`cikflow.intervals.cells_per_uL_interval`), and counts how often
the interval holds the truth: T, CIK and NK percent of the viable lymphocytes of the
culture the tube was drawn from, and the CIK concentration of that culture (cells/µL).
The tube's events are a Poisson draw from the culture, so its own share of a population
differs from the culture's by counting chance; that chance is what the interval's
counting part is for, and coverage against the tube's own share (also printed, as
``tube``) reads high by it. Half-widths are reported for populations ≥ 5 % of base.
Coverage is also split by whether the gating flagged the sample (its biases then
bounds, otherwise estimates that centre the interval: :func:`cikflow.intervals.combine`).

Then the real file ``../shared/data/flowsom-68983`` (expert FlowJo labels, GPL, used
in place; skipped where absent): its NK and NK T cells' intervals under the second
panel's template, and where the expert's events inside that template's base gate lie.
It is one expert and two populations, no coverage rate: a check that the interval
holds a human gating of a real file, where the simulator's biases do not apply.

Last line: ``coverage_pct=<min over the four> median_halfwidth_pp=<…> tubes=<n>``.

Usage: python bench/coverage.py [--seeds 17] [--batches 3] [--events 50000]
[--preset realistic] [--first-seed 1]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

# bench/accuracy.py: 68983 gated under its panel's template, with the expert's labels
from accuracy import REAL_POPULATIONS, gate_68983

from cikflow.acquisition import run_acquisition_qc
from cikflow.gating.apply import gate_fcs
from cikflow.intervals import cells_per_uL_interval
from cikflow.io import read_fcs, read_template, read_yaml
from cikflow.io.simulated import write_simulated
from cikflow.simulate import simulate_batches
from cikflow.uncertainty import population_intervals

REPO = Path(__file__).resolve().parents[1]
POPULATIONS = ("T", "CIK", "NK")
DAYS = (0, 7, 14, 21)


def simulated_cultures(
    *, seeds: int, batches: int, events: int, preset: str = "realistic", first: int = 1
) -> Iterator[tuple]:
    """``(seed, folder, cultures, sheet)`` per seed: a preset's cultures as FCS files.

    ``batches`` cultures × days 0/7/14/21 of ``events`` each, seeds ``first`` …
    ``first + seeds − 1``, in a temporary folder (with ``samples.tsv`` and
    ``truth.tsv``) that lasts one iteration.
    """
    for seed in range(first, first + seeds):
        cultures = simulate_batches(
            n_batches=batches, days=DAYS, n_events=events, seed=seed, preset=preset
        )
        with tempfile.TemporaryDirectory() as tmp:
            sheet = write_simulated(cultures, tmp)
            yield seed, Path(tmp), cultures, sheet


def gate_as_configured(fcs, *, template, config: dict):
    """Gate one read FCS file with ``template`` and the config's gating settings."""
    return gate_fcs(
        fcs,
        template,
        aliases=config["panel"].get("aliases"),
        fit_max_events=int(config["gating"]["fit_max_events"]),
        random_state=int(config["gating"]["random_state"]),
    )


def tube_rows(fcs_path: Path, *, sheet_row: dict, truth: pd.DataFrame, template, config) -> list:
    """One row per population of a tube: point, interval, truth."""
    settings = config.get("uncertainty")
    qc = run_acquisition_qc(read_fcs(fcs_path), settings=config.get("qc"))
    out = gate_as_configured(qc.fcs, template=template, config=config)
    gates = out.gates.set_index("gate").join(
        population_intervals(out, template=template, settings=settings).set_index("gate")
    )
    true = truth.set_index("population")
    culture = true["cells_per_uL_expected"]  # the culture's concentrations (cells/µL)
    rows = []
    beads = int(gates.loc["beads", "events"])
    for pop in POPULATIONS:
        g = gates.loc[pop]
        rows.append(
            {
                "sample": sheet_row["sample"],
                "day": sheet_row["day"],
                "quantity": f"{pop} % of base",
                "value": float(g["percent_of_base"]),
                "low": float(g["percent_of_base_low"]),
                "high": float(g["percent_of_base_high"]),
                "truth": float(100.0 * culture[pop] / culture["viable_lymphocytes"]),
                "truth_tube": float(true.loc[pop, "percent_of_base"]),
                "flagged": bool(out.flags),
            }
        )
    g = gates.loc["CIK"]
    per_uL = (
        g["events"] / beads * sheet_row["beads_per_tube"] / sheet_row["sample_volume_uL"]
        if beads
        else np.nan
    )
    lo, hi = cells_per_uL_interval(
        float(per_uL),
        percent=(g["percent_of_base"], g["percent_of_base_low"], g["percent_of_base_high"]),
        events=int(g["events"]),
        bead_events=beads,
        settings=settings,
    )
    rows.append(
        {
            "sample": sheet_row["sample"],
            "day": sheet_row["day"],
            "quantity": "CIK cells/uL",
            "value": float(per_uL),
            "low": lo,
            "high": hi,
            "truth": float(true.loc["CIK", "cells_per_uL_expected"]),
            "flagged": bool(out.flags),
        }
    )
    return rows


def real_file_lines() -> list[str]:
    """68983's NK and NK T intervals against the expert's events in the same base gate."""
    gated = gate_68983()
    if gated is None:
        return ["68983: skipped (../shared/data/flowsom-68983 absent)"]
    out, template, labels = gated
    gates = out.gates.set_index("gate").join(
        population_intervals(out, template=template).set_index("gate")
    )
    base = out.membership[template.spec["base"]]
    lines = []
    for gate, label in REAL_POPULATIONS:
        g = gates.loc[gate]
        expert = 100.0 * np.count_nonzero((labels == label) & base) / np.count_nonzero(base)
        inside = g["percent_of_base_low"] <= expert <= g["percent_of_base_high"]
        lines.append(
            f"68983 {label}: {g['percent_of_base']:.2f} % of base "
            f"({g['percent_of_base_low']:.2f}-{g['percent_of_base_high']:.2f}), expert "
            f"{expert:.2f} %: {'inside' if inside else 'OUTSIDE'} the interval"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=17)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--preset", default="realistic", help="simulator preset")
    parser.add_argument("--first-seed", type=int, default=1, help="seed of the first culture")
    parser.add_argument("--out", type=Path, default=None, help="write the per-tube rows (TSV)")
    args = parser.parse_args()
    logging.disable(logging.ERROR)
    config = read_yaml(REPO / "config" / "config.yaml")
    template = read_template(REPO / "config" / "gating" / "cik_default.yaml")
    rows = []
    for seed, folder, _, sheet in simulated_cultures(
        seeds=args.seeds,
        batches=args.batches,
        events=args.events,
        preset=args.preset,
        first=args.first_seed,
    ):
        truth = pd.read_csv(folder / "truth.tsv", sep="\t")
        for r in sheet.to_dict("records"):
            rows.extend(
                {"seed": seed, **row}
                for row in tube_rows(
                    folder / r["fcs"],
                    sheet_row=r,
                    truth=truth[truth["sample"] == r["sample"]],
                    template=template,
                    config=config,
                )
            )
    df = pd.DataFrame(rows)
    if args.out:
        df.to_csv(args.out, sep="\t", index=False)
    df["covered"] = (df["low"] <= df["truth"]) & (df["truth"] <= df["high"])
    tube = df["truth_tube"].fillna(df["truth"])
    df["covered_tube"] = (df["low"] <= tube) & (tube <= df["high"])
    df["halfwidth"] = (df["high"] - df["low"]) / 2
    df["error"] = df["value"] - df["truth"]
    tubes = df["sample"].astype(str) + "/" + df["seed"].astype(str)
    print(
        f"{'quantity':<16}{'n':>5}{'coverage %':>12}{'(tube)':>8}{'median half-width':>19}"
        f"{'median |error|':>16}{'max |error|':>13}"
    )
    coverage = {}
    for q, sub in df.groupby("quantity", sort=False):
        coverage[q] = 100.0 * sub["covered"].mean()
        print(
            f"{q:<16}{len(sub):>5}{coverage[q]:>12.1f}{100.0 * sub['covered_tube'].mean():>8.1f}"
            f"{sub['halfwidth'].median():>19.3g}"
            f"{sub['error'].abs().median():>16.3g}{sub['error'].abs().max():>13.3g}"
        )
    pct = df[df["quantity"].str.endswith("% of base") & (df["truth"] >= 5.0)]
    print("\ncoverage by day (% of base rows, all three populations):")
    for day, sub in df[df["quantity"].str.endswith("% of base")].groupby("day"):
        print(
            f"  day {day:>2}: {100 * sub['covered'].mean():5.1f} %  "
            f"median half-width {sub['halfwidth'].median():.2f} pp"
        )
    # the gating's flags make every bias a bound (cikflow.intervals.combine)
    print("coverage by whether the gating flagged the sample (% of base and cells/µL rows):")
    for flagged, sub in df.groupby("flagged"):
        print(
            f"  {'flagged (biases as bounds)' if flagged else 'not flagged (corrected)':<28}"
            f"{tubes[sub.index].nunique():>4} tubes  "
            + "  ".join(
                f"{q.removesuffix(' % of base')} {100 * g['covered'].mean():.1f}"
                for q, g in sub.groupby("quantity", sort=False)
            )
        )
    print()
    for line in real_file_lines():
        print(line)
    print(
        f"coverage_pct={min(coverage.values()):.1f} "
        f"median_halfwidth_pp={pct['halfwidth'].median():.2f} tubes={tubes.nunique()}"
    )


if __name__ == "__main__":
    main()
