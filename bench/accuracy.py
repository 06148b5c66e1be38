"""Accuracy of the default gating per simulator preset, and on a real file, against truth.

For each preset (``clean``, ``realistic``, ``hard``) and each seed, simulates
``--batches`` cultures × days 0/7/14/21 (the preset's own events per tube unless
``--events``), runs the per-sample step of the workflow on every tube
(``cikflow.steps.gate_file``: acquisition QC, gating with
``config/gating/cik_default.yaml``, clustering and its concordance check, with
``config/config.yaml``) and compares with the simulator's truth:

- |error| of ``percent_of_base`` (percentage points) for T, CIK and NK, and of
  viability (viable ÷ all CD45+ singlets, %);
- per-event F1 of the T, CIK and NK gates against the true labels;
- the **oracle ceiling**: the best F1 any single CD3 × CD56 quadrant (one CD3 and one
  CD56 threshold, on the same compensated, transformed axes) could reach on the true
  viable lymphocytes — what a perfect threshold finder would get;
- **silent** tubes: off by more than 2 pp (T, CIK or NK) or 5 pp (viability) without
  a flag naming that population or a gate above it (or the whole sample: acquisition
  QC, ``drift``) — confidently wrong; a flag on another branch (the NK CD56 split for
  a T error) does not count;
- **false flags**: the share of tubes within 1 pp of the truth for every reported
  number with a truth (T, CIK, NK, the CIK CD16 and NK CD56 subsets, and viability)
  that are review-required anyway (``false_flag_pct``, %; ``nan`` without such a
  tube); and of the tubes within 1 pp for T, CIK and NK alone
  (``false_flag_pct_t_cik_nk``), where a flag on an NK subset or a viability that is
  itself off counts as false.

A tube is review-required when its per-sample step raised a flag, or when the batch
step (``cikflow.steps.cluster_batch``, its ``drift.tsv``) flags its day ``drift``, as
``summarize`` does in the workflow.

Then the real file ``../shared/data/flowsom-68983`` (expert FlowJo labels, GPL, used
in place): F1 of the NK (CD3−) and NK T (CD3+) gates of
``config/gating/flowsom_68983.yaml`` against the expert, skipped when absent.

Last lines, one per preset, machine-readable:
``preset=<p> tubes=<n> failed=<n> max_pp=… median_pp=… min_f1=… ceiling_f1=… silent=…
review=… false_flag_pct=… false_flag_pct_t_cik_nk=…``.

Usage: python bench/accuracy.py [--presets clean realistic hard] [--seeds 3] [--first-seed 1]
[--batches 3] [--template config/gating/cik_default.yaml] [--out rows.tsv]
"""

from __future__ import annotations

import argparse
import gzip
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from cikflow.evaluate import f1_score
from cikflow.gating.template import make_transform
from cikflow.io import read_yaml
from cikflow.io.simulated import write_simulated
from cikflow.realism import DEFAULT_LOGICLE
from cikflow.simulate import PRESETS, simulate_batches
from cikflow.steps import cluster_batch, gate_file

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
TEMPLATE = REPO / "config" / "gating" / "cik_default.yaml"
POPULATIONS = ("T", "CIK", "NK")
#: the subsets the template also reports, with a truth of their own
SUBSETS = ("CIK_CD16pos", "CIK_CD16neg", "NK_CD56bright", "NK_CD56dim")
QUADRANT = {"T": (True, False), "CIK": (True, True), "NK": (False, True)}  # (CD3+, CD56+)
DAYS = (0, 7, 14, 21)


