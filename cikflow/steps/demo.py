"""The demo step: a simulated CIK culture batch written as FCS files and a sample sheet."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import pandas as pd

__all__ = ["simulate_demo"]


def simulate_demo(
    out_dir: str | Path,
    *,
    n_batches: int = 3,
    days: Sequence[int] = (0, 7, 14, 21),
    n_events: int | None = None,
    seed: int = 20120801,
    preset: str = "realistic",
    fcs_prefix: str = "",
) -> pd.DataFrame:
    """Simulate a CIK culture batch and write it (see :mod:`cikflow.simulate`).

    ``preset`` names a :data:`cikflow.simulate.PRESETS` entry; ``n_events`` defaults
    to the preset's.

    Returns
    -------
    pandas.DataFrame
        The sample sheet written to ``out_dir/samples.tsv``.
    """
    from cikflow.io.simulated import write_simulated
    from cikflow.simulate import simulate_batches

    batches = simulate_batches(
        n_batches=n_batches, days=tuple(days), n_events=n_events, seed=seed, preset=preset
    )
    return write_simulated(batches, out_dir, fcs_prefix=fcs_prefix)
