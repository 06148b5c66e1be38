"""Confidence flags of a sample's gating, on hand-made events with known answers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cikflow.gating.confidence import (
    COMPENSATION_SHIFT,
    IMPURITY_FOLD,
    IMPURITY_PCT,
    SENSITIVITY_STEP,
    confidence_flags,
    wilson_halfwidth,
)
from cikflow.gating.model import QuadrantGate, RangeGate
from cikflow.gating.template import GateInfo


def _flags(infos, membership, columns, *, base=None, reported=None):
    def values(dim, rows):
        return columns[dim][rows]

    def band(dim, lo, hi):
        return (columns[dim] >= lo) & (columns[dim] < hi)

    return confidence_flags(
        infos,
        membership=membership,
        values=values,
        band=band,
        base=base,
        reported=reported or {},
        raw=values,  # the columns stand for data units too
    )


def _range_info(threshold):
    gate = RangeGate("pos", "root", method="valley", bounds=(("a", threshold, None),))
    return GateInfo("pos", "root", "range", ("root",), ("a",), ("A",), gate, "valley")


def test_a_divider_in_a_dense_stretch_is_sensitive_and_one_in_a_gap_is_not():
    # 10,000 events spread evenly over [0, 1): a step of 0.01 either way moves 1 % of
    # them, 1 point; over [0, 0.5) the same count is twice as dense: 2 points
    dense = {"a": np.linspace(0.0, 0.5, 10_000, endpoint=False)}
    gap = {"a": np.concatenate([np.linspace(0.0, 0.2, 5000), np.linspace(0.6, 0.8, 5000)])}
    for columns, threshold, expected in ((dense, 0.25, 2.0), (gap, 0.4, None)):
        mask = columns["a"] >= threshold
        flags = _flags([_range_info(threshold)], {"pos": mask}, columns)
        sensitive = [f for f in flags if f["flag"] == "threshold_sensitive"]
        if expected is None:
            assert sensitive == []
        else:
            (flag,) = sensitive
            assert flag["gate"] == "pos"
            assert f"moves {expected:.1f} points of pos" in flag["reason"]
    assert SENSITIVITY_STEP == 0.01


def test_a_static_divider_is_not_judged():
    columns = {"a": np.linspace(0.0, 0.5, 10_000, endpoint=False)}
    info = _range_info(0.25)
    info = GateInfo(**{**info.__dict__, "method": "static"})
    assert _flags([info], {"pos": columns["a"] >= 0.25}, columns) == []


def test_a_negative_population_lifted_by_the_other_marker_is_a_compensation_suspect():
    rng = np.random.default_rng(0)
    n = 2000
    x = np.concatenate([rng.normal(0.7, 0.02, n), rng.normal(0.2, 0.02, n)])  # CD3+ | CD3−
    shift = 2 * COMPENSATION_SHIFT
    y = np.concatenate([rng.normal(0.3 + shift, 0.02, n), rng.normal(0.3, 0.02, n)])
    gate = QuadrantGate(
        "q", "root", method="quadrant", xdim="CD3", ydim="CD56", x=0.45, y=0.6,
        quadrants=(("T", "+-"), ("CIK", "++"), ("NK", "-+"), ("DN", "--")),
    )  # fmt: skip
    members = gate.members({"CD3": x, "CD56": y}, parent=np.ones(2 * n, bool), populations={})
    info = GateInfo("q", "root", "quadrant", ("root",), ("CD3", "CD56"), ("A", "B"), gate)
    flags = [
        f
        for f in _flags([info], members, {"CD3": x, "CD56": y})
        if f["flag"] == "compensation_suspect"
    ]
    assert len(flags) == 1
    measured = float(re.match(r"CD56 of T is ([0-9.]+)", flags[0]["reason"]).group(1))
    assert measured == pytest.approx(shift, abs=0.005)  # medians of N(0.3 + shift), N(0.3)
    assert "under-corrected" in flags[0]["reason"]
    # lower instead of higher: not a compensation signal (mixed negatives), no flag
    y[:n] -= 2 * shift
    members = gate.members({"CD3": x, "CD56": y}, parent=np.ones(2 * n, bool), populations={})
    assert _flags([info], members, {"CD3": x, "CD56": y}) == []
    y[:n] += shift
    # the same events without the lift: no flag
    members = gate.members({"CD3": x, "CD56": y}, parent=np.ones(2 * n, bool), populations={})
    assert _flags([info], members, {"CD3": x, "CD56": y}) == []


def test_too_few_events_for_the_fractions_precision():
    # 300 base events, 48 of them in the population: 16 %, Wilson ±4.14 points by hand
    base = np.zeros(1000, dtype=bool)
    base[:300] = True
    pop = np.zeros(1000, dtype=bool)
    pop[:48] = True
    lymph = RangeGate("lymph", "root", bounds=(("a", 0.0, None),))
    cik = RangeGate("CIK", "lymph", bounds=(("a", 0.0, None),))
    infos = [
        GateInfo("lymph", "root", "range", ("root",), ("a",), ("A",), lymph),
        GateInfo("CIK", "lymph", "range", ("root", "lymph"), ("a",), ("A",), cik),
    ]
    flags = _flags(
        infos,
        {"lymph": base, "CIK": pop},
        {"a": np.ones(1000)},
        base="lymph",
        # an ancestor of the base (more events than the base) is not a fraction of it
        reported={"CIK": "CIK", "all": "lymph"},
    )
    (flag,) = flags
    assert flag["flag"] == "imprecise"
    assert flag["gate"] == "CIK"
    assert "48 of 300" in flag["reason"]
    assert wilson_halfwidth(48, 300) == pytest.approx(4.14, abs=0.01)
    # 30,000 base events: ±0.4 points, no flag
    assert wilson_halfwidth(4800, 30000) < 1.0


def test_a_scatter_base_holding_large_cells_is_flagged():
    # 1000 base events: 960 at SSC 100 and 40 at 300 (monocyte-like, 3×): the median is
    # 100, and 40 / 1000 = 4.0 % lie above 2 × 100, more than the 2.5 % limit
    ssc = np.concatenate([np.full(960, 100.0), np.full(40, 300.0)])

    def flags_for(side, *, method="blob", dims=("FSC-A", "SSC-A")):
        gate = RangeGate("lymph", "root", method=method, bounds=tuple((d, 0.0, None) for d in dims))
        info = GateInfo("lymph", "root", "range", ("root",), dims, dims, gate, method)
        found = confidence_flags(
            [info],
            membership={"lymph": np.ones(len(side), bool)},
            values=lambda dim, rows: side[rows],
            band=lambda dim, lo, hi: (side >= lo) & (side < hi),
            base="lymph",
            reported={},
            raw=lambda dim, rows: side[rows],
        )
        return [f for f in found if f["flag"] == "scatter_impurity"]

    (flag,) = flags_for(ssc)
    assert flag["gate"] == "lymph"
    assert flag["reason"].startswith(
        "4.0 % of the lymph events have SSC-A above 2× their median (100"
    )
    assert IMPURITY_FOLD == 2.0
    assert IMPURITY_PCT == 2.5
    # 20 large events: 2.0 %, within the limit
    assert flags_for(np.concatenate([np.full(980, 100.0), np.full(20, 300.0)])) == []
    # a static base (drawn by hand) is not judged
    assert flags_for(ssc, method="static") == []
    # a side-scatter width or a gate without forward scatter (a singlet gate) is not judged
    assert flags_for(ssc, dims=("SSC-W", "SSC-H")) == []
    assert flags_for(ssc, dims=("SSC-A",)) == []


def test_a_scatter_base_leaving_out_cells_its_children_count_is_flagged():
    # 1,000 base events; of the 100 parent events outside the base, 30 are positive by
    # the child's divider (a ≥ 0.5): 30 / 1,000 = 3.0 points of the base (> 2)
    def flags_for(n_left, *, method="blob", side=1.0):
        inside = np.r_[np.ones(1000, bool), np.zeros(100, bool)]
        a = np.r_[np.zeros(1000), np.ones(n_left), np.zeros(100 - n_left)]
        # the left-out positives' side scatter, in units of the base's (all 1)
        ssc = np.r_[np.ones(1000), np.full(n_left, side), np.ones(100 - n_left)]
        dims = ("FSC-A", "SSC-A")
        lymph = RangeGate(
            "lymph", "root", method=method, bounds=tuple((d, 0.0, None) for d in dims)
        )
        pos = RangeGate("pos", "lymph", method="valley", bounds=(("a", 0.5, None),))
        infos = [
            GateInfo("lymph", "root", "range", ("root",), dims, dims, lymph, method),
            GateInfo("pos", "lymph", "range", ("root", "lymph"), ("a",), ("A",), pos, "valley"),
        ]
        membership = {"lymph": inside, "pos": inside & (a >= 0.5)}
        columns = {"a": a, "FSC-A": np.ones(1100), "SSC-A": ssc}
        found = _flags(infos, membership, columns, base="lymph", reported={"pos": "pos"})
        return [f for f in found if f["flag"] == "excluded_cells"]

    (flag,) = flags_for(30)
    assert flag["gate"] == "lymph"
    assert flag["reason"].startswith("30 root events outside lymph fall in pos")
    assert "(3.0 points of lymph; limit 2)" in flag["reason"]
    # 15 of them: 1.5 points, within the limit
    assert flags_for(15) == []
    # at twice the base's median side scatter they count; above it (monocytes) not
    assert len(flags_for(30, side=2.0)) == 1
    assert flags_for(30, side=2.01) == []
    # a static base (drawn by hand) is not judged
    assert flags_for(30, method="static") == []


def test_a_positive_tail_below_the_divider_is_flagged_and_a_clean_gap_is_not():
    # 20,000 positives N(0.6, 0.15) above 20,000 negatives N(0, 0.05), divider at 0.35:
    # 20,000 × Φ(−0.25 / 0.15) = 956 positives below it, 2.4 % of the 40,000 events (> 2)
    rng = np.random.default_rng(3)
    smear = {"a": np.concatenate([rng.normal(0.6, 0.15, 20000), rng.normal(0.0, 0.05, 20000)])}
    # the same counts 20 SD apart: nothing hides below a divider in the gap
    gap = {"a": np.concatenate([rng.normal(1.0, 0.03, 20000), rng.normal(0.0, 0.03, 20000)])}
    for columns, threshold, expected in ((smear, 0.35, 2.4), (gap, 0.5, None)):
        mask = columns["a"] >= threshold
        flags = _flags([_range_info(threshold)], {"pos": mask}, columns)
        tails = [f for f in flags if f["flag"] == "hidden_tail"]
        if expected is None:
            assert tails == []
        else:
            (flag,) = tails
            assert flag["gate"] == "pos"
            held = float(re.search(r"holds about (\d+\.\d) points", flag["reason"])[1])
            assert held == pytest.approx(expected, abs=0.15)


def _edge_info(threshold):
    """A ``negative_edge`` divider on ``a`` (its fit record), as the CD3 divider is."""
    info = _range_info(threshold)
    info.fit["fits"] = [{"dimension": "a", "negative_edge": True, "search_transformed": [0.1, 0.7]}]
    return info


def test_a_divider_left_inside_a_smear_is_flagged_and_one_at_its_edge_is_not():
    # negatives N(0, 0.05) 10,000, a flat smear of 30,000 over [0.1, 0.7] (50,000 per
    # unit) and positives N(0.8, 0.05) 40,000: 80,000 events. The negatives' half height
    # above the smear they stand on lies at 0.032, below the search bound (0.1), so a
    # divider at 0.5 leaves a shoulder of 50,000 × (0.5 − 0.1) = 20,000 events below it,
    # 25 points (the smear's true count there), with no negatives above it to balance
    # them. At the smear's lower edge (0.12) the shoulder is 50,000 × 0.02 = 1,000
    # events, 1.25 points: no flag.
    rng = np.random.default_rng(2)
    a = np.concatenate(
        [rng.normal(0, 0.05, 10000), rng.uniform(0.1, 0.7, 30000), rng.normal(0.8, 0.05, 40000)]
    )
    inside = _flags([_edge_info(0.5)], {"pos": a >= 0.5}, {"a": a})
    (flag,) = [f for f in inside if f["flag"] == "hidden_tail"]
    held = float(re.search(r"holds about (\d+\.\d) points", flag["reason"])[1])
    # the smear's level is its lowest density above the divider: a little under its mean
    assert held == pytest.approx(25.0, rel=0.05)
    edge = _flags([_edge_info(0.12)], {"pos": a >= 0.12}, {"a": a})
    assert [f for f in edge if f["flag"] == "hidden_tail"] == []
    # the same divider inside the smear without negative_edge: the Gaussian tail only
    plain = _flags([_range_info(0.5)], {"pos": a >= 0.5}, {"a": a})
    assert [f for f in plain if f["flag"] == "hidden_tail"] == []


def test_a_small_tube_s_viability_is_imprecise():
    # 1,505 leukocytes, 1,137 of them viable: 75.5 %, Wilson ±2.17 points (of the
    # leukocytes, the viable gate's parent above the base); with 20 times the events ±0.5
    leuk_n, viable_n = 1505, 1137
    leuk = np.ones(leuk_n, dtype=bool)
    viable = np.arange(leuk_n) < viable_n
    lymph = viable & (np.arange(leuk_n) < 1000)
    gates = {
        "leuk": RangeGate("leuk", "root", bounds=(("a", 0.0, None),)),
        "viable": RangeGate("viable", "leuk", bounds=(("a", 0.0, None),)),
        "lymph": RangeGate("lymph", "viable", bounds=(("a", 0.0, None),)),
    }
    paths = {"leuk": ("root",), "viable": ("root", "leuk"), "lymph": ("root", "leuk", "viable")}
    infos = [GateInfo(n, g.parent, "range", paths[n], ("a",), ("A",), g) for n, g in gates.items()]
    flags = _flags(
        infos,
        {"leuk": leuk, "viable": viable, "lymph": lymph},
        {"a": np.ones(leuk_n)},
        base="lymph",
        reported={"viable_leukocytes": "viable"},
    )
    (flag,) = flags
    assert flag["gate"] == "viable"
    assert "1137 of 1505 leuk events" in flag["reason"]
    assert wilson_halfwidth(viable_n, leuk_n) == pytest.approx(2.17, abs=0.01)
    assert wilson_halfwidth(20 * viable_n, 20 * leuk_n) < 1.0
