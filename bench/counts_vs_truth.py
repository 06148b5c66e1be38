"""Absolute counts, fold expansion and dose of a finished demo run against the simulator's truth.

Run the demo first (``snakemake --cores 4`` writes ``results/`` and ``data/demo/``), then:

    python bench/counts_vs_truth.py [WORKDIR]

Prints the relative error (%) of cells/µL and of fold expansion per batch, day and
population (T, CIK, NK; gate rows), the bead events per tube, the CIK dose per kg at
harvest against the truth (truth.tsv total CIK cells on the last day ÷ weight), and
each batch's release verdicts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

KEY = ["T", "CIK", "NK"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", nargs="?", default=".", help="folder holding results/")
    root = Path(parser.parse_args().workdir)
    read = lambda p: pd.read_csv(root / p, sep="\t")  # noqa: E731
    summary, truth = read("results/summary.tsv"), read("data/demo/truth.tsv")
    sheet = read("data/demo/samples.tsv")
    if "method" in summary.columns:
        summary = summary[summary["method"] == "gate"]
    day0 = truth[truth["day"] == 0].set_index(["batch", "population"])["total_cells"]
    truth = truth.assign(
        fold=[t / day0[(b, p)] for b, p, t in truth[["batch", "population", "total_cells"]].values]
    )
    m = summary[summary["population"].isin(KEY)].merge(
        truth[["sample", "population", "cells_per_uL", "fold"]],
        on=["sample", "population"],
        suffixes=("", "_truth"),
    )
    m["cells_per_uL_error_pct"] = 100 * (m["cells_per_uL"] / m["cells_per_uL_truth"] - 1)
    m["fold_error_pct"] = 100 * (m["fold_expansion"] / m["fold"] - 1)
    for column, title in (
        ("cells_per_uL_error_pct", "cells/µL vs truth, relative error (%)"),
        ("fold_error_pct", "fold expansion vs truth, relative error (%)"),
    ):
        print(title)
        print(m.pivot_table(index=["batch", "day"], columns="population", values=column).round(2))
        print(f"max |error| {m[column].abs().max():.2f} %\n")
    beads = m.drop_duplicates("sample").set_index("sample")["bead_events"].astype(int)
    print("bead events per tube:", beads.to_dict(), "\n")
    print("CIK dose at harvest (cells/kg)")
    for batch, rows in truth[truth["population"] == "CIK"].groupby("batch"):
        last = rows[rows["day"] == rows["day"].max()]["total_cells"].iloc[0]
        weight = sheet.loc[sheet["batch"] == batch, "weight_kg"].iloc[0]
        harvest = read(f"results/batch/{batch}/harvest.tsv").set_index("metric")
        dose = harvest.loc["CIK_cells_per_kg", "value"]
        print(
            f"  {batch}: pipeline {dose:.4g}, truth {last / weight:.4g}, "
            f"error {100 * (dose / (last / weight) - 1):+.2f} %"
        )
    release = read("results/release.tsv")
    print("\nrelease verdicts")
    for batch, rows in release.groupby("batch"):
        detail = ", ".join(
            f"{c}={v}" for c, v in zip(rows["criterion"], rows["verdict"], strict=True)
        )
        print(f"  {batch}: {rows['batch_verdict'].iloc[0]} ({detail})")


if __name__ == "__main__":
    main()
