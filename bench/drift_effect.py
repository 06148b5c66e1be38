"""How far an instrument's gain change moves the default gating's numbers.

The batch step flags a culture day ``drift`` (review required) when the gain of all
its fluorescence channels moved together against the batch's other days beyond
``clustering.bead_drift_limit`` (measured on the counting beads) or, without beads,
``clustering.gain_drift_limit`` (on the base cells). This bench measures what such a
change does to the reported numbers, to set those limits where drift starts to
matter: it simulates
tubes of a preset without gain drift of their own (``--preset``, ``realistic`` by
default, ``gain_drift`` set to 0), multiplies every fluorescence detector's values
by each fold of ``--folds`` (as a gain or laser change would, clipped at the top of
the scale), runs the per-sample step of the workflow on each
(``cikflow.steps.gate_file``, ``config/config.yaml``) and compares T, CIK and NK
(% of base) and viability with the same tube at fold 1.

Per fold: the median and largest change over tubes (percentage points), the share
of tubes where any of the four moved by more than 1 pp, and the share where any is
more than 2 pp from the simulator's truth (``off``; fold 1 is the tubes as drawn). Last line:
``gain_fold_moving=<the smallest fold, or reciprocal of one, at which some tube moved
more than 1 pp> tubes=<n>``.

Usage: python bench/drift_effect.py [--seeds 2] [--batches 3]
[--folds 0.7 0.8 0.9 1.1 1.2 1.3 1.4] [--preset realistic]
[--template config/gating/cik_default.yaml]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from cikflow.io import read_yaml
from cikflow.io.simulated import write_simulated
from cikflow.simulate import PRESETS, TOP_OF_SCALE, simulate_batches
from cikflow.steps import gate_file

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "config" / "gating" / "cik_default.yaml"
DAYS = (0, 7, 14, 21)
FLUORESCENCE = slice(3, 8)  # CD45, CD3, CD16, CD56, viability (the simulator's order)
NUMBERS = ("T", "CIK", "NK", "viability")


def with_gain(batches: list, fold: float) -> list:
    """The batches' tubes with every fluorescence detector's values × ``fold``."""
    out = []
    for batch in batches:
        samples = []
        for tube in batch.samples:
            events = tube.events.copy()
            events[:, FLUORESCENCE] = np.clip(
                events[:, FLUORESCENCE] * fold, -TOP_OF_SCALE, TOP_OF_SCALE - 1
            )
            samples.append(replace(tube, events=events))
        out.append(replace(batch, samples=samples))
    return out


def truth(batches: list) -> dict[str, dict[str, float]]:
    """Sample → the simulator's T, CIK, NK (% of viable lymphocytes) and viability (%)."""
    out = {}
    for tube in (t for b in batches for t in b.samples):
        true = {r["population"]: r["percent_of_base"] for r in tube.truth}
        out[tube.sample] = {
            **{p: float(true[p]) for p in NUMBERS[:3]},
            "viability": tube.true_viability,
        }
    return out


def numbers(
    batches: list, *, config: dict, template: Path = TEMPLATE
) -> dict[str, dict[str, float]]:
    """Sample → T, CIK, NK (% of base) and viability (% of leukocytes); NaN when failed."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        sheet = write_simulated(batches, tmp)
        for row in sheet.to_dict("records"):
            folder = Path(tmp) / "out" / row["sample"]
            status = gate_file(
                Path(tmp) / row["fcs"],
                template_path=template,
                out_dir=folder,
                row=row,
                config=config,
            )
            if status["status"] != "ok":
                out[row["sample"]] = dict.fromkeys(NUMBERS, np.nan)
                continue
            gates = pd.read_csv(folder / "gates.tsv", sep="\t").set_index("gate")
            found = {p: float(gates.loc[p, "percent_of_base"]) for p in NUMBERS[:3]}
            found["viability"] = (
                100.0
                * gates.loc["viable", "events"]
                / max(int(gates.loc["leukocytes", "events"]), 1)
            )
            out[row["sample"]] = found
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument(
        "--folds", type=float, nargs="+", default=[0.7, 0.8, 0.9, 1.1, 1.2, 1.3, 1.4]
    )
    parser.add_argument("--preset", default="realistic", help="simulator preset")
    parser.add_argument("--template", type=Path, default=TEMPLATE, help="gating template")
    args = parser.parse_args()
    logging.disable(logging.ERROR)
    config = read_yaml(REPO / "config" / "config.yaml")
    difficulty = replace(PRESETS[args.preset], gain_drift=0.0)
    rows = []
    for seed in range(1, args.seeds + 1):
        batches = simulate_batches(n_batches=args.batches, days=DAYS, seed=seed, preset=difficulty)
        reference, true = numbers(batches, config=config, template=args.template), truth(batches)
        for fold in [1.0, *args.folds]:
            found_at = (
                reference
                if fold == 1.0
                else numbers(with_gain(batches, fold), config=config, template=args.template)
            )
            for sample, found in found_at.items():
                rows.append(
                    {
                        "seed": seed,
                        "sample": sample,
                        "fold": fold,
                        **{k: abs(found[k] - reference[sample][k]) for k in NUMBERS},
                        "off": max(abs(found[k] - true[sample][k]) for k in NUMBERS),
                    }
                )
        print(f"seed {seed}: {len(reference)} tubes", flush=True)
    df = pd.DataFrame(rows)
    df["largest"] = df[list(NUMBERS)].max(axis=1)
    print(
        f"{'fold':>6}{'median pp':>11}{'max pp':>9}{'> 1 pp %':>10}{'off > 2 pp %':>14}"
        "   largest change by number (pp)"
    )
    moving = []
    for fold, sub in df.groupby("fold"):
        share = 100.0 * (sub["largest"] > 1.0).mean()
        by = "  ".join(f"{k} {sub[k].max():.2f}" for k in NUMBERS)
        print(
            f"{fold:>6.2f}{sub['largest'].median():>11.2f}{sub['largest'].max():>9.2f}"
            f"{share:>10.1f}{100.0 * (sub['off'] > 2.0).mean():>14.1f}   {by}"
        )
        if share > 0 and fold != 1.0:
            moving.append(max(fold, 1 / fold))
    tubes = df.groupby(["seed", "sample"]).ngroups
    first = f"{min(moving):.2f}" if moving else "none"
    print(f"gain_fold_moving={first} tubes={tubes}")


if __name__ == "__main__":
    main()
