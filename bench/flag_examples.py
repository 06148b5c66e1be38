"""One sample report per review flag: simulated tubes that raise each, run through the workflow.

Writes a workflow folder (``--out``, default ``.flag_examples``) with its own
``config/``, simulated FCS files, and a sample sheet, then runs the whole workflow
there (``snakemake --cores 2``) and prints, for every flag of
:data:`EXPECTED`, the samples that raised it, the gate it names, its reason and
the sample report to open. The tubes:

- ``B01``-``B03``: three ``realistic`` cultures (seed 1), days 0/7/14/21 — shallow
  valleys, dividers in a flat stretch (``threshold_sensitive``), a CD56-bright NK
  shoulder the mixture cannot separate (``not_separated``), drift between days, CD56
  on CIK cells smearing below its divider on day 14 (``hidden_tail``), where T holds
  that tail and its other biases net more than 2 points (``estimated_bias``);
- ``M01``: a ``realistic`` culture (seed 5) with monocytes on day 7; they had been
  inside the lymphocyte scatter gate (``scatter_impurity``), which since the blob
  stops at its 99.95 % contour leaves them out; the ``B`` tubes' day 0 raises it;
- ``C01``: a ``realistic`` culture whose file's ``$SPILLOVER`` under-states the
  FITC (CD3) → PE (CD56) spillover by 35 % (``compensation_suspect``): the T cells
  rise in CD56, leaving no valley within CD3+ (``no_valley``), and the clusters
  disagree with the gates (``gate_cluster_discordant``);
- ``S01``: a culture of 500-event tubes (``imprecise``);
- ``J01``: a culture whose day-14 tube holds another culture's day-0 cells, a
  mislabelled tube (``implausible_jump``);
- ``H01``: a ``hard`` culture (±30 % gain drift between days, 2,000 events; CIK's CD16
  divider at its search range's bound, ``at_bound``).

Two flags no tube raises under the default template get a run of their own, in a
folder beside it (``<out>-<flag>``) with the default template changed as a QC lead
might (:data:`VARIANTS`):

- ``excluded_cells``: a lymphocyte blob of four mixture components instead of three
  takes the blasts of a ``clean`` culture (seed 23, ``X01``) for a population of their
  own and leaves them out by day 14;
- ``dying_cells``: the viability threshold at the deepest valley instead of the first
  (``pick: deepest``) counts the dying cells of a ``realistic`` culture (seed 3,
  ``D01``) live.

Exit status 1 when a flag of :data:`EXPECTED` or :data:`VARIANTS` was raised by no
sample.

Usage: python bench/flag_examples.py [--out .flag_examples] [--cores 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cikflow.io.simulated import write_simulated
from cikflow.simulate import FLUOROCHROMES, SPILLOVER, simulate_batches

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
#: flag → the tubes meant to raise it (any sample raising it counts)
EXPECTED = {
    "threshold_sensitive": "B",
    "no_valley": "C01",
    "at_bound": "H01/S01",
    "not_separated": "B",
    # no dying_cells nor excluded_cells: the default viability valley is the first above
    # the live peak, at its floor's lower end, so no dying cells lie between it and the
    # threshold; the default lymphocyte blob keeps the blasts on every tube (VARIANTS)
    "scatter_impurity": "B",
    "hidden_tail": "B",
    "estimated_bias": "B",
    "gate_cluster_discordant": "C01/H01",
    "drift": "B/H",
    "compensation_suspect": "C01",
    "imprecise": "S01",
    "implausible_jump": "J01",
}


#: flag → (tubes meant to raise it, the default template's text → a variant's, its cultures)
VARIANTS = {
    "excluded_cells": (
        "X01",
        ("params: {n_components: 3,", "params: {n_components: 4,"),
        {"seed": 23, "preset": "clean"},
    ),
    "dying_cells": (
        "D01",
        ("pick: first, ", "pick: deepest, "),
        {"seed": 3, "preset": "realistic"},
    ),
}


def _renamed(batch, prefix: str):
    """The batch with its name and its samples' names starting with ``prefix``."""
    samples = []
    for s in batch.samples:
        name = prefix + s.sample[3:]
        truth = [{**row, "sample": name, "batch": prefix} for row in s.truth]
        sheet = {**s.sheet, "sample": name, "batch": prefix, "fcs": f"{name}.fcs"}
        samples.append(replace(s, sample=name, batch=prefix, sheet=sheet, truth=truth))
    return replace(batch, batch=prefix, samples=samples)


def _spill_keyword(spill: np.ndarray) -> str:
    values = ",".join(f"{v:.6g}" for v in spill.ravel())
    return f"{len(FLUOROCHROMES)},{','.join(FLUOROCHROMES)},{values}"


