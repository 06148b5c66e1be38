"""The event model: an FCS data set's events and keywords, as gating and the reports see them.

:class:`FcsData` is what every step below the readers works on — compensation,
gating, acquisition QC, plots — so it sits below both :mod:`cikflow.io` (which
reads and writes files into and out of it) and :mod:`cikflow.gating`.

Event values
------------
``FcsData.stored_events`` are the values exactly as stored in the DATA segment
(integers masked to their ``$PnR`` bits). ``FcsData.events`` are flowkit's "raw"
events: the stored values with flowkit's preprocessing (``$PnE`` log decoding,
division by the ``$PnG`` gain, the Time channel multiplied by ``$TIMESTEP`` to
seconds), uncompensated and untransformed, float64, events × channels in the
file's channel order. ``FcsData.column`` and ``FcsData.block`` give preprocessed
float64 values of only the channels and events asked for, and the flowkit Sample
is built only when something asks for it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.exceptions import FcsUnsupportedError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    import flowio
    import flowkit

__all__ = ["ChannelView", "FcsData", "Preprocessing", "finite_number", "select_events"]


def finite_number(text: str | None) -> float | None:
    """A TEXT value as a finite float, or None when it is absent or not a finite number."""
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if np.isfinite(value) else None


@dataclass(frozen=True)
class Preprocessing:
    """What turns stored values into flowkit's "raw" events, per channel.

    The steps and their order are flowio's ``FlowData.as_array(preprocess=True)``:
    Time × ``time_step``, then ``$PnE`` log decoding, then division by the ``$PnG`` gain.
    """

    channels: dict[int, dict[str, Any]]  # channel number → pnn, pns, pne, png, pnr
    time_index: int | None
    time_step: float
    fluoro_indices: tuple[int, ...]
    scatter_indices: tuple[int, ...]

    def identity(self, j: int) -> bool:
        """Whether channel ``j`` (0-based) is its stored values as float64."""
        decades, _ = self.channels[j + 1]["pne"]
        return j != self.time_index and decades <= 0 and self.channels[j + 1]["png"] in (1.0, 0)

    def apply(self, values: np.ndarray, j: int) -> np.ndarray:
        """float64 preprocessed values of channel ``j`` from its stored values."""
        with np.errstate(all="ignore"):  # absurd but legal keywords, float32 signalling NaNs
            out = np.asarray(values, dtype=np.float64)
            if j == self.time_index:
                out = out * self.time_step
            chan = self.channels[j + 1]
            decades, log0 = chan["pne"]
            if decades > 0:
                out = (10 ** (decades * out / chan["pnr"])) * log0
            gain = chan["png"]
            if gain not in (1.0, 0):
                out = out / gain
        return out


class ChannelView:
    """An FcsData's events as an array read one channel at a time: ``view[rows, j]``.

    For code written against an (n_events, n_channels) array that reads it column by
    column (acquisition QC, the acquisition view): each channel is converted to
    float64 when asked for, so the whole file is never copied. The last channels
    asked for are kept, as a column is often read twice in a row.
    """

    _KEEP = 2

    def __init__(self, fcs: FcsData) -> None:
        self.fcs = fcs
        self.shape = (fcs.n_events, len(fcs.pnn))
        self._recent: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: tuple[Any, int]) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], int | np.integer)):
            msg = "a ChannelView is indexed as view[rows, channel]"
            raise TypeError(msg)
        rows, j = key
        j = int(j)
        if j not in self._recent:
            if len(self._recent) >= self._KEEP:
                self._recent.pop(next(iter(self._recent)))
            self._recent[j] = self.fcs.column(j)
        return self._recent[j][rows]


@dataclass(frozen=True)
class FcsData:
    """An FCS file read into memory (its first data set).

    The values are kept once, as stored (a view of the file's bytes where the layout
    allows): :meth:`column` and :meth:`block` give float64 preprocessed values of the
    channels and events asked for, so a gating pass over a few channels never holds
    a float64 copy of the whole file. :attr:`events` builds the whole array.

    Attributes
    ----------
    path : pathlib.Path
        The file read.
    digest : callable
        Returns the hex SHA-256 of the file's bytes (see :attr:`sha256`).
    pnn, pns : list of str
        Detector names ($PnN) and marker names ($PnS, "" where absent).
    keywords : dict of str to str
        TEXT keywords, lower case, without the leading ``$``.
    sample_id : str
        ID of the flowkit Sample (:attr:`sample`) and of the sample's custom gates.
    version : str
        FCS version of the HEADER.
    stored : numpy.ndarray
        (events in the file, n_channels): the DATA segment's values in their stored
        type (see :attr:`stored_events` for this object's events).
    preprocessing : Preprocessing
        Per-channel gain, log decoding and time step (flowio's preprocessing).
    rows : numpy.ndarray or None
        The file's events this object holds (after :func:`select_events`); None: all.
    warnings : tuple of str
        Defects repaired while reading (offset off by one, HEADER/TEXT discrepancy,
        skipped data sets, unusable $TIMESTEP …); empty for a clean file.
    data_sets : int
        Data sets in the file; only the first is read.
    """

    path: Path
    digest: Callable[[], str] = field(repr=False)
    pnn: list[str]
    pns: list[str]
    keywords: dict[str, str]
    sample_id: str
    version: str
    stored: np.ndarray = field(repr=False)
    preprocessing: Preprocessing = field(repr=False)
    rows: np.ndarray | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = field(default=())
    data_sets: int = 1

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the file's bytes, as read (computed alongside the decoding)."""
        return self.digest()

    @property
    def n_events(self) -> int:
        """Number of events."""
        return int(self.stored.shape[0] if self.rows is None else len(self.rows))

    def column(self, index: int) -> np.ndarray:
        """float64 (n_events,): channel ``index`` after flowkit's preprocessing.

        Uncompensated, untransformed; a new array (or a read-only one) on each call.
        """
        stored = self.stored[:, index] if self.rows is None else self.stored[self.rows, index]
        return self.preprocessing.apply(stored, index)

    def block(self, indices: Sequence[int], rows: np.ndarray | slice | None = None) -> np.ndarray:
        """float64 (n_rows, len(indices)): preprocessed channels ``indices`` of some events.

        ``rows`` indexes the events of this object (integers, a boolean mask or a
        slice); None is every event.
        """
        indices = list(indices)
        if isinstance(rows, np.ndarray):  # gather just these channels of these events
            if rows.dtype == bool:
                rows = np.flatnonzero(rows)
            absolute = rows if self.rows is None else self.rows[rows]
            picked = self.stored[np.ix_(absolute, indices)]
        else:
            picked = np.take(self._stored_rows(rows), indices, axis=1)
        with np.errstate(invalid="ignore"):  # float32 signalling-NaN bit patterns become NaN
            out = picked.astype(np.float64)
        pre = self.preprocessing
        for k, j in enumerate(indices):
            if not pre.identity(j):
                out[:, k] = pre.apply(out[:, k], j)
        return out

    def _stored_rows(self, rows: np.ndarray | slice | None) -> np.ndarray:
        if self.rows is None:
            return self.stored if rows is None else self.stored[rows]
        return self.stored[self.rows if rows is None else self.rows[rows]]

    @property
    def events(self) -> np.ndarray:
        """float64 (n_events, n_channels), file channel order: flowkit's "raw" events.

        Uncompensated, untransformed values after flowkit's preprocessing ($PnE log
        decoding, $PnG gain, Time × $TIMESTEP in seconds). Built on each access: the
        processing pipeline asks for the channels it needs (:meth:`column`).
        """
        return self.block(range(len(self.pnn)))

    def by_channel(self) -> ChannelView:
        """The events as an array-like read one channel at a time (:class:`ChannelView`)."""
        return ChannelView(self)

    @property
    def stored_events(self) -> np.ndarray:
        """(n_events, n_channels): the values exactly as stored, in their stored type.

        Integers are masked to their $PnR bits (as flowio and fcsparser do).
        """
        return self._stored_rows(None)

    @functools.cached_property
    def sample(self) -> flowkit.Sample:
        """The same events as a flowkit Sample (built on first use), ID :attr:`sample_id`."""
        return _flowkit_sample(self)

    @property
    def ranges(self) -> np.ndarray:
        """float64 (n_channels,): each channel's $PnR (stored units; NaN where invalid)."""
        values = [finite_number(self.keywords.get(f"p{n}r")) for n in range(1, len(self.pnn) + 1)]
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    @property
    def time_index(self) -> int | None:
        """Index of the Time channel ($PnN "Time", any case), or None."""
        return self.preprocessing.time_index

    @property
    def fluoro_indices(self) -> list[int]:
        """Indices of the fluorescence channels (flowio's classification)."""
        return list(self.preprocessing.fluoro_indices)


def select_events(fcs: FcsData, keep: np.ndarray) -> FcsData:
    """The same file restricted to some of its events (for example after acquisition QC).

    Parameters
    ----------
    fcs : FcsData
        A file read by :func:`read_fcs`.
    keep : numpy.ndarray
        bool, shape (n_events,): the events to keep, in file order.

    Returns
    -------
    FcsData
        ``events``, ``stored_events`` and ``sample`` hold only the kept events (the
        stored values are shared, not copied; the flowkit Sample is rebuilt from the
        kept events when asked for); path, hash, keywords and warnings are those of
        the file.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (fcs.n_events,):
        msg = "select_events needs one boolean per event"
        raise ValueError(msg)
    index = np.flatnonzero(keep)
    if fcs.stored.shape[0] < 2**31:
        index = index.astype(np.int32)  # half the memory of int64 indices
    rows = index if fcs.rows is None else fcs.rows[index]
    return FcsData(
        path=fcs.path,
        digest=fcs.digest,
        pnn=fcs.pnn,
        pns=fcs.pns,
        keywords=fcs.keywords,
        sample_id=fcs.sample_id,
        version=fcs.version,
        stored=fcs.stored,
        preprocessing=fcs.preprocessing,
        rows=rows,
        warnings=fcs.warnings,
        data_sets=fcs.data_sets,
    )


@functools.cache
def _decoded_flow_data_class() -> type[flowio.FlowData]:
    import flowio

    class DecodedFlowData(flowio.FlowData):
        """A FlowData whose attributes come from cikflow's decoder, not from flowio's parser.

        flowkit.Sample accepts a FlowData and reads only its attributes and
        ``as_array``; this subclass sets those attributes directly.
        """

        def __init__(self, **attributes: Any) -> None:  # no parsing: all given
            self.__dict__.update(attributes)

        def as_array(self, preprocess: bool = True) -> np.ndarray:  # noqa: FBT001, FBT002
            return (self._preprocessed if preprocess else self._stored.astype(np.float64)).copy()

    return DecodedFlowData


def _flowkit_sample(fcs: FcsData) -> flowkit.Sample:
    import flowkit

    pre = fcs.preprocessing
    channels = pre.channels
    stored = fcs.stored_events
    n_events, n_channels = stored.shape
    flow_data = _decoded_flow_data_class()(
        name=fcs.path.name,
        version=fcs.version,
        text=fcs.keywords,
        analysis={},
        header={"version": fcs.version},
        file_size=None,
        channel_count=n_channels,
        event_count=n_events,
        data_type=fcs.keywords.get("datatype", "").strip().lower(),
        channels=channels,
        pnn_labels=list(fcs.pnn),
        pns_labels=[channels[n]["pns"] for n in range(1, n_channels + 1)],
        pnr_values=[channels[n]["pnr"] for n in range(1, n_channels + 1)],
        fluoro_indices=list(pre.fluoro_indices),
        scatter_indices=list(pre.scatter_indices),
        time_index=pre.time_index,
        null_channels=[],
        events=stored.ravel(),
        _stored=stored,
        _preprocessed=fcs.events,
    )
    try:
        return flowkit.Sample(flow_data, sample_id=fcs.sample_id)
    except Exception as exc:  # flowkit raises plain errors on odd metadata
        raise FcsUnsupportedError(
            f"{fcs.path.name}: flowkit cannot build a sample ({type(exc).__name__}: {exc})"
        ) from exc
