"""How hard a tube is: metrics computed the same way on simulated and real files.

These numbers say whether the simulator is a fair yardstick (``bench/realism.py``
prints them for the simulator's presets beside the real files in the project's
shared data). Every metric works on arrays already compensated and transformed
(logicle t=262144, w=0.5, m=4.5 by default, the default template's transform):

- :func:`valley_ratio`: density at the valley between the two main peaks of a
  marker ÷ the smaller peak's density (0 = empty valley, 1 = no valley);
- :func:`dim_share`: share of events in the middle half between those peaks;
- :func:`negative_width`: robust SD of the events below the valley (the width of
  the negative population after compensation's spreading);
- :func:`robust_cv`: robust coefficient of variation (1.4826 MAD ÷ median), used
  for the FSC-H/FSC-A ratio of the main scatter population.

The density is a histogram smoothed with a Gaussian kernel (a fixed grid keeps the
result deterministic and cheap); peaks closer than ``min_separation`` count as one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_LOGICLE",
    "REAL_RANGE",
    "Peaks",
    "density",
    "dim_share",
    "events_metrics",
    "find_peaks",
    "main_scatter_population",
    "negative_width",
    "robust_cv",
    "robust_sd",
    "tube_metrics",
]

#: grid of the density estimate (transformed units)
_GRID = (-0.2, 1.2, 561)

#: the default template's transform of fluorescence, under which the metrics are taken
DEFAULT_LOGICLE = {"type": "logicle", "t": 262144, "w": 0.5, "m": 4.5, "a": 0}

#: the range real files span per metric (``bench/realism.py`` prints their values:
#: 68983, test_comp_example, 100715 and 30 Cytek Aurora files); where one real file
#: holds the metric, the band the project set around it
REAL_RANGE: dict[str, tuple[float, float]] = {
    "cd3_valley_ratio": (0.10, 0.75),
    "cd3_dim_share": (5.0, 22.0),
    "nk_in_cd3pos_valley_ratio": (0.30, 0.70),
    "nk_negative_width": (0.12, 0.30),
    "fsc_ratio_cv": (3.5, 14.0),
}


@dataclass(frozen=True)
class Peaks:
    """The two main peaks of a 1-D distribution and the valley between them.

    Attributes
    ----------
    low, high : float
        Positions of the lower and the higher peak (transformed units).
    valley : float
        Position of the density minimum between them.
    ratio : float
        Density at the valley ÷ density of the smaller peak; 1.0 when there is
        only one peak.
    """

    low: float
    high: float
    valley: float
    ratio: float


def density(
    values: np.ndarray, *, bandwidth: float = 0.02, grid: tuple[float, float, int] = _GRID
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-smoothed histogram density of ``values``.

    Parameters
    ----------
    values : numpy.ndarray
        1-D values (transformed units).
    bandwidth : float
        SD of the Gaussian kernel (transformed units).
    grid : tuple
        (start, stop, number of points) of the evaluation grid.

    Returns
    -------
    x, d : numpy.ndarray
        Grid points and the density there (integrates to the share of values
        inside the grid).

    Examples
    --------
    >>> x, d = density(np.zeros(1000))
    >>> round(float(x[np.argmax(d)]), 2)
    0.0
    """
    start, stop, n = grid
    edges = np.linspace(start, stop, n + 1)
    x = 0.5 * (edges[:-1] + edges[1:])
    step = edges[1] - edges[0]
    counts, _ = np.histogram(values, bins=edges)
    half = int(np.ceil(4 * bandwidth / step))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * step / bandwidth) ** 2)
    kernel /= kernel.sum()
    smooth = np.convolve(counts.astype(float), kernel, mode="same")
    return x, smooth / max(len(values), 1) / step


def find_peaks(
    values: np.ndarray, *, bandwidth: float = 0.02, min_separation: float = 0.1
) -> Peaks:
    """The two highest peaks at least ``min_separation`` apart, and their valley.

    Examples
    --------
    Two equal, well separated clouds have an empty valley:

    >>> rng = np.random.default_rng(0)
    >>> v = np.concatenate([rng.normal(0.2, 0.03, 5000), rng.normal(0.7, 0.03, 5000)])
    >>> p = find_peaks(v)
    >>> round(p.low, 1), round(p.high, 1), p.ratio < 0.01
    (0.2, 0.7, True)
    """
    x, d = density(values, bandwidth=bandwidth)
    inner = (d[1:-1] >= d[:-2]) & (d[1:-1] > d[2:])
    maxima = np.flatnonzero(inner) + 1
    if maxima.size == 0:
        top = float(x[np.argmax(d)])
        return Peaks(low=top, high=top, valley=top, ratio=1.0)
    order = maxima[np.argsort(d[maxima])[::-1]]
    first = order[0]
    second = next((m for m in order[1:] if abs(x[m] - x[first]) >= min_separation), None)
    if second is None:
        top = float(x[first])
        return Peaks(low=top, high=top, valley=top, ratio=1.0)
    lo, hi = sorted((first, second))
    valley = lo + int(np.argmin(d[lo : hi + 1]))
    ratio = float(d[valley] / min(d[lo], d[hi]))
    return Peaks(low=float(x[lo]), high=float(x[hi]), valley=float(x[valley]), ratio=ratio)


