"""Intervals of population fractions: Wilson score, placement bands, LOQ."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cikflow.gating.tails import hidden_below
from cikflow.intervals import count_interval, wilson_interval, z_value
from cikflow.simulate import LABELS
from cikflow.uncertainty import valley_halfwidths

#: every bias a bound, added in full (as on a sample the gating flagged)
BOUNDS = {"bias_uncertainty": None}


@pytest.fixture(scope="module")
def realistic_tube(tmp_path_factory):
    """``(tube, outcome, template)`` of a ``realistic`` culture's tube, gated once.

    Called with the culture day and the tube's events (and ``seed``, 1 unless given);
    the default template and the config's panel aliases, as the workflow's gate step
    uses them (``cut=False``: its
    lymphocytes blob without ``cut_enclosed``, so monocytes stay in the base;
    ``pick="deepest"``: its viability threshold at the deepest valley).
    """
    from pathlib import Path

    from cikflow.gating.apply import gate_fcs
    from cikflow.io import read_fcs, read_template, read_yaml
    from cikflow.io.simulated import write_simulated
    from cikflow.simulate import simulate_batches

    repo = Path(__file__).resolve().parents[1]
    text = (repo / "config" / "gating" / "cik_default.yaml").read_text(encoding="utf-8")
    assert text.count("cut_enclosed: true") == 1
    assert text.count("pick: first, ") == 1
    aliases = read_yaml(repo / "config" / "config.yaml")["panel"].get("aliases")
    tubes, made, templates = {}, {}, {}

    def template(*, cut: bool, pick: str):
        if (cut, pick) not in templates:  # the default, or a variant of it
            path = tmp_path_factory.mktemp("templates") / "cik_default.yaml"
            variant = text if cut else text.replace("cut_enclosed: true", "cut_enclosed: false")
            if pick != "first":
                variant = variant.replace("pick: first, ", f"pick: {pick}, ")
            path.write_text(variant, encoding="utf-8")
            templates[cut, pick] = read_template(path)
        return templates[cut, pick]

    def make(day: int, n_events: int, *, cut: bool = True, pick: str = "first", seed: int = 1):
        if (day, n_events, seed) not in tubes:  # one simulated tube, gated by any template
            folder = tmp_path_factory.mktemp(f"day{day}")
            (batch,) = simulate_batches(
                n_batches=1, days=(day,), n_events=n_events, seed=seed, preset="realistic"
            )
            write_simulated([batch], folder)
            tube = batch.samples[0]
            tubes[day, n_events, seed] = (tube, folder / f"{tube.sample}.fcs")
        if (day, n_events, seed, cut, pick) not in made:
            tube, path = tubes[day, n_events, seed]
            chosen = template(cut=cut, pick=pick)
            outcome = gate_fcs(read_fcs(path), chosen, aliases=aliases)
            made[day, n_events, seed, cut, pick] = (tube, outcome, chosen)
        return made[day, n_events, seed, cut, pick]

    return make


def test_z_value_95():
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)


def test_wilson_hand_computed():
    # k = 20, n = 100, z² = 3.841459: centre (0.2 + 0.019207) / 1.038415 = 0.211098,
    # half 1.959964 * sqrt(0.0016 + 0.0000960365) / 1.038415 = 0.077731
    lo, hi = wilson_interval(20, 100)
    assert lo == pytest.approx(0.133367, abs=1e-5)
    assert hi == pytest.approx(0.288829, abs=1e-5)


def test_wilson_zero_events_has_upper_bound():
    # k = 0: (0, z² / (n + z²)) = 3.8415 / 103.8415
    lo, hi = wilson_interval(0, 100)
    assert lo == 0.0
    assert hi == pytest.approx(3.841459 / 103.841459, abs=1e-6)


def test_count_interval_contains_inverts_wilson():
    # base 100 inside 125 events: Wilson of 100/125, inverted, in percent
    lo_q, hi_q = wilson_interval(100, 125)
    lo, hi = count_interval(125, 100, relation="contains")
    assert (lo, hi) == pytest.approx((100 / hi_q, 100 / lo_q))
    assert lo < 125 < hi


def test_count_interval_disjoint_poisson_ratio():
    # 400 beads against 1600 base events: 25 % x exp(± 1.96 sqrt(1/400 + 1/1600))
    spread = 1.959964 * math.sqrt(1 / 400 + 1 / 1600)
    lo, hi = count_interval(400, 1600, relation="disjoint")
    assert lo == pytest.approx(25 * math.exp(-spread), rel=1e-5)
    assert hi == pytest.approx(25 * math.exp(spread), rel=1e-5)


def test_valley_halfwidths_empty_gap():
    # two flat blocks with an empty gap (−0.2, 0.2): the band stays inside the gap
    x = np.concatenate([np.linspace(-1, -0.2, 4000), np.linspace(0.2, 1, 4000)])
    below, above = valley_halfwidths(x, 0.0, bandwidth=0.01)
    assert 0.01 <= below < 0.2
    assert 0.01 <= above < 0.2


def test_valley_halfwidths_never_below_bandwidth():
    # a threshold on a slope (no valley) still gets the kernel width as its band
    x = np.linspace(0, 1, 1000) ** 2
    below, above = valley_halfwidths(x, 0.5, bandwidth=0.02)
    assert below >= 0.02
    assert above >= 0.02


def _in_band(x, t):
    below, above = valley_halfwidths(x, t)
    return int(np.count_nonzero((x >= t - below) & (x < t + above)))


def test_valley_band_holds_few_events_in_a_deep_valley_many_in_a_shallow_one():
    rng = np.random.default_rng(0)
    deep = np.concatenate([rng.normal(0, 0.05, 20000), rng.normal(1, 0.05, 20000)])
    shallow = np.concatenate([rng.normal(0.3, 0.15, 20000), rng.normal(0.7, 0.15, 20000)])
    # separated by 20 sd: no event lies near the threshold
    assert _in_band(deep, 0.5) == 0
    # separated by 2.7 sd (depth ratio ~0.85): a wide share of the events is ambiguous
    assert _in_band(shallow, 0.5) > 4000


def test_a_quadrant_population_carries_the_placement_of_the_quadrants_dividers(realistic_tube):
    """T, CIK and NK lie under the CD3 × CD56 quadrant gate.

    Its fitted dividers widen their intervals beyond counting alone, by the events in
    each divider's placement band (on each side, where the biases are bounds).
    """
    from cikflow.uncertainty import population_intervals

    _, outcome, template = realistic_tube(14, 20_000)
    cols = ["percent_of_base_low", "percent_of_base_high"]
    bounds = population_intervals(outcome, template=template, settings=BOUNDS).set_index("gate")
    rows = population_intervals(outcome, template=template).set_index("gate")
    gates = outcome.gates.set_index("gate")
    n = int(gates.loc["lymphocytes", "events"])
    for pop in ("T", "CIK", "NK"):
        k = int(gates.loc[pop, "events"])
        c_low, c_high = count_interval(k, n, relation="nested")
        low, high = bounds.loc[pop, cols]
        assert low < c_low - 0.1
        assert high > c_high + 0.1
        # centred on the corrected value, never narrower than counting: here it holds the
        # count's interval and reaches beyond it on the side the biases point to
        low, high = rows.loc[pop, cols]
        assert low <= c_low
        assert high >= c_high
        assert low < c_low - 0.05 or high > c_high + 0.05
        assert low <= 100 * k / n <= high


def test_hidden_below_is_the_positives_gaussian_tail():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0.6, 0.15, 20000), rng.normal(0.0, 0.05, 20000)])
    # 20,000 × Φ((0.35 − 0.6) / 0.15) = 20,000 × 0.0478 = 956 positives below 0.35
    assert hidden_below(x, 0.35) == pytest.approx(956, rel=0.12)
    # a divider in an empty gap hides (almost) nothing: Φ(−20/3) × 20,000 ≈ 0
    gap = np.concatenate([rng.normal(1.0, 0.03, 20000), rng.normal(0.0, 0.03, 20000)])
    assert hidden_below(gap, 0.8) < 1.0


def test_hidden_below_needs_events_on_both_sides():
    x = np.linspace(0.0, 1.0, 1000)
    assert hidden_below(x, -0.1) == 0.0  # nothing below
    assert hidden_below(x, 0.97) == 0.0  # 30 events above: fewer than 50


def test_the_cd56_tail_widens_cik_up_and_t_down(realistic_tube, monkeypatch):
    """CIK's CD56 smear reaches below the CD56-within-CD3+ divider.

    CIK may own those events (its interval reaches up by them), T holds them (its
    interval reaches down); the tube's true CIK fraction lies inside the interval.
    (Without the tail it does too on this tube: CIK's band across the CD3 divider, taken
    on the CD56+ side where the NK cells below it are CIK's to gain, reaches 0.5 of a
    point above its truth.)
    """
    import cikflow.gating.tails as tails
    import cikflow.uncertainty as unc

    tube, outcome, template = realistic_tube(21, 30_000)
    cols = ["percent_of_base_low", "percent_of_base_high"]
    # the CD3 divider's shoulder and the negatives' tail above it
    monkeypatch.setattr(tails, "shoulder_below", lambda *a, **k: 0.0)
    monkeypatch.setattr(unc, "spill_above", lambda *a, **k: 0.0)
    with_tail = unc.population_intervals(outcome, template=template, settings=BOUNDS)
    with_tail = with_tail.set_index("gate")[cols]
    monkeypatch.setattr(tails, "hidden_below", lambda *a, **k: 0.0)
    without = unc.population_intervals(outcome, template=template, settings=BOUNDS)
    without = without.set_index("gate")[cols]
    assert with_tail.loc["CIK", cols[1]] > without.loc["CIK", cols[1]] + 0.5
    assert with_tail.loc["CIK", cols[0]] == pytest.approx(without.loc["CIK", cols[0]])
    assert with_tail.loc["T", cols[0]] < without.loc["T", cols[0]] - 0.5
    true_cik = next(r["percent_of_base"] for r in tube.truth if r["population"] == "CIK")
    assert with_tail.loc["CIK", cols[0]] <= true_cik <= with_tail.loc["CIK", cols[1]]


def _cd3_and_divider(outcome, template):
    """Every event's CD3 (transformed as gated) and the fitted CD3 divider of cd3_cd56."""
    import cikflow.uncertainty as unc

    (x_fit,) = [
        f for i in outcome.infos if i.name == "cd3_cd56" for f in i.fit["fits"] if "within" not in f
    ]
    xform = unc._xform_of(template.spec, "CD3")
    comp = outcome.compensated
    cd3 = xform.apply(comp.column(comp.pnn.index(outcome.channel_map["CD3"])).astype(float))
    return cd3, float(x_fit["threshold_transformed"])


