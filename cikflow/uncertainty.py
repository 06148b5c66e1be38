"""Measurement uncertainty of the population fractions: counting, gate placement, known biases.

A population's percentage of the base gate is uncertain by chance for two reasons:

- **counting**: ``k`` events out of ``n`` are a binomial draw; the Wilson score
  interval covers the true fraction (nested populations; a population holding the
  base is the inverse fraction; disjoint ones, such as beads, the ratio of two
  Poisson counts on the log scale);
- **gate placement**: a data-driven divider (a density valley) could have been
  placed anywhere across its valley. Each fitted 1-D divider gets a placement
  half-width on each side, ``δ``: the distance from the threshold to where the
  sample's own density rises half-way from the valley floor to the smaller peak
  (never less than the kernel width the valley was found with). The events of a
  population within ``δ`` of a divider on its own side are those it would lose
  if the divider moved by ``δ`` (the lower end of its interval); the events it
  would gain are those on the other side, in the proportion of the divider's
  parent events there (the upper end). A sharp, deep valley gives a narrow band,
  a shallow smear (CD56 on CIK cells) a wide one.

The two parts, in percentage points, are added in quadrature per side, and the
dividers of one population likewise (independent placements).

A third part is systematic, not random: a positive population that smears down
into its negatives (CD56 on CIK cells) has a tail *below* any divider in the
valley, so the count above it is low even when the divider sits in the right
place. :func:`cikflow.gating.tails.hidden_below` estimates that tail from the
positives above the divider (a Gaussian in the transformed scale, fitted to them
as a truncated sample), never more than the valley floor's density can hold down
to the negatives' mode. The population above the divider may own those events
(its interval reaches up by them) and the one below may hold them (its interval
reaches down).

The band and the tail count the same events across a divider two ways: the band
those a divider placed elsewhere in its valley would move, the tail the positives
below a divider in the right place. Adding both would count the tail's events
twice, so per divider and side the tail enters as the bias it is and the band only
beyond it, in quadrature.

A fourth, also a bias: events of the base whose side scatter exceeds twice its
median (monocytes inside a fitted lymphocyte scatter gate, as
:func:`cikflow.gating.confidence.scatter_outliers` sees them), and events of the
base whose viability dye lies between the first valley above the live peak and the
viability threshold (dying cells counted live, as ``dying_cells`` sees them), may be
no viable lymphocytes. Without them a population's share of the base would be
``(k − i) / (n − m)`` (``i`` of its own ``k`` events and ``m`` of the base's ``n``
among those events); the interval reaches to it, up for T, CIK and NK (the
monocytes are CD3−CD56−), down for the CD3−CD56− cells that hold them (and for T,
which holds most dying cells).

A divider placed at a smear's lower edge (``negative_edge``: the CD3 divider, below
CD3-dim T cells that down-regulated CD3 by any factor over a wide range) differs in
two ways. Its band above is one kernel width only: the stretch above it is the
smear's, positives, so a higher placement is no plausible alternative. And its tail
is the larger of the Gaussian one and the smear's flat shoulder continued below it
(:func:`cikflow.gating.tails.shoulder_below`): the smear's density above the
divider, carried down to where the negatives begin (their peak's upper half-height,
or the divider's search bound where they have no peak of their own below it).
Such a divider also counts the negatives' upper tail positive
(:func:`cikflow.gating.tails.spill_above`: the density above the smear's floor,
from the divider up to where it has come down to that floor); at the
count-balanced edge the two about cancel in the point, so the interval reaches
both ways: the populations above hold the tail (their lower end reaches down by
their share of it), those below miss it (their upper end reaches up).

A fifth: a quadrant on the negative side of its x divider may hold a second mode
of its own next to the divider (CD3-dim CIK cells among the CD3−CD56+ NK cells on
day 21: activated cells that down-regulated CD3). Where the quadrant's x values
show a valley between its main mode and the divider, the events beyond that
valley may belong across the divider: the quadrant's interval reaches down by
them, the quadrant across (same y side) up.

How the parts combine (:func:`cikflow.intervals.combine`): the chance parts
(counting, the bands beyond the tails) in quadrature per side; the biases (tails,
spill, high side scatter and dying cells in the base, second modes) are estimates
of events the point counts on the wrong side. Checked against the simulator's
truth they are each right to within a fraction of themselves, and they often
cancel (the CD3-dim T cells below the CD3 divider and the negatives' tail above
it), so their sum as bounds is padded: T's interval held the truth in every one of
204 ``realistic`` tubes, its worst error 0.7 of its half-width. The interval is
therefore centred on the point corrected by every bias, ``p + Σ up − Σ down``, each
estimate uncertain by ``bias_uncertainty`` (0.5) times itself in quadrature with
chance, and never narrower than the count's own (Wilson) interval around the
point. The estimates rest on the fit's model of the data (a valley, a tail's
shape); where the gating raised a flag on the sample that model is in doubt, and
every bias is a bound instead, added in full on its own side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cikflow.gating.confidence import impurity_scatter, scatter_outliers
from cikflow.gating.methods import ValleyThreshold, smoothed_density
from cikflow.gating.model import QuadrantGate
from cikflow.gating.tails import spill_above, tail_below
from cikflow.gating.template import make_transform, transform_name
from cikflow.intervals import UNCERTAINTY_DEFAULTS, combine, count_interval

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["INTERVAL_COLUMNS", "bias_flags", "population_intervals", "valley_halfwidths"]

#: columns :func:`population_intervals` adds to a population table
INTERVAL_COLUMNS = ["percent_of_base_low", "percent_of_base_high", "below_loq"]


def valley_halfwidths(
    values: np.ndarray, threshold: float, *, depth: float = 0.5, bandwidth: float = 0.012
) -> tuple[float, float]:
    """Placement half-widths of a threshold below and above it (transformed units).

    The density of ``values`` (Gaussian kernel of ``bandwidth``) is followed
    from the threshold down and up until it rises above ``floor × (1 + depth ×
    (1 − r))``, ``r`` the valley's depth ratio (floor ÷ smaller peak): an empty
    gap between populations keeps the band inside the gap, a shallow valley
    reaches far up its flanks. Each distance is at least ``bandwidth``.

    Parameters
    ----------
    values : numpy.ndarray
        The divider's parent events (transformed units).
    threshold : float
        The fitted threshold (transformed units).
    depth : float
        Rise above the floor, relative to it, that ends the band in a valley
        of depth ratio 0 (scaled by ``1 − r``).
    bandwidth : float
        Kernel width (transformed units).

    Returns
    -------
    tuple of float
        ``(below, above)`` in transformed units.

    Examples
    --------
    >>> x = np.concatenate([np.linspace(-1, -0.2, 4000), np.linspace(0.2, 1, 4000)])
    >>> [round(v, 2) for v in valley_halfwidths(x, 0.0, bandwidth=0.01)]
    [0.15, 0.16]
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return bandwidth, bandwidth
    lo = min(float(values.min()), threshold) - 4 * bandwidth
    hi = max(float(values.max()), threshold) + 4 * bandwidth
    bins = int(min(4096, max(256, np.ceil((hi - lo) / (bandwidth / 4)))))
    x, density = smoothed_density(values, lo=lo, hi=hi, bins=bins, bandwidth=bandwidth)
    i = int(np.clip(np.searchsorted(x, threshold), 0, len(x) - 1))
    floor = density[i]
    peak = min(density[: i + 1].max(), density[i:].max())
    ratio = floor / peak if peak > 0 else 1.0  # the valley's depth ratio (1: no valley)
    level = floor * (1 + depth * max(1 - ratio, 0.0))
    j = i
    while j > 0 and density[j - 1] <= level:
        j -= 1
    m = i
    while m < len(x) - 1 and density[m + 1] <= level:
        m += 1
    return max(threshold - float(x[j]), bandwidth), max(float(x[m]) - threshold, bandwidth)