def oracle_ceiling(cd3: np.ndarray, cd56: np.ndarray, truth: dict[str, np.ndarray]) -> dict:
    """Best quadrant F1 per population over every (CD3, CD56) threshold pair on a grid.

    ``cd3``/``cd56`` are transformed values of the true viable lymphocytes and
    ``truth`` their boolean membership per population.
    """
    edges = np.linspace(-0.3, 1.2, 301)
    xi = np.clip(np.searchsorted(edges, cd3) - 1, 0, 299)
    yi = np.clip(np.searchsorted(edges, cd56) - 1, 0, 299)
    allv = np.zeros((300, 300))
    np.add.at(allv, (xi, yi), 1)
    out = {}
    for pop, (x_pos, y_pos) in QUADRANT.items():
        both = np.zeros((300, 300))
        np.add.at(both, (xi[truth[pop]], yi[truth[pop]]), 1)

        # counts of events with x-bin >= i (or < i) and y-bin >= j (or < j), every i, j
        def corner(h: np.ndarray, *, xp: bool = x_pos, yp: bool = y_pos) -> np.ndarray:
            h = h[::-1] if xp else h
            h = h[:, ::-1] if yp else h
            c = h.cumsum(0).cumsum(1)
            c = c[::-1] if xp else c
            c = c[:, ::-1] if yp else c
            return c

        tp, pred = corner(both), corner(allv)
        f1 = 2 * tp / (pred + truth[pop].sum())
        out[pop] = float(f1.max())
    return out


def _events_table(path: Path) -> pd.DataFrame:
    """Per-event membership; events acquisition QC removed (empty cells) are in no gate."""
    with gzip.open(path, "rt") as fh:
        return pd.read_csv(fh, sep="\t").fillna(0)


def run_preset(
    preset: str,
    *,
    seeds: int,
    n_batches: int,
    n_events: int | None,
    config: dict,
    template: Path = TEMPLATE,
    first: int = 1,
):
    """One row per tube: errors, F1, ceiling, review flag; seeds first … first + seeds − 1."""
    rows = []
    for seed in range(first, first + seeds):
        batches = simulate_batches(
            n_batches=n_batches, days=DAYS, n_events=n_events, seed=seed, preset=preset
        )
        with tempfile.TemporaryDirectory() as tmp:
            sheet = write_simulated(batches, tmp)
            for batch in batches:
                scored = []
                for tube in batch.samples:
                    row = sheet[sheet["sample"] == tube.sample].iloc[0].to_dict()
                    out = Path(tmp) / "out" / tube.sample
                    status = gate_file(
                        Path(tmp) / f"{tube.sample}.fcs",
                        template_path=template,
                        out_dir=out,
                        row=row,
                        config=config,
                        events_table=True,
                    )
                    scored.append(_score(tube, status, out, seed=seed))
                rows.extend(_with_drift(scored, folder=Path(tmp), template=template, config=config))
    return pd.DataFrame(rows)


def _with_drift(scored: list[dict], *, folder: Path, template: Path, config: dict) -> list[dict]:
    """The batch's tubes, review required where the batch step flags the day ``drift``."""
    dirs = [folder / "out" / r["sample"] for r in scored if not r["failed"]]
    if not dirs:
        return scored
    batch = scored[0]["sample"].split("_")[0]
    drift = cluster_batch(
        dirs, template_path=template, out_dir=folder / "batch" / batch, batch=batch, config=config
    )
    drifted = set(drift.loc[drift["drifted"].astype(bool), "sample"])
    for r in scored:
        if r["sample"] in drifted:
            r["review"] = True
            r["flags"] = ",".join(sorted({*filter(None, r.get("flags", "").split(",")), "drift"}))
            r["flag_gates"] = ",".join(
                sorted({*filter(None, r.get("flag_gates", "").split(",")), "*"})
            )
    return scored