def test_the_cd3_dim_shoulder_widens_t_up(realistic_tube, monkeypatch):
    """CD3-dim T cells continue as a plateau below the CD3 divider on day 0.

    The CD3 divider is taken on each CD56 side apart. On the CD56− side the
    divider's shoulder (events per CD3 unit above it, continued down to the
    negatives) estimates the CD3-dim T cells below it within a factor of 1.5; T's
    interval reaches up by its share, the CD3−CD56− cells' down, and the tube's true
    T lies inside it. The divider's band above it is one kernel width: the stretch
    above it is the CD3-dim cells', no plausible place for it.
    """
    import cikflow.gating.tails as tails
    import cikflow.uncertainty as unc
    from cikflow.gating.tails import shoulder_below

    tube, outcome, template = realistic_tube(0, 30_000)
    cols = ["percent_of_base_low", "percent_of_base_high"]
    with_shoulder = unc.population_intervals(outcome, template=template, settings=BOUNDS)
    with_shoulder = with_shoulder.set_index("gate")[cols]
    monkeypatch.setattr(tails, "shoulder_below", lambda *a, **k: 0.0)
    without = unc.population_intervals(outcome, template=template, settings=BOUNDS)
    without = without.set_index("gate")[cols]
    base = outcome.membership["lymphocytes"]
    side = outcome.membership["T"] | outcome.membership["CD3neg_CD56neg"]  # CD56−
    cd3, t = _cd3_and_divider(outcome, template)
    lowest = float(unc._xform_of(template.spec, "CD3").apply(np.array([300.0]))[0])
    estimate = shoulder_below(cd3[side], t, lowest=lowest)
    truly_below = int((side & tube.members("T") & (cd3 < t)).sum())
    # 10 % of the T cells are CD3-dim; a sixth of those fall below the balanced edge
    assert truly_below > 150
    assert truly_below / 1.5 < estimate < truly_below * 1.5
    (x_divider,) = [
        d
        for d in unc._dividers(outcome, template=template, settings=unc.UNCERTAINTY_DEFAULTS)
        if d.gate == "cd3_cd56" and d.upper.sum() == (side & (cd3 >= t)).sum()
    ]
    # T's share of the shoulder: its share of the divider's band above; the shoulder
    # enters T's upper end whole, as a bias (the band only beyond it)
    t_mask = outcome.membership["T"]
    share = (t_mask & x_divider.above).sum() / x_divider.above.sum()
    t_point = 100.0 * t_mask.sum() / base.sum()
    # the shoulder (≈ 1 point at the balanced edge) replaces part of the band above, which
    # entered in quadrature with counting: T's upper end moves up by 0.4 of a point
    assert with_shoulder.loc["T", cols[1]] > without.loc["T", cols[1]] + 0.3
    assert with_shoulder.loc["T", cols[1]] >= t_point + 100.0 * estimate * share / base.sum()
    assert with_shoulder.loc["CD3neg_CD56neg", cols[0]] < without.loc["CD3neg_CD56neg", cols[0]]
    true_t = next(r["percent_of_base"] for r in tube.truth if r["population"] == "T")
    assert with_shoulder.loc["T", cols[0]] <= true_t <= with_shoulder.loc["T", cols[1]]
    kernel = unc.UNCERTAINTY_DEFAULTS["placement_bandwidth"]
    assert x_divider.above.sum() == pytest.approx(
        (side & (cd3 >= t) & (cd3 < t + kernel)).sum(), abs=2
    )


