"""Acquisition QC of one read file: run :mod:`cikflow.qc`, keep the good events, say why.

The bridge between a :class:`~cikflow.io.FcsData` and the numpy-only QC: it picks the
watched channels from the configuration, builds the file restricted to the kept events
(the flowkit Sample gating uses included), and turns counts into the ``qc`` record of
``status.json`` and into confidence flags: ``acquisition_anomaly`` (time windows removed
more than ``max_removed_share`` of the events), ``margin_events`` (more than
``max_margin_share`` at a channel's $PnR maximum) and ``fcs_read_warning`` (a defect the
reader repaired).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.events import finite_number as parse_number
from cikflow.exceptions import ConfigError, GatingError
from cikflow.io import select_events
from cikflow.qc import acquisition_qc, default_qc_channels

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cikflow.events import FcsData
    from cikflow.qc import AcquisitionQc

__all__ = ["QC_DEFAULTS", "QcOutcome", "run_acquisition_qc", "time_unit"]

#: the ``qc`` configuration section's defaults (see config/README.md)
QC_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "margins": True,
    "time_windows": True,
    "channels": [],
    "events_per_bin": 250,
    "z_threshold": 5.0,
    "max_removed_share": 0.05,
    "max_margin_share": 0.05,
}


@dataclass(frozen=True)
class QcOutcome:
    """Acquisition QC of one file.

    Attributes
    ----------
    fcs : FcsData
        The file restricted to the kept events (the input itself when nothing was
        removed or QC is off).
    keep : numpy.ndarray
        bool (events in the file,): which events ``fcs`` holds.
    record : dict
        JSON-able summary for ``status.json`` (counts, windows, settings, text).
    flags : list of dict
        ``{"flag", "gate", "reason"}`` confidence flags.
    """

    fcs: FcsData
    keep: np.ndarray
    record: dict[str, Any]
    flags: list[dict[str, str]] = field(default_factory=list)


def _watched(fcs: FcsData, names: list[str]) -> list[int]:
    if not names:
        return default_qc_channels(fcs.pnn, time_index=fcs.time_index)
    by_name = {n.strip().lower(): i for i, n in enumerate(fcs.pnn)}
    by_name.update({n.strip().lower(): i for i, n in enumerate(fcs.pns) if n})
    missing = [n for n in names if n.strip().lower() not in by_name]
    if missing:
        raise ConfigError(
            f"{fcs.path.name}: qc.channels names {missing}, which are neither a $PnN nor a "
            "$PnS of the file"
        )
    return sorted({by_name[n.strip().lower()] for n in names})


def time_unit(fcs: FcsData) -> str:
    """The unit of a file's Time channel after scaling.

    Parameters
    ----------
    fcs : FcsData
        The file as read.

    Returns
    -------
    str
        ``s`` (seconds) when the file has a Time channel and a ``$TIMESTEP``,
        else ``time units``.
    """
    has_step = parse_number(fcs.keywords.get("timestep")) is not None
    return "s" if fcs.time_index is not None and has_step else "time units"


def run_acquisition_qc(fcs: FcsData, *, settings: Mapping[str, Any] | None = None) -> QcOutcome:
    """Remove margin events and anomalous time windows from a file before gating.

    Parameters
    ----------
    fcs : FcsData
        The file as read.
    settings : mapping, optional
        The ``qc`` configuration section; missing keys take :data:`QC_DEFAULTS`.

    Returns
    -------
    QcOutcome

    Raises
    ------
    ConfigError
        ``qc.channels`` names a channel the file lacks.
    GatingError
        QC removed every event.
    """
    cfg = {**QC_DEFAULTS, **dict(settings or {})}
    flags = [{"flag": "fcs_read_warning", "gate": "", "reason": w} for w in fcs.warnings]
    everything = np.ones(fcs.n_events, dtype=bool)
    if not cfg["enabled"] or not (cfg["margins"] or cfg["time_windows"]):
        record = {"enabled": False, "events": fcs.n_events, "kept": fcs.n_events}
        record["text"] = "off (qc.enabled, qc.margins and qc.time_windows in config)"
        return QcOutcome(fcs=fcs, keep=everything, record=record, flags=flags)
    result = acquisition_qc(
        fcs.by_channel(),
        channels=fcs.pnn,
        time_index=fcs.time_index,
        stored=fcs.stored_events,
        ranges=fcs.ranges,
        watch=_watched(fcs, list(cfg["channels"])),
        margins=bool(cfg["margins"]),
        time_windows=bool(cfg["time_windows"]),
        events_per_bin=int(cfg["events_per_bin"]),
        z_threshold=float(cfg["z_threshold"]),
        time_unit=time_unit(fcs),
    )
    if result.n_kept == 0:
        raise GatingError(
            f"{fcs.path.name}: acquisition QC removed all {result.n_events} events "
            f"({result.n_margin} at a $PnR maximum, {result.n_time} in anomalous time windows)"
        )
    record = _record(result, cfg)
    flags += _flags(result, cfg)
    kept = fcs if result.n_kept == fcs.n_events else select_events(fcs, result.keep)
    return QcOutcome(fcs=kept, keep=result.keep, record=record, flags=flags)


def _share(n: int, total: int) -> float:
    return n / total if total else 0.0


def _windows_text(result: AcquisitionQc) -> str:
    parts = [f"{w['start']:g}–{w['end']:g} {w['unit']} ({w['reason']})" for w in result.windows[:5]]
    more = len(result.windows) - len(parts)
    return "; ".join(parts) + (f"; {more} more" if more > 0 else "")


def _record(result: AcquisitionQc, cfg: Mapping[str, Any]) -> dict[str, Any]:
    n = result.n_events
    text = (
        f"kept {result.n_kept:,} of {n:,} events ({100 * _share(result.n_kept, n):.1f} %): "
        f"{result.n_margin:,} margin events ($PnR maximum), {result.n_time:,} in "
        f"{len(result.windows)} anomalous time window(s)"
    )
    if result.windows:
        text += f": {_windows_text(result)}"
    if result.notes:
        text += f" [{'; '.join(result.notes)}]"
    return {
        "enabled": True,
        "events": n,
        "kept": result.n_kept,
        "removed_margin": result.n_margin,
        "removed_time": result.n_time,
        "share_removed": round(_share(n - result.n_kept, n), 6),
        "margin_by_channel": result.margin_by_channel,
        "windows": result.windows,
        "bins": result.n_bins,
        "bin_width": None if np.isnan(result.bin_width) else round(result.bin_width, 6),
        "notes": result.notes,
        "settings": {k: cfg[k] for k in QC_DEFAULTS},
        "text": text,
    }


def _flags(result: AcquisitionQc, cfg: Mapping[str, Any]) -> list[dict[str, str]]:
    flags = []
    n = result.n_events
    time_share = _share(result.n_time, n)
    if time_share > float(cfg["max_removed_share"]):
        flags.append(
            {
                "flag": "acquisition_anomaly",
                "gate": "",
                "reason": (
                    f"time QC removed {100 * time_share:.1f} % of events "
                    f"(> {100 * float(cfg['max_removed_share']):g} %) in "
                    f"{len(result.windows)} window(s): {_windows_text(result)}"
                ),
            }
        )
    margin_share = _share(result.n_margin, n)
    if margin_share > float(cfg["max_margin_share"]):
        worst = sorted(result.margin_by_channel.items(), key=lambda kv: -kv[1])[:3]
        flags.append(
            {
                "flag": "margin_events",
                "gate": "",
                "reason": (
                    f"{100 * margin_share:.1f} % of events at a channel's $PnR maximum "
                    f"(> {100 * float(cfg['max_margin_share']):g} %): "
                    + ", ".join(f"{name} {count:,}" for name, count in worst)
                ),
            }
        )
    return flags
