"""How well the hidden tail is estimated: CIK cells under the CD56 divider, against truth.

Simulates ``realistic`` cultures (``--batches`` × days 0/7/14/21 per seed,
``--events`` per tube), gates every tube with the default template (no acquisition
QC, so that every event keeps its true label) and, for the CD56 divider within CD3+
of ``cd3_cd56``, compares :func:`cikflow.gating.tails.hidden_below` (on the divider's
parent events) with the true CIK cells below the divider. Also the same for the CD56
divider within CD3− (NK), for the CD3 divider on the CD56− side, as the intervals take
it (T under it: a flat shoulder of CD3-dim cells, so
:func:`cikflow.gating.tails.tail_below` with ``shoulder`` as for a ``negative_edge``
divider, down to the divider's search bound at lowest), and for a notch where a tube
has one (CIK under it within CD3−CD56+, fitted as a Gaussian cut at the CD3 divider
too). The other side of the CD3 divider: the negatives it counts positive
(:func:`cikflow.gating.tails.spill_above`) against the true CD3− cells above it, on the
CD56− side (``CD3 spill, CD56-``: other lymphocytes into T) and the CD56+ side
(``CD3 spill, CD56+``: NK cells into CIK).

Prints per divider and day the median estimate and truth (percent of base) and the
ratio's quartiles; last line ``tail_ratio_median=<CIK ratio> tail_ratio_iqr=<q1>-<q3>
cd3_ratio_median=<…> cd3_ratio_iqr=<q1>-<q3> spill_ratio_median=<…>
spill_ratio_iqr=<q1>-<q3> tubes=<n>``.

Usage: python bench/tail_estimate.py [--seeds 3] [--batches 3] [--events 50000]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from coverage import (  # bench/coverage.py: the simulated cultures, gated as configured
    gate_as_configured,
    simulated_cultures,
)

from cikflow.gating.tails import spill_above, tail_below
from cikflow.gating.template import make_transform, transform_name
from cikflow.io import read_fcs, read_template, read_yaml
from cikflow.simulate import LABELS

REPO = Path(__file__).resolve().parents[1]
#: divider key → the true population above it (T above the CD3 divider, on the CD56−
#: side; the notch's CD3-dim CIK cells above it within CD3−CD56+)
DIVIDERS = {
    "CD56 within CD3+": "CIK",
    "CD56 within CD3-": "NK",
    "CD3": "T",
    "CD3 within CD3-CD56+": "CIK",
}


def _transformed(outcome, template, rows: np.ndarray, dims) -> dict[str, np.ndarray]:
    """The events ``rows`` of each dimension, compensated and transformed as gated."""
    comp, spec = outcome.compensated, template.spec
    out = {}
    for dim in dims:
        raw = comp.column(comp.pnn.index(outcome.channel_map[dim]))[rows].astype(float)
        xform = make_transform(spec["transforms"][transform_name(spec, dim)])
        out[dim] = raw if xform is None else xform.apply(raw.reshape(-1, 1))[:, 0]
    return out


def tube_rows(outcome, *, labels: np.ndarray, template) -> list[dict]:
    """Per divider of ``cd3_cd56``: estimated and true positives below it (events)."""
    info = next(i for i in outcome.infos if i.name == "cd3_cd56")
    base = outcome.membership[template.spec["base"]]
    rows = np.flatnonzero(base)
    kind = np.array([name.split("_")[0] for name in LABELS])[labels][rows]
    at = _transformed(outcome, template, rows, info.gate.dims)
    # the CD3 divider's fit record: whether it is a negative edge, its search range
    fits = info.fit["fits"]
    cd3 = next(f for f in fits if f["dimension"] == info.gate.xdim and "within" not in f)
    out = []
    signs = dict(info.gate.quadrants)
    y_side = {  # each y side of the quadrants, over the base's events
        sign: np.logical_or.reduce(
            [outcome.membership[q][rows] for q in signs if signs[q][1] == sign]
        )
        for sign in "+-"
    }
    for threshold in info.gate.thresholds():
        pop = DIVIDERS[threshold.key]
        divided = info.gate.subset(threshold, at, parent=np.ones(len(rows), dtype=bool))
        if threshold.key == "CD3":  # taken on each CD56 side apart, as the intervals do
            out.extend(_spills(at["CD3"], float(threshold.value), kind=kind, y_side=y_side))
            divided = divided & y_side["-"]
        values = at[threshold.dimension][divided]
        t = float(threshold.value)
        positive = kind[divided] == pop
        out.append(
            {
                "divider": threshold.key,
                "estimate_pct": 100.0
                * tail_below(
                    values,
                    t,
                    ceiling=threshold.upto,
                    shoulder=threshold.key == "CD3" and cd3["negative_edge"],
                    lowest=cd3["search_transformed"][0],
                )
                / len(rows),
                "truth_pct": 100.0 * np.count_nonzero(positive & (values < t)) / len(rows),
            }
        )
    return out


def _spills(cd3: np.ndarray, t: float, *, kind: np.ndarray, y_side: dict) -> list[dict]:
    """The CD3 divider's negatives above it, estimated and true, on each CD56 side."""
    out = []
    for sign, negatives in (("-", ["other"]), ("+", ["NK"])):
        side = y_side[sign]
        truth = np.isin(kind[side], negatives) & (cd3[side] >= t)
        out.append(
            {
                "divider": f"CD3 spill, CD56{sign}",
                "estimate_pct": 100.0 * spill_above(cd3[side], t) / len(cd3),
                "truth_pct": 100.0 * np.count_nonzero(truth) / len(cd3),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    logging.disable(logging.ERROR)
    config = read_yaml(REPO / "config" / "config.yaml")
    template = read_template(REPO / "config" / "gating" / "cik_default.yaml")
    rows = []
    for seed, folder, cultures, _ in simulated_cultures(
        seeds=args.seeds, batches=args.batches, events=args.events
    ):
        for tube in (t for b in cultures for t in b.samples):
            outcome = gate_as_configured(
                read_fcs(folder / f"{tube.sample}.fcs"), template=template, config=config
            )
            rows.extend(
                {"seed": seed, "sample": tube.sample, "day": tube.day, **r}
                for r in tube_rows(outcome, labels=tube.labels, template=template)
            )
    df = pd.DataFrame(rows)
    df["ratio"] = df["estimate_pct"] / df["truth_pct"].where(df["truth_pct"] > 0)
    print(f"{'divider':<22}{'day':>4}{'estimate %':>12}{'truth %':>9}{'ratio q1/median/q3':>22}")
    for (divider, day), sub in df.groupby(["divider", "day"], sort=False):
        q = sub["ratio"].quantile([0.25, 0.5, 0.75]).to_numpy()
        print(
            f"{divider:<22}{day:>4}{sub['estimate_pct'].median():>12.2f}"
            f"{sub['truth_pct'].median():>9.2f}{q[0]:>8.2f}{q[1]:>7.2f}{q[2]:>7.2f}"
        )
    cik = df[df["divider"] == "CD56 within CD3+"]["ratio"].dropna()
    q1, med, q3 = cik.quantile([0.25, 0.5, 0.75])
    cd3 = df[df["divider"] == "CD3"]["ratio"].dropna()
    s1, smed, s3 = cd3.quantile([0.25, 0.5, 0.75])
    spill = df[df["divider"].str.startswith("CD3 spill")]["ratio"].dropna()
    p1, pmed, p3 = spill.quantile([0.25, 0.5, 0.75])
    print(
        f"tail_ratio_median={med:.2f} tail_ratio_iqr={q1:.2f}-{q3:.2f} "
        f"cd3_ratio_median={smed:.2f} cd3_ratio_iqr={s1:.2f}-{s3:.2f} "
        f"spill_ratio_median={pmed:.2f} spill_ratio_iqr={p1:.2f}-{p3:.2f} "
        f"tubes={df[['seed', 'sample']].drop_duplicates().shape[0]}"
    )


if __name__ == "__main__":
    main()
