"""The counting route of a sample: single-platform (beads), dual-platform or none."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from cikflow.counts.formulas import dual_platform_cells_per_uL, single_platform_cells_per_uL

if TYPE_CHECKING:
    pass

__all__ = [
    "DUAL_PLATFORM",
    "NOT_EVALUABLE",
    "SINGLE_PLATFORM",
    "CountMethod",
    "choose_count_method",
]

SINGLE_PLATFORM = "single_platform"


DUAL_PLATFORM = "dual_platform"


NOT_EVALUABLE = "not_evaluable"


class CountMethod(NamedTuple):
    """How a sample's absolute counts are obtained.

    Attributes
    ----------
    method : str
        :data:`SINGLE_PLATFORM`, :data:`DUAL_PLATFORM` or :data:`NOT_EVALUABLE`.
    reason : str
        Why the other route(s) were not taken ("" when single-platform).
    """

    method: str
    reason: str = ""


def choose_count_method(
    *,
    beads_per_tube: float,
    sample_volume_uL: float,
    bead_events: float,
    viable_cells_per_uL: float,
    base_events: float,
) -> CountMethod:
    """Choose a sample's counting route.

    Beads (single-platform) when the tube had beads (``beads_per_tube`` > 0),
    its sample volume is known and bead events > 0; else dual-platform when
    the sheet gives ``viable_cells_per_uL`` and the base population has
    events; else not evaluable.

    Parameters
    ----------
    beads_per_tube, sample_volume_uL : float
        From the sample sheet (NaN when empty).
    bead_events : float
        Events of the bead gate (NaN when the template has none).
    viable_cells_per_uL : float
        From the sample sheet (NaN when empty).
    base_events : float
        Events of the dual-platform base population.

    Returns
    -------
    CountMethod
        The route and, unless single-platform, why the beads were not used.

    Examples
    --------
    >>> choose_count_method(beads_per_tube=50000, sample_volume_uL=100, bead_events=4000,
    ...                     viable_cells_per_uL=float("nan"), base_events=9000)
    CountMethod(method='single_platform', reason='')
    >>> choose_count_method(beads_per_tube=50000, sample_volume_uL=100, bead_events=0,
    ...                     viable_cells_per_uL=2000, base_events=9000)
    CountMethod(method='dual_platform', reason='beads: 0 bead events in the tube')
    >>> choose_count_method(beads_per_tube=float("nan"), sample_volume_uL=100, bead_events=0,
    ...                     viable_cells_per_uL=float("nan"), base_events=9000).method
    'not_evaluable'
    """
    beads = single_platform_cells_per_uL(
        1.0, bead_events, beads_per_tube=beads_per_tube, sample_volume_uL=sample_volume_uL
    )
    if beads.ok:
        return CountMethod(SINGLE_PLATFORM)
    dual = dual_platform_cells_per_uL(1.0, base_events, viable_cells_per_uL=viable_cells_per_uL)
    if dual.ok:
        return CountMethod(DUAL_PLATFORM, f"beads: {beads.reason}")
    return CountMethod(NOT_EVALUABLE, f"beads: {beads.reason}; dual-platform: {dual.reason}")