def dim_share(values: np.ndarray, peaks: Peaks) -> float:
    """Share of ``values`` in the middle half between ``peaks.low`` and ``peaks.high``.

    Examples
    --------
    >>> p = Peaks(low=0.0, high=1.0, valley=0.5, ratio=0.0)
    >>> dim_share(np.array([0.0, 0.3, 0.5, 0.74, 1.0]), p)
    0.6
    """
    span = peaks.high - peaks.low
    if span <= 0:
        return float("nan")
    lo, hi = peaks.low + 0.25 * span, peaks.low + 0.75 * span
    return float(np.mean((values > lo) & (values < hi)))


def robust_sd(values: np.ndarray) -> float:
    """1.4826 × median absolute deviation (the SD of a normal distribution).

    Examples
    --------
    >>> robust_sd(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    1.4826
    """
    med = np.median(values)
    return float(1.4826 * np.median(np.abs(values - med)))


def negative_width(values: np.ndarray, peaks: Peaks) -> float:
    """Robust SD of the events below the valley: the negative population's width.

    The negative side is mirrored about its peak before the SD is taken, so that
    cutting it at the valley does not narrow it.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> v = np.concatenate([rng.normal(0.1, 0.05, 20000), rng.normal(0.8, 0.05, 2000)])
    >>> round(negative_width(v, find_peaks(v)), 2)
    0.05
    """
    below = values[values < peaks.valley]
    if below.size < 10:
        return float("nan")
    left = below[below <= peaks.low]
    mirrored = np.concatenate([left, 2 * peaks.low - left])
    return robust_sd(mirrored)


def robust_cv(values: np.ndarray) -> float:
    """Robust coefficient of variation in percent: 100 × 1.4826 MAD ÷ median.

    Examples
    --------
    >>> round(robust_cv(np.array([0.9, 1.0, 1.1])), 3)
    14.826
    """
    return float(100.0 * robust_sd(values) / np.median(values))


def main_scatter_population(
    fsc: np.ndarray, ssc: np.ndarray, *, n_components: int = 3, random_state: int = 0
) -> np.ndarray:
    """Bool mask of the largest Gaussian-mixture component on log FSC-A × log SSC-A.

    A gate-free stand-in for "lymphocytes" that works the same way on any file
    (simulated or real, any instrument), so the metrics compare like with like.

    Parameters
    ----------
    fsc, ssc : numpy.ndarray
        FSC-A and SSC-A (linear units).
    n_components : int
        Mixture components (main population, debris, the rest).
    random_state : int
        Seed of the mixture's initialisation.
    """
    from sklearn.mixture import GaussianMixture

    ok = (fsc > 0) & (ssc > 0)
    xy = np.column_stack([np.log10(fsc[ok]), np.log10(ssc[ok])])
    gm = GaussianMixture(n_components=n_components, random_state=random_state).fit(xy)
    main = int(np.argmax(gm.weights_))
    mask = np.zeros(fsc.shape, dtype=bool)
    mask[ok] = gm.predict(xy) == main
    return mask


def tube_metrics(
    *,
    cd3: np.ndarray,
    nk: np.ndarray | None = None,
    fsc_ratio: np.ndarray | None = None,
) -> dict[str, float]:
    """The difficulty metrics of one tube's main population.

    Parameters
    ----------
    cd3 : numpy.ndarray
        Transformed CD3 of the main population's events.
    nk : numpy.ndarray, optional
        Transformed NK marker (CD56, NK1.1) of the same events.
    fsc_ratio : numpy.ndarray, optional
        FSC-H ÷ FSC-A of the same events.

    Returns
    -------
    dict
        ``cd3_valley_ratio``, ``cd3_dim_share`` (percent), and where given
        ``nk_in_cd3pos_valley_ratio``, ``nk_negative_width`` (transformed units)
        and ``fsc_ratio_cv`` (percent); NaN where not measurable.
    """
    nan = float("nan")
    peaks = find_peaks(cd3)
    out = {
        "cd3_valley_ratio": peaks.ratio,
        "cd3_dim_share": 100.0 * dim_share(cd3, peaks),
        "nk_in_cd3pos_valley_ratio": nan,
        "nk_negative_width": nan,
        "fsc_ratio_cv": nan,
    }
    if nk is not None and peaks.ratio < 1.0:
        pos = nk[cd3 > peaks.valley]
        nk_peaks = find_peaks(pos)
        out["nk_in_cd3pos_valley_ratio"] = nk_peaks.ratio
        out["nk_negative_width"] = negative_width(pos, nk_peaks)
    if fsc_ratio is not None:
        out["fsc_ratio_cv"] = robust_cv(fsc_ratio[np.isfinite(fsc_ratio)])
    return out


def events_metrics(
    *,
    fsc_a: np.ndarray,
    ssc_a: np.ndarray,
    cd3: np.ndarray,
    nk: np.ndarray | None = None,
    fsc_h: np.ndarray | None = None,
) -> dict[str, float]:
    """:func:`tube_metrics` of a tube's main scatter population, the same for any file.

    Parameters
    ----------
    fsc_a, ssc_a, fsc_h : numpy.ndarray
        Scatter of every event (linear units); ``fsc_h`` optional.
    cd3, nk : numpy.ndarray
        Compensated CD3 and NK marker (CD56, NK1.1) of every event (linear units);
        transformed here with :data:`DEFAULT_LOGICLE`.
    """
    from cikflow.gating.template import make_transform

    logicle = make_transform(DEFAULT_LOGICLE)
    main = main_scatter_population(fsc_a, ssc_a)
    ratio = None
    if fsc_h is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = fsc_h[main] / fsc_a[main]
    return tube_metrics(
        cd3=logicle.apply(np.asarray(cd3[main], dtype=float)),
        nk=None if nk is None else logicle.apply(np.asarray(nk[main], dtype=float)),
        fsc_ratio=ratio,
    )