def test_the_negatives_above_the_cd3_edge_widen_nk_up(realistic_tube, monkeypatch):
    """NK cells' CD3 background reaches above the CD3 divider on day 0.

    The CD3 divider of the CD56+ cells is a notch above the x divider here (556, placed
    on their own events): of the 34 true NK cells above the x divider (of the tube's
    18,000 base events), 12 lie above the notch, where CIK counts them. The negatives'
    tail above it (:func:`cikflow.gating.tails.spill_above`) estimates them within a
    factor of 1.5 (17); NK's interval reaches up by them, CIK's down (17 of 18,000
    events: 0.09 points).
    """
    import cikflow.uncertainty as unc
    from cikflow.gating.tails import spill_above

    tube, outcome, template = realistic_tube(0, 30_000)
    cols = ["percent_of_base_low", "percent_of_base_high"]
    with_spill = unc.population_intervals(outcome, template=template, settings=BOUNDS)
    with_spill = with_spill.set_index("gate")[cols]
    monkeypatch.setattr(unc, "spill_above", lambda *a, **k: 0.0)
    without = unc.population_intervals(outcome, template=template, settings=BOUNDS)
    without = without.set_index("gate")[cols]
    side = outcome.membership["CIK"] | outcome.membership["NK"]  # CD56+
    cd3, x = _cd3_and_divider(outcome, template)
    fits = [f for i in outcome.infos for f in (i.fit or {}).get("fits", [])]
    (notch,) = [f for f in fits if f.get("within") == "CD56+"]
    t = notch["threshold_transformed"]
    nk = side & tube.members("NK")
    assert int((nk & (cd3 >= x)).sum()) > 25
    truly_above = int((nk & (cd3 >= t)).sum())
    estimate = spill_above(cd3[side], t)
    assert 0 < truly_above < 20
    assert truly_above / 1.5 < estimate < truly_above * 1.5
    assert with_spill.loc["NK", cols[1]] > without.loc["NK", cols[1]] + 0.05
    assert with_spill.loc["CIK", cols[0]] < without.loc["CIK", cols[0]] - 0.05


