"""Data-driven gate estimators, fitted per sample on the parent population.

Every estimator follows the scikit-learn estimator contract: hyper-parameters in
``__init__``, ``fit(values)`` returns ``self``, learned state ends in ``_``, and
randomness comes from ``random_state``. They work in the scale they are given —
the gate's transformed scale (logicle for fluorescence), where a density valley
between a negative and a positive population is a meaningful place for a
threshold — and never touch files, flowkit or plotting. Each records *why* it
is unsure in ``flags_`` (``no_valley``, ``at_bound``, ``low_events`` …), as the
domain's confidence flags require.

The 1-D density is a histogram smoothed with a Gaussian kernel (a binned kernel
density estimate). scipy's ``gaussian_kde`` evaluates every event against every
grid point, which costs seconds on a million events; binning first is the
standard fast approximation and changes the valley position by less than a bin.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.gating.edges import balanced_edge, negatives_begin

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "HELD_MAX_SHARE",
    "MIN_FIT_EVENTS",
    "Flag",
    "MixtureThreshold",
    "QuantileThreshold",
    "TailThreshold",
    "ValleyThreshold",
    "make_threshold",
    "smoothed_density",
]

#: fewest events a gate is fitted on
MIN_FIT_EVENTS = 20
#: least events on each side of a valley (fewer make a bump, not a mode)
_MIN_MODE_EVENTS = 10
#: a count-balanced edge held at the search range's bound is flagged when more than this
#: share of the fitted events lies between the edge and the bound (what the bound
#: decides): the 1-point limit of ``threshold_sensitive``
HELD_MAX_SHARE = 0.01


@dataclass(frozen=True)
class Flag:
    """A confidence flag raised while fitting a gate.

    Attributes
    ----------
    flag : str
        Its code (``no_valley``, ``at_bound`` …).
    reason : str
        Why; ``{0}``, ``{1}`` … stand for ``values`` when there are any.
    values : tuple of float
        Coordinates the reason names, in the estimator's (transformed) units, so the
        fit can write them in the template's data units (:meth:`text`).

    Examples
    --------
    >>> f = Flag("at_bound", "threshold {0} at [{1}, {2}]", (0.5, 0.5, 0.9))
    >>> f.text()
    'threshold 0.5 at [0.5, 0.9]'
    >>> f.text(lambda v: v * 100000)
    'threshold 50,000 at [50,000, 90,000]'
    """

    flag: str
    reason: str
    values: tuple[float, ...] = ()

    def text(self, convert: Callable[[np.ndarray], np.ndarray] | None = None) -> str:
        """The reason with its values, converted by ``convert`` (to data units) when given."""
        if not self.values:
            return self.reason
        values = np.asarray(self.values, dtype=float)
        if convert is not None:
            values = np.asarray(convert(values), dtype=float)
        return self.reason.format(*(f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}" for v in values))


def _subsample(values: np.ndarray, max_events: int, random_state: int) -> np.ndarray:
    if len(values) <= max_events:
        return values
    rng = np.random.default_rng(random_state)
    return values[rng.choice(len(values), size=max_events, replace=False)]


def smoothed_density(
    values: np.ndarray,
    *,
    lo: float,
    hi: float,
    bins: int = 256,
    bandwidth: float = 0.012,
) -> tuple[np.ndarray, np.ndarray]:
    """Binned Gaussian kernel density of ``values`` on ``[lo, hi]``.

    Parameters
    ----------
    values : numpy.ndarray
        1-D sample (transformed units).
    lo, hi : float
        Grid range.
    bins : int
        Grid points.
    bandwidth : float
        Kernel standard deviation, in the units of ``values``.

    Returns
    -------
    centers, density : numpy.ndarray
        Grid centres and the density there (integrates to the fraction of
        ``values`` inside the range).

    Examples
    --------
    >>> x, d = smoothed_density(np.zeros(1000), lo=-1, hi=1, bins=201, bandwidth=0.1)
    >>> round(float(x[np.argmax(d)]), 3)
    0.0
    """
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    width = edges[1] - edges[0]
    sigma = max(bandwidth / width, 1e-9)
    half = int(np.ceil(4 * sigma))
    offsets = np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    density = np.convolve(counts.astype(float), kernel, mode="same")
    total = max(len(values), 1)
    return (edges[:-1] + edges[1:]) / 2, density / (total * width)


class _Threshold:
    """Shared plumbing of 1-D threshold estimators."""

    threshold_: float
    flags_: list[Flag]
    method_: str

    def _check(self, values: np.ndarray) -> np.ndarray | None:
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        self.flags_ = []
        self.n_events_ = len(values)
        if len(values) < MIN_FIT_EVENTS:
            self.flags_.append(
                Flag("low_events", f"{len(values)} events to fit on (< {MIN_FIT_EVENTS})")
            )
            return None
        return values

    fallback: str | float = "quantile"
    fallback_quantile: float = 0.5

    def _fallback(self, values: np.ndarray | None, lo: float, hi: float) -> float:
        """The threshold without a fit: ``fallback`` within ``[lo, hi]``."""
        if isinstance(self.fallback, int | float):
            return float(self.fallback)
        if self.fallback == "lower":
            return lo
        if self.fallback == "upper":
            return hi
        if values is None or len(values) == 0:
            return (lo + hi) / 2
        return float(np.clip(np.quantile(values, self.fallback_quantile), lo, hi))

    def _prepare(self, values: np.ndarray, *, method: str) -> tuple[float, float, Any]:
        """The search bounds and a seeded subsample to fit on (None: fallback taken)."""
        self.method_ = method
        lo, hi = (float(v) for v in self.search)
        checked = self._check(values)
        if checked is None:
            self.threshold_ = self._fallback(None, lo, hi)
            return lo, hi, None
        return lo, hi, _subsample(checked, self.max_events, self.random_state)

    def _at_bound(
        self, lo: float, hi: float, *, edge: float | None = None, sample: np.ndarray | None = None
    ) -> None:
        """Flag ``at_bound`` when the threshold is within 1 % of the range's width of a bound.

        ``edge``: where a count-balanced edge the search range held the threshold above
        lies (:class:`ValleyThreshold` with ``negative_edge``), named in the reason. The
        data placed such a threshold, the bound only held it: it is flagged when more
        than ``HELD_MAX_SHARE`` of ``sample`` (the fitted events) lies between the two.
        """
        if min(self.threshold_ - lo, hi - self.threshold_) > 0.01 * (hi - lo):
            return
        if edge is not None and edge < self.threshold_:
            held = float(np.mean((sample >= edge) & (sample < self.threshold_)))
            if held <= HELD_MAX_SHARE:
                return
            reason = (
                "threshold {0} held at the search range [{1}, {2}]: the count-balanced "
                f"edge lies below it, at {{3}}, and {held:.1%} of the events between"
            )
            self.flags_.append(Flag("at_bound", reason, (self.threshold_, lo, hi, edge)))
            return
        reason = "threshold {0} at the search range [{1}, {2}]"
        self.flags_.append(Flag("at_bound", reason, (self.threshold_, lo, hi)))


def _named(fallback: str | float) -> str:
    """A fallback as a message names it: ``'quantile'``, or a number to 3 digits."""
    return f"{fallback:.3g}" if isinstance(fallback, int | float) else f"'{fallback}'"


class ValleyThreshold(_Threshold):
    """Threshold at the density minimum between a negative and a positive mode.

    The valley is searched only inside ``search`` (transformed units). A valley
    must lie between two modes and be clearly lower than the smaller of them
    (``max_depth_ratio``). Without one, the threshold falls back to
    ``fallback``: ``"quantile"`` (the ``fallback_quantile`` of the events),
    ``"lower"``/``"upper"`` (a bound of the search range) or a number; the
    ``no_valley`` flag says so. A threshold within 1 % of the search range's
    width from its bounds raises ``at_bound``. A valley needs at least ten events on
    each side: fewer make a bump, not a mode.

    Parameters
    ----------
    search : tuple of float
        ``(low, high)`` range the threshold may take.
    bandwidth : float
        Kernel width of the density (transformed units).
    max_depth_ratio : float
        Valley density ÷ smaller neighbouring peak must be below this.
    fallback : str or float
        What to use when there is no valley.
    fallback_quantile : float
        Quantile used by the ``"quantile"`` fallback.
    pick : {"deepest", "first"}
        Which valley when there are several: the deepest, or the first above the
        highest mode (a viability dye: the valley right above the live cells, not
        the one between dying and dead cells).
    floor : {"middle", "lower"}, optional
        Where on a flat valley floor: its middle, or its lower end (where the upper
        population's smear down into the valley ends: CD56 on CIK cells rising out of
        the T cells). ``"lower"`` when not given and ``pick`` is ``"first"``.
    intermediate_flag : str, optional
        Flag raised when intermediate staining is counted low (see ``_intermediate``).
    intermediate_max_share : float
        Share of the events above which it is raised.
    max_events : int
        Fit on a seeded subsample of at most this many events.
    random_state : int
        Seed of the subsample.
    negative_edge : bool
        No higher than the count-balanced edge
        (:func:`cikflow.gating.edges.balanced_edge`): a positive population smearing
        down into the valley is counted, not cut at a flat stretch's middle. Where
        there is no valley, the edge below the fallback places the divider when the
        negatives have a peak of their own (ten events at least): no ``no_valley``.

    Attributes
    ----------
    threshold_ : float
        The threshold (transformed units).
    placed_ : {"valley", "valley edge", "edge", "fallback"}
        What placed it: a valley, the count-balanced edge below a valley, the
        count-balanced edge where there is no valley, or the fallback.
    held_edge_ : float or None
        The count-balanced edge below the search range, where its bound held it.
    """

    def __init__(
        self,
        *,
        search: tuple[float, float],
        bandwidth: float = 0.012,
        max_depth_ratio: float = 0.8,
        fallback: str | float = "quantile",
        fallback_quantile: float = 0.5,
        pick: str = "deepest",
        floor: str | None = None,
        intermediate_flag: str | None = None,
        intermediate_max_share: float = 0.03,
        max_events: int = 100_000,
        random_state: int = 0,
        negative_edge: bool = False,
    ) -> None:
        self.search = search
        self.negative_edge = negative_edge
        self.bandwidth = bandwidth
        self.max_depth_ratio = max_depth_ratio
        self.fallback = fallback
        self.fallback_quantile = fallback_quantile
        self.pick = pick
        self.floor = floor or ("lower" if pick == "first" else "middle")
        self.intermediate_flag = intermediate_flag
        self.intermediate_max_share = intermediate_max_share
        self.max_events = max_events
        self.random_state = random_state

    def _intermediate(
        self,
        sample: np.ndarray,
        x: np.ndarray,
        density: np.ndarray,
        valleys: tuple[int | None, int | None, int | None],
    ) -> None:
        """Intermediate staining: its share, and a flag when the threshold counts it low.

        ``valleys`` are the first valley above the main peak, the deepest and the one
        chosen. ``intermediate_share_``: events from the lowest of them to where the
        highest mode above falls to half its height (a viability dye's dying cells
        between the live and the dead peaks). ``intermediate_flag`` is raised when more
        than ``intermediate_max_share`` of the events lie between the first valley and
        the chosen threshold: intermediate events the threshold counts with the lower
        (live) population, where the first valley would not.
        """
        self.intermediate_share_ = 0.0
        first, deepest, chosen = valleys
        below = first is not None and chosen is not None and first < chosen
        self.first_valley_ = float(x[first]) if below else None  # below the chosen one
        found = [i for i in (first, deepest) if i is not None]
        if not found:
            return
        start = min(found)
        upper = start + int(np.argmax(density[start:]))
        end = upper
        while end > start and density[end] > density[upper] / 2:
            end -= 1
        self.intermediate_share_ = float(
            np.mean((sample >= x[start]) & (sample < x[end])) if end > start else 0.0
        )
        if not self.intermediate_flag or first is None or chosen is None or chosen <= first:
            return
        counted = float(np.mean((sample >= x[first]) & (sample < x[chosen])))
        if counted > self.intermediate_max_share:
            self.flags_.append(
                Flag(
                    self.intermediate_flag,
                    f"{counted:.1%} of the events stain between the first valley above the "
                    "main peak ({0}) and the threshold ({1}): intermediate staining counted "
                    f"with the lower population (limit {self.intermediate_max_share:.0%}); "
                    f"{self.intermediate_share_:.1%} stain between the valley and the upper "
                    "population",
                    (float(x[first]), float(x[chosen])),
                )
            )

    def fit(self, values: np.ndarray) -> ValleyThreshold:
        """Find the valley in ``values`` (1-D, transformed units)."""
        lo, hi, sample = self._prepare(values, method="valley")
        if sample is None:
            return self
        span = hi - lo
        grid_lo = min(lo - span, float(np.quantile(sample, 0.001)))
        grid_hi = max(hi + span, float(np.quantile(sample, 0.999)))
        x, density = smoothed_density(sample, lo=grid_lo, hi=grid_hi, bandwidth=self.bandwidth)
        inside = np.flatnonzero((x >= lo) & (x <= hi))
        candidates = []  # local minima clearly lower than the smaller neighbouring peak
        ordered = np.sort(sample)
        for i in inside:
            if i == 0 or i == len(x) - 1:  # a grid end is no minimum (a narrow search range)
                continue
            if not (density[i] <= density[i - 1] and density[i] <= density[i + 1]):
                continue
            below_n = int(np.searchsorted(ordered, x[i]))
            if min(below_n, len(ordered) - below_n) < _MIN_MODE_EVENTS:
                continue  # a handful of stray events is no population of its own
            left, right = density[: i + 1].max(), density[i:].max()
            if min(left, right) > 0 and density[i] / min(left, right) < self.max_depth_ratio:
                candidates.append(int(i))
        peak = int(np.argmax(density))
        above = [i for i in candidates if i > peak]
        first = min(above) if above else None
        deepest = min(candidates, key=lambda i: density[i]) if candidates else None
        best = first if self.pick == "first" and first is not None else deepest
        self._intermediate(sample, x, density, (first, deepest, best))
        free = None  # a count-balanced edge below the search range, held at its bound
        self.placed_ = "valley"
        if best is None:
            self.threshold_ = self._fallback(sample, lo, hi)
            self.placed_ = "fallback"
            if self.negative_edge:  # a smear without a valley: no higher than its edge
                at = min(int(np.searchsorted(x, self.threshold_)), len(x) - 1)
                edge, free = _edge(x, density, valley=at, start=int(inside[0]))
                half = negatives_begin(density, at)
                own = half is not None and np.searchsorted(ordered, x[half]) >= _MIN_MODE_EVENTS
                if edge < at and own:
                    # the edge of the smear above the negatives' own peak (ten events at
                    # least, as a valley's side) placed it: a divider the data gave, for
                    # the very case of no valley (CD3 by day 21, when the CD3-dim T cells
                    # fill the stretch to the few CD3− cells), not the template's
                    # fallback; no ``no_valley``
                    self.threshold_, self.placed_ = float(x[edge]), "edge"
                    self._at_bound(lo, hi, edge=free, sample=sample)
                    self.held_edge_ = free
                    return self
                free = None
            numeric = isinstance(self.fallback, int | float)
            fallback = "{2}" if numeric else _named(self.fallback)
            values = (lo, hi, *((float(self.fallback),) if numeric else ()), self.threshold_)
            self.flags_.append(
                Flag(
                    "no_valley",
                    f"one mode only inside the search range [{{0}}, {{1}}]; "
                    f"fallback {fallback} gives {{{len(values) - 1}}}",
                    values,
                )
            )
        else:
            # a flat valley floor (an empty gap, or a plateau of intermediate staining
            # such as dying cells'): its middle, or its lower end (``floor="lower"``)
            floor = density[best] * 1.05 + 1e-12
            lo_i, hi_i = best, best
            while lo_i - 1 >= inside[0] and density[lo_i - 1] <= floor:
                lo_i -= 1
            while hi_i + 1 <= inside[-1] and density[hi_i + 1] <= floor:
                hi_i += 1
            best = lo_i if self.floor == "lower" else (lo_i + hi_i) // 2
            if self.negative_edge:
                edge, free = _edge(x, density, valley=best, start=int(inside[0]))
                if edge < best:
                    best, self.placed_ = edge, "valley edge"
            self.threshold_ = float(x[best])
            self.depth_ratio_ = float(
                density[best] / min(density[: best + 1].max(), density[best:].max())
            )
        self._at_bound(lo, hi, edge=free, sample=sample)
        self.held_edge_ = free
        return self


def _edge(
    x: np.ndarray, density: np.ndarray, *, valley: int, start: int
) -> tuple[int, float | None]:
    """The count-balanced edge no lower than ``start``, and where it lies if that held it.

    Returns ``(index, free)``: the edge's grid index
    (:func:`cikflow.gating.edges.balanced_edge`), and the edge without the lower limit
    (transformed units) where ``start`` stopped it, else None.
    """
    edge = balanced_edge(x, density, valley=valley, start=start)
    if edge > start:
        return edge, None
    free = balanced_edge(x, density, valley=valley, start=0)
    return edge, float(x[free]) if free < start else None


class MixtureThreshold(_Threshold):
    """Threshold where a two-component Gaussian mixture's posteriors cross.

    For a population that is a shoulder of another rather than a separate mode
    (CD56-bright NK cells beside the CD56-dim ones: a minor component a few
    spreads away makes no density valley), a valley search finds nothing; a
    mixture (:class:`sklearn.mixture.GaussianMixture`, seeded) still places the
    boundary between the two components. ``not_separated`` is raised (the
    crossing is kept, as the best guess there is) when the components overlap
    (Ashman's D = √2·|μ₁ − μ₂| / √(σ₁² + σ₂²) below ``min_separation``) or the
    smaller holds less than ``min_weight`` of the events; ``at_bound`` as for the
    valley. The default 1.5 accepts a shoulder (two equal Gaussians are bimodal only
    from D = 2): on ``realistic`` NK cells D ran 2.9-3.6, on ``hard`` 0.9-4.2.

    Parameters
    ----------
    search : tuple of float
        ``(low, high)`` range the threshold may take (transformed units).
    min_separation : float
        Least Ashman's D of the two components.
    min_weight : float
        Least share of events in the smaller component.
    fallback, fallback_quantile
        As for :class:`ValleyThreshold`, used with too few events to fit.
    max_events, random_state : int
        Fit on a subsample of at most this many events; seed of it and the mixture.
    """

    def __init__(
        self,
        *,
        search: tuple[float, float],
        min_separation: float = 1.5,
        min_weight: float = 0.02,
        fallback: str | float = "quantile",
        fallback_quantile: float = 0.5,
        max_events: int = 20_000,
        random_state: int = 0,
    ) -> None:
        self.search, self.min_separation, self.min_weight = search, min_separation, min_weight
        self.fallback, self.fallback_quantile = fallback, fallback_quantile
        self.max_events, self.random_state = max_events, random_state

    def fit(self, values: np.ndarray) -> MixtureThreshold:
        """Fit the mixture on ``values`` (1-D, transformed units)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture

        lo, hi, sample = self._prepare(values, method="mixture")
        if sample is None:
            return self
        # EM stops early on a shoulder at the default tolerance; in 1-D a tight one is cheap
        gmm = GaussianMixture(2, tol=1e-7, max_iter=1000, random_state=self.random_state)
        with warnings.catch_warnings():  # not converging is flagged below
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(sample[:, None])
        order = np.argsort(gmm.means_[:, 0])
        mu, weight = gmm.means_[order, 0], gmm.weights_[order]
        sd = np.sqrt(gmm.covariances_.reshape(2, -1)[order, 0])
        self.separation_ = float(np.sqrt(2) * (mu[1] - mu[0]) / np.hypot(sd[0], sd[1]))
        self.weights_ = (float(weight[0]), float(weight[1]))
        grid = np.linspace(mu[0], mu[1], 512)
        upper = gmm.predict_proba(grid[:, None])[:, order[1]]
        crossing = grid[np.argmax(upper >= 0.5)] if (upper >= 0.5).any() else mu[1]
        self.threshold_ = float(np.clip(crossing, lo, hi))
        split = self.separation_ >= self.min_separation and weight.min() >= self.min_weight
        if not (split and gmm.converged_):
            why = f"two-component mixture{'' if gmm.converged_ else ' (not converged)'}: "
            why += f"separation (Ashman's D) {self.separation_:.2f} (least "
            why += f"{self.min_separation:g}), smaller component {weight.min():.1%} (least "
            why += f"{self.min_weight:.0%}); the components' crossing {{0}} is a guess"
            self.flags_.append(Flag("not_separated", why, (self.threshold_,)))
        self._at_bound(lo, hi)
        return self


class QuantileThreshold(_Threshold):
    """Threshold at a quantile of the events, clipped to ``bounds``.

    Parameters
    ----------
    quantile : float
        In [0, 1].
    bounds : tuple of float, optional
        ``(low, high)`` the threshold is clipped to (``at_bound`` if it is).
    """

    def __init__(self, *, quantile: float, bounds: tuple[float, float] | None = None) -> None:
        self.quantile = quantile
        self.bounds = bounds

    def fit(self, values: np.ndarray) -> QuantileThreshold:
        """Compute the quantile of ``values``."""
        self.method_ = "quantile"
        checked = self._check(values)
        lo, hi = self.bounds if self.bounds is not None else (-np.inf, np.inf)
        if checked is None:
            self.threshold_ = float(lo if np.isfinite(lo) else 0.0)
            return self
        raw = float(np.quantile(checked, self.quantile))
        self.threshold_ = float(np.clip(raw, lo, hi))
        if self.threshold_ != raw:
            self.flags_.append(
                Flag("at_bound", "quantile {0} clipped to [{1}, {2}]", (raw, lo, hi))
            )
        return self


class TailThreshold(_Threshold):
    """Threshold a robust number of spreads above the negative population.

    The negative population is the main mode of the events below ``search[1]``;
    its spread is estimated from its lower half only (where positives do not
    reach): ``sd = median(mode − x | x < mode) / 0.6745``. The threshold is
    ``mode + k × sd``, clipped to ``search``.

    Parameters
    ----------
    search : tuple of float
        ``(low, high)`` range the threshold may take.
    k : float
        Spreads above the mode.
    bandwidth : float
        Kernel width used to find the mode.
    """

    def __init__(
        self, *, search: tuple[float, float], k: float = 4.0, bandwidth: float = 0.012
    ) -> None:
        self.search = search
        self.k = k
        self.bandwidth = bandwidth

    def fit(self, values: np.ndarray) -> TailThreshold:
        """Locate the negative mode and its spread in ``values``."""
        self.method_ = "tail"
        lo, hi = (float(v) for v in self.search)
        checked = self._check(values)
        if checked is None:
            self.threshold_ = lo
            return self
        below = checked[checked < hi]
        if len(below) < MIN_FIT_EVENTS:
            below = checked
        x, density = smoothed_density(
            below, lo=float(below.min()), hi=float(below.max()) + 1e-9, bandwidth=self.bandwidth
        )
        mode = float(x[np.argmax(density)])
        left = mode - below[below < mode]
        sd = float(np.median(left) / 0.6745) if len(left) else 0.0
        # the density's argmax is a noisy centre on a flat peak: refine it as the median of
        # a symmetric window around it (positives lie far above), then the spread again
        window = below[np.abs(below - mode) <= 2 * sd] if sd > 0 else below
        if len(window) >= MIN_FIT_EVENTS:
            mode = float(np.median(window))
            left = mode - below[below < mode]
            sd = float(np.median(left) / 0.6745) if len(left) else 0.0
        raw = mode + self.k * sd
        self.mode_, self.spread_ = mode, sd
        self.threshold_ = float(np.clip(raw, lo, hi))
        if self.threshold_ != raw:
            self.flags_.append(
                Flag(
                    "at_bound",
                    f"mode + {self.k} sd = {{0}} clipped to [{{1}}, {{2}}]",
                    (raw, lo, hi),
                )
            )
        return self


def make_threshold(params: dict[str, Any], *, random_state: int = 0) -> Any:
    """A 1-D threshold estimator from template parameters (transformed units)."""
    method = params.get("method", "valley")
    if method == "valley":
        return ValleyThreshold(
            search=tuple(params["search"]),
            bandwidth=params.get("bandwidth", 0.012),
            fallback=params.get("fallback", "quantile"),
            fallback_quantile=params.get("fallback_quantile", 0.5),
            pick=params.get("pick", "deepest"),
            floor=params.get("floor"),
            intermediate_flag=params.get("intermediate_flag"),
            intermediate_max_share=params.get("intermediate_max_share", 0.03),
            negative_edge=bool(params.get("negative_edge", False)),
            max_depth_ratio=params.get("max_depth_ratio", 0.8),
            random_state=random_state,
        )
    if method == "quantile":
        return QuantileThreshold(quantile=params["quantile"], bounds=params.get("search"))
    if method == "tail":
        return TailThreshold(search=tuple(params["search"]), k=params.get("k", 4.0))
    if method == "mixture":
        return MixtureThreshold(
            search=tuple(params["search"]),
            min_separation=params.get("min_separation", 1.5),
            min_weight=params.get("min_weight", 0.02),
            fallback=params.get("fallback", "quantile"),
            fallback_quantile=params.get("fallback_quantile", 0.5),
            random_state=random_state,
        )
    msg = f"unknown threshold method {method!r}"
    raise ValueError(msg)