@dataclass(frozen=True)
class _Divider:
    """One fitted threshold: its gate, its parent events just below and above it, its tail."""

    gate: str
    below: np.ndarray  # boolean over events: parent events in [t − δ_below, t)
    above: np.ndarray  # boolean over events: parent events in [t, t + δ_above)
    lower: np.ndarray  # boolean over events: parent events below t
    upper: np.ndarray  # boolean over events: parent events at or above t
    hidden: float = 0.0  # events of the upper side estimated below t (tail_below)
    spilled: float = 0.0  # events of the lower side estimated above t (spill_above)


def _dividers(outcome: Any, *, template: Any, settings: Mapping[str, Any]) -> list[_Divider]:
    """Every fitted 1-D threshold of the gating, with its placement bands.

    A quadrant's x divider is taken on each y side apart (CD3 within the CD56− and
    within the CD56+ quadrants): what smears across it differs by side (CD3-dim T
    cells into the CD3−CD56− cells, NK cells' CD3 background into CIK), and each
    population's share of it is its share on its own side.
    """
    spec = template.spec
    out = []
    for info in outcome.infos:
        fits = [f for f in (info.fit or {}).get("fits", []) if "threshold_transformed" in f]
        placed: dict[str, np.ndarray] = {}  # the gate's dimensions on its parent, transformed
        for fit in fits:
            parent, ceiling = outcome.membership[info.parent].copy(), None
            if fit.get("within"):  # a subset's own divider (CD56 within CD3+): that subset
                found = _subset(outcome, info, fit, parent=parent, template=template, placed=placed)
                if found is None:  # no such divider in the gate as placed
                    continue
                parent, ceiling = found
            for side in _y_sides(outcome, info, fit):
                out.append(
                    _divider(
                        outcome,
                        info.name,
                        fit,
                        parent=parent if side is None else parent & side,
                        ceiling=ceiling,
                        spec=spec,
                        settings=settings,
                    )
                )
    return out


