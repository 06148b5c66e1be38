"""Simulator of a CIK-cell culture, one FCS tube per culture day.

The simulator draws every event from a known population, so each file comes with
per-event truth labels and each batch with a truth table of fractions and
absolute counts. Ranges follow the literature values of the project's domain
notes (PBMC on day 0, lymphoblasts growing in scatter by day 14–21, CIK cells
CD3+CD56 dim-to-intermediate, conventional NK CD3−CD56+).

Signal model
------------
For each event a *true* fluorochrome brightness vector ``f`` (linear units) is
drawn from its population's log-normal; detectors see ``f @ S`` where ``S`` is
the spillover matrix (rows = fluorochromes, columns = detectors, unit
diagonal), plus Gaussian electronic noise, clipped at the top of scale
(:data:`TOP_OF_SCALE`). Compensation with ``inv(S)`` therefore recovers ``f``
plus transformed noise. Scatter is linear; singlets have FSC-H ≈ 0.86 FSC-A,
doublets sum the area of two cells but not their height.

Difficulty
----------
A :class:`Difficulty` holds every way a tube can be harder than the clean model
above: noise that grows with the signal (so compensated negatives spread),
CD3-dim activated cells, CD56 on CIK as a dim smear rising out of the T cells,
CD16-dim cells, CD56-bright NK as a shoulder, dying cells with intermediate
viability-dye staining, CD45-dim debris, doublets as a continuum, a true spillover
that differs from the matrix written in the file, and detector gains that drift
between culture days. A *preset* is a named :class:`Difficulty` (:data:`PRESETS`):
``clean`` is the original simulator, byte for byte; ``realistic`` is calibrated to
real files (``bench/realism.py``); ``hard`` pushes every difficulty to the edge of
what a lab still analyses. The extra randomness of a difficulty comes from its own
stream, so the clean model's draws never change.

Absolute counts
---------------
A tube holds ``sample_volume_uL`` of culture and ``beads_per_tube`` beads. The
cytometer acquires a fraction of the tube; each population's event count is
Poisson with mean ``fraction × concentration × sample_volume_uL``, and the bead
count Poisson with mean ``fraction × beads_per_tube``. The single-platform
estimate ``events / bead_events × beads_per_tube / sample_volume_uL`` is what a
perfect gate reports (the truth table's ``cells_per_uL``). Where the preset gives the
bead lot's true count and the pipetted volumes an error (:attr:`Difficulty.bead_lot_cv`
per batch, :attr:`Difficulty.pipetting_cv` per tube; the sample sheet keeps the
label), that estimate is ``f`` times the culture's true concentration: the truth
table's ``cells_per_uL_expected`` is then ``concentration / f``. The events stay those
of ``f = 1``: the same acquisition, with a culture of another concentration behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from cikflow.simulate_presets import PRESETS, Difficulty

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CHANNELS",
    "FLUOROCHROMES",
    "LABELS",
    "POPULATION_MEMBERS",
    "PRESETS",
    "SPILLOVER",
    "TOP_OF_SCALE",
    "Difficulty",
    "SimulatedBatch",
    "SimulatedSample",
    "extra_channels",
    "simulate_batches",
]

#: top of the linear scale of the simulated digital instrument ($PnR)
TOP_OF_SCALE = 262144.0

#: (detector $PnN, marker $PnS) in file order
CHANNELS: tuple[tuple[str, str], ...] = (
    ("FSC-A", ""),
    ("FSC-H", ""),
    ("SSC-A", ""),
    ("FITC-A", "CD3"),
    ("PE-A", "CD56"),
    ("PerCP-Cy5-5-A", "7-AAD"),
    ("PE-Cy7-A", "CD16"),
    ("APC-Cy7-A", "CD45"),
    ("Time", ""),
)

#: fluorescence detectors, in the order of :data:`SPILLOVER`'s rows and columns
FLUOROCHROMES: tuple[str, ...] = ("FITC-A", "PE-A", "PerCP-Cy5-5-A", "PE-Cy7-A", "APC-Cy7-A")

#: true spillover: fraction of the row fluorochrome's signal seen in the column detector
SPILLOVER = np.array(
    [
        # FITC  PE     PerCP  PE-Cy7 APC-Cy7
        [1.0, 0.20, 0.03, 0.005, 0.0],  # FITC (CD3)
        [0.01, 1.0, 0.12, 0.03, 0.0],  # PE (CD56)
        [0.0, 0.02, 1.0, 0.08, 0.01],  # PerCP-Cy5.5 (7-AAD)
        [0.0, 0.01, 0.02, 1.0, 0.02],  # PE-Cy7 (CD16)
        [0.0, 0.0, 0.0, 0.01, 1.0],  # APC-Cy7 (CD45)
    ]
)

#: per-event truth labels; the order defines the integer codes
LABELS: tuple[str, ...] = (
    "T",
    "CIK_CD16pos",
    "CIK_CD16neg",
    "NK_CD56bright",
    "NK_CD56dim",
    "other_lymphocyte",
    "monocyte",
    "dead",
    "doublet",
    "debris",
    "bead",
)

#: reported populations as unions of truth labels
POPULATION_MEMBERS: dict[str, tuple[str, ...]] = {
    "viable_lymphocytes": (
        "T",
        "CIK_CD16pos",
        "CIK_CD16neg",
        "NK_CD56bright",
        "NK_CD56dim",
        "other_lymphocyte",
    ),
    "T": ("T",),
    "CIK": ("CIK_CD16pos", "CIK_CD16neg"),
    "CIK_CD16pos": ("CIK_CD16pos",),
    "CIK_CD16neg": ("CIK_CD16neg",),
    "NK": ("NK_CD56bright", "NK_CD56dim"),
    "NK_CD56bright": ("NK_CD56bright",),
    "NK_CD56dim": ("NK_CD56dim",),
}

# median true brightness (linear units) of CD3, CD56, 7-AAD, CD16, CD45 per label;
# 0 means "negative" (autofluorescence only)
_PHENOTYPE: dict[str, tuple[float, float, float, float, float]] = {
    "T": (9000, 0, 0, 0, 22000),
    "CIK_CD16pos": (9000, 2500, 0, 7000, 22000),
    "CIK_CD16neg": (9000, 2500, 0, 0, 22000),
    "NK_CD56bright": (0, 40000, 0, 400, 20000),
    "NK_CD56dim": (0, 5000, 0, 15000, 20000),
    "other_lymphocyte": (0, 0, 0, 0, 18000),
    "monocyte": (0, 0, 0, 1500, 7000),
}
_LOG_SD = 0.35  # spread of positive populations (natural log units)
_AUTOFLUORESCENCE = 120.0  # median of negative populations
_ELECTRONIC_SD = 60.0  # detector noise, linear units

_DAYS_DEFAULT = (0, 7, 14, 21)


@dataclass(frozen=True)
class SimulatedSample:
    """One simulated tube.

    Attributes
    ----------
    sample, batch : str
        Sample and batch identifiers.
    day : int
        Culture day.
    events : numpy.ndarray
        float32, shape (n_events, len(CHANNELS)): uncompensated detector values
        in file channel order (linear units; Time in seconds × 100).
    labels : numpy.ndarray
        int8, shape (n_events,): index into :data:`LABELS`.
    keywords : dict of str to str
        Extra FCS keywords ($CYT, $DATE, $FIL, $SPILLOVER …).
    sheet : dict
        The sample-sheet row for this tube.
    truth : list of dict
        Rows of the truth table for this tube (one per reported population).
    preset : str
        Name of the :data:`PRESETS` entry the tube was simulated with.
    true_spillover : numpy.ndarray
        Spillover the events were made with (fluorochromes × detectors, in
        :data:`FLUOROCHROMES` order); the file's ``$SPILLOVER`` is :data:`SPILLOVER`.
    gains : numpy.ndarray
        Gain of every channel but Time (file order) the events were made with.
    """

    sample: str
    batch: str
    day: int
    events: np.ndarray
    labels: np.ndarray
    keywords: dict[str, str]
    sheet: dict[str, object]
    truth: list[dict[str, object]] = field(default_factory=list)
    preset: str = "clean"
    true_spillover: np.ndarray = field(default_factory=lambda: SPILLOVER.copy())
    gains: np.ndarray = field(default_factory=lambda: np.ones(len(CHANNELS) - 1))

    @property
    def file_spillover(self) -> np.ndarray:
        """The spillover matrix written in the file (``$SPILLOVER``)."""
        return SPILLOVER

    def channel(self, name: str, *, compensated: bool = False) -> np.ndarray:
        """float64 (n_events,) of one channel, by detector ($PnN) or marker ($PnS).

        ``compensated``: fluorescence compensated with the file's matrix (what a lab
        has), not with the true spillover the events were made with.
        """
        names = [pns or pnn for pnn, pns in CHANNELS]
        col = names.index(name) if name in names else [c[0] for c in CHANNELS].index(name)
        detector = CHANNELS[col][0]
        if not compensated or detector not in FLUOROCHROMES:
            return self.events[:, col].astype(float)
        first = [c[0] for c in CHANNELS].index(FLUOROCHROMES[0])
        fluor = self.events[:, first : first + len(FLUOROCHROMES)].astype(float)
        comp = fluor @ np.linalg.inv(self.file_spillover)
        return comp[:, FLUOROCHROMES.index(detector)]

    def members(self, population: str) -> np.ndarray:
        """Bool (n_events,): the events truly in ``population`` (see :data:`POPULATION_MEMBERS`)."""
        codes = [LABELS.index(label) for label in POPULATION_MEMBERS[population]]
        return np.isin(self.labels, codes)

    @property
    def true_viability(self) -> float:
        """Live ÷ (live + dead) cells, % (viable lymphocytes and monocytes are live)."""
        alive = np.count_nonzero(self.members("viable_lymphocytes"))
        alive += np.count_nonzero(self.labels == LABELS.index("monocyte"))
        dead = np.count_nonzero(self.labels == LABELS.index("dead"))
        return 100.0 * alive / (alive + dead)


@dataclass(frozen=True)
class SimulatedBatch:
    """A patient's culture: all its tubes plus batch-level truth (weight, volumes)."""

    batch: str
    samples: list[SimulatedSample]
    difficulty: Difficulty = field(default_factory=Difficulty)