def test_high_side_scatter_in_the_base_widens_t_up(realistic_tube, monkeypatch):
    """Monocytes inside the lymphocyte scatter gate on day 7 (CD3−CD56−) dilute T.

    Where the blob keeps them (no ``cut_enclosed``), T's interval reaches up to its
    share of the base without the base's events of side scatter above twice its
    median; the tube's true T lies inside it, and above the interval without that
    part. The default template's blob keeps nine in ten of them out (55 of 587 stay
    in at its 99.95 % contour): T's point rises toward the truth by more than a point.
    """
    import cikflow.gating.tails as tails
    import cikflow.uncertainty as unc

    tube, cut, _ = realistic_tube(7, 30_000)
    true_t = next(r["percent_of_base"] for r in tube.truth if r["population"] == "T")
    monocyte = tube.labels == LABELS.index("monocyte")
    cut_t = 100 * cut.membership["T"].sum() / cut.membership["lymphocytes"].sum()
    assert (cut.membership["lymphocytes"] & monocyte).sum() < 0.1 * monocyte.sum()
    tube, outcome, template = realistic_tube(7, 30_000, cut=False)
    assert (outcome.membership["lymphocytes"] & monocyte).sum() > 0.9 * monocyte.sum()
    uncut_t = 100 * outcome.membership["T"].sum() / outcome.membership["lymphocytes"].sum()
    assert uncut_t + 1.0 < cut_t  # T nearer the truth, within a point of it (0.5 above)
    assert abs(cut_t - true_t) < 1.0
    high = "percent_of_base_high"
    monkeypatch.setattr(tails, "shoulder_below", lambda *a, **k: 0.0)  # CD3-dim T cells'
    with_out = unc.population_intervals(outcome, template=template, settings=BOUNDS)
    with_out = with_out.set_index("gate")[high]
    outliers = unc._base_outliers(outcome, base="lymphocytes")
    monkeypatch.setattr(unc, "_base_outliers", lambda *a, **k: None)
    without = unc.population_intervals(outcome, template=template, settings=BOUNDS)
    without = without.set_index("gate")[high]
    # by hand: T's events and the base's, both without the high-SSC events
    base, t = outcome.membership["lymphocytes"], outcome.membership["T"]
    p = 100 * t.sum() / base.sum()
    alt = 100 * (t & ~outliers).sum() / (base & ~outliers).sum()
    assert alt > p + 1.0  # about 700 of 18,000 base events are monocytes
    assert with_out["T"] == pytest.approx(without["T"] + alt - p)
    assert without["T"] < true_t <= with_out["T"]