def _y_sides(outcome: Any, info: Any, fit: Mapping[str, Any]) -> list[np.ndarray | None]:
    """The events of each y side of a quadrant, for its x divider; ``[None]`` otherwise."""
    gate = info.gate
    if not isinstance(gate, QuadrantGate) or fit.get("within") or fit["dimension"] != gate.xdim:
        return [None]
    sides = []
    # a notch above x divides the y+ side in its place (a divider of its own)
    for sign in "-" if getattr(gate, "raised", False) else "+-":
        quads = [q for q, signs in gate.quadrants if signs[1] == sign and q in outcome.membership]
        if quads:
            sides.append(np.logical_or.reduce([outcome.membership[q] for q in quads]))
    return sides or [None]


def _divider(
    outcome: Any,
    gate: str,
    fit: Mapping[str, Any],
    *,
    parent: np.ndarray,
    ceiling: float | None,
    spec: Mapping[str, Any],
    settings: Mapping[str, Any],
) -> _Divider:
    """One fitted threshold over ``parent``: its placement bands and tails."""
    comp = outcome.compensated
    dim = fit["dimension"]
    xform = _xform_of(spec, dim)
    column = comp.column(comp.pnn.index(outcome.channel_map[dim]))
    rows = np.flatnonzero(parent)
    cap = int(settings["placement_max_events"])
    if rows.size > cap:
        rows = np.sort(np.random.default_rng(0).choice(rows, cap, replace=False))
    data = column[rows].astype(float)
    values = xform.apply(data) if xform is not None else data
    t = float(fit["threshold_transformed"])
    bandwidth = float(settings["placement_bandwidth"])
    below, above = valley_halfwidths(
        values, t, depth=float(settings["placement_depth"]), bandwidth=bandwidth
    )
    # a smear of positives down into the negatives (CD3-dim T cells): the divider sits
    # at the smear's lower edge on purpose, so no higher place is plausible (the
    # stretch above it is positives), the smear's flat shoulder continues below it,
    # and the negatives' upper tail reaches above it
    smear = bool(fit.get("negative_edge"))
    if smear:
        above = bandwidth
    hidden = tail_below(
        values,
        t,
        bandwidth=bandwidth,
        ceiling=ceiling,
        shoulder=smear,
        lowest=(fit.get("search_transformed") or [None])[0],
    )
    spilled = spill_above(values, t, bandwidth=bandwidth) if smear else 0.0
    scale = np.count_nonzero(parent) / max(rows.size, 1)
    edges = _to_data(xform, np.array([t - below, t, t + above]))
    return _Divider(
        gate=gate,
        below=parent & (column >= edges[0]) & (column < edges[1]),
        above=parent & (column >= edges[1]) & (column < edges[2]),
        lower=parent & (column < edges[1]),
        upper=parent & (column >= edges[1]),
        hidden=hidden * scale,
        spilled=spilled * scale,
    )