def _lognormal(rng: np.random.Generator, median: float, n: int, sd: float = _LOG_SD) -> np.ndarray:
    return median * np.exp(rng.normal(0.0, sd, n))


def _marker_matrix(
    rng: np.random.Generator, label: str, n: int, scale: float, p: Difficulty
) -> np.ndarray:
    """True fluorochrome brightness (n × 5) of ``n`` events of ``label``."""
    out = np.empty((n, len(FLUOROCHROMES)))
    phenotype = list(_PHENOTYPE[label])
    sds = [p.positive_log_sd] * len(phenotype)
    if label.startswith("CIK"):
        phenotype[1], sds[1] = p.cik_cd56, p.cik_cd56_log_sd
    elif label == "NK_CD56bright":
        phenotype[1] = p.nk_bright_cd56
    for j, median in enumerate(phenotype):
        if median > 0:
            out[:, j] = _lognormal(rng, median * scale, n, sds[j])
        else:
            out[:, j] = _lognormal(rng, _AUTOFLUORESCENCE, n, sd=p.negative_log_sd)
    return out


def _dim_some(
    rx: np.random.Generator, column: np.ndarray, share: float, lo: float, hi: float
) -> None:
    """Multiply a random ``share`` of ``column`` (in place) by a log-uniform factor in lo–hi."""
    if share <= 0 or column.size == 0:
        return
    rows = rx.random(column.size) < share
    column[rows] *= np.exp(rx.uniform(np.log(lo), np.log(hi), int(rows.sum())))


