"""The only FCS reader and writer of cikflow.

:func:`read_fcs` decodes the file with cikflow's own decoder
(:mod:`cikflow.io._fcsformat`: FCS 2.0–3.2, ``$DATATYPE`` I/F/D, 8–64-bit and mixed-width
integers, either byte order, off-by-one and HEADER/TEXT offset repairs, first of several
data sets) and hands the decoded values to flowkit as a :class:`flowio.FlowData`, so
that gating sees exactly what flowkit would see for a file flowio can read. Every
failure is a named :class:`~cikflow.exceptions.FcsReadError` subclass that names the
file and the defect.

Event values
------------
``FcsData.stored_events`` are the values exactly as stored in the DATA segment (integers
masked to their ``$PnR`` bits, as flowio and fcsparser do). ``FcsData.events`` — what
gating, compensation and the reports use — are flowkit's "raw" events: the stored
values with flowkit's preprocessing (``$PnE`` log decoding, division by the ``$PnG``
gain, the Time channel multiplied by ``$TIMESTEP`` to seconds), uncompensated and
untransformed, float64. Both are events × channels, in the file's channel order.

The values are held once, as stored (a view of the file's bytes for the usual
layouts); ``FcsData.column`` and ``FcsData.block`` give preprocessed float64 values of
only the channels and events asked for, and the flowkit Sample is built only when
something asks for it (the fast gating path does not).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.exceptions import FcsNotFoundError, FcsUnsupportedError
from cikflow.io._fcsformat import decode_fcs, parse_number

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import flowio
    import flowkit

__all__ = ["ChannelView", "FcsData", "file_sha256", "read_fcs", "select_events", "write_fcs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Preprocessing:
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
    preprocessing : _Preprocessing
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
    preprocessing: _Preprocessing = field(repr=False)
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
        values = [parse_number(self.keywords.get(f"p{n}r")) for n in range(1, len(self.pnn) + 1)]
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    @property
    def time_index(self) -> int | None:
        """Index of the Time channel ($PnN "Time", any case), or None."""
        return self.preprocessing.time_index

    @property
    def fluoro_indices(self) -> list[int]:
        """Indices of the fluorescence channels (flowio's classification)."""
        return list(self.preprocessing.fluoro_indices)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_in_background(raw: bytes) -> Callable[[], str]:
    """SHA-256 of ``raw`` in a thread; the returned call waits for the digest.

    hashlib releases the GIL on large buffers, so the digest of the very bytes
    decoded is computed on another core while the file is decoded and gated.
    """
    result: list[str] = []
    thread = threading.Thread(
        target=lambda: result.append(hashlib.sha256(raw).hexdigest()), daemon=True
    )
    thread.start()

    def digest() -> str:
        if not result:
            thread.join()
        return result[0]

    return digest


def read_fcs(path: str | Path, *, sample_id: str | None = None, strict: bool = False) -> FcsData:
    """Read the first data set of an FCS 2.0/3.0/3.1/3.2 file.

    Parameters
    ----------
    path : str or pathlib.Path
        File to read.
    sample_id : str, optional
        ID given to the flowkit Sample; default the file stem.
    strict : bool
        Refuse files that need a repair (``$ENDDATA`` off by one, HEADER and TEXT
        offsets that disagree, extra DATA bytes, several data sets) instead of
        reading them with a warning in :attr:`FcsData.warnings`.

    Returns
    -------
    FcsData

    Raises
    ------
    FcsReadError
        A subclass naming the file and the defect: ``FcsNotFoundError``,
        ``FcsHeaderError`` (not an FCS file), ``FcsTextError``, ``FcsOffsetError``,
        ``FcsTruncatedError``, ``FcsDataError`` or ``FcsUnsupportedError``.
    """
    path = Path(path)
    if not path.is_file():
        raise FcsNotFoundError(f"{path}: file not found")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FcsNotFoundError(f"{path}: cannot read the file ({exc.strerror})") from exc
    decoded = decode_fcs(raw, name=path.name, strict=strict)
    warnings = list(decoded.warnings)
    preprocessing = _preprocessing(decoded.keywords, decoded.stored.shape[1], warnings)
    for message in warnings:
        log.info("%s: %s", path.name, message)
    channels = preprocessing.channels
    fcs = FcsData(
        path=path,
        digest=_hash_in_background(raw),
        pnn=[channels[n]["pnn"] for n in sorted(channels)],
        pns=[channels[n]["pns"] or "" for n in sorted(channels)],
        keywords=decoded.keywords,
        sample_id=sample_id or path.stem,
        version=decoded.version,
        stored=decoded.stored,
        preprocessing=preprocessing,
        warnings=tuple(warnings),
        data_sets=decoded.data_sets,
    )
    return fcs


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


# --- flowkit bridge ------------------------------------------------------------------------------


def _channel_metadata(
    keywords: Mapping[str, str], n_channels: int, warnings: list[str]
) -> dict[int, dict[str, Any]]:
    """Channel number → pnn, pns, pne, png, pnr, as flowio's FlowData.channels."""
    channels: dict[int, dict[str, Any]] = {}
    for n in range(1, n_channels + 1):
        pne_text = keywords.get(f"p{n}e")
        decades, log0 = 0.0, 0.0
        if pne_text is not None:
            try:
                decades, log0 = (float(v) for v in pne_text.split(","))
            except ValueError:
                warnings.append(f"$P{n}E {pne_text[:20]!r} is not 'decades,offset'; read as linear")
            if log0 == 0 and decades != 0:
                log0 = 1.0  # FCS 3.1 §3.2.20: an invalid 0 offset means 1
        gain = 1.0
        if f"p{n}g" in keywords:
            value = parse_number(keywords[f"p{n}g"])
            if value is None:
                warnings.append(f"$P{n}G {keywords[f'p{n}g'][:20]!r} is not a number; gain 1 used")
            else:
                gain = value
        channels[n] = {
            "pnn": keywords[f"p{n}n"],
            "pns": keywords.get(f"p{n}s", ""),
            "pne": (decades, log0),
            "png": gain,
            "pnr": parse_number(keywords[f"p{n}r"]),
        }
    return channels


def _preprocessing(
    keywords: dict[str, str], n_channels: int, warnings: list[str]
) -> _Preprocessing:
    """Channel metadata, flowio's channel classes and the time step of a file."""
    channels = _channel_metadata(keywords, n_channels, warnings)
    fluoro, scatter, time_index = [], [], None
    for i in range(n_channels):  # flowio's classification of channels
        label = channels[i + 1]["pnn"]
        prefix = label.lower()[:4]
        if prefix not in ("fsc-", "ssc-", "time"):
            fluoro.append(i)
        elif prefix in ("fsc-", "ssc-"):
            scatter.append(i)
        elif label.lower() == "time":
            time_index = i
            channels[i + 1]["png"] = 1.0  # flowio: no amplifier gain on time
    time_step = 1.0
    if time_index is not None and "timestep" in keywords:
        text = keywords["timestep"]
        value = parse_number(text)
        if value is not None:
            time_step = value
        elif text.strip():
            warnings.append(f"$TIMESTEP {text[:20]!r} is not a number; Time left in ticks")
    return _Preprocessing(
        channels=channels,
        time_index=time_index,
        time_step=time_step,
        fluoro_indices=tuple(fluoro),
        scatter_indices=tuple(scatter),
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


def write_fcs(
    path: str | Path,
    events: np.ndarray,
    *,
    pnn: Sequence[str],
    pns: Sequence[str],
    keywords: Mapping[str, Any] | None = None,
) -> None:
    """Write events as an FCS 3.1 file (32-bit float, little endian) through flowio.

    Parameters
    ----------
    path : str or pathlib.Path
        Output file.
    events : numpy.ndarray
        Shape (n_events, n_channels), linear units.
    pnn, pns : sequence of str
        Detector ($PnN) and marker ($PnS) names; "" for no marker.
    keywords : mapping, optional
        Extra TEXT keywords (``$`` prefix optional).
    """
    import flowio

    data = np.ascontiguousarray(events, dtype="<f4")
    if data.ndim != 2 or data.shape[1] != len(pnn) or len(pnn) != len(pns):
        msg = f"events shape {data.shape} does not match {len(pnn)} channel names"
        raise ValueError(msg)
    flat = array("f")
    flat.frombytes(data.tobytes())
    meta = {str(k).lstrip("$"): str(v) for k, v in (keywords or {}).items()}
    with Path(path).open("wb") as fh:
        flowio.create_fcs(fh, flat, list(pnn), opt_channel_names=list(pns), metadata_dict=meta)