def test_an_unflagged_sample_s_interval_is_centred_on_the_corrected_value(
    realistic_tube, monkeypatch
):
    """The monocytes of the day-7 tube above, the only bias left: T's share without them.

    On a sample the gating did not flag, that estimate corrects: T's interval is
    centred on ``alt`` (T's share of the base without its high side-scatter events),
    its half-widths the chance parts (the interval without the bias, which is centred
    on the point) and 0.5 × ``alt − p`` in quadrature, and it reaches down to the
    count's own Wilson interval at least. On a flagged sample, or with
    ``bias_uncertainty: null``, the bias is a bound.
    """
    import dataclasses
    import math

    import cikflow.gating.tails as tails
    import cikflow.uncertainty as unc

    tube, outcome, template = realistic_tube(7, 30_000, cut=False)
    for name in ("shoulder_below", "hidden_below"):  # no tail, shoulder, spill, dying, mode
        monkeypatch.setattr(tails, name, lambda *a, **k: 0.0)
    monkeypatch.setattr(unc, "spill_above", lambda *a, **k: 0.0)
    monkeypatch.setattr(unc, "_base_dying", lambda *a, **k: None)
    monkeypatch.setattr(unc, "_crossings", lambda *a, **k: [])
    cols = ["percent_of_base_low", "percent_of_base_high"]
    outliers = unc._base_outliers(outcome, base="lymphocytes")
    base, t = outcome.membership["lymphocytes"], outcome.membership["T"]
    p = 100 * t.sum() / base.sum()
    alt = 100 * (t & ~outliers).sum() / (base & ~outliers).sum()
    assert alt > p + 1.0

    def interval(flags, settings=None):
        gated = dataclasses.replace(outcome, flags=flags)
        rows = unc.population_intervals(gated, template=template, settings=settings)
        return rows.set_index("gate").loc["T", cols].to_numpy(dtype=float)

    table = unc.population_intervals(outcome, template=template)
    assert table.set_index("gate").loc["T", "bias_pp"] == pytest.approx(alt - p)  # the net
    (raised,) = unc.bias_flags(table, populations={"T cells": "T"}, limit_pp=1.0)
    assert raised["flag"] == "estimated_bias"
    assert raised["gate"] == "T"
    assert f"net {alt - p:+.2f} points" in raised["reason"]
    assert raised["reason"].endswith("the value may be that much low")
    assert unc.bias_flags(table, populations={"T cells": "T"}, limit_pp=alt - p + 0.01) == []
    flag = [{"flag": "not_separated", "gate": "cd3_cd56", "reason": "a flag"}]
    corrected, flagged = interval([]), interval(flag)
    assert interval([], BOUNDS) == pytest.approx(flagged)
    monkeypatch.setattr(unc, "_base_outliers", lambda *a, **k: None)
    low, high = interval([])  # chance alone, around the point
    assert low < p < high
    bias = 0.5 * (alt - p)
    c_low, _ = count_interval(int(t.sum()), int(base.sum()), relation="nested")
    assert corrected[1] == pytest.approx(alt + math.hypot(high - p, bias))
    assert corrected[0] == pytest.approx(min(c_low, alt - math.hypot(p - low, bias)))
    assert corrected[0] == pytest.approx(c_low)  # the bias (1.9 points) lifts the centre
    assert flagged[1] == pytest.approx(high + alt - p)
    assert flagged[0] == pytest.approx(low)
    true_t = next(r["percent_of_base"] for r in tube.truth if r["population"] == "T")
    assert corrected[0] <= true_t <= corrected[1]
    assert corrected[0] > flagged[0]  # the near side: counting only, no placement band