def _scatter(
    rng: np.random.Generator,
    n: int,
    fsc: float,
    ssc: float,
    sd: float = 0.12,
    *,
    ratio_sd: float = 0.025,
) -> np.ndarray:
    """(FSC-A, FSC-H, SSC-A) of ``n`` singlets with medians ``fsc`` and ``ssc``."""
    area = _lognormal(rng, fsc, n, sd)
    height = area * rng.normal(0.86, ratio_sd, n)
    side = _lognormal(rng, ssc, n, sd * 1.6)
    return np.column_stack([area, height, side])


def _composition(rng: np.random.Generator, day: int, batch_effect: float) -> dict[str, float]:
    """Fractions of viable lymphocytes per truth label on ``day`` (sum 1)."""
    t = min(day, 21) / 21.0
    cd3 = np.clip(0.68 + 0.26 * t + rng.normal(0, 0.015), 0.55, 0.97)
    cik = np.clip((0.04 + 0.28 * t) * batch_effect + rng.normal(0, 0.01), 0.02, 0.45)
    nk = np.clip(0.11 - 0.06 * t + rng.normal(0, 0.01), 0.02, 0.15)
    cik = min(cik, cd3 - 0.05)
    nk = min(nk, 1.0 - cd3 - 0.005)
    other = 1.0 - cd3 - nk
    cd16pos_in_cik = np.clip(0.2 + rng.normal(0, 0.04), 0.1, 0.3)
    bright_in_nk = np.clip(0.1 + 0.25 * t + rng.normal(0, 0.02), 0.05, 0.5)
    return {
        "T": cd3 - cik,
        "CIK_CD16pos": cik * cd16pos_in_cik,
        "CIK_CD16neg": cik * (1 - cd16pos_in_cik),
        "NK_CD56bright": nk * bright_in_nk,
        "NK_CD56dim": nk * (1 - bright_in_nk),
        "other_lymphocyte": other,
    }


