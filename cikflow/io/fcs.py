"""The only FCS reader and writer of cikflow.

:func:`read_fcs` decodes the file with cikflow's own decoder
(:mod:`cikflow.io._fcsformat`: FCS 2.0–3.2, ``$DATATYPE`` I/F/D, 8–64-bit and mixed-width
integers, either byte order, off-by-one and HEADER/TEXT offset repairs, first of several
data sets) and hands the decoded values to flowkit as a :class:`flowio.FlowData`, so
that gating sees exactly what flowkit would see for a file flowio can read. Every
failure is a named :class:`~cikflow.exceptions.FcsReadError` subclass that names the
file and the defect.

The events land in :class:`cikflow.events.FcsData` (the event model, below both
``io`` and ``gating``), which describes stored versus preprocessed values.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.events import ChannelView, FcsData, Preprocessing, select_events
from cikflow.exceptions import FcsNotFoundError
from cikflow.io._fcsformat import decode_fcs, parse_number

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


__all__ = ["ChannelView", "FcsData", "file_sha256", "read_fcs", "select_events", "write_fcs"]

log = logging.getLogger(__name__)


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


def _preprocessing(keywords: dict[str, str], n_channels: int, warnings: list[str]) -> Preprocessing:
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
    return Preprocessing(
        channels=channels,
        time_index=time_index,
        time_step=time_step,
        fluoro_indices=tuple(fluoro),
        scatter_indices=tuple(scatter),
    )


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