def _score(tube, status: dict, out: Path, *, seed: int) -> dict:
    rec = {"seed": seed, "sample": tube.sample, "day": tube.day, "failed": False}
    lymph = tube.members("viable_lymphocytes")
    truth = {pop: tube.members(pop)[lymph] for pop in POPULATIONS}
    logicle = make_transform(DEFAULT_LOGICLE)  # the axes the default template gates on
    cd3 = logicle.apply(tube.channel("CD3", compensated=True)[lymph])
    cd56 = logicle.apply(tube.channel("CD56", compensated=True)[lymph])
    ceiling = oracle_ceiling(cd3, cd56, truth)
    rec.update({f"ceiling_{p}": ceiling[p] for p in POPULATIONS})
    if status["status"] != "ok":
        rec.update(failed=True, review=True, error=status.get("error", ""))
        return rec
    gates = pd.read_csv(out / "gates.tsv", sep="\t").set_index("gate")
    events = _events_table(out / "events.tsv.gz")
    true_pct = {r["population"]: r["percent_of_base"] for r in tube.truth}
    for pop in POPULATIONS:
        rec[f"err_{pop}"] = abs(float(gates.loc[pop, "percent_of_base"]) - true_pct[pop])
        rec[f"f1_{pop}"] = f1_score(events[pop].to_numpy(bool), tube.members(pop))
    for pop in SUBSETS:
        rec[f"err_{pop}"] = abs(float(gates.loc[pop, "percent_of_base"]) - true_pct[pop])
    viability = 100.0 * gates.loc["viable", "events"] / gates.loc["leukocytes", "events"]
    rec["err_viability"] = abs(float(viability) - tube.true_viability)
    rec["review"] = bool(status["flags"])
    rec["flags"] = ",".join(sorted({f["flag"] for f in status["flags"]}))
    # "*": a flag on no gate (the whole sample)
    rec["flag_gates"] = ",".join(sorted({f.get("gate") or "*" for f in status["flags"]}))
    return rec


def lineage(template: Path) -> dict[str, set[str]]:
    """Each gate (and quadrant population) → itself and every gate above it.

    A flag on any of them, or on no gate (the whole sample: acquisition QC, drift),
    names what may move that population.
    """
    gates = read_yaml(template)["gates"]
    parent = {g["name"]: g["parent"] for g in gates}
    for g in gates:
        for pop in g.get("quadrants", {}):
            parent[pop] = g["name"]
    out = {}
    for name in parent:
        chain, at = {name}, name
        while parent.get(at) not in (None, "root"):
            at = parent[at]
            chain.add(at)
        out[name] = chain
    return out


#: 68983's gates and the expert's label for each
REAL_POPULATIONS = (("NK_cells", "NK cells"), ("NKT_cells", "NK T cells"))