def _spill_keyword(spill: np.ndarray) -> str:
    values = ",".join(f"{v:.6g}" for v in spill.ravel())
    return f"{len(FLUOROCHROMES)},{','.join(FLUOROCHROMES)},{values}"


def _concentrations(
    comp: Mapping[str, float],
    *,
    day: int,
    lymph_per_uL: float,
    viability: float,
    p: Difficulty,
) -> dict[str, float]:
    """Concentration of every truth label in the tube (cells/µL; beads apart)."""
    conc = {label: frac * lymph_per_uL for label, frac in comp.items()}
    lymph_total = sum(conc.values())
    conc["monocyte"] = lymph_total * (0.18 if day == 0 else 0.03 if day == 7 else 0.0)
    viable_total = lymph_total + conc["monocyte"]
    conc["dead"] = viable_total * (1 - viability) / viability
    conc["doublet"] = viable_total * p.doublet_share
    conc["debris"] = viable_total * (p.debris_share + p.debris_growth * min(day, 21) / 21)
    return conc


def _cell_block(
    rng: np.random.Generator,
    rx: np.random.Generator,
    label: str,
    n: int,
    *,
    day: int,
    lymph_fsc: float,
    lymph_ssc: float,
    p: Difficulty,
) -> np.ndarray:
    """Scatter and fluorescence (n × 8) of ``n`` viable cells of a phenotype label."""
    granular = 1.35 if label.startswith(("CIK", "NK")) else 1.0
    fsc = lymph_fsc * (1.45 if label == "monocyte" else granular**0.5)
    ssc = lymph_ssc * (3.2 if label == "monocyte" else granular)
    fluor = _marker_matrix(rng, label, n, 1.0, p)
    # CD56 on CIK dims as the culture goes on
    if label.startswith("CIK"):
        fluor[:, 1] *= 1.0 - 0.3 * min(day, 21) / 21
    if label == "T" or label.startswith("CIK"):  # activated cells lose CD3
        _dim_some(rx, fluor[:, 0], p.cd3_dim_share, *p.cd3_dim_range)
    if label in ("CIK_CD16pos", "NK_CD56dim"):
        _dim_some(rx, fluor[:, 3], p.cd16_dim_share, 0.08, 0.4)
    return np.column_stack([_scatter(rng, n, fsc, ssc, ratio_sd=p.singlet_ratio_sd), fluor])


def _dead_block(
    rng: np.random.Generator,
    rx: np.random.Generator,
    n: int,
    *,
    lymph_fsc: float,
    lymph_ssc: float,
    p: Difficulty,
) -> np.ndarray:
    """Scatter and fluorescence (n × 8) of ``n`` dead cells (bright viability dye)."""
    fluor = np.column_stack(
        [
            _marker_matrix(rng, "T", n, 0.6, p)[:, :2],
            _lognormal(rng, 25000, n),
            _lognormal(rng, _AUTOFLUORESCENCE, n, 0.5),
            _lognormal(rng, 12000, n, 0.6),
        ]
    )
    sc = _scatter(rng, n, lymph_fsc * 0.7, lymph_ssc * 1.4, ratio_sd=p.singlet_ratio_sd)
    if p.dying_share > 0:  # dying: intermediate dye, scatter nearer the live cells
        dying = rx.random(n) < p.dying_share
        lo, hi = np.log(p.dying_range[0]), np.log(p.dying_range[1])
        fluor[dying, 2] = np.exp(rx.uniform(lo, hi, int(dying.sum())))
        sc[dying] *= 1.25
    return np.column_stack([sc, fluor])