def test_bias_flags_by_hand():
    """A net beyond the limit either way raises ``estimated_bias``; at it, or off, nothing."""
    import pandas as pd

    from cikflow.uncertainty import bias_flags

    table = pd.DataFrame(
        {"gate": ["T", "CIK", "NK", "CD3neg_CD56neg"], "bias_pp": [-2.5, 2.0, 0.3, 9.0]}
    )
    pops = {"T": "T", "CIK": "CIK", "NK": "NK"}  # CD3−CD56− is no reported population
    (t,) = bias_flags(table, populations=pops, limit_pp=2.0)
    assert t["gate"] == "T"
    assert "net -2.50 points (beyond ±2)" in t["reason"]
    assert t["reason"].endswith("may be that much high")
    assert [f["gate"] for f in bias_flags(table, populations=pops, limit_pp=0.2)] == [
        "T",
        "CIK",
        "NK",
    ]
    assert bias_flags(table, populations=pops, limit_pp=None) == []


def test_dying_cells_in_the_base_widen_nk_up_and_t_down(realistic_tube, monkeypatch):
    """Dying cells (intermediate viability dye) that the viability valley counts live.

    With the viability threshold at the deepest valley (``pick: deepest``; the default
    template takes the first), on a day-0 tube it sits above the first valley over
    the live peak; the base's events between the two are dying cells, all but three
    dead by the truth. (The tube is seed 5's: seed 1's base, at that pick, holds a
    thousand monocytes, whose removal alone lifts T.) Without them (and the base's high side-scatter
    events) NK's share is higher: its interval reaches up by the difference; T's, which
    holds most of them, lower: it reaches down.
    """
    import cikflow.uncertainty as unc

    tube, outcome, template = realistic_tube(0, 30_000, pick="deepest", seed=5)
    base = outcome.membership["lymphocytes"]
    dying = unc._base_dying(outcome, base="lymphocytes", template=template) & base
    dead = tube.labels == LABELS.index("dead")
    assert dying.sum() > 100  # 207 events: 204 dead cells, 2 T and 1 NK
    assert (dying & dead).sum() > 0.98 * dying.sum()
    cols = ["percent_of_base_low", "percent_of_base_high"]
    with_dying = unc.population_intervals(outcome, template=template, settings=BOUNDS)
    with_dying = with_dying.set_index("gate")[cols]
    monkeypatch.setattr(unc, "_base_dying", lambda *a, **k: None)
    without = unc.population_intervals(outcome, template=template, settings=BOUNDS)
    without = without.set_index("gate")[cols]
    # by hand: each share of the base without the suspect events, with and without the
    # dying ones among them; the interval's end moves by the difference of the two
    high_ssc = unc._base_outliers(outcome, base="lymphocytes")

    def moved(pop, side):
        mask = outcome.membership[pop]
        p = 100 * mask.sum() / base.sum()

        def away(suspect):
            alt = 100 * (mask & base & ~suspect).sum() / (base & ~suspect).sum()
            return max(side * (alt - p), 0)

        return side * (away(high_ssc | dying) - away(high_ssc))

    assert moved("NK", +1) > 0.02  # NK holds one of the dying cells
    assert moved("T", -1) < -0.05
    for pop, side, end in (("NK", +1, cols[1]), ("T", -1, cols[0])):
        assert with_dying.loc[pop, end] == pytest.approx(without.loc[pop, end] + moved(pop, side))
    true_nk = next(r["percent_of_base"] for r in tube.truth if r["population"] == "NK")
    assert with_dying.loc["NK", cols[0]] <= true_nk <= with_dying.loc["NK", cols[1]]


