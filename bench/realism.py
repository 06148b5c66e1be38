"""How hard the simulator's tubes are, beside real files, measured the same way.

For every tube, simulated or real: compensate with the file's own matrix (the
matrix in the file: what a lab has, not the simulator's true spillover), apply the
default template's logicle (t=262144, w=0.5, m=4.5), take the main scatter
population (largest Gaussian-mixture component on log FSC-A × log SSC-A), and
compute ``cikflow.realism.tube_metrics``:

- ``cd3_valley_ratio``: CD3 density at the valley ÷ the smaller peak;
- ``cd3_dim_share``: % of events in the middle half between the CD3 peaks;
- ``nk_in_cd3pos_valley_ratio``: the same for the NK marker within CD3+ events;
- ``nk_negative_width``: robust SD of that NK marker's negative population;
- ``fsc_ratio_cv``: robust CV (%) of FSC-H ÷ FSC-A.

Real files (``../shared/data``, used in place): ``flowsom-68983/68983.fcs`` (mouse
NK1.1 / CD3), ``flowkit-comp/test_comp_example.fcs`` (its matrix from
``comp_complete_example.csv``), ``flowkit-comp/100715.fcs`` and the 30 Cytek
Aurora files of ``flowjo-wsp-coereba`` (1,000 events each; pooled per metric as
median and range). Simulated: ``--batches`` cultures × days 0/7/14/21 per preset.

Each simulated metric's median is checked against the real range
(``cikflow.realism.REAL_RANGE``, from the real files below); the last line is
machine-readable: ``preset=<p> inside=<k>/<n>`` per preset.

Usage: python bench/realism.py [--presets clean realistic hard] [--events 30000]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from cikflow.io import read_fcs
from cikflow.preprocess import compensate, spillover_matrix
from cikflow.realism import REAL_RANGE, events_metrics
from cikflow.simulate import PRESETS, simulate_batches

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
METRICS = (
    "cd3_valley_ratio",
    "cd3_dim_share",
    "nk_in_cd3pos_valley_ratio",
    "nk_negative_width",
    "fsc_ratio_cv",
)


def _metrics_of(path: Path, *, cd3: str, nk: str | None, matrix_csv: str | None = None) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fcs = read_fcs(path)
        source = "file" if matrix_csv else "fcs"
        matrix, _ = spillover_matrix(fcs, source=source, matrix_csv=matrix_csv)
        comp = compensate(fcs, matrix)
    col = {name: i for i, name in enumerate(fcs.pnn)}
    col.update({label: i for i, label in enumerate(fcs.pns) if label.strip()})
    return events_metrics(
        fsc_a=comp[:, col["FSC-A"]],
        ssc_a=comp[:, col["SSC-A"]],
        fsc_h=comp[:, col["FSC-H"]] if "FSC-H" in col else None,
        cd3=comp[:, col[cd3]],
        nk=comp[:, col[nk]] if nk else None,
    )


def real_metrics() -> list[tuple[str, dict]]:
    """(name, metrics) of every real file present, pooled Aurora files last."""
    out = []
    files = [
        ("68983 (NK1.1/CD3)", SHARED / "flowsom-68983" / "68983.fcs", "CD3", "NK1/1", None),
        ("100715 (CD3)", SHARED / "flowkit-comp" / "100715.fcs", "CD3", None, None),
        (
            "test_comp_example (CD3)",
            SHARED / "flowkit-comp" / "test_comp_example.fcs",
            "CD3",
            None,
            SHARED / "flowkit-comp" / "comp_complete_example.csv",
        ),
    ]
    for name, path, cd3, nk, csv in files:
        if path.is_file():
            text = csv.read_text() if csv else None
            out.append((name, _metrics_of(path, cd3=cd3, nk=nk, matrix_csv=text)))
    aurora = sorted((SHARED / "flowjo-wsp-coereba").glob("*.fcs"))
    if aurora:
        rows = [_metrics_of(p, cd3="CD3", nk=None) for p in aurora]
        pooled = {}
        for m in METRICS:
            vals = np.array([r[m] for r in rows], dtype=float)
            vals = vals[np.isfinite(vals)]
            pooled[m] = (
                (float(np.median(vals)), float(vals.min()), float(vals.max()))
                if vals.size
                else float("nan")
            )
        out.append((f"Aurora x{len(aurora)} (CD3) median [min-max]", pooled))
    return out


def simulated_metrics(preset: str, *, n_batches: int, n_events: int, seed: int) -> list[dict]:
    """Metrics of every simulated tube of ``preset``."""
    rows = []
    for batch in simulate_batches(n_batches=n_batches, n_events=n_events, seed=seed, preset=preset):
        for tube in batch.samples:
            # compensated with the matrix written in the file, as for a real file
            m = events_metrics(
                fsc_a=tube.channel("FSC-A"),
                ssc_a=tube.channel("SSC-A"),
                fsc_h=tube.channel("FSC-H"),
                cd3=tube.channel("CD3", compensated=True),
                nk=tube.channel("CD56", compensated=True),
            )
            rows.append({"tube": tube.sample, **m})
    return rows


def _fmt(value: object) -> str:
    if isinstance(value, tuple):
        med, lo, hi = value
        return f"{med:.3g} [{lo:.3g}-{hi:.3g}]"
    return "-" if not np.isfinite(value) else f"{value:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--events", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=20120801)
    args = parser.parse_args()

    width = 30
    header = f"{'tube':<{width}}" + "".join(f"{m:>27}" for m in METRICS)
    print("real files (../shared/data)")
    print(header)
    for name, m in real_metrics():
        print(f"{name:<{width}}" + "".join(f"{_fmt(m[k]):>27}" for k in METRICS))
    print(
        f"{'real range (bench check)':<{width}}"
        + "".join(f"{f'{lo:g}-{hi:g}':>27}" for lo, hi in (REAL_RANGE[k] for k in METRICS))
    )
    summary = []
    for preset in args.presets:
        rows = simulated_metrics(
            preset, n_batches=args.batches, n_events=args.events, seed=args.seed
        )
        print(f"\npreset {preset}")
        print(header)
        for r in rows:
            print(f"{r['tube']:<{width}}" + "".join(f"{_fmt(r[k]):>27}" for k in METRICS))
        inside, total, cells = 0, 0, []
        for k in METRICS:
            vals = np.array([r[k] for r in rows], dtype=float)
            med = float(np.nanmedian(vals))
            lo, hi = REAL_RANGE[k]
            ok = lo <= med <= hi
            inside += ok
            total += 1
            cells.append(f"{med:.3g} {'in' if ok else 'OUT'}")
        print(f"{'median (vs real range)':<{width}}" + "".join(f"{c:>27}" for c in cells))
        summary.append(f"preset={preset} inside={inside}/{total}")
    print()
    for line in summary:
        print(line)


if __name__ == "__main__":
    main()