def _doublet_block(
    rng: np.random.Generator,
    rx: np.random.Generator,
    n: int,
    *,
    comp: Mapping[str, float],
    lymph_fsc: float,
    lymph_ssc: float,
    p: Difficulty,
) -> np.ndarray:
    """Scatter and fluorescence (n × 8) of ``n`` doublets of two lymphocytes."""
    names = list(comp)
    parts = rng.choice(len(names), size=(n, 2), p=np.array(list(comp.values())))
    block = np.zeros((n, 3 + len(FLUOROCHROMES)))
    heights = []
    for k in range(2):
        sc = _scatter(rng, n, lymph_fsc, lymph_ssc, ratio_sd=p.singlet_ratio_sd)
        fl = np.empty((n, len(FLUOROCHROMES)))
        for i, name in enumerate(names):
            rows = parts[:, k] == i
            fl[rows] = _marker_matrix(rng, name, int(rows.sum()), 1.0, p)
        block[:, [0, 2]] += sc[:, [0, 2]]
        block[:, 3:] += fl
        heights.append(sc[:, 1])
    block[:, 1] = np.maximum(heights[0], heights[1]) * rng.normal(1.08, 0.04, n)
    if p.doublet_overlap > 0:  # partly side by side: a continuum with the singlets
        taller = np.maximum(heights[0], heights[1])
        smaller = np.minimum(heights[0], heights[1])
        block[:, 1] = taller + rx.uniform(0, p.doublet_overlap, n) * smaller
    return block


def _debris_block(
    rng: np.random.Generator, rx: np.random.Generator, n: int, *, p: Difficulty
) -> np.ndarray:
    """Scatter and fluorescence (n × 8) of ``n`` debris events."""
    area = _lognormal(rng, 9000, n, 0.45)
    block = np.column_stack(
        [
            area,
            area * rng.normal(0.9, 0.05, n),
            _lognormal(rng, 5000, n, 0.6),
            np.column_stack([_lognormal(rng, _AUTOFLUORESCENCE, n, 0.7) for _ in FLUOROCHROMES]),
        ]
    )
    if p.debris_cd45_share > 0:  # cell fragments: CD45-dim, up to the cells' FSC
        frag = rx.random(n) < p.debris_cd45_share
        k = int(frag.sum())
        block[frag, :2] *= np.exp(rx.uniform(0.5, 1.9, k))[:, None]
        block[frag, 7] = np.exp(rx.normal(np.log(1500.0), 0.6, k))
    return block


def _bead_block(rng: np.random.Generator, n: int) -> np.ndarray:
    """Scatter and fluorescence (n × 8) of ``n`` counting beads: bright everywhere, small FSC."""
    area = _lognormal(rng, 16000, n, 0.06)
    return np.column_stack(
        [
            area,
            area * rng.normal(0.95, 0.01, n),
            _lognormal(rng, 30000, n, 0.08),
            np.column_stack(
                [_lognormal(rng, m, n, 0.08) for m in (90000, 110000, 60000, 80000, 70000)]
            ),
        ]
    )


def _label_block(
    rng: np.random.Generator,
    rx: np.random.Generator,
    label: str,
    n: int,
    *,
    day: int,
    comp: Mapping[str, float],
    lymph_fsc: float,
    lymph_ssc: float,
    p: Difficulty,
) -> np.ndarray:
    """True scatter and fluorescence (n × 8) of ``n`` events of one truth label."""
    light = {"lymph_fsc": lymph_fsc, "lymph_ssc": lymph_ssc, "p": p}
    if label in _PHENOTYPE:
        return _cell_block(rng, rx, label, n, day=day, **light)
    if label == "dead":
        return _dead_block(rng, rx, n, **light)
    if label == "doublet":
        return _doublet_block(rng, rx, n, comp=comp, **light)
    if label == "debris":
        return _debris_block(rng, rx, n, p=p)
    return _bead_block(rng, n)


