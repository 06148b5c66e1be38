"""A sample's ``status.json``: the :class:`SampleStatus` record, read and written.

The gate step writes it; the sample's clustering, the summary, the reports, the
workspace export and the batch clustering read it. Both ways are checked against
``cikflow/schemas/status.schema.yaml``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cikflow.exceptions import StatusError
from cikflow.io.tables import _clean, write_json

__all__ = ["SampleStatus", "read_status", "write_status"]

#: fields written whatever happened (the others only once known)
_ALWAYS = ("sample", "batch", "day", "label", "fcs", "file_name", "status", "flags", "gatingml")


@dataclass
class SampleStatus:
    """What gating one FCS file did: identity, file, QC, panel, fits, flags, clustering.

    Attributes
    ----------
    sample, batch, label : str
        From the sample sheet (the sample defaults to the file stem).
    day : int, float, str or None
        Culture day (days).
    fcs, file_name : str
        The FCS file as given, and its name.
    status : str
        ``ok`` or ``failed`` (then ``error`` and ``message`` say why).
    sha256, events, channels, instrument, acquisition_date, acquisition_time,
    fcs_fil, fcs_smno, fcs_version : str or int, optional
        From the FCS file (events: count; channels: count), once read.
    qc : dict, optional
        The acquisition QC record.
    read_warnings : list of str, optional
        What the FCS reader repaired.
    pns : dict of str to str, optional
        Every detector's $PnS label ($PnN → $PnS; empty when the file has none), once read.
    panel, compensation, transforms, fits : optional
        Marker to channel, compensation source, each dimension's transform, and
        what each data-driven gate fitted.
    flags : list of dict
        ``{"gate", "flag", "reason"}`` of every flag.
    gatingml : str, optional
        ``gates.xml`` when written, ``none`` without gates, or why it was not written.
    clustering : dict, optional
        ``{"status": "ok", markers, n_clusters, fit_events, events, dividers}``
        or ``{"status": "not run", "reason"}``, when the gate step clustered the
        sample itself (the workflow clusters it in the sample's report job, which
        writes the record in ``clustering.json``).
    emptied : str, optional
        When the base population was empty: the first gate on its path that
        held no event.
    base : str, optional
        The template's base population (percent of base is relative to it).
    bead_levels : dict, optional
        ``{"events", "scatter", "fluorescence"}``: the counting beads' event
        count and median of every dimension (compensated data units), the
        batch's instrument reference for drift
        (:func:`cikflow.clustering.level_drift`); only for tubes whose sheet
        row gives ``beads_per_tube``.
    review : list of dict, optional
        The reviewer's entries for this sample (:meth:`cikflow.review.Override.as_record`):
        gates set and flags accepted, with reason and author.
    provenance : dict, optional
        The step's provenance record.
    """

    sample: str
    batch: str
    day: Any
    label: str
    fcs: str
    file_name: str
    status: str = "ok"
    error: str | None = None
    message: str | None = None
    sha256: str | None = None
    events: int | None = None
    channels: int | None = None
    instrument: str | None = None
    acquisition_date: str | None = None
    acquisition_time: str | None = None
    fcs_fil: str | None = None
    fcs_smno: str | None = None
    fcs_version: str | None = None
    qc: dict[str, Any] | None = None
    read_warnings: list[str] | None = None
    pns: dict[str, str] | None = None
    panel: dict[str, str] | None = None
    compensation: str | None = None
    transforms: dict[str, Any] | None = None
    fits: list[dict[str, Any]] | None = None
    flags: list[dict[str, Any]] = field(default_factory=list)
    gatingml: str | None = None
    clustering: dict[str, Any] | None = None
    emptied: str | None = None
    base: str | None = None
    bead_levels: dict[str, Any] | None = None
    review: list[dict[str, Any]] | None = None
    provenance: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Whether the sample was gated (``status`` is ``ok``)."""
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        """The JSON-safe mapping written to ``status.json``.

        Returns
        -------
        dict
            Every field set; ``None`` only for the sheet's ``day``.
        """
        data = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name in _ALWAYS or getattr(self, f.name) is not None
        }
        return _clean(data)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleStatus:
        """The status from a mapping read from ``status.json`` (checked against the schema).

        Parameters
        ----------
        data : dict
            The mapping.

        Returns
        -------
        SampleStatus
            The record.
        """
        _validate(data, what="status.json")
        return cls(**data)


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("cikflow").joinpath("schemas/status.schema.yaml").read_text()
    return yaml.safe_load(text)


def _validate(data: dict[str, Any], *, what: str) -> None:
    import jsonschema

    errors = sorted(
        jsonschema.Draft202012Validator(_schema()).iter_errors(data), key=lambda e: e.path
    )
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top)"
        raise StatusError(f"{what}: {where}: {errors[0].message}")


def write_status(status: SampleStatus, path: str | Path) -> None:
    """Write ``status.json`` (sorted keys, checked against the schema).

    Parameters
    ----------
    status : SampleStatus
        The record.
    path : str or pathlib.Path
        The file to write.
    """
    data = status.to_json()
    _validate(data, what=str(path))
    write_json(data, path)


def read_status(path: str | Path) -> SampleStatus:
    """Read a ``status.json`` (checked against the schema).

    Parameters
    ----------
    path : str or pathlib.Path
        The file.

    Returns
    -------
    SampleStatus
        The record.
    """
    data = json.loads(Path(path).read_text())
    try:
        return SampleStatus.from_json(data)
    except StatusError as exc:
        raise StatusError(f"{path}: {exc}") from None
