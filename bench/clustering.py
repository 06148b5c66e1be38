"""Cost and agreement of cikflow's subsample clustering against a full k-means fit.

Simulates one day-14 tube, compensates it with the simulator's spillover,
logicle-transforms CD3, CD16 and CD56 as the default template does, and keeps
1,000,000 events × 3 markers. Then, in the same run, best of ``--repeat``
interleaved runs each:

- ``full``: scikit-learn ``KMeans(n_clusters=10, random_state=r)`` (its defaults:
  k-means++, one initialisation) fitted on all events, for r = 0 … repeat − 1;
- ``subsample k=10``: :class:`cikflow.clustering.ClusterModel` with 10 clusters
  (fit on a seeded subsample, then every event assigned);
- ``subsample k=25``: the same with the workflow's default settings (the
  over-clustering each sample gets).

Times are medians over the runs. A single full k-means run can stop in a local
optimum (its inertia says so), so the labels are compared, by the adjusted Rand
index (ARI), with the full fit of lowest inertia; the ARI against every full run
is printed too. The last line is machine-readable (``key=value`` pairs).

Usage: python bench/clustering.py [--events 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from cikflow.clustering import CLUSTERING_DEFAULTS, ClusterModel
from cikflow.gating.template import make_transform
from cikflow.simulate import CHANNELS, FLUOROCHROMES, SPILLOVER, simulate_batches

MARKERS = ("CD3", "CD16", "CD56")


def bench_values(n_events: int, *, seed: int = 3) -> np.ndarray:
    """``n_events`` × 3 transformed markers of a simulated day-14 tube."""
    # the simulator yields about n_events per tube: ask for a margin, keep the first n
    (batch,) = simulate_batches(n_batches=1, days=(14,), n_events=int(n_events * 1.1), seed=seed)
    events = batch.samples[0].events.astype(float)
    pnn = [c[0] for c in CHANNELS]
    fl = [pnn.index(d) for d in FLUOROCHROMES]
    comp = events[:, fl] @ np.linalg.inv(SPILLOVER)
    logicle = make_transform({"type": "logicle", "t": 262144, "w": 0.5, "m": 4.5, "a": 0})
    det = {m: d for d, m in CHANNELS if m}
    cols = [FLUOROCHROMES.index(det[m]) for m in MARKERS]
    values = logicle.apply(comp[:, cols])
    if len(values) < n_events:
        raise SystemExit(f"simulated {len(values)} events, fewer than {n_events}")
    return np.ascontiguousarray(values[:n_events])


def timed(run):
    start = time.perf_counter()
    out = run()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    x = bench_values(args.events)
    seed = CLUSTERING_DEFAULTS["random_state"]
    sub = CLUSTERING_DEFAULTS["subsample"]

    def full(r: int):
        km = KMeans(n_clusters=10, random_state=r).fit(x)
        return km.labels_, float(km.inertia_)

    def sub10():
        return ClusterModel(n_clusters=10, max_events=sub, random_state=seed).fit(x).predict(x)

    def sub25():
        model = ClusterModel(
            n_clusters=CLUSTERING_DEFAULTS["n_clusters"], max_events=sub, random_state=seed
        )
        return model.fit(x).predict(x)

    sub10()  # warm-up: imports, thread pools
    times: dict[str, list[float]] = {"full": [], "sub10": [], "sub25": []}
    fulls: list[tuple[float, np.ndarray]] = []
    for r in range(args.repeat):  # interleaved, so that machine load hits all alike
        t, (full_labels, inertia) = timed(lambda r=r: full(r))
        times["full"].append(t)
        fulls.append((inertia, full_labels))
        t, labels10 = timed(sub10)
        times["sub10"].append(t)
        t, _ = timed(sub25)
        times["sub25"].append(t)
    best = {k: float(np.median(v)) for k, v in times.items()}
    aris = [adjusted_rand_score(lab, labels10) for _, lab in fulls]
    ref = int(np.argmin([inertia for inertia, _ in fulls]))
    ari = aris[ref]
    ratio10 = best["sub10"] / best["full"]
    ratio25 = best["sub25"] / best["full"]
    print(f"events x markers             {x.shape[0]:,} x {x.shape[1]}")
    print(f"KMeans(10), all events       {best['full']:>8.3f} s (median of {args.repeat})")
    print(f"ClusterModel k=10, {sub:,}   {best['sub10']:>8.3f} s  ratio {ratio10:.3f}")
    print(f"ClusterModel k=25, {sub:,}   {best['sub25']:>8.3f} s  ratio {ratio25:.3f}")
    for r, ((inertia, _), a) in enumerate(zip(fulls, aris, strict=True)):
        print(f"full fit random_state={r}: inertia {inertia:.1f}, ARI with k=10 subsample {a:.4f}")
    print(f"ARI vs lowest-inertia full fit {ari:>6.4f}")
    print(
        f"events={x.shape[0]} full_s={best['full']:.3f} sub10_s={best['sub10']:.3f} "
        f"sub25_s={best['sub25']:.3f} ratio={ratio10:.3f} ratio_k25={ratio25:.3f} ari={ari:.4f}"
    )


if __name__ == "__main__":
    main()
