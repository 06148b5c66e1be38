"""Acquisition QC: margin events and time windows with flow anomalies (numpy only).

Two checks run before gating (the first step of the gating hierarchy):

Margin events
    An event whose stored value in a watched channel reaches the top of that channel's
    scale (``$PnR − 1``, the highest value the digitizer stores, or more) is saturated;
    its true value is unknown. Such events are removed, counted per channel (as
    PeacoQC's ``RemoveMargins`` and flowAI's margin check do).

Time windows with flow anomalies
    A clog, a bubble or a pressure drop shows as an abrupt change of the event rate
    and/or of the signal of every channel at once. The acquisition is cut into
    consecutive time bins of equal width (about ``events_per_bin`` events each, a
    whole number of Time ticks). Per bin: the event count (rate) and, per watched
    channel, the mean of ``asinh(value / cofactor)`` (signal, robust to the scale of
    the channel). Each series is compared with a robust straight-line baseline
    (Theil–Sen: slow drift over the run is not an anomaly) and scaled by a robust
    spread (1.4826 × MAD of the residuals, never less than the sampling noise:
    √count for rates, within-channel SD/√n for means, so that a quiet channel cannot
    make noise look significant). A bin is anomalous when the rate's or any channel's
    |z| exceeds ``z_threshold``; runs of anomalous bins grow into neighbours with
    |z| above ``z_extend`` (so a window's partly affected edges go too). All events
    of anomalous bins are removed.

The ideas follow flowAI (Monaco et al., Bioinformatics 32:2473, 2016: flow-rate and
signal-acquisition checks over time bins, margin events) and PeacoQC (Emmaneel et al.,
Cytometry A 101:325, 2022: robust, MAD-based detection over bins of consecutive
events); the statistics above are this module's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["AcquisitionQc", "acquisition_qc", "default_qc_channels", "robust_line"]

_MAD_TO_SD = 1.4826
_MIN_BIN_EVENTS = 20  # fewer events in a bin: its signal means are not used
_MAX_BINS = 400


@dataclass(frozen=True)
class AcquisitionQc:
    """The outcome of :func:`acquisition_qc` for one file.

    Attributes
    ----------
    keep : numpy.ndarray
        bool (n_events,): events kept for gating.
    margin : numpy.ndarray
        bool (n_events,): events at a watched channel's $PnR maximum.
    anomalous : numpy.ndarray
        bool (n_events,): events in anomalous time windows (margin events included).
    margin_by_channel : dict of str to int
        Margin events per channel (an event may count in several).
    windows : list of dict
        One per anomalous window: ``start``, ``end`` (Time units of the input,
        seconds for files with $TIMESTEP), ``events``, ``reason``.
    n_bins : int
        Time bins analysed (0 when the time check did not run).
    bin_width : float
        Width of a time bin, in Time units (NaN when the check did not run).
    notes : list of str
        Why a check was skipped, or what it watched.
    """

    keep: np.ndarray
    margin: np.ndarray
    anomalous: np.ndarray
    margin_by_channel: dict[str, int] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)
    n_bins: int = 0
    bin_width: float = float("nan")
    notes: list[str] = field(default_factory=list)

    @property
    def n_events(self) -> int:
        """Events in the file."""
        return int(self.keep.size)

    @property
    def n_kept(self) -> int:
        """Events kept for gating."""
        return int(self.keep.sum())

    @property
    def n_margin(self) -> int:
        """Events removed as margin events."""
        return int(self.margin.sum())

    @property
    def n_time(self) -> int:
        """Events removed by the time check (not already margin events)."""
        return int((self.anomalous & ~self.margin).sum())


def default_qc_channels(pnn: Sequence[str], *, time_index: int | None) -> list[int]:
    """Channels watched by default: all but Time and pulse-width channels.

    Pulse widths (``FSC-W``, ``SSC-W``, ``Width``…) saturate routinely on some
    instruments without the event being unusable; Time is the axis itself.
    """
    out = []
    for i, name in enumerate(pnn):
        label = name.strip().lower()
        if i == time_index or label.startswith("time"):
            continue
        if label.endswith("-w") or label == "width":
            continue
        out.append(i)
    return out


def robust_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Theil–Sen line through (x, y): (slope, intercept).

    The slope is the median of all pairwise slopes, the intercept the median of
    ``y - slope * x`` (Sen, J. Am. Stat. Assoc. 63:1379, 1968).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 2:
        return 0.0, float(np.median(y)) if y.size else 0.0
    i, j = np.triu_indices(x.size, 1)
    dx = x[j] - x[i]
    ok = dx != 0
    slope = float(np.median((y[j] - y[i])[ok] / dx[ok])) if ok.any() else 0.0
    return slope, float(np.median(y - slope * x))


def _robust_z(values: np.ndarray, floor: np.ndarray | float) -> np.ndarray:
    """Signed residual from a Theil–Sen line / max(1.4826 MAD, floor); NaN stays NaN."""
    z = np.full(values.shape, np.nan)
    ok = np.isfinite(values)
    if ok.sum() < 3:
        return z
    x = np.flatnonzero(ok).astype(float)
    slope, intercept = robust_line(x, values[ok])
    resid = values[ok] - (slope * x + intercept)
    spread = _MAD_TO_SD * np.median(np.abs(resid - np.median(resid)))
    scale = np.maximum(spread, np.broadcast_to(floor, values.shape)[ok])
    z[ok] = resid / np.maximum(scale, 1e-12)
    return z


def _column(values: Any, j: int) -> np.ndarray:
    """float64 column ``j`` of an events array (or array-like), whatever its stored type."""
    return np.asarray(values[:, j], dtype=float)


def _is_clock(values: np.ndarray) -> bool:
    """True for a channel that never decreases and does increase (Time, HDR-T, event no.)."""
    if values.size < 3 or not np.isfinite(values).all():
        return False
    return bool(values[-1] > values[0] and np.all(np.diff(values) >= 0))


#: a Time channel whose values decrease between more than this share of consecutive
#: events is not a clock (an Aurora export's Time: 0-0.07, decreasing at about half)
_CLOCK_DECREASES = 0.01


def decreasing_share(time: np.ndarray) -> float:
    """Share of consecutive events whose Time decreases (0 for a clock; NaN ignored).

    >>> decreasing_share(np.array([0.0, 1.0, 1.0, 2.0, 1.5]))
    0.25
    """
    t = np.asarray(time, dtype=float)
    t = t[np.isfinite(t)]
    return float(np.mean(np.diff(t) < 0)) if t.size > 1 else 0.0


def is_clock_like(time: np.ndarray) -> bool:
    """Whether a Time channel runs forward and moves: the condition for rates over it.

    At most 1 % of consecutive steps may go backwards (a rare reset passes).

    >>> is_clock_like(np.array([0.0, 1.0, 2.0])), is_clock_like(np.array([0.0, 2.0, 1.0]))
    (True, False)
    """
    t = np.asarray(time, dtype=float)
    finite = t[np.isfinite(t)]
    if finite.size < 2 or not finite.max() > finite.min():
        return False
    return decreasing_share(finite) <= _CLOCK_DECREASES


def _time_bins(time: np.ndarray, n_bins: int) -> tuple[np.ndarray, float, float, int]:
    """Equal-width bins aligned on the Time resolution: (bin index, origin, width, count)."""
    finite = np.isfinite(time)
    t = time[finite]
    start, stop = float(t.min()), float(t.max())
    ticks = np.unique(t)
    step = float(np.min(np.diff(ticks))) if ticks.size > 1 else 0.0
    width = (stop - start) / n_bins
    if step > 0:  # whole ticks per bin, so that quantised Time does not make uneven bins
        width = max(np.ceil(width / step - 1e-9), 1.0) * step
        start -= step / 2
    count = max(int(np.ceil((stop - start) / width - 1e-9)), 1)
    index = np.full(time.shape, -1)
    index[finite] = np.minimum(((t - start) // width).astype(int), count - 1)
    return index, start, width, count


def acquisition_qc(
    events: np.ndarray,
    *,
    channels: Sequence[str],
    time_index: int | None,
    stored: np.ndarray | None = None,
    ranges: np.ndarray | None = None,
    watch: Sequence[int] | None = None,
    margins: bool = True,
    time_windows: bool = True,
    events_per_bin: int = 250,
    min_bins: int = 8,
    z_threshold: float = 5.0,
    z_extend: float = 3.0,
    pad_bins: int = 1,
    cofactor: float = 150.0,
    time_unit: str = "s",
) -> AcquisitionQc:
    """Find margin events and time windows with flow anomalies.

    Parameters
    ----------
    events : numpy.ndarray or array-like
        float (n_events, n_channels): uncompensated events, Time in its final units
        (seconds for files with $TIMESTEP). Read one channel at a time
        (``events[rows, j]``), so any object with ``shape`` and that indexing will
        do (a reader that converts channels on demand).
    channels : sequence of str
        Channel names ($PnN), for the counts and reasons reported.
    time_index : int or None
        Column of the Time channel. Without one, a watched channel that never
        decreases (a clock such as MACSQuant's HDR-T) serves; without that, the rate
        check is skipped and the signal check runs over bins of consecutive events.
        A channel that never decreases is never watched for signal or margins.
    stored : numpy.ndarray, optional
        The values as stored in the file, in any numeric type (compared with
        ``ranges``); default ``events``.
    ranges : numpy.ndarray, optional
        float (n_channels,): each channel's $PnR; NaN or absent: no margin check.
    watch : sequence of int, optional
        Channels checked for margins and signal shifts; default
        :func:`default_qc_channels`.
    margins, time_windows : bool
        Run the margin check, the time-window check.
    events_per_bin : int
        Target events per time bin.
    min_bins : int
        Fewer bins than this (too few events): the time check is skipped.
    z_threshold : float
        Robust z above which a bin is anomalous.
    z_extend : float
        Robust z above which a bin next to an anomalous run joins it.
    pad_bins : int
        Bins added on each side of an anomalous run after that (its edges are only
        partly affected, so they may not reach ``z_extend``).
    cofactor : float
        asinh cofactor (data units) of the signal means.
    time_unit : str
        Unit of the Time values, for the windows reported.

    Returns
    -------
    AcquisitionQc
    """
    if not hasattr(events, "shape"):
        events = np.asarray(events, dtype=float)
    n_events = events.shape[0]
    stored = events if stored is None else stored
    watch, time_index, notes = _watched_channels(
        stored, channels=channels, watch=watch, time_index=time_index
    )
    margin, margin_by_channel = _margin_events(
        stored, n_events, channels=channels, watch=watch, ranges=ranges, check=margins, notes=notes
    )
    result: dict[str, Any] = {"windows": [], "n_bins": 0, "bin_width": float("nan")}
    if time_windows:
        result = _time_check(
            events,
            margin=margin,
            channels=channels,
            time_index=time_index,
            watch=watch,
            events_per_bin=events_per_bin,
            min_bins=min_bins,
            z_threshold=z_threshold,
            z_extend=z_extend,
            pad_bins=pad_bins,
            cofactor=cofactor,
            time_unit=time_unit,
            notes=notes,
        )
    anomalous = result.pop("anomalous", np.zeros(n_events, dtype=bool))  # none without a time check
    return AcquisitionQc(
        keep=~(margin | anomalous),
        margin=margin,
        anomalous=anomalous,
        margin_by_channel=margin_by_channel,
        notes=notes,
        **result,
    )


def _watched_channels(
    stored: Any,
    *,
    channels: Sequence[str],
    watch: Sequence[int] | None,
    time_index: int | None,
) -> tuple[list[int], int | None, list[str]]:
    """The watched channels (clocks left out), the time axis (a clock if none given) and notes.

    ``watch`` None: :func:`default_qc_channels`.
    """
    watch = default_qc_channels(channels, time_index=time_index) if watch is None else list(watch)
    notes: list[str] = []
    clocks = [j for j in watch if _is_clock(_column(stored, j))]
    if clocks:
        watch = [j for j in watch if j not in clocks]
        names = ", ".join(channels[j] for j in clocks)
        notes.append(f"{names} never decrease(s): a clock, not watched")
        if time_index is None:
            time_index = clocks[0]
            notes.append(f"{channels[time_index]} used as the time axis")
    return watch, time_index, notes


def _margin_events(
    stored: Any,
    n_events: int,
    *,
    channels: Sequence[str],
    watch: Sequence[int],
    ranges: np.ndarray | None,
    check: bool,
    notes: list[str],
) -> tuple[np.ndarray, dict[str, int]]:
    """Events at the top of a watched channel's range ($PnR − 1), and how many per channel.

    None when ``check`` is off; without ``ranges`` a note says the check was skipped.
    """
    margin = np.zeros(n_events, dtype=bool)
    margin_by_channel: dict[str, int] = {}
    if not check:
        return margin, margin_by_channel
    if ranges is None:
        notes.append("margin check skipped: no $PnR ranges")
        return margin, margin_by_channel
    for j in watch:
        top = float(ranges[j]) - 1.0
        if not np.isfinite(top) or top <= 0:
            continue
        at_top = _column(stored, j) >= top
        if at_top.any():
            margin_by_channel[channels[j]] = int(at_top.sum())
            margin |= at_top
    return margin, margin_by_channel


def _clock(
    events: np.ndarray, *, time_index: int | None, channels: Sequence[str], notes: list[str]
) -> np.ndarray | None:
    """The Time column when it runs like a clock; otherwise None, with a note why not."""
    time = _column(events, time_index) if time_index is not None else None
    if time is not None and not is_clock_like(time) and np.nanmax(time) > np.nanmin(time):
        notes.append(
            f"{channels[time_index]} is not a clock (it decreases between "
            f"{decreasing_share(time):.0%} of consecutive events)"
        )
        return None
    return time


def _time_check(
    events: np.ndarray,
    *,
    margin: np.ndarray,
    channels: Sequence[str],
    time_index: int | None,
    watch: Sequence[int],
    events_per_bin: int,
    min_bins: int,
    z_threshold: float,
    z_extend: float,
    pad_bins: int,
    cofactor: float,
    time_unit: str,
    notes: list[str],
) -> dict[str, Any]:
    n_events = events.shape[0]
    empty = {
        "anomalous": np.zeros(n_events, dtype=bool),
        "windows": [],
        "n_bins": 0,
        "bin_width": float("nan"),
    }
    wanted = min(n_events // max(events_per_bin, 1), _MAX_BINS)
    if wanted < min_bins:
        notes.append(
            f"time check skipped: {n_events} events make {wanted} bins of {events_per_bin} "
            f"(at least {min_bins} needed)"
        )
        return empty
    time = _clock(events, time_index=time_index, channels=channels, notes=notes)
    n_bins = 0
    if time is not None and np.isfinite(time).any() and np.nanmax(time) > np.nanmin(time):
        index, origin, width, n_bins = _time_bins(time, wanted)
        if n_bins < min_bins:
            notes.append(f"{channels[time_index]} takes too few distinct values for time bins")
    if n_bins >= min_bins:
        counts = np.bincount(index[index >= 0], minlength=n_bins).astype(float)
        rate_z = _robust_z(counts, np.sqrt(np.maximum(np.median(counts), 1.0)))
        unit = "time"
    else:
        notes.append("no usable Time channel: rate check skipped, signal checked in event order")
        n_bins, width, origin = wanted, float(n_events) / wanted, 0.0
        index = np.minimum((np.arange(n_events) * wanted) // n_events, n_bins - 1)
        counts = np.bincount(index, minlength=n_bins).astype(float)
        rate_z = np.full(n_bins, np.nan)
        unit = "event"
    signal_z = _signal_z(
        events, index=index, use=~margin, n_bins=n_bins, watch=watch, cofactor=cofactor
    )
    coherent = _coherent_z(signal_z)
    scores = np.abs(np.column_stack([rate_z, coherent, signal_z]))
    score = np.max(np.nan_to_num(scores, nan=0.0), axis=1)
    sustained = np.zeros(n_bins, dtype=bool)
    for series in (rate_z, coherent, *signal_z.T):
        sustained |= _sustained(series, threshold=z_threshold)
    bad = (score > z_threshold) | sustained
    for _ in range(n_bins):  # grow runs into moderately shifted neighbours
        grow = np.zeros(n_bins, dtype=bool)
        grow[1:] |= bad[:-1]
        grow[:-1] |= bad[1:]
        grow &= ~bad & (score > min(z_extend, z_threshold))
        if not grow.any():
            break
        bad |= grow
    for _ in range(pad_bins):  # a window's first and last bins are only partly affected
        grow = bad.copy()
        grow[1:] |= bad[:-1]
        grow[:-1] |= bad[1:]
        bad = grow
    anomalous = np.zeros(n_events, dtype=bool)
    valid = index >= 0
    anomalous[valid] = bad[index[valid]]
    labels = ["rate", "all channels"] + [channels[j] for j in watch]
    windows = []
    for first, last in _runs(bad):
        worst = np.max(np.nan_to_num(scores[first : last + 1], nan=0.0), axis=0)
        order = [int(k) for k in np.argsort(-worst, kind="stable")]
        reasons = [labels[k] for k in order if worst[k] > z_threshold][:3] or [labels[order[0]]]
        if unit == "time":
            lo, hi = float(np.nanmin(time)), float(np.nanmax(time))
            start = float(round(max(origin + first * width, lo), 6))
            end = float(round(min(origin + (last + 1) * width, hi), 6))
        else:
            start, end = int(first * width), int(min((last + 1) * width, n_events))
        windows.append(
            {
                "start": start,
                "end": end,
                "unit": time_unit if unit == "time" else "event",
                "events": int(counts[first : last + 1].sum()),
                "reason": ", ".join(reasons),
            }
        )
    return {
        "anomalous": anomalous,
        "windows": windows,
        "n_bins": int(n_bins),
        "bin_width": float(width),
    }


def _signal_z(
    events: np.ndarray,
    *,
    index: np.ndarray,
    use: np.ndarray,
    n_bins: int,
    watch: Sequence[int],
    cofactor: float,
) -> np.ndarray:
    """Per bin and watched channel: signed robust z of the bin mean of asinh(x / cofactor).

    Deviations from the baseline are scaled by sqrt(n / n_typical) so that a bin with
    few events (a rate drop) is judged by its own sampling noise.
    """
    ok = use & (index >= 0)
    idx = index[ok]
    n = np.bincount(idx, minlength=n_bins).astype(float)
    full = n >= _MIN_BIN_EVENTS
    n_typical = float(np.median(n[full])) if full.any() else 1.0
    weight = np.sqrt(np.where(n > 0, n, 1.0) / n_typical)
    out = np.full((n_bins, len(watch)), np.nan)
    for k, j in enumerate(watch):
        values = np.arcsinh(np.asarray(events[ok, j], dtype=float) / cofactor)
        values = np.where(np.isfinite(values), values, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.bincount(idx, weights=values, minlength=n_bins) / n
        means[~full] = np.nan
        finite = np.isfinite(means)
        if finite.sum() < 3:
            continue
        x = np.flatnonzero(finite).astype(float)
        slope, intercept = robust_line(x, means[finite])
        resid = (means[finite] - (slope * x + intercept)) * weight[finite]
        spread = _MAD_TO_SD * np.median(np.abs(resid - np.median(resid)))
        floor = float(np.std(values)) / np.sqrt(n_typical)  # sampling noise of a mean
        out[finite, k] = resid / max(spread, floor, 1e-12)
    return out


def _coherent_z(signed: np.ndarray) -> np.ndarray:
    """Signed robust z of the per-bin mean of the channels' signed z.

    A clog moves every channel the same way: each channel alone may stay within its
    noise while their mean does not. Its spread is estimated from the data, so
    correlated channels (FSC-A and FSC-H …) do not inflate it.
    """
    k = np.isfinite(signed).sum(axis=1)
    z = np.full(signed.shape[0], np.nan)
    ok = k >= 2
    if ok.sum() < 3:
        return z
    mean = np.nansum(signed[ok], axis=1) / k[ok]
    centre = np.median(mean)
    spread = _MAD_TO_SD * np.median(np.abs(mean - centre))
    z[ok] = (mean - centre) / max(spread, 1.0 / np.sqrt(signed.shape[1]), 1e-12)
    return z


def _sustained(z: np.ndarray, *, threshold: float) -> np.ndarray:
    """Bins of a sustained shift: runs whose summed z over 2–16 bins exceeds the threshold.

    A shift of about 2 SD per bin stays below the threshold in each bin but not over
    several: the moving sum of k bins' z, divided by √k (and re-standardised robustly,
    so correlated bins do not inflate it), is tested at k = 2, 4, 8, 16. Within each
    run of bins so detected, the shifted segment is the interval that maximises
    |Σz| / √n (the scan statistic), so that a strong shift does not drag in the clean
    bins its wide windows also cover.
    """
    n = z.size
    values = np.nan_to_num(z, nan=0.0)
    hit = np.zeros(n, dtype=bool)
    for k in (2, 4, 8, 16):
        if k > n // 4:
            break
        sums = np.convolve(values, np.ones(k), mode="valid") / np.sqrt(k)
        centre = np.median(sums)
        spread = max(_MAD_TO_SD * np.median(np.abs(sums - centre)), 1.0)
        for start in np.flatnonzero(np.abs(sums - centre) / spread > threshold):
            hit[start : start + k] = True
    out = np.zeros(n, dtype=bool)
    for first, last in _runs(hit):
        i, j = _best_segment(values[first : last + 1])
        out[first + i : first + j + 1] = True
    return out


def _best_segment(values: np.ndarray) -> tuple[int, int]:
    """(i, j) maximising |sum(values[i:j+1])| / sqrt(j - i + 1)."""
    cum = np.concatenate([[0.0], np.cumsum(values)])
    sums = cum[None, 1:] - cum[:-1, None]  # [i, j] = sum of values[i..j]
    length = np.arange(values.size)[None, :] - np.arange(values.size)[:, None] + 1
    stat = np.where(length > 0, np.abs(sums) / np.sqrt(np.maximum(length, 1)), -np.inf)
    i, j = np.unravel_index(int(np.argmax(stat)), stat.shape)
    return int(i), int(j)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(int)))
    return list(zip(edges[::2], edges[1::2] - 1, strict=True))