def _subset(
    outcome: Any,
    info: Any,
    fit: Mapping[str, Any],
    *,
    parent: np.ndarray,
    template: Any,
    placed: dict[str, np.ndarray],
) -> tuple[np.ndarray, float | None] | None:
    """The parent events a per-subset divider divides, as its placed gate defines them.

    Also where that subset ends above the divider (:attr:`Threshold.upto`); None when
    the gate as placed has no such divider. ``placed`` keeps the gate's dimensions on
    its parent, transformed, from one divider of the gate to the next.
    """
    gate = info.gate
    key = f"{fit['dimension']} within {fit['within']}"
    threshold = next((t for t in gate.thresholds() if t.key == key), None)
    if threshold is None:
        return None
    rows = np.flatnonzero(parent)
    comp = outcome.compensated
    for dim in gate.dims:
        if dim not in placed:
            data = comp.column(comp.pnn.index(outcome.channel_map[dim]))[rows].astype(float)
            xform = _xform_of(template.spec, dim)
            placed[dim] = xform.apply(data) if xform is not None else data
    out = np.zeros_like(parent)
    out[rows[gate.subset(threshold, placed, parent=np.ones(len(rows), dtype=bool))]] = True
    return out, threshold.upto


def _xform_of(spec: Mapping[str, Any], dim: str) -> Any:
    """The transform a template applies to a dimension (None: data units)."""
    return make_transform(spec["transforms"][transform_name(spec, dim)])


def _to_data(xform: Any, transformed: Any) -> Any:
    arr = np.atleast_1d(np.asarray(transformed, dtype=float))
    out = arr if xform is None else np.asarray(xform.inverse(arr), dtype=float)
    return out if np.ndim(transformed) else float(out[0])


def _placement(pop_mask: np.ndarray, divider: _Divider) -> tuple[int, float, float, float]:
    """Events the population loses and gains when the divider moves across its band.

    Also its share of the divider's hidden tail (:func:`cikflow.gating.tails.tail_below`):
    events it may own below the divider (population above it, in proportion to its
    share of the band above) and events it may hold that are not its own (population
    below); and of the negatives' tail above a smear's divider
    (:func:`cikflow.gating.tails.spill_above`), the other way round.
    Returns ``(lose, gain, tail_lose, tail_gain)``.
    """
    n_below = int(np.count_nonzero(pop_mask & divider.below))
    n_above = int(np.count_nonzero(pop_mask & divider.above))
    parent_below = int(np.count_nonzero(divider.below))
    parent_above = int(np.count_nonzero(divider.above))
    # the side most of it lies on (a notched CIK quadrant keeps a few events below x)
    if np.count_nonzero(pop_mask & divider.upper) >= np.count_nonzero(pop_mask & divider.lower):
        share = n_above / max(parent_above, 1)
        gain = n_above * parent_below / max(parent_above, 1)
        return n_above, gain, divider.spilled * share, divider.hidden * share
    share = n_below / max(parent_below, 1)
    gain = n_below * parent_above / max(parent_below, 1)
    return n_below, gain, divider.hidden * share, divider.spilled * share


