"""Acquisition anomalies inserted into clean simulated events, to test acquisition QC.

A clog (a partly blocked flow cell, a bubble, a pressure drop) changes two things for
a while: fewer (or, as it clears, more) events per second, and a shifted signal in
every channel as the cells pass off the laser's centre. :func:`insert_clog` applies
both to one window of a clean acquisition (:mod:`cikflow.simulate`) and says which
events are anomalous.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["insert_clog"]


def insert_clog(
    events: np.ndarray,
    *,
    time_index: int,
    start: float,
    duration: float,
    signal_factor: float = 0.6,
    rate_factor: float = 0.4,
    channels: Sequence[int] | None = None,
    top: float = 262143.0,
    rng: np.random.Generator | int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Insert a clog into a time window of an acquisition.

    Parameters
    ----------
    events : numpy.ndarray
        (n_events, n_channels), sorted by Time.
    time_index : int
        Column of the Time channel (stored units, e.g. 10 ms ticks).
    start, duration : float
        The window, in the Time channel's units.
    signal_factor : float
        Every watched channel of every event in the window is multiplied by it.
    rate_factor : float
        Event rate in the window relative to before: < 1 drops events at random,
        > 1 adds copies of window events at random times in the window.
    channels : sequence of int, optional
        Channels shifted; default all but Time.
    top : float
        Values are clipped at this top of scale.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    events : numpy.ndarray
        The acquisition with the clog, same dtype, sorted by Time.
    anomalous : numpy.ndarray
        bool (n_events_out,): events inside the window.
    """
    rng = np.random.default_rng(rng)
    events = np.asarray(events)
    time = events[:, time_index]
    inside = (time >= start) & (time < start + duration)
    window = events[inside]
    if rate_factor < 1:
        window = window[rng.random(len(window)) < rate_factor]
    elif rate_factor > 1:
        extra = window[rng.integers(0, len(window), round((rate_factor - 1) * len(window)))]
        extra = extra.copy()
        extra[:, time_index] = rng.uniform(start, start + duration, len(extra))
        window = np.vstack([window, extra])
    window = window.astype(float)
    shifted = (
        [c for c in range(events.shape[1]) if c != time_index] if channels is None else channels
    )
    window[:, shifted] = np.clip(window[:, shifted] * signal_factor, -top, top)
    out = np.vstack([events[~inside].astype(float), window])
    anomalous = np.concatenate(
        [np.zeros((~inside).sum(), dtype=bool), np.ones(len(window), dtype=bool)]
    )
    order = np.argsort(out[:, time_index], kind="stable")
    return out[order].astype(events.dtype), anomalous[order]
