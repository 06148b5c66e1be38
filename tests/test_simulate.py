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
    return simulate_batches(n_batches=2, days=(0, 21), n_events=6000, seed=11)


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