def population_intervals(
    outcome: Any, *, template: Any, settings: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Per gate: the interval of its percentage of the base, and whether it is below the LOQ.

    Parameters
    ----------
    outcome : cikflow.gating.apply.GatingOutcome
        One sample's gating (memberships, fit records, compensated events).
    template : cikflow.gating.template.Template
        The template it was gated with (its base gate, transforms).
    settings : mapping, optional
        The ``uncertainty`` config section (:data:`UNCERTAINTY_DEFAULTS`).

    Returns
    -------
    pandas.DataFrame
        ``gate``, :data:`INTERVAL_COLUMNS` (percent of base; ``below_loq``:
        fewer events than ``loq_events``) and ``bias_pp``, the net of the estimated
        biases (percentage points; > 0: the point is likely low); placement and the
        biases enter only for data-driven 1-D dividers of YAML templates between the
        base and the gate.
    """
    settings = {**UNCERTAINTY_DEFAULTS, **dict(settings or {})}
    confidence = float(settings["confidence"])
    gates = outcome.gates.set_index("gate")
    # a quadrant's populations lie under its gate (T under cd3_cd56), and so do theirs:
    # the quadrant's dividers place them too
    owner = {i.name: i.gate.name for i in outcome.infos if i.gate is not None}
    paths = {
        i.name: {owner.get(p, p) for p in (*i.path, i.name)} | set(i.path) | {i.name}
        for i in outcome.infos
    }
    base_gate = template.spec.get("base") if template.kind == "yaml" else None
    base_mask = outcome.membership.get(base_gate) if base_gate else None
    base_path = paths.get(base_gate, set())
    dividers = []
    if template.kind == "yaml" and outcome.compensated is not None:
        dividers = _dividers(outcome, template=template, settings=settings)
    n_base = int(np.count_nonzero(base_mask)) if base_mask is not None else 0
    outliers = None if base_mask is None else _base_suspects(outcome, template=template)
    crossings = dividers and _crossings(outcome, template=template, settings=settings)
    n_out = int(np.count_nonzero(outliers & base_mask)) if outliers is not None else 0
    rows = []
    for gate in gates.index:
        k, p = int(gates.loc[gate, "events"]), float(gates.loc[gate, "percent_of_base"])
        mask = outcome.membership.get(gate)
        if base_mask is None or mask is None:
            # no base: percent of base is of every event the gating saw (masks span them all)
            n = len(mask) if mask is not None else int(gates["events"].max())
            relation = "nested"
        else:
            n, relation = n_base, _relation(mask, base_mask)
        c_lo, c_hi = count_interval(k, n, relation=relation, confidence=confidence)
        lose2 = gain2 = 0.0
        bias_low: list[float] = []  # biases that may put the point above the truth
        bias_high: list[float] = []  # … below it
        for d in dividers:
            if d.gate in paths.get(gate, ()) and d.gate not in base_path and mask is not None:
                lose, gain, t_lose, t_gain = (100.0 * v / max(n, 1) for v in _placement(mask, d))
                # the band and the tail count the same events across the divider two
                # ways (a divider placed elsewhere; positives below one in the right
                # place): the tail counts as bias, the band only beyond it, as chance
                bias_low.append(t_lose)
                bias_high.append(t_gain)
                lose2 += max(lose - t_lose, 0.0) ** 2
                gain2 += max(gain - t_gain, 0.0) ** 2
        below_base = gate != base_gate and base_gate in paths.get(gate, ())
        if crossings and mask is not None and below_base:
            lose, gain = _crossing_events(mask, crossings)
            bias_low.append(100.0 * lose / max(n, 1))
            bias_high.append(100.0 * gain / max(n, 1))
        if outliers is not None and mask is not None and below_base and n_base > n_out:
            # without the base's high-SSC events, which may be no lymphocytes
            alt = 100.0 * (k - int(np.count_nonzero(mask & outliers))) / (n_base - n_out)
            bias_low.append(max(p - alt, 0.0))
            bias_high.append(max(alt - p, 0.0))
        low, high = combine(
            p,
            counting=(c_lo, c_hi),
            chance=(math.hypot(p - c_lo, math.sqrt(lose2)), math.hypot(c_hi - p, math.sqrt(gain2))),
            bias_low=bias_low,
            bias_high=bias_high,
            bias_uncertainty=None if outcome.flags else settings["bias_uncertainty"],
        )
        if relation == "nested":
            low, high = max(low, 0.0), min(high, 100.0)
        rows.append(
            {
                "gate": gate,
                "percent_of_base_low": max(low, 0.0),
                "percent_of_base_high": high,
                "below_loq": k < int(settings["loq_events"]),
                "bias_pp": sum(bias_high) - sum(bias_low),
            }
        )
    return pd.DataFrame(rows, columns=["gate", *INTERVAL_COLUMNS, "bias_pp"])


def bias_flags(
    intervals: pd.DataFrame, *, populations: Mapping[str, str], limit_pp: float | None
) -> list[dict[str, Any]]:
    """``estimated_bias`` where a reported population's estimated biases net beyond a limit.

    The biases an interval is built from (tails across the population's dividers, the
    negatives' spill, suspect events in the base) predict the gated value's error: on
    204 ``realistic`` tubes their net and the error correlate at 0.91. A net beyond the
    limit says the value may be that far off even where no fit raised a flag (CIK on
    day 21 whose CD56 tail and CD3-dim cells among the NK cells each stay below
    ``hidden_tail``'s 2 points).

    Parameters
    ----------
    intervals : pandas.DataFrame
        :func:`population_intervals`' table (``gate``, ``bias_pp``).
    populations : mapping of str to str
        Reported population → its gate.
    limit_pp : float or None
        Net bias (percentage points of the base) that raises the flag; None: never.

    Returns
    -------
    list of dict
        ``{"flag", "gate", "reason"}`` records, in population order.

    Examples
    --------
    >>> table = pd.DataFrame({"gate": ["T", "CIK"], "bias_pp": [-0.4, 2.98]})
    >>> [f["gate"] for f in bias_flags(table, populations={"T": "T", "CIK": "CIK"}, limit_pp=2)]
    ['CIK']
    """
    if limit_pp is None or intervals.empty:
        return []
    net = intervals.set_index("gate")["bias_pp"]
    out = []
    for pop, gate in populations.items():
        value = float(net.get(gate, 0.0))
        if abs(value) > limit_pp:
            out.append(
                {
                    "flag": "estimated_bias",
                    "gate": gate,
                    "reason": f"{pop}: its tails, spill and suspect base events, estimated, "
                    f"net {value:+.2f} points (beyond ±{limit_pp:g}): the value may be that "
                    f"much {'low' if value > 0 else 'high'}",
                }
            )
    return out


def _base_suspects(outcome: Any, *, template: Any) -> np.ndarray | None:
    """Base events that may be no viable lymphocytes: high side scatter or dying; or None."""
    base = template.spec["base"]
    found = [
        m
        for m in (
            _base_outliers(outcome, base=base),
            _base_dying(outcome, base=base, template=template),
        )
        if m is not None
    ]
    return np.logical_or.reduce(found) if found else None


def _base_outliers(outcome: Any, *, base: str) -> np.ndarray | None:
    """Base events of high side scatter (maybe no lymphocytes), as ``scatter_impurity`` sees them.

    Boolean over all events; None when the base is not a fitted forward × side
    scatter gate or its events are not at hand.
    """
    info = next((i for i in outcome.infos if i.name == base), None)
    ssc = impurity_scatter(info)
    comp = outcome.compensated
    if ssc is None or comp is None or ssc not in outcome.channel_map:
        return None
    rows = np.flatnonzero(outcome.membership[base])
    out = np.zeros(len(outcome.membership[base]), dtype=bool)
    side = np.asarray(comp.column(comp.pnn.index(outcome.channel_map[ssc]))[rows], dtype=float)
    out[rows] = scatter_outliers(side)
    return out


def _base_dying(outcome: Any, *, base: str, template: Any) -> np.ndarray | None:
    """Base events of intermediate viability staining: dying cells counted live.

    For a fitted viability valley above the base (a gate whose template raises an
    ``intermediate_flag``), the base's events between the first valley above the
    live peak and the threshold, as ``dying_cells`` sees them (the fit records that
    valley). Boolean over all events; None without such a gate or where the first
    valley is the threshold.
    """
    comp = outcome.compensated
    by_name = {g["name"]: g for g in template.spec.get("gates", [])}
    above = next((i.path for i in outcome.infos if i.name == base), ())
    for info in outcome.infos:
        params = by_name.get(info.name, {}).get("params") or {}
        fits = [f for f in (info.fit or {}).get("fits", []) if "threshold_transformed" in f]
        if info.name not in above or not params.get("intermediate_flag") or len(fits) != 1:
            continue
        first = fits[0].get("first_valley_transformed")
        if first is None or first >= fits[0]["threshold_transformed"] or comp is None:
            return None
        xform = _xform_of(template.spec, fits[0]["dimension"])
        column = comp.column(comp.pnn.index(outcome.channel_map[fits[0]["dimension"]]))
        inside = np.flatnonzero(outcome.membership[base])
        staining = column[inside].astype(float)
        staining = xform.apply(staining) if xform is not None else staining
        out = np.zeros(len(outcome.membership[base]), dtype=bool)
        out[inside[staining >= first]] = True
        return out
    return None


@dataclass(frozen=True)
class _Crossing:
    """Events of a quadrant beyond a valley inside it, next to the x divider."""

    moved: np.ndarray  # boolean over events: they may belong across the divider
    dest: np.ndarray  # boolean over events: the quadrant across it, same y side


def _crossings(outcome: Any, *, template: Any, settings: Mapping[str, Any]) -> list[_Crossing]:
    """Second modes next to each fitted quadrant x divider, on its negative side."""
    comp, spec, out = outcome.compensated, template.spec, []
    bandwidth = float(settings["placement_bandwidth"])
    for info in outcome.infos:
        gate = info.gate
        if not isinstance(gate, QuadrantGate) or info.name != gate.name:
            continue
        fits = (info.fit or {}).get("fits", [])
        fit = next((f for f in fits if "within" not in f and f.get("search_transformed")), None)
        if fit is None or "threshold_transformed" not in fit:
            continue
        xform = _xform_of(spec, gate.xdim)
        t = float(fit["threshold_transformed"])
        lo = float(fit["search_transformed"][0])
        column = comp.column(comp.pnn.index(outcome.channel_map[gate.xdim]))
        by_signs = {signs: quad for quad, signs in gate.quadrants}
        # a notched gate searched its x−, y+ quadrant for that mode itself (its placement
        # band covers it); a notch found nothing there, so neither would this
        notched = getattr(gate, "x_notch", None) is not None
        for y_sign in "-" if notched else "+-":
            quad, dest = by_signs.get("-" + y_sign), by_signs.get("+" + y_sign)
            rows = np.flatnonzero(outcome.membership[quad]) if quad and dest else []
            if len(rows) < 100 or t - lo < 4 * bandwidth:
                continue
            data = np.asarray(column[rows], dtype=float)
            values = xform.apply(data.reshape(-1, 1))[:, 0] if xform else data
            valley = ValleyThreshold(search=(lo, t), fallback="upper", bandwidth=bandwidth)
            cut = float(valley.fit(values).threshold_)
            if cut < t - bandwidth:
                moved = np.zeros(len(outcome.membership[quad]), dtype=bool)
                moved[rows[values >= cut]] = True
                out.append(_Crossing(moved=moved, dest=outcome.membership[dest]))
    return out


def _crossing_events(mask: np.ndarray, crossings: list[_Crossing]) -> tuple[float, float]:
    """Events a population may lose and gain to second modes across a divider."""
    lose = gain = 0.0
    for c in crossings:
        held, across = int(np.count_nonzero(mask & c.moved)), int(np.count_nonzero(mask & c.dest))
        if held and not across:
            lose += held
        elif across and not held:
            gain += np.count_nonzero(c.moved) * across / max(int(np.count_nonzero(c.dest)), 1)
    return lose, gain


def _relation(mask: np.ndarray, base: np.ndarray) -> str:
    if not np.any(mask & ~base):
        return "nested"
    if not np.any(base & ~mask):
        return "contains"
    return "disjoint"