@given(
    values=st.lists(
        st.floats(min_value=-1.0, max_value=2.0, allow_nan=False), min_size=0, max_size=400
    ),
    threshold=st.floats(min_value=-1.0, max_value=2.0, allow_nan=False),
)
@settings(max_examples=60, deadline=None)
def test_hidden_below_never_exceeds_the_events_below(values, threshold):
    x = np.asarray(values, dtype=float)
    hidden = hidden_below(x, threshold)
    assert 0.0 <= hidden <= np.count_nonzero(x < threshold)


def test_a_notch_takes_cd3_dim_cik_cells_out_of_nk(realistic_tube):
    """Day 21: CIK cells that down-regulated CD3 form a second mode in the NK quadrant.

    The default template's notch finds the valley between the NK cells and that mode
    and takes the mode into CIK: nearly all of it is CIK by the true labels, NK's
    per-event F1 rises, and NK's and CIK's intervals still hold their true fractions.
    (Seed 6: where the CD3 divider itself reaches down below that mode, as on seed 1's
    day 21, there is no notch to make.)
    """
    from cikflow.evaluate import f1_score
    from cikflow.gating.template import make_transform, transform_name
    from cikflow.uncertainty import population_intervals

    tube, outcome, template = realistic_tube(21, 30_000, seed=6)
    (gate,) = [i.gate for i in outcome.infos if i.name == "cd3_cd56"]
    assert gate.notched
    member, truth = outcome.membership, {p: tube.members(p) for p in ("CIK", "NK")}
    comp = outcome.compensated
    cd3 = np.asarray(comp.column(comp.pnn.index(outcome.channel_map["CD3"])), dtype=float)
    xform = make_transform(template.spec["transforms"][transform_name(template.spec, "CD3")])
    moved = member["CIK"] & (xform.apply(cd3) < gate.x)  # CIK left of the CD3 divider
    assert moved.sum() > 100
    assert (moved & truth["CIK"]).sum() / moved.sum() > 0.9
    assert f1_score(member["NK"], truth["NK"]) > f1_score(member["NK"] | moved, truth["NK"]) + 0.05
    intervals = population_intervals(outcome, template=template).set_index("gate")
    for pop in ("CIK", "NK"):
        true = next(r["percent_of_base"] for r in tube.truth if r["population"] == pop)
        low, high = intervals.loc[pop, ["percent_of_base_low", "percent_of_base_high"]]
        assert low <= true <= high, (pop, low, true, high)


def test_the_shoulder_ends_at_the_negatives_half_height_above_it():
    # negatives N(0, 0.05) 10,000 on a smear of 40,000 over [0, 0.85] (47,059 per unit)
    # and positives N(0.9, 0.04) 20,000. Half the negatives' own peak (39,894) lies below
    # the smear: their half height above it is where the negatives alone are 39,894,
    # at 0.0589, so the shoulder below 0.5 is 47,059 × (0.5 − 0.0589) = 20,760 events
    # (the smear truly holds 23,529 below 0.5, some of them under the negatives' peak)
    from cikflow.gating.tails import shoulder_below

    rng = np.random.default_rng(6)
    x = np.concatenate(
        [rng.normal(0, 0.05, 10000), rng.uniform(0, 0.85, 40000), rng.normal(0.9, 0.04, 20000)]
    )
    assert shoulder_below(x, 0.5) == pytest.approx(20_760, rel=0.1)
