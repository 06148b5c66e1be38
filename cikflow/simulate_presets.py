"""Difficulty presets of the simulator: every way a tube can be harder than the clean model.

A :class:`Difficulty` holds noise that grows with the signal (so compensated
negatives spread), CD3-dim activated cells, CD56 on CIK as a dim smear rising out of
the T cells, CD16-dim cells, CD56-bright NK as a shoulder, dying cells with
intermediate viability-dye staining, CD45-dim debris, doublets as a continuum, a true
spillover that differs from the matrix written in the file, detector gains that
drift between culture days, and a bead lot and pipetting that differ from their
labels. A *preset* is a named :class:`Difficulty` (:data:`PRESETS`);
:mod:`cikflow.simulate` draws the tubes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["PRESETS", "Difficulty"]


@dataclass(frozen=True)
class Difficulty:
    """Every parameter that makes a simulated tube harder; the defaults are ``clean``.

    Attributes
    ----------
    n_events : int
        Events per tube when the caller gives none.
    positive_log_sd : float
        Spread of positive populations (natural-log SD of the brightness).
    negative_log_sd : float
        Spread of autofluorescence (natural-log SD) of negative populations.
    photon_units : float
        Linear units per photoelectron: each detector's signal ``s`` gets Poisson-like
        noise of SD ``sqrt(photon_units × s)`` (0 = none). It makes the noise grow with
        the signal, so compensation spreads the negatives of bright spilling channels.
    cik_cd56 : float
        Median CD56 of CIK cells (linear units).
    cik_cd56_log_sd : float
        Spread of CD56 on CIK cells (natural-log SD): wide, it is a dim smear rising
        out of the T cells rather than a separate cloud.
    nk_bright_cd56 : float
        Median CD56 of CD56-bright NK cells (linear units); near the CD56-dim NK
        (5,000) it is a shoulder rather than a peak.
    cd3_dim_share : float
        Share of CD3+ cells (T, CIK) with down-regulated CD3, brightness × a
        log-uniform factor in ``cd3_dim_range``.
    cd3_dim_range : tuple of float
        Factor range of CD3-dim cells.
    cd16_dim_share : float
        Share of CD16+ cells (CD16+ CIK, CD56-dim NK) with CD16 × a log-uniform factor
        in 0.08–0.4.
    dying_share : float
        Share of dead cells that are dying: viability dye log-uniform in
        ``dying_range`` (intermediate), scatter nearer the live cells.
    dying_range : tuple of float
        Viability-dye range of dying cells (linear units).
    viability_day0, viability_later : float
        Mean viability (viable ÷ all CD45+) on day 0 and on later days.
    viability_floor : float
        Lowest viability drawn.
    debris_share, debris_growth : float
        Debris per viable cell: ``debris_share + debris_growth × day/21``.
    debris_cd45_share : float
        Share of debris that stains CD45 dimly and reaches the cells' FSC-A.
    doublet_share : float
        Doublets per viable cell.
    singlet_ratio_sd : float
        SD of FSC-H ÷ FSC-A of singlets (mean 0.86).
    doublet_overlap : float
        0: a doublet's FSC-H is the taller cell's × 1.08 (a separate cluster); above
        0, FSC-H adds up to this share of the smaller cell's height (cells partly
        side by side), so doublets form a continuum with the singlets.
    spillover_error : float
        Relative SD of the tube's true spillover coefficients around the matrix written
        in the file (``$SPILLOVER``), drawn per tube.
    gain_drift : float
        The instrument's drift between culture days, drawn per tube: scatter and
        fluorescence detectors each change gain by a common ``1 + u`` (``u`` uniform in
        ±``gain_drift``), and every detector by its own ``1 + v`` (±``gain_drift``/5),
        which the file's compensation matrix does not know about.
    bead_lot_cv : float
        Relative SD of a bead lot's true beads per tube around the count on its label,
        drawn per batch (one lot per culture): every tube of a batch shares it.
    pipetting_cv : float
        Relative SD of the ratio of the pipetted bead and sample volumes, drawn per tube.
        Neither is known to the lab (the sample sheet states the label and the nominal
        volume); the workflow's intervals take both from ``config.yaml``
        (``bead_lot_cv_percent``, ``pipetting_cv_percent``), whose defaults these match.
    """

    n_events: int = 30000
    positive_log_sd: float = 0.35
    negative_log_sd: float = 0.5
    photon_units: float = 0.0
    cik_cd56: float = 2500.0
    cik_cd56_log_sd: float = 0.35
    nk_bright_cd56: float = 40000.0
    cd3_dim_share: float = 0.0
    cd3_dim_range: tuple[float, float] = (0.04, 0.35)
    cd16_dim_share: float = 0.0
    dying_share: float = 0.0
    dying_range: tuple[float, float] = (800.0, 10000.0)
    viability_day0: float = 0.97
    viability_later: float = 0.88
    viability_floor: float = 0.8
    debris_share: float = 0.08
    debris_growth: float = 0.04
    debris_cd45_share: float = 0.0
    doublet_share: float = 0.04
    singlet_ratio_sd: float = 0.025
    doublet_overlap: float = 0.0
    spillover_error: float = 0.0
    gain_drift: float = 0.0
    bead_lot_cv: float = 0.0
    pipetting_cv: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """The parameters as a plain dict (for the truth sidecar)."""
        return asdict(self)


#: named sets of :class:`Difficulty` parameters (``bench/realism.py`` measures them)
PRESETS: dict[str, Difficulty] = {
    "clean": Difficulty(),
    # calibrated to the real files of bench/realism.py: CD3 valley 0.2-0.75 with
    # 7-18 % dim, CD56 within CD3+ a valley of ~0.5, negatives ~0.19 wide, FSC-H/FSC-A
    # CV 3-10 %; spillover and gains off by several percent
    "realistic": Difficulty(
        positive_log_sd=0.45,
        negative_log_sd=0.6,
        photon_units=10.0,
        cik_cd56=2800.0,
        cik_cd56_log_sd=0.65,
        nk_bright_cd56=22000.0,
        cd3_dim_share=0.10,
        cd16_dim_share=0.25,
        dying_share=0.4,
        viability_day0=0.95,
        viability_later=0.85,
        viability_floor=0.72,
        debris_share=0.10,
        debris_growth=0.05,
        debris_cd45_share=0.3,
        doublet_share=0.05,
        singlet_ratio_sd=0.045,
        doublet_overlap=0.6,
        spillover_error=0.05,
        gain_drift=0.1,
        bead_lot_cv=0.02,
        pipetting_cv=0.01,
    ),
    # the edge of what a lab still analyses: 10-15 % spillover error, +-30 % gain drift
    # between days, 30-40 % dead/dying/debris, 2,000 events; bench/realism.py measures its
    # CD3 valley at 0.67 and CD56 within CD3+ at ~0.9 (medians), beyond most real files
    "hard": Difficulty(
        n_events=2000,
        positive_log_sd=0.55,
        negative_log_sd=0.7,
        photon_units=20.0,
        cik_cd56=2200.0,
        cik_cd56_log_sd=0.8,
        nk_bright_cd56=15000.0,
        cd3_dim_share=0.2,
        cd16_dim_share=0.35,
        dying_share=0.5,
        viability_day0=0.85,
        viability_later=0.72,
        viability_floor=0.6,
        debris_share=0.15,
        debris_growth=0.08,
        debris_cd45_share=0.5,
        doublet_share=0.07,
        singlet_ratio_sd=0.07,
        doublet_overlap=0.8,
        spillover_error=0.125,
        gain_drift=0.3,
        bead_lot_cv=0.02,
        pipetting_cv=0.01,
    ),
}