def _detect(
    rng: np.random.Generator, rx: np.random.Generator, true: np.ndarray, *, p: Difficulty
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector values of true signals: spillover, gains, noise, clipping and Time.

    Returns the events (float32, :data:`CHANNELS` order), the tube's true spillover and
    the gains of its detectors.
    """
    spill = SPILLOVER.copy()
    if p.spillover_error > 0:  # the tube's true spillover is not the file's matrix
        off = (spill > 0) & ~np.eye(len(FLUOROCHROMES), dtype=bool)
        spill[off] *= np.clip(1.0 + rx.normal(0.0, p.spillover_error, int(off.sum())), 0.2, 2.0)
    gains = np.ones(true.shape[1])
    if p.gain_drift > 0:  # a common drift per kind of detector, a fifth of it per detector
        common = 1.0 + rx.uniform(-p.gain_drift, p.gain_drift, 2)
        own = 1.0 + rx.uniform(-p.gain_drift / 5, p.gain_drift / 5, true.shape[1])
        gains = np.where(np.arange(true.shape[1]) < 3, common[0], common[1]) * own
    detected = true.copy()
    detected[:, 3:] = true[:, 3:] @ spill
    if p.gain_drift > 0:
        detected *= gains
    if p.photon_units > 0:  # counting noise: variance proportional to the signal
        sd = np.sqrt(p.photon_units * np.clip(detected[:, 3:], 0.0, None))
        detected[:, 3:] += rx.normal(0.0, 1.0, sd.shape) * sd
    detected[:, 3:] += rng.normal(0.0, _ELECTRONIC_SD, (len(detected), len(FLUOROCHROMES)))
    detected[:, :3] += rng.normal(0.0, 200.0, (len(detected), 3))
    detected = np.clip(detected, -TOP_OF_SCALE, TOP_OF_SCALE - 1)
    duration_s = 120.0
    time = np.sort(rng.uniform(0, duration_s * 100, len(detected)))  # 10 ms ticks
    return np.column_stack([detected, time]).astype(np.float32), spill, gains


def _truth_rows(
    counts: Mapping[str, int],
    *,
    conc: Mapping[str, float],
    where: Mapping[str, object],
    beads_per_tube: int,
    sample_volume_uL: float,
    culture_volume_mL: float,
) -> list[dict[str, object]]:
    """Truth rows of a tube: event counts and single-platform concentrations (cells/µL).

    ``where``: the tube's batch, sample and day, leading every row.
    """
    n_beads = counts["bead"]
    truth: list[dict[str, object]] = []
    base = sum(counts[lab] for lab in POPULATION_MEMBERS["viable_lymphocytes"])
    for population, members in POPULATION_MEMBERS.items():
        events_pop = sum(counts[lab] for lab in members)
        per_uL = events_pop / n_beads * beads_per_tube / sample_volume_uL
        truth.append(
            {
                **where,
                "population": population,
                "events": events_pop,
                "percent_of_base": 100.0 * events_pop / base,
                "cells_per_uL": per_uL,
                "total_cells": per_uL * culture_volume_mL * 1000.0,
                "cells_per_uL_expected": sum(conc[lab] for lab in members),
            }
        )
    return truth


def _tube_keywords(sample: str, *, batch: str, day: int) -> dict[str, str]:
    """FCS keywords of a simulated tube."""
    return {
        "$CYT": "cikflow simulator",
        "$DATE": f"{day + 1:02d}-JAN-2026",
        "$BTIM": "10:00:00",
        "$ETIM": "10:02:00",
        "$FIL": f"{sample}.fcs",
        "$SMNO": sample,
        "$SRC": batch,
        "$TIMESTEP": "0.01",
        "$SPILLOVER": _spill_keyword(SPILLOVER),
        "CIKFLOW_DAY": str(day),
        "CIKFLOW_BATCH": batch,
    }


def _simulate_tube(
    rng: np.random.Generator,
    *,
    batch: str,
    day: int,
    n_events: int,
    lymph_per_uL: float,
    fold_total: float,
    batch_effect: float,
    weight_kg: float,
    initial_cells: float,
    beads_per_tube: int,
    difficulty: Difficulty,
    rx: np.random.Generator,
    handling: float = 1.0,
) -> SimulatedSample:
    p = difficulty
    sample = f"{batch}_d{day:02d}"
    sample_volume_uL = 100.0
    growth = 1.0 + 0.9 * min(day, 14) / 14 + 0.1 * max(day - 14, 0) / 7  # blast scatter
    comp = _composition(rng, day, batch_effect)
    mean_viability = p.viability_day0 if day == 0 else p.viability_later
    viability = np.clip(mean_viability + rng.normal(0, 0.02), p.viability_floor, 0.99)
    conc = _concentrations(comp, day=day, lymph_per_uL=lymph_per_uL, viability=viability, p=p)

    # acquire a fraction of the tube so that the file holds ~n_events
    expected_per_fraction = sum(conc.values()) * sample_volume_uL + beads_per_tube
    fraction = n_events / expected_per_fraction
    counts = {lab: int(rng.poisson(fraction * c * sample_volume_uL)) for lab, c in conc.items()}
    counts["bead"] = int(rng.poisson(fraction * beads_per_tube))

    blocks: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    lymph_fsc, lymph_ssc = 52000 * growth, 14000 * growth
    for code, label in enumerate(LABELS):
        n = counts.get(label, 0)
        if n == 0:
            continue
        block = _label_block(
            rng, rx, label, n, day=day, comp=comp, lymph_fsc=lymph_fsc, lymph_ssc=lymph_ssc, p=p
        )
        blocks.append(block)
        labels.append(np.full(n, code, dtype=np.int8))

    true = np.vstack(blocks)
    label_codes = np.concatenate(labels)
    order = rng.permutation(len(label_codes))
    true, label_codes = true[order], label_codes[order]
    events, spill, gains = _detect(rng, rx, true, p=p)

    culture_volume_mL = initial_cells * fold_total / (lymph_per_uL * 1000.0 / 0.85)
    truth = _truth_rows(
        counts,
        # the culture behind the same acquisition when the handling erred (f ≠ 1)
        conc={lab: c / handling for lab, c in conc.items()},
        where={"batch": batch, "sample": sample, "day": day},
        beads_per_tube=beads_per_tube,
        sample_volume_uL=sample_volume_uL,
        culture_volume_mL=culture_volume_mL,
    )
    sheet = {
        "sample": sample,
        "batch": batch,
        "day": day,
        "fcs": f"{sample}.fcs",
        "weight_kg": weight_kg,
        "culture_volume_mL": round(culture_volume_mL, 1),
        "beads_per_tube": beads_per_tube,
        "sample_volume_uL": sample_volume_uL,
    }
    return SimulatedSample(
        sample=sample,
        batch=batch,
        day=day,
        events=events,
        labels=label_codes,
        keywords=_tube_keywords(sample, batch=batch, day=day),
        sheet=sheet,
        truth=truth,
        true_spillover=spill,
        gains=gains,
    )


def _handling_error(cv: float, *, stream: list[int]) -> float:
    """A log-normal factor of relative SD ``cv`` drawn from its own ``stream``; 1 if ``cv`` is 0."""
    if cv <= 0:
        return 1.0
    return float(_lognormal(np.random.default_rng(stream), 1.0, 1, sd=cv)[0])


def simulate_batches(
    *,
    n_batches: int = 3,
    days: tuple[int, ...] = _DAYS_DEFAULT,
    n_events: int | None = None,
    seed: int = 20120801,
    preset: str | Difficulty = "clean",
) -> list[SimulatedBatch]:
    """Simulate ``n_batches`` CIK cultures sampled on ``days``.

    Parameters
    ----------
    n_batches : int
        Number of patients' cultures (batches), named ``B01``, ``B02`` ….
    days : tuple of int
        Culture days sampled; each gives one FCS tube.
    n_events : int, optional
        Approximate number of events per file (Poisson-distributed per
        population, so the exact count varies); default the preset's
        :attr:`Difficulty.n_events`.
    seed : int
        Seed of the random generators; same seed → identical output.
    preset : str or Difficulty
        A :data:`PRESETS` name (``clean``, ``realistic``, ``hard``) or a
        :class:`Difficulty` of one's own (e.g. ``replace(PRESETS["clean"],
        gain_drift=0.2)`` to dial one difficulty).

    Returns
    -------
    list of SimulatedBatch
        One per batch, samples in day order.

    Examples
    --------
    >>> b = simulate_batches(n_batches=1, days=(0,), n_events=2000, seed=1)
    >>> b[0].samples[0].sample, b[0].samples[0].events.shape[1]
    ('B01_d00', 9)
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            msg = f"unknown simulator preset {preset!r}; choose one of {', '.join(PRESETS)}"
            raise ValueError(msg)
        name, difficulty = preset, PRESETS[preset]
    else:
        name, difficulty = "custom", preset
    n_events = difficulty.n_events if n_events is None else n_events
    if n_batches < 1 or n_events < 100 or not days:
        msg = "simulate_batches needs n_batches >= 1, n_events >= 100 and at least one day"
        raise ValueError(msg)
    batches = []
    for b in range(n_batches):
        # one random stream per batch for its parameters and one per tube for its events,
        # so the sample sheet does not depend on n_events or on the other batches
        rng = np.random.default_rng([seed, b])
        batch = f"B{b + 1:02d}"
        # every third batch expands poorly: a below-target dose in the demo
        poor = b % 3 == 2
        batch_effect = 0.45 if poor else float(rng.uniform(0.8, 1.2))
        final_fold = float(rng.uniform(6, 12) if poor else rng.uniform(80, 250))
        weight_kg = round(float(rng.uniform(55, 90)), 1)
        initial_cells = float(rng.uniform(2e7, 6e7))
        lot_beads = int(rng.integers(45000, 55001))
        # the lot's and every tube's handling error from streams of their own (1 without)
        lot_error = _handling_error(difficulty.bead_lot_cv, stream=[seed, b, 0, 3])
        samples = []
        for day in sorted(days):
            fold = final_fold ** (min(day, 21) / 21) if day > 0 else 1.0
            lymph_per_uL = float(rng.uniform(1200, 2000))
            samples.append(
                _simulate_tube(
                    np.random.default_rng([seed, b, day]),
                    batch=batch,
                    day=day,
                    n_events=n_events,
                    lymph_per_uL=lymph_per_uL,
                    fold_total=fold,
                    batch_effect=batch_effect,
                    weight_kg=weight_kg,
                    initial_cells=initial_cells,
                    beads_per_tube=lot_beads,
                    difficulty=difficulty,
                    # a stream of its own for the difficulties: the clean draws never move
                    rx=np.random.default_rng([seed, b, day, 1]),
                    handling=lot_error
                    * _handling_error(difficulty.pipetting_cv, stream=[seed, b, day, 2]),
                )
            )
        samples = [replace(s, preset=name) for s in samples]
        batches.append(SimulatedBatch(batch=batch, samples=samples, difficulty=difficulty))
    return batches


