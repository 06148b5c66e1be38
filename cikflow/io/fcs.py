"""The only FCS reader and writer of cikflow.

Reading goes through flowio (the parser flowkit itself uses), so event values are
the ones flowkit gates; every failure becomes a :class:`~cikflow.exceptions.FcsReadError`
that names the file and the defect.
"""

from __future__ import annotations

import hashlib
import logging
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.exceptions import FcsReadError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import flowkit

__all__ = ["FcsData", "file_sha256", "read_fcs", "write_fcs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FcsData:
    """An FCS file read into memory.

    Attributes
    ----------
    path : pathlib.Path
        The file read.
    sha256 : str
        Hex SHA-256 of the file's bytes.
    events : numpy.ndarray
        float64, shape (n_events, n_channels): raw (uncompensated, untransformed)
        event values in file channel order, gain-scaled as flowkit does.
    pnn, pns : list of str
        Detector names ($PnN) and marker names ($PnS, "" where absent).
    keywords : dict of str to str
        TEXT keywords, lower case, without the leading ``$``.
    sample : flowkit.Sample
        The same events as a flowkit Sample (for gating), ID = file stem.
    """

    path: Path
    sha256: str
    events: np.ndarray
    pnn: list[str]
    pns: list[str]
    keywords: dict[str, str]
    sample: flowkit.Sample

    @property
    def n_events(self) -> int:
        """Number of events in the file."""
        return int(self.events.shape[0])


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_fcs(path: str | Path, *, sample_id: str | None = None) -> FcsData:
    """Read an FCS 2.0/3.0/3.1 file.

    Parameters
    ----------
    path : str or pathlib.Path
        File to read.
    sample_id : str, optional
        ID given to the flowkit Sample; default the file stem.

    Returns
    -------
    FcsData

    Raises
    ------
    FcsReadError
        The file is missing, empty, not an FCS file, truncated, or its segments
        cannot be decoded. The message names the file and the defect.
    """
    import flowio
    import flowkit

    path = Path(path)
    if not path.is_file():
        raise FcsReadError(f"{path}: file not found")
    raw = path.read_bytes()
    if len(raw) < 58 or not raw[:3] == b"FCS":
        raise FcsReadError(
            f"{path.name}: not an FCS file (the header does not start with 'FCS' "
            f"followed by a version; {len(raw)} bytes)"
        )
    try:
        flow_data = flowio.FlowData(path.open("rb"))
    except Exception as exc:  # flowio raises many types; all mean "unreadable"
        raise FcsReadError(
            f"{path.name}: unreadable FCS file ({type(exc).__name__}: {exc})"
        ) from exc
    keywords = {str(k).lower().lstrip("$"): str(v) for k, v in flow_data.text.items()}
    n_channels = int(flow_data.channel_count)
    declared = int(keywords.get("tot", flow_data.event_count))
    n_values = len(flow_data.events) if flow_data.events is not None else 0
    if n_channels == 0 or n_values != declared * n_channels:
        raise FcsReadError(
            f"{path.name}: truncated or inconsistent DATA segment "
            f"({n_values} values, $TOT={declared} × $PAR={n_channels} expected)"
        )
    try:
        sample = flowkit.Sample(flow_data, sample_id=sample_id or path.stem)
    except Exception as exc:
        raise FcsReadError(
            f"{path.name}: cannot build events ({type(exc).__name__}: {exc})"
        ) from exc
    events = sample.get_events(source="raw")
    pns = [label or "" for label in sample.pns_labels]
    return FcsData(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        events=events,
        pnn=list(sample.pnn_labels),
        pns=pns,
        keywords=keywords,
        sample=sample,
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
