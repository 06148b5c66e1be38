from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from cikflow.io import read_fcs
from cikflow.io.simulated import write_simulated
from cikflow.preprocess import compensate, spillover_matrix
from cikflow.simulate import (
    FLUOROCHROMES,
    LABELS,
    POPULATION_MEMBERS,
    SPILLOVER,
    SimulatedSample,
    simulate_batches,
)


@pytest.fixture(scope="module")
def batches():
    return simulate_batches(n_batches=2, days=(0, 21), n_events=6000, seed=11, preset="clean")


@pytest.fixture(scope="module")
def written(batches, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    write_simulated(batches, out)
    return out


def test_same_seed_same_bytes(batches, written, tmp_path):
    again = simulate_batches(n_batches=2, days=(0, 21), n_events=6000, seed=11)
    write_simulated(again, tmp_path)
    for name in ("B01_d00.fcs", "B02_d21.fcs", "truth.tsv", "samples.tsv", "B01_d21.labels.tsv.gz"):
        assert (tmp_path / name).read_bytes() == (written / name).read_bytes(), name


def test_other_seed_other_events(batches):
    other = simulate_batches(n_batches=1, days=(0,), n_events=6000, seed=12)
    assert not np.array_equal(other[0].samples[0].events[:100], batches[0].samples[0].events[:100])


def test_sample_sheet_does_not_depend_on_event_count(batches):
    small = simulate_batches(n_batches=2, days=(0, 21), n_events=500, seed=11)
    assert [s.sheet for b in small for s in b.samples] == [
        s.sheet for b in batches for s in b.samples
    ]


def test_truth_table_counts_the_labels(batches, written):
    truth = pd.read_csv(written / "truth.tsv", sep="\t")
    for s in batches[0].samples:
        with gzip.open(written / f"{s.sample}.labels.tsv.gz", "rt") as fh:
            labels = pd.read_csv(fh, sep="\t")["label"]
        assert len(labels) == s.events.shape[0]
        rows = truth[truth["sample"] == s.sample].set_index("population")
        base = labels.isin(POPULATION_MEMBERS["viable_lymphocytes"]).sum()
        for pop, members in POPULATION_MEMBERS.items():
            n = int(labels.isin(members).sum())
            assert rows.loc[pop, "events"] == n
            assert rows.loc[pop, "percent_of_base"] == pytest.approx(100 * n / base)
        # single-platform concentration from the true bead count
        beads = int((labels == "bead").sum())
        cik = rows.loc["CIK"]
        expected = cik["events"] / beads * s.sheet["beads_per_tube"] / s.sheet["sample_volume_uL"]
        assert cik["cells_per_uL"] == pytest.approx(expected)


def test_fcs_file_round_trips(batches, written):
    tube = batches[1].samples[1]
    fcs = read_fcs(written / f"{tube.sample}.fcs")
    assert fcs.keywords["fil"] == f"{tube.sample}.fcs"
    assert fcs.pns[fcs.pnn.index("PE-A")] == "CD56"
    expected = tube.events.astype(np.float64)
    np.testing.assert_array_equal(fcs.events[:, :-1], expected[:, :-1])
    # Time is stored in ticks and read in seconds ($TIMESTEP = 0.01 s)
    np.testing.assert_allclose(fcs.events[:, -1], expected[:, -1] * 0.01, rtol=1e-6)
    matrix, _ = spillover_matrix(fcs)
    np.testing.assert_allclose(matrix.matrix, SPILLOVER, atol=1e-6)
    assert matrix.detectors == list(FLUOROCHROMES)


def test_spillover_is_applied_and_compensation_removes_it(batches, written):
    """T cells are CD56-negative: their PE signal is FITC (CD3) spillover until compensated."""
    tube = batches[0].samples[0]
    fcs = read_fcs(written / f"{tube.sample}.fcs")
    t_cells = tube.labels == LABELS.index("T")
    pe = fcs.pnn.index("PE-A")
    fitc = fcs.pnn.index("FITC-A")
    raw_ratio = np.median(fcs.events[t_cells, pe]) / np.median(fcs.events[t_cells, fitc])
    assert raw_ratio == pytest.approx(SPILLOVER[0, 1], abs=0.03)
    comp = compensate(fcs, spillover_matrix(fcs)[0])
    assert abs(np.median(comp[t_cells, pe])) < 250  # autofluorescence only


@pytest.mark.parametrize(
    ("day", "population", "low", "high"),
    [
        (0, "CD3", 55, 80),
        (21, "CD3", 88, 98),
        (0, "CIK", 2, 7),
        (21, "CIK", 18, 45),
        (0, "NK", 7, 15),
        (21, "NK", 1, 10),
    ],
    ids=lambda v: str(v),
)
def test_composition_follows_domain_ranges(batches, day, population, low, high):
    for batch in batches:
        rows = {r["population"]: r for s in batch.samples if s.day == day for r in s.truth}
        if population == "CD3":
            value = rows["T"]["percent_of_base"] + rows["CIK"]["percent_of_base"]
        else:
            value = rows[population]["percent_of_base"]
        assert low <= value <= high, (batch.batch, value)


def test_scatter_grows_with_culture_day(batches):
    tubes = {s.day: s for s in batches[0].samples}
    t0, t21 = (tubes[d].labels == LABELS.index("T") for d in (0, 21))
    ratio = np.median(tubes[21].events[t21, 0]) / np.median(tubes[0].events[t0, 0])
    assert 1.5 <= ratio <= 2.2


def test_members_of_a_population_are_its_labels_events():
    codes = [LABELS.index(name) for name in ("CIK_CD16pos", "CIK_CD16neg", "CIK_CD16pos")]
    other = next(i for i, name in enumerate(LABELS) if not name.startswith("CIK"))
    tube = SimulatedSample(
        sample="s",
        batch="b",
        day=0,
        events=np.zeros((4, 1)),
        labels=np.array([*codes, other], dtype=np.int8),
        keywords={},
        sheet={},
    )
    assert tube.members("CIK").tolist() == [True, True, True, False]
    assert tube.members("CIK_CD16neg").tolist() == [False, True, False, False]


# --- presets -------------------------------------------------------------------------


def test_clean_preset_keeps_the_bytes_of_the_simulator_before_presets(repo_dir, tmp_path):
    """``clean`` reproduces the files the simulator wrote before presets existed."""
    import hashlib
    import json

    ref = json.loads((repo_dir / "tests" / "data" / "clean_simulator_sha256.json").read_text())
    batches = simulate_batches(
        n_batches=3, days=(0, 7, 14, 21), n_events=3000, seed=20120801, preset="clean"
    )
    write_simulated(batches, tmp_path)
    changed = [
        name
        for name, digest in ref["sha256"].items()
        if hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() != digest
    ]
    assert changed == []
    assert len(ref["sha256"]) == 26  # 12 FCS, 12 label files, truth and sheet


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown simulator preset 'easy'"):
        simulate_batches(n_batches=1, days=(0,), preset="easy")


def test_preset_sets_the_default_event_count():
    (hard,) = simulate_batches(n_batches=1, days=(0,), preset="hard")
    assert abs(hard.samples[0].events.shape[0] - 2000) < 200
    assert hard.samples[0].preset == "hard"


def test_presets_share_the_truth_composition():
    """A preset makes tubes harder to gate, not different cultures."""
    clean = simulate_batches(n_batches=1, days=(14,), n_events=20000, seed=4, preset="clean")
    real = simulate_batches(n_batches=1, days=(14,), n_events=20000, seed=4, preset="realistic")
    a, b = clean[0].samples[0].truth, real[0].samples[0].truth
    for ra, rb in zip(a, b, strict=True):
        if ra["population"] in ("T", "CIK", "NK"):
            assert ra["percent_of_base"] == pytest.approx(rb["percent_of_base"], abs=1.0)


def _one(difficulty, *, day=7, n_events=20000):
    return simulate_batches(n_batches=1, days=(day,), n_events=n_events, seed=9, preset=difficulty)[
        0
    ].samples[0]


def test_spillover_error_and_gain_drift_are_recorded_and_bounded():
    from dataclasses import replace

    from cikflow.simulate import PRESETS

    tube = _one(replace(PRESETS["clean"], spillover_error=0.1, gain_drift=0.3))
    assert tube.preset == "custom"
    off = ~np.eye(len(FLUOROCHROMES), dtype=bool) & (SPILLOVER > 0)
    rel = tube.true_spillover[off] / SPILLOVER[off]
    assert not np.allclose(rel, 1.0)
    assert np.all((rel >= 0.2) & (rel <= 2.0))
    np.testing.assert_array_equal(np.diag(tube.true_spillover), 1.0)
    assert np.all((tube.gains > 0.7 * 0.94) & (tube.gains < 1.3 * 1.06))
    # the file still carries the nominal matrix
    np.testing.assert_array_equal(tube.file_spillover, SPILLOVER)


def test_bead_lot_and_pipetting_errors_move_the_true_concentration_not_the_events():
    from dataclasses import replace

    from cikflow.simulate import PRESETS

    def cultures(**cv):
        d = replace(PRESETS["clean"], **cv)
        return simulate_batches(n_batches=40, days=(0, 7), n_events=300, seed=5, preset=d)

    def expected(batches):  # CIK's true concentration per tube (cells/µL)
        return np.array(
            [
                next(r["cells_per_uL_expected"] for r in t.truth if r["population"] == "CIK")
                for b in batches
                for t in b.samples
            ]
        ).reshape(len(batches), -1)

    exact = cultures()
    lot = cultures(bead_lot_cv=0.1)
    pipetted = cultures(pipetting_cv=0.1)
    for a, b in zip(exact, lot, strict=True):  # the same acquisition
        for s, t in zip(a.samples, b.samples, strict=True):
            np.testing.assert_array_equal(s.events, t.events)
            assert [r["cells_per_uL"] for r in s.truth] == [r["cells_per_uL"] for r in t.truth]
    f_lot = expected(exact) / expected(lot)  # the factor f: measured ÷ true concentration
    f_pip = expected(exact) / expected(pipetted)
    # one lot per culture: both days share its factor; pipetting errs per tube
    np.testing.assert_allclose(f_lot[:, 0], f_lot[:, 1], rtol=1e-12)
    assert np.all(np.abs(f_pip[:, 0] - f_pip[:, 1]) > 1e-6)
    # log-normal with SD 0.1: over 40 cultures the sample SD lies within 0.06-0.14
    # (chi-square, 39 degrees of freedom, beyond 99.9 %)
    assert 0.06 < np.log(f_lot[:, 0]).std(ddof=1) < 0.14
    assert 0.06 < np.log(f_pip).std(ddof=1) < 0.14


def test_dying_cells_stain_the_viability_dye_at_intermediate_levels():
    from dataclasses import replace

    from cikflow.simulate import PRESETS

    dye = FLUOROCHROMES.index("PerCP-Cy5-5-A")
    tube = _one(replace(PRESETS["clean"], dying_share=1.0, dying_range=(1000.0, 4000.0)))
    dead = tube.labels == LABELS.index("dead")
    comp = tube.events[:, 3:8].astype(float) @ np.linalg.inv(tube.true_spillover)
    # every dead cell is dying: its dye (true spillover compensated) within the range ± noise
    assert np.all((comp[dead, dye] > 700) & (comp[dead, dye] < 4500))
    clean = _one(PRESETS["clean"])
    clean_dead = clean.labels == LABELS.index("dead")
    assert np.median(clean.events[clean_dead, 3 + dye]) > 15000


def test_cd3_dim_share_moves_cd3_positive_cells_into_the_valley():
    from dataclasses import replace

    from cikflow.simulate import PRESETS

    share = 0.3
    tube = _one(replace(PRESETS["clean"], cd3_dim_share=share, cd3_dim_range=(0.05, 0.2)))
    t_cells = tube.labels == LABELS.index("T")
    cd3 = tube.events[t_cells, 3]
    # undimmed T cells: median 9000, log-SD 0.35 -> below 3000 only 0.1 %
    assert np.mean(cd3 < 3000) == pytest.approx(share, abs=0.02)


def test_doublet_overlap_makes_doublets_a_continuum():
    from dataclasses import replace

    from cikflow.simulate import PRESETS

    def ratios(tube):
        d = tube.labels == LABELS.index("doublet")
        return tube.events[d, 1] / tube.events[d, 0]

    separate = ratios(_one(PRESETS["clean"]))
    continuum = ratios(_one(replace(PRESETS["clean"], doublet_overlap=0.8)))
    # singlets sit at 0.86; overlapping doublets spread from ~0.5 up towards them
    assert np.median(continuum) > np.median(separate) + 0.1
    assert np.percentile(continuum, 90) > 0.7 > np.percentile(separate, 90)


@pytest.fixture(scope="module")
def realistic_metrics():
    """Difficulty metrics of a realistic culture's tubes, measured as bench/realism.py does."""
    rows = [
        _metrics(tube)
        for tube in simulate_batches(
            n_batches=1, days=(0, 7, 14), n_events=30000, seed=20120801, preset="realistic"
        )[0].samples
    ]
    return pd.DataFrame(rows).median()


def _metrics(tube):
    from cikflow.realism import events_metrics

    return events_metrics(
        fsc_a=tube.channel("FSC-A"),
        ssc_a=tube.channel("SSC-A"),
        fsc_h=tube.channel("FSC-H"),
        cd3=tube.channel("CD3", compensated=True),
        nk=tube.channel("CD56", compensated=True),
    )


def test_channel_by_marker_compensated_with_the_file_matrix():
    tube = _one("clean", n_events=2000)
    fluor = tube.events[:, 3:8].astype(float)  # FITC … APC-Cy7, the matrix's order
    expected = np.linalg.solve(SPILLOVER.T, fluor.T).T[:, 1]  # x @ S = raw, for PE (CD56)
    np.testing.assert_allclose(tube.channel("CD56", compensated=True), expected, rtol=1e-9)
    np.testing.assert_array_equal(tube.channel("PE-A"), fluor[:, 1])
    np.testing.assert_array_equal(tube.channel("FSC-A", compensated=True), tube.events[:, 0])


# the real files' range per metric: 68983, test_comp_example, 100715, Aurora (bench/realism.py)
_RANGES = [
    ("cd3_valley_ratio", 0.1, 0.75),
    ("cd3_dim_share", 5.0, 22.0),
    ("nk_in_cd3pos_valley_ratio", 0.3, 0.7),
    ("nk_negative_width", 0.12, 0.3),
    ("fsc_ratio_cv", 3.5, 14.0),
]


def test_real_range_is_the_one_the_bench_checks():
    from cikflow.realism import REAL_RANGE

    assert {m: (lo, hi) for m, lo, hi in _RANGES} == REAL_RANGE


@pytest.mark.parametrize(("metric", "low", "high"), _RANGES, ids=lambda v: str(v))
def test_realistic_preset_lands_in_the_real_range(realistic_metrics, metric, low, high):
    assert low <= realistic_metrics[metric] <= high


def test_clean_preset_is_far_easier_than_real_files():
    """The reason for presets: on clean tubes the CD3 valley is empty and negatives narrow."""
    m = _metrics(_one("clean", n_events=30000))
    assert m["cd3_valley_ratio"] < 0.01
    assert m["nk_negative_width"] < 0.1


def test_real_file_metrics_match_the_published_yardstick(shared_data):
    """68983's NK1.1 within CD3+: a valley half as deep as its smaller peak, ~0.19 wide."""
    import warnings

    from cikflow.realism import events_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fcs = read_fcs(shared_data / "flowsom-68983" / "68983.fcs")
        comp = compensate(fcs, spillover_matrix(fcs)[0])
    col = {n: i for i, n in enumerate(fcs.pnn)} | {s: i for i, s in enumerate(fcs.pns)}
    m = events_metrics(
        fsc_a=comp[:, col["FSC-A"]],
        ssc_a=comp[:, col["SSC-A"]],
        cd3=comp[:, col["CD3"]],
        nk=comp[:, col["NK1/1"]],
    )
    assert m["nk_in_cd3pos_valley_ratio"] == pytest.approx(0.5, abs=0.1)
    assert m["nk_negative_width"] == pytest.approx(0.186, abs=0.02)
    assert 0.1 <= m["cd3_valley_ratio"] <= 0.75


def test_true_viability_counts_live_lymphocytes_and_monocytes_against_the_dead():
    from dataclasses import replace

    from cikflow.simulate import PRESETS

    tube = _one(PRESETS["clean"], n_events=2000)
    # 3 T cells, 1 monocyte, 1 dead cell, 2 debris events: 4 live of 5 cells, 80 %
    names = ["T", "T", "T", "monocyte", "dead", "debris", "debris"]
    hand = replace(tube, labels=np.array([LABELS.index(n) for n in names], dtype=np.int8))
    assert hand.true_viability == pytest.approx(80.0)