def extra_channels(
    events: np.ndarray, *, n_extra: int, seed: int = 0
) -> tuple[np.ndarray, list[str], list[str]]:
    """Append ``n_extra`` unstained detectors (autofluorescence and noise) to a tube.

    Real panels record more detectors than a template uses; benchmarks use this to
    reach a realistic width (e.g. 14 channels) without changing any population.

    Parameters
    ----------
    events : numpy.ndarray
        Events in :data:`CHANNELS` order.
    n_extra : int
        Detectors to add, named ``Extra-1-A`` … (no marker).
    seed : int
        Seed of the noise.

    Returns
    -------
    events, pnn, pns
        The wider event array (float32) and its detector and marker names.

    Examples
    --------
    >>> wide, pnn, pns = extra_channels(np.zeros((10, len(CHANNELS))), n_extra=5)
    >>> wide.shape, pnn[-1]
    ((10, 14), 'Extra-5-A')
    """
    rng = np.random.default_rng(seed)
    noise = rng.lognormal(np.log(_AUTOFLUORESCENCE), 0.5, (len(events), n_extra))
    noise += rng.normal(0.0, _ELECTRONIC_SD, noise.shape)
    wide = np.column_stack([events, noise]).astype(np.float32)
    pnn = [c[0] for c in CHANNELS] + [f"Extra-{i + 1}-A" for i in range(n_extra)]
    pns = [c[1] for c in CHANNELS] + [""] * n_extra
    return wide, pnn, pns