def gate_68983():
    """``(outcome, template, labels)`` of 68983 under its panel's template, or None if absent.

    ``labels``: the expert's per-event population names (``gatingResult.csv``).
    """
    from cikflow.gating import gate_fcs
    from cikflow.io import read_fcs, read_template

    folder = SHARED / "flowsom-68983"
    if not (folder / "68983.fcs").is_file():
        return None
    template = read_template(REPO / "config" / "gating" / "flowsom_68983.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = gate_fcs(read_fcs(folder / "68983.fcs"), template, aliases={"NK1.1": ["NK1/1"]})
    labels = pd.read_csv(folder / "gatingResult.csv", header=None)[0].to_numpy()
    return outcome, template, labels


def real_file_f1() -> list[str]:
    """F1 of the second panel's NK and NK T gates against the expert labels of 68983."""
    gated = gate_68983()
    if gated is None:
        return ["68983: skipped (../shared/data/flowsom-68983 absent)"]
    result, _, labels = gated
    lines = []
    for gate, label in REAL_POPULATIONS:
        truth = labels == label
        f1 = f1_score(result.membership[gate], truth)
        lines.append(
            f"68983 {label}: F1 {f1:.3f}, events {int(result.membership[gate].sum())} "
            f"vs expert {int(truth.sum())}, flags {len(result.flags)}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1, help="seed of the first culture")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--events", type=int, default=None, help="default: the preset's")
    parser.add_argument("--template", type=Path, default=TEMPLATE, help="gating template")
    parser.add_argument("--out", type=Path, default=None, help="write the per-tube rows (TSV)")
    args = parser.parse_args()
    logging.disable(logging.ERROR)  # failed tubes are counted below, not logged
    config = read_yaml(REPO / "config" / "config.yaml")
    family = lineage(args.template)
    summary, tables = [], []
    for preset in args.presets:
        df = run_preset(
            preset,
            seeds=args.seeds,
            n_batches=args.batches,
            n_events=args.events,
            config=config,
            template=args.template,
            first=args.first_seed,
        )
        tables.append(df.assign(preset=preset))
        ok = df[~df["failed"]]
        print(f"\npreset {preset}: {len(df)} tubes, {int(df['failed'].sum())} failed")
        if ok.empty:  # nothing to score: say why, from the first failure
            print(f"  every tube failed: {df['error'].iloc[0]}")
            summary.append(f"preset={preset} tubes={len(df)} failed={len(df)}")
            continue
        print(
            f"{'population':<12}{'max |err| pp':>14}{'median pp':>11}{'min F1':>9}"
            f"{'ceiling F1':>12}{'off':>6}{'silent':>8}"
        )
        off_any = np.zeros(len(ok), dtype=bool)
        missed = np.zeros(len(ok), dtype=bool)
        flagged = [
            set(filter(None, str(g).split(","))) if g == g else set() for g in ok["flag_gates"]
        ]
        for pop, limit in (*((p, 2.0) for p in POPULATIONS), ("viability", 5.0)):
            err = ok[f"err_{pop}"]
            off = (err > limit).to_numpy()
            off_any |= off
            # caught only by a flag on the population, a gate above it, or the whole sample
            names = {"*"} | family["viable" if pop == "viability" else pop]
            caught = np.array([bool(f & names) for f in flagged], dtype=bool)
            missed |= off & ~caught
            silent = int((off & ~caught).sum())
            f1 = f"{ok[f'f1_{pop}'].min():.3f}" if f"f1_{pop}" in ok else "-"
            ceil = f"{df[f'ceiling_{pop}'].min():.3f}" if f"ceiling_{pop}" in df else "-"
            print(
                f"{pop:<12}{err.max():>14.2f}{err.median():>11.2f}{f1:>9}{ceil:>12}"
                f"{int(off.sum()):>6}{silent:>8}"
            )
        silent = int(missed.sum())
        errs = ok[[f"err_{p}" for p in POPULATIONS]].to_numpy()
        f1s = ok[[f"f1_{p}" for p in POPULATIONS]].to_numpy()
        ceil = df[[f"ceiling_{p}" for p in POPULATIONS]].to_numpy()
        review = int(df["review"].sum())
        reviewed = ok["review"].to_numpy(bool)
        # near: every reported number with a truth within 1 pp (a flag on a tube whose NK
        # CD56-bright share or viability is off is no false flag); T, CIK and NK alone too
        near_main = (ok[[f"err_{p}" for p in POPULATIONS]] <= 1.0).all(axis=1).to_numpy()
        rest = [f"err_{p}" for p in (*SUBSETS, "viability")]
        near = near_main & (ok[rest] <= 1.0).all(axis=1).to_numpy()
        false_pct = 100.0 * (near & reviewed).sum() / near.sum() if near.any() else np.nan
        false_main = (
            100.0 * (near_main & reviewed).sum() / near_main.sum() if near_main.any() else np.nan
        )
        print(
            f"tubes review required: {int(ok['review'].sum())}/{len(ok)}; "
            f"off (any): {int(off_any.sum())}; silent: {silent}; "
            f"within 1 pp (every reported number): {int(near.sum())}, of which review "
            f"required {false_pct:.1f} %; within 1 pp (T, CIK, NK): {int(near_main.sum())}, "
            f"review required {false_main:.1f} %"
        )
        cols = ["seed", "sample", *(f"err_{p}" for p in (*POPULATIONS, "viability"))]
        for _, tube in ok.loc[missed, [*cols, "flags"]].iterrows():
            errors = ", ".join(f"{c[4:]} {tube[c]:.2f}" for c in cols[2:])
            where = f"seed {tube['seed']} {tube['sample']}"
            print(f"  silent: {where}: {errors} pp; flags: {tube['flags'] or 'none'}")
        summary.append(
            f"preset={preset} tubes={len(df)} failed={int(df['failed'].sum())} "
            f"max_pp={errs.max():.2f} median_pp={np.median(errs):.2f} min_f1={f1s.min():.3f} "
            f"ceiling_f1={ceil.min():.3f} silent={silent} review={review} "
            f"false_flag_pct={false_pct:.1f} false_flag_pct_t_cik_nk={false_main:.1f}"
        )
    if args.out:
        pd.concat(tables).to_csv(args.out, sep="\t", index=False)
    print()
    for line in real_file_f1():
        print(line)
    print()
    for line in summary:
        print(line)


if __name__ == "__main__":
    main()
