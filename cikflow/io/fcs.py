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
untransformed. Both are float64, events × channels, in the file's channel order.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from array import array
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.exceptions import FcsNotFoundError, FcsUnsupportedError
from cikflow.io._fcsformat import decode_fcs, parse_number

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import flowio
    import flowkit

__all__ = ["FcsData", "file_sha256", "read_fcs", "select_events", "write_fcs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FcsData:
    """An FCS file read into memory (its first data set).

    Attributes
    ----------
    path : pathlib.Path
        The file read.
    sha256 : str
        Hex SHA-256 of the file's bytes.
    events : numpy.ndarray
        float64, shape (n_events, n_channels), file channel order: uncompensated,
        untransformed values after flowkit's preprocessing ($PnE log decoding, $PnG
        gain, Time × $TIMESTEP in seconds). These are what gating uses.
    pnn, pns : list of str
        Detector names ($PnN) and marker names ($PnS, "" where absent).
    keywords : dict of str to str
        TEXT keywords, lower case, without the leading ``$``.
    sample : flowkit.Sample
        The same events as a flowkit Sample (for gating), ID = file stem.
    warnings : tuple of str
        Defects repaired while reading (offset off by one, HEADER/TEXT discrepancy,
        skipped data sets, unusable $TIMESTEP …); empty for a clean file.
    stored_events : numpy.ndarray or None
        float64, same shape as ``events``: the values exactly as stored in the DATA
        segment (integers masked to their $PnR bits); None only for hand-built objects.
    data_sets : int
        Data sets in the file; only the first is read.
    """

    path: Path
    sha256: str
    events: np.ndarray
    pnn: list[str]
    pns: list[str]
    keywords: dict[str, str]
    sample: flowkit.Sample
    warnings: tuple[str, ...] = field(default=())
    stored_events: np.ndarray | None = None
    data_sets: int = 1

    @property
    def n_events(self) -> int:
        """Number of events."""
        return int(self.events.shape[0])

    @property
    def ranges(self) -> np.ndarray:
        """float64 (n_channels,): each channel's $PnR (stored units; NaN where invalid)."""
        values = [parse_number(self.keywords.get(f"p{n}r")) for n in range(1, len(self.pnn) + 1)]
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    @property
    def time_index(self) -> int | None:
        """Index of the Time channel ($PnN "Time", any case), or None."""
        return self.sample.time_index


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    sample = _flowkit_sample(
        name=path.name,
        version=decoded.version,
        keywords=decoded.keywords,
        stored=decoded.stored,
        sample_id=sample_id or path.stem,
        warnings=warnings,
    )
    for message in warnings:
        log.info("%s: %s", path.name, message)
    return FcsData(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        events=sample.get_events(source="raw"),
        pnn=list(sample.pnn_labels),
        pns=[label or "" for label in sample.pns_labels],
        keywords=decoded.keywords,
        sample=sample,
        warnings=tuple(warnings),
        stored_events=decoded.stored,
        data_sets=decoded.data_sets,
    )


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
        flowkit Sample is rebuilt from them); path, hash, keywords and warnings are
        those of the file.
    """
    keep = np.asarray(keep, dtype=bool)
    if fcs.stored_events is None or keep.shape != (fcs.n_events,):
        msg = "select_events needs an FcsData from read_fcs and one boolean per event"
        raise ValueError(msg)
    stored = fcs.stored_events[keep]
    sample = _flowkit_sample(
        name=fcs.path.name,
        version=str(fcs.sample.version),
        keywords=fcs.keywords,
        stored=stored,
        sample_id=fcs.sample.id,
        warnings=[],
    )
    return replace(fcs, events=sample.get_events(source="raw"), sample=sample, stored_events=stored)


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


def _preprocess(
    stored: np.ndarray,
    channels: Mapping[int, Mapping[str, Any]],
    *,
    time_index: int | None,
    time_step: float,
) -> np.ndarray:
    """The events of flowio's ``FlowData.as_array(preprocess=True)``, step for step."""
    events = np.array(stored, dtype=np.float64)
    with np.errstate(all="ignore"):  # absurd but legal keyword values must not raise
        if time_index is not None:
            events[:, time_index] = events[:, time_index] * time_step
        for n, chan in channels.items():
            decades, log0 = chan["pne"]
            if decades > 0:
                events[:, n - 1] = (10 ** (decades * events[:, n - 1] / chan["pnr"])) * log0
            gain = chan["png"]
            if gain not in (1.0, 0):
                events[:, n - 1] = events[:, n - 1] / gain
    return events


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
            return (self._preprocessed if preprocess else self._stored).copy()

    return DecodedFlowData


def _flowkit_sample(
    *,
    name: str,
    version: str,
    keywords: dict[str, str],
    stored: np.ndarray,
    sample_id: str,
    warnings: list[str],
) -> flowkit.Sample:
    import flowkit

    n_events, n_channels = stored.shape
    channels = _channel_metadata(keywords, n_channels, warnings)
    pnn = [channels[n]["pnn"] for n in range(1, n_channels + 1)]
    fluoro, scatter, time_index = [], [], None
    for i, label in enumerate(pnn):  # flowio's classification of channels
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
    flow_data = _decoded_flow_data_class()(
        name=name,
        version=version,
        text=keywords,
        analysis={},
        header={"version": version},
        file_size=None,
        channel_count=n_channels,
        event_count=n_events,
        data_type=keywords.get("datatype", "").strip().lower(),
        channels=channels,
        pnn_labels=pnn,
        pns_labels=[channels[n]["pns"] for n in range(1, n_channels + 1)],
        pnr_values=[channels[n]["pnr"] for n in range(1, n_channels + 1)],
        fluoro_indices=fluoro,
        scatter_indices=scatter,
        time_index=time_index,
        null_channels=[],
        events=stored.ravel(),
        _stored=stored,
        _preprocessed=_preprocess(stored, channels, time_index=time_index, time_step=time_step),
    )
    try:
        return flowkit.Sample(flow_data, sample_id=sample_id)
    except Exception as exc:  # flowkit raises plain errors on odd metadata
        raise FcsUnsupportedError(
            f"{name}: flowkit cannot build a sample ({type(exc).__name__}: {exc})"
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
