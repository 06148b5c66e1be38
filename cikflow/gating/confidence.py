"""How far a sample's gating can be trusted: flags that name the gate and what it moves.

A fit can find a valley and still be unsafe. After gating, on every event:

* ``threshold_sensitive``: shifting a fitted divider by a small step
  (:data:`SENSITIVITY_STEP` transformed units, about the valley kernel's width)
  moves more than :data:`SENSITIVITY_PP` percentage points of the populations it
  divides — the divider sits in a dense or flat stretch, not a clear valley;
* ``imprecise``: a reported population's 95 % counting interval (Wilson) is
  wider than ± :data:`PRECISION_PP` points — too few events for the fraction's
  precision (a 500-event tube); of the base below it, of their parent for the
  base's ancestors (viable of the leukocytes: the viability);
* ``compensation_suspect``: cells negative for a marker are brighter in it when
  they are positive for the other marker of a quadrant (CD56 of CD3+CD56− above
  CD56 of CD3−CD56−) by more than :data:`COMPENSATION_SHIFT` — the spillover of
  the other marker's dye is under-corrected. Only that direction: CD3−CD56− cells
  are a mixed population whose own CD56 varies (on the simulator's ``realistic``
  tubes, correctly compensated, T cells sat 0.26 below to 0.11 above them; with
  FITC→PE under-corrected by 35 %, 0.10 to 0.15 above);
* ``scatter_impurity``: more than :data:`IMPURITY_PCT` % of the base gate's events
  have side scatter above :data:`IMPURITY_FOLD` × the base's median (data units),
  when the base is a fitted gate drawn on forward × side scatter (area or height,
  not width) — monocytes (about 3× the lymphocytes' SSC) inside the lymphocyte
  scatter gate. They are CD3−CD56− and dilute every fraction of the base (on
  ``realistic`` day-7 tubes, 3 % monocytes put T 2.5–3.8 points low). Measured on
  24 ``realistic`` tubes: 3.5–3.8 % on the day-7 tubes that hold monocytes,
  0.4–1.5 % on the others; on real files, 0.6 % of the expert-gated lymphocytes of
  ``flowsom-68983`` and 0–0.9 % of the fitted scatter blob of six 1,000-event Cytek
  Aurora files.
* ``excluded_cells``: the base's parent events that a fitted scatter base leaves out
  (as for ``scatter_impurity``) hold, by the dividers of the gates right below the
  base, more than :data:`TAIL_PP` percentage points of the base in one reported
  population: the scatter gate cut off cells its children would count (a blob that
  took activated, larger lymphoblasts for a component of their own: with four
  mixture components instead of three, the ``clean`` preset's CIK cells of days 14
  and 21 fell outside, T 8-13 points high, and nothing was flagged). Monocytes and
  debris left out carry no lymphocyte marker; on ``realistic`` tubes the lymphocytes
  left out are 0.1 % or less. Only left-out events within the base's side-scatter
  range (at most :data:`IMPURITY_FOLD` × its median) count: the blasts lie inside
  it, the monocytes above.

* ``hidden_tail``: the positives above a fitted divider have a tail below it
  (:func:`cikflow.gating.tails.hidden_below`: a Gaussian fitted to them, capped
  by what the valley floor holds) of more than :data:`TAIL_PP` percentage points
  — the populations above it are that much low, those below it that much high,
  even with the divider in its valley (CD56 on CIK cells smearing into the T
  cells on ``realistic`` day-14 and day-21 tubes). For a divider at a smear's
  lower edge (``negative_edge``: CD3 below the CD3-dim T cells; ``pick: first``:
  viability below the dying cells' intermediate staining) the tail is the
  smear's shoulder below it (:func:`cikflow.gating.tails.tail_below`) less the
  negatives' tail above it (:func:`cikflow.gating.tails.spill_above`), which the
  count-balanced edge cancels it with: what is left is an error of the count (a
  divider left inside the smear, where the negatives are too few to balance it).

Percentages are of the template's base when the gate lies below it, otherwise
of the gate's parent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.gating.tails import hidden_below, spill_above, tail_below

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from cikflow.gating.template import GateInfo

__all__ = [
    "COMPENSATION_SHIFT",
    "IMPURITY_FOLD",
    "IMPURITY_PCT",
    "PRECISION_PP",
    "SENSITIVITY_PP",
    "SENSITIVITY_STEP",
    "TAIL_PP",
    "confidence_flags",
    "impurity_scatter",
    "scatter_outliers",
    "wilson_halfwidth",
]

#: divider shift (transformed units) the sensitivity is measured for
SENSITIVITY_STEP = 0.01
#: percentage points moved by that shift above which a divider is flagged
SENSITIVITY_PP = 1.0
#: half-width of a population's 95 % counting interval (points) above which it is flagged
PRECISION_PP = 1.0
#: median shift (transformed units) of a negative population in one quadrant's marker
COMPENSATION_SHIFT = 0.12
#: side scatter, relative to the base's median, above which a base event is not a lymphocyte
IMPURITY_FOLD = 2.0
#: percent of the base's events above that side scatter from which the base is flagged
IMPURITY_PCT = 2.5
#: percentage points of a divider's hidden tail above which it is flagged (the error a
#: release tolerates on T, CIK and NK)
TAIL_PP = 2.0
#: most of a divider's parent events its tail is fitted on (seeded subsample)
TAIL_MAX_EVENTS = 50_000


def wilson_halfwidth(events: int, total: int, *, z: float = 1.96) -> float:
    """Half-width of the Wilson score interval of ``events / total``, in percentage points.

    >>> round(wilson_halfwidth(100, 500), 1)  # 20 %: 1.96 × √(0.2 × 0.8 / 500) ≈ 3.5
    3.5
    >>> wilson_halfwidth(0, 0)
    nan
    """
    if total <= 0:
        return float("nan")
    p = events / total
    denom = 1 + z * z / total
    return 100.0 * z * float(np.sqrt(p * (1 - p) / total + z * z / (4 * total * total))) / denom


def confidence_flags(
    infos: Sequence[GateInfo],
    *,
    membership: Mapping[str, np.ndarray],
    values: Callable[[str, np.ndarray], np.ndarray],
    band: Callable[[str, float, float], np.ndarray],
    base: str | None,
    reported: Mapping[str, str],
    raw: Callable[[str, np.ndarray], np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """The confidence flags of one sample's gating (see the module's notes).

    Parameters
    ----------
    infos : sequence of GateInfo
        The gates as applied (:func:`cikflow.gating.template.build_strategy`).
    membership : mapping of str to numpy.ndarray
        Population → boolean mask over all events.
    values : callable
        ``values(dim, rows)`` → transformed values of dimension ``dim`` for the
        event indices ``rows``.
    band : callable
        ``band(dim, lo, hi)`` → boolean mask over all events of ``lo <= T(x) < hi``
        (transformed units).
    base : str or None
        The template's base population.
    reported : mapping of str to str
        Reported population → its gate (the template's ``populations``).
    raw : callable, optional
        ``raw(dim, rows)`` → values of dimension ``dim`` in data units for the
        event indices ``rows``; without it ``scatter_impurity`` is not judged.

    Returns
    -------
    list of dict
        ``{"flag", "gate", "reason"}``.
    """
    n_all = len(next(iter(membership.values()))) if membership else 0
    everyone = np.ones(n_all, dtype=bool)

    def of(name: str) -> np.ndarray:
        return everyone if name == "root" else membership[name]

    base_n = int(of(base).sum()) if base else n_all
    flags: list[dict[str, Any]] = []
    for info in infos:
        gate = info.gate
        if gate is None or info.name != gate.name:
            continue
        below = base is not None and base in info.path
        parent = of(gate.parent)
        denominator = base_n if below else int(parent.sum())
        if info.method != "static" and denominator:
            flags += _sensitivity(info, parent=parent, values=values, band=band, total=denominator)
            flags += _tail(info, parent=parent, values=values, total=denominator)
        flags += _compensation(info, membership=membership, values=values)
    if base and raw is not None:
        flags += _impurity(infos, base=base, base_mask=of(base), raw=raw)
        flags += _excluded(infos, base=base, of=of, values=values, raw=raw, reported=reported)
    if base:
        below = {i.name for i in infos if base in i.path}  # fractions of base: below it only
        # above it, the base's ancestors' fractions of their parents (viability)
        ancestors = next((i.path for i in infos if i.name == base), ())
        above = {i.name: i.gate.parent for i in infos if i.gate and i.name in ancestors}
        for pop, gate_name in reported.items():
            if gate_name not in membership:
                continue
            of_name = base if gate_name in below else above.get(gate_name)
            if of_name is None or not int(of(of_name).sum()):
                continue
            n, of_n = int(membership[gate_name].sum()), int(of(of_name).sum())
            half = wilson_halfwidth(n, of_n)
            if half > PRECISION_PP:
                flags.append(
                    {
                        "flag": "imprecise",
                        "gate": gate_name,
                        "reason": f"{pop}: {n} of {of_n} {of_name} events "
                        f"({100 * n / of_n:.1f} %); 95 % counting interval ±{half:.1f} "
                        f"points (> {PRECISION_PP:g})",
                    }
                )
    return flags


def _sensitivity(
    info: GateInfo,
    *,
    parent: np.ndarray,
    values: Callable[[str, np.ndarray], np.ndarray],
    band: Callable[[str, float, float], np.ndarray],
    total: int,
) -> list[dict[str, Any]]:
    """``threshold_sensitive`` for each divider of a fitted gate that moves > the limit."""
    gate = info.gate
    out = []
    for threshold in gate.thresholds():
        if threshold.value is None:
            continue
        t = float(threshold.value)
        near = np.flatnonzero(
            parent & band(threshold.dimension, t - SENSITIVITY_STEP, t + SENSITIVITY_STEP)
        )
        if not len(near):
            continue
        at = {dim: values(dim, near) for dim in gate.dims}
        moved = int(gate.subset(threshold, at, parent=np.ones(len(near), dtype=bool)).sum())
        pp = 100.0 * moved / 2 / total  # one step either way
        if pp > SENSITIVITY_PP:
            pops = ", ".join(p for p, _ in gate.populations())
            out.append(
                {
                    "flag": "threshold_sensitive",
                    "gate": info.name,
                    "reason": f"{threshold.key}: a shift of {SENSITIVITY_STEP:g} (transformed) "
                    f"moves {pp:.1f} points of {pops} (> {SENSITIVITY_PP:g}); the divider "
                    "sits in a dense stretch, not a clear valley",
                }
            )
    return out


def _tail(
    info: GateInfo,
    *,
    parent: np.ndarray,
    values: Callable[[str, np.ndarray], np.ndarray],
    total: int,
) -> list[dict[str, Any]]:
    """``hidden_tail`` for each divider of a fitted gate whose positives' tail exceeds the limit."""
    gate = info.gate
    rows = np.flatnonzero(parent)
    if len(rows) > TAIL_MAX_EVENTS:
        rows = np.sort(np.random.default_rng(0).choice(rows, TAIL_MAX_EVENTS, replace=False))
    if not len(rows):
        return []
    at = {dim: values(dim, rows) for dim in gate.dims}
    scale = int(parent.sum()) / len(rows)
    fits = {(f.get("dimension"), f.get("within", "")): f for f in (info.fit or {}).get("fits", [])}
    out = []
    for threshold in gate.thresholds():
        if threshold.value is None:
            continue
        divided = gate.subset(threshold, at, parent=np.ones(len(rows), dtype=bool))
        x, t = at[threshold.dimension][divided], float(threshold.value)
        fit = fits.get((threshold.dimension, threshold.within), {})
        if fit.get("negative_edge") or fit.get("pick") == "first":
            # a divider at a smear's lower edge (CD3-dim T cells, dying cells): its
            # shoulder below and the negatives' tail above cancel in the count; what is
            # left of the shoulder is the error
            lowest = (fit.get("search_transformed") or [None])[0]
            hidden = tail_below(x, t, ceiling=threshold.upto, shoulder=True, lowest=lowest)
            hidden -= spill_above(x, t)
        else:
            hidden = hidden_below(x, t, ceiling=threshold.upto)
        pp = 100.0 * hidden * scale / total
        if pp > TAIL_PP:
            pops = ", ".join(p for p, _ in gate.populations())
            out.append(
                {
                    "flag": "hidden_tail",
                    "gate": info.name,
                    "reason": f"{threshold.key}: the positives' tail below the divider holds "
                    f"about {pp:.1f} points (> {TAIL_PP:g}): what lies above it may be that "
                    f"much low, what lies below it that much high ({pops})",
                }
            )
    return out


def _compensation(
    info: GateInfo,
    *,
    membership: Mapping[str, np.ndarray],
    values: Callable[[str, np.ndarray], np.ndarray],
) -> list[dict[str, Any]]:
    """``compensation_suspect`` when a negative population shifts with the other marker."""
    out = []
    for positive, negative, dim in info.gate.negative_pairs():
        a, b = np.flatnonzero(membership[positive]), np.flatnonzero(membership[negative])
        if min(len(a), len(b)) < 100:
            continue
        shift = float(np.median(values(dim, a)) - np.median(values(dim, b)))
        if shift > COMPENSATION_SHIFT:
            out.append(
                {
                    "flag": "compensation_suspect",
                    "gate": info.name,
                    "reason": f"{dim} of {positive} is {shift:.3f} (transformed) above "
                    f"{dim} of {negative}, both {dim}-negative: the other marker's spillover "
                    f"into {dim} looks under-corrected; {positive}, {negative} and their "
                    "neighbours may be misplaced",
                }
            )
    return out


def _excluded(
    infos: Sequence[GateInfo],
    *,
    base: str,
    of: Callable[[str], np.ndarray],
    values: Callable[[str, np.ndarray], np.ndarray],
    raw: Callable[[str, np.ndarray], np.ndarray],
    reported: Mapping[str, str],
) -> list[dict[str, Any]]:
    """``excluded_cells`` when a fitted scatter base leaves out cells its children count.

    Only the left-out events within the base's own side-scatter range count (at most
    :data:`IMPURITY_FOLD` × its median, as for ``scatter_impurity``): the monocytes a
    scatter gate is meant to leave out lie above it, and with the compensation of a
    ``hard`` tube enough of them fell in T's quadrant to flag 15 of 36 tubes whose
    scatter gate had left out at most 1.3 points of true lymphocytes.
    """
    info = next((i for i in infos if i.name == base), None)
    ssc = impurity_scatter(info)
    n_base = int(of(base).sum())
    if ssc is None or not n_base:
        return []
    parent = info.gate.parent
    rows = np.flatnonzero(of(parent) & ~of(base))
    median = float(np.median(raw(ssc, np.flatnonzero(of(base)))))
    rows = rows[~scatter_outliers(raw(ssc, rows), median=median)]
    if not len(rows):
        return []
    counted = set(reported.values())
    flags = []
    for child in infos:
        gate = child.gate
        if gate is None or child.name != gate.name or gate.parent != base or gate.references:
            continue
        at = {dim: values(dim, rows) for dim in gate.dims}
        members = gate.members(at, parent=np.ones(len(rows), dtype=bool), populations={})
        for pop, _ in gate.populations():
            left = int(members[pop].sum()) if pop in members and pop in counted else 0
            pp = 100.0 * left / n_base
            if pp > TAIL_PP:
                flags.append(
                    {
                        "flag": "excluded_cells",
                        "gate": base,
                        "reason": f"{left} {parent} events outside {base} fall in {pop} "
                        f"by {gate.name}'s dividers ({pp:.1f} points of {base}; limit "
                        f"{TAIL_PP:g}): the scatter gate leaves out cells of {pop} "
                        "(large lymphoblasts?), which biases every fraction of it",
                    }
                )
    return flags


def impurity_scatter(info: GateInfo | None) -> str | None:
    """The side-scatter dimension a base gate's impurity is judged on, or None.

    Only a fitted gate drawn on forward × side scatter (area or height, not width)
    is judged: the lymphocyte scatter blob, where monocytes end up inside.
    """
    if info is None or info.gate is None or info.method in (None, "static"):
        return None
    dims = [str(d).upper() for d in info.dims]
    sides = [
        d
        for d, u in zip(info.dims, dims, strict=True)
        if u.startswith("SSC") and not u.endswith("-W")
    ]
    return sides[0] if sides and any(u.startswith("FSC") for u in dims) else None


def scatter_outliers(side: np.ndarray, *, median: float | None = None) -> np.ndarray:
    """Events whose side scatter exceeds :data:`IMPURITY_FOLD` × the median (data units).

    ``median``: another population's (the base's, for events outside it); by default
    that of ``side`` itself.

    >>> scatter_outliers(np.array([10.0, 10, 10, 19, 21])).tolist()
    [False, False, False, False, True]
    >>> scatter_outliers(np.array([19.0, 21]), median=10.0).tolist()
    [False, True]
    """
    side = np.asarray(side, dtype=float)
    if not side.size:
        return np.zeros(0, dtype=bool)
    median = float(np.median(side)) if median is None else float(median)
    return side > IMPURITY_FOLD * median if median > 0 else np.zeros(side.size, dtype=bool)


def _impurity(
    infos: Sequence[GateInfo],
    *,
    base: str,
    base_mask: np.ndarray,
    raw: Callable[[str, np.ndarray], np.ndarray],
) -> list[dict[str, Any]]:
    """``scatter_impurity`` when a fitted scatter base holds too many high-SSC events."""
    ssc = impurity_scatter(next((i for i in infos if i.name == base), None))
    rows = np.flatnonzero(base_mask)
    if ssc is None or len(rows) < 100:
        return []
    side = np.asarray(raw(ssc, rows), dtype=float)
    median = float(np.median(side))
    if median <= 0:
        return []
    pct = 100.0 * float(np.mean(scatter_outliers(side)))
    if pct <= IMPURITY_PCT:
        return []
    return [
        {
            "flag": "scatter_impurity",
            "gate": base,
            "reason": f"{pct:.1f} % of the {base} events have {ssc} above "
            f"{IMPURITY_FOLD:g}× their median ({median:.0f}; limit {IMPURITY_PCT:g} %): "
            "monocytes or other large cells inside the scatter gate, which lower every "
            f"fraction of {base}",
        }
    ]