def simulate_examples() -> list:
    """The example cultures (see the module's notes)."""
    natural = simulate_batches(n_batches=3, seed=1, preset="realistic")
    (comp,) = simulate_batches(n_batches=1, seed=2, preset="realistic")
    written = SPILLOVER.copy()
    written[0, 1] *= 0.65  # FITC → PE under-stated: CD3+ cells rise in CD56
    comp = _renamed(comp, "C01")
    comp = replace(
        comp,
        samples=[
            replace(s, keywords={**s.keywords, "$SPILLOVER": _spill_keyword(written)})
            for s in comp.samples
        ],
    )
    (small,) = simulate_batches(n_batches=1, seed=3, n_events=500, preset="realistic")
    jump, other = simulate_batches(n_batches=2, seed=4, preset="realistic")
    jump = _renamed(jump, "J01")
    swapped = [
        replace(s, events=other.samples[0].events, labels=other.samples[0].labels)
        if s.day == 14
        else s
        for s in jump.samples
    ]
    (hard,) = simulate_batches(n_batches=1, seed=1, preset="hard")
    (monocytes,) = simulate_batches(n_batches=1, seed=5, preset="realistic")
    return [
        *natural,
        _renamed(monocytes, "M01"),
        comp,
        _renamed(small, "S01"),
        replace(jump, samples=swapped),
        _renamed(hard, "H01"),
    ]


def write_run_dir(out: Path, *, cultures: list, template_edit: tuple[str, str] | None = None):
    """The workflow folder: config, templates, release spec, FCS files, sample sheet.

    ``template_edit``: ``(old, new)`` text replaced once in the default template.
    """
    if out.exists():
        shutil.rmtree(out)
    for sub in ("gating", "release"):
        shutil.copytree(REPO / "config" / sub, out / "config" / sub)
    if template_edit is not None:
        path = out / "config" / "gating" / "cik_default.yaml"
        text = path.read_text(encoding="utf-8")
        if text.count(template_edit[0]) != 1:
            raise SystemExit(f"the default template no longer holds {template_edit[0]!r} once")
        path.write_text(text.replace(*template_edit), encoding="utf-8")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(samples="config/samples.tsv")
    (out / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    sheet = write_simulated(cultures, out / "data", fcs_prefix="data/")
    sheet.to_csv(out / "config" / "samples.tsv", sep="\t", index=False)


def run_workflow(out: Path, *, cores: int) -> pd.DataFrame:
    """Run the whole workflow in ``out``; its ``results/flags.tsv``."""
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(out)]
    print("running the workflow:", " ".join([*cmd, "--cores", str(cores)]), flush=True)
    subprocess.run([*cmd, "--cores", str(cores), "--quiet"], check=True)
    return pd.read_csv(out / "results" / "flags.tsv", sep="\t", dtype=str).fillna("")


def _show(flag: str, meant: str, flags: pd.DataFrame, out: Path) -> bool:
    """Print the samples that raised ``flag``, its first reason and report; whether any."""
    rows = flags[flags["flag"] == flag]
    if rows.empty:
        print(f"{flag:<24} {meant:<9} {'(none)':<40}")
        return False
    samples = ",".join(sorted(set(rows["sample"])))
    meant_rows = rows[rows["sample"].str.startswith(tuple(meant.split("/")))]
    first = (meant_rows if not meant_rows.empty else rows).iloc[0]
    print(f"{flag:<24} {meant:<9} {samples[:40]:<40} {first.get('gate', '')}")
    print(f"    {first['sample']}: {first['reason'][:160]}")
    report = out / "results" / "report" / "samples" / f"{first['sample']}.html"
    print(f"    report: {report if report.exists() else '(no sample report)'}")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / ".flag_examples")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    out = args.out.resolve()
    print(f"writing the example cultures to {out}", flush=True)
    write_run_dir(out, cultures=simulate_examples())
    runs = [(EXPECTED, run_workflow(out, cores=args.cores), out)]
    for flag, (meant, edit, culture) in VARIANTS.items():
        folder = out.with_name(f"{out.name}-{flag}")
        print(f"writing {meant} to {folder} (template: {edit[0]!r} -> {edit[1]!r})", flush=True)
        (batch,) = simulate_batches(n_batches=1, **culture)
        write_run_dir(folder, cultures=[_renamed(batch, meant)], template_edit=edit)
        runs.append(({flag: meant}, run_workflow(folder, cores=args.cores), folder))
    missing = []
    print(f"\n{'flag':<24} {'meant for':<9} {'samples':<40} gate / first reason")
    for expected, flags, folder in runs:
        missing += [f for f, meant in expected.items() if not _show(f, meant, flags, folder)]
    total = len(EXPECTED) + len(VARIANTS)
    print(f"\nflags_raised={total - len(missing)} of {total}", end="")
    print(f" missing={','.join(missing) or '-'}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
