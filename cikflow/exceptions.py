"""Exception and warning hierarchy of cikflow.

Every error that bad input can cause is a :class:`CikflowError` subclass whose
message names the file, row, column or gate at fault and what is wrong, so a
batch can record it and go on with the other samples.
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "CikflowError",
    "CikflowWarning",
    "CompensationError",
    "ConfigError",
    "ExportError",
    "FcsDataError",
    "FcsHeaderError",
    "FcsNotFoundError",
    "FcsOffsetError",
    "FcsReadError",
    "FcsTextError",
    "FcsTruncatedError",
    "FcsUnsupportedError",
    "GatingError",
    "GatingMLGateWarning",
    "GatingMLWarning",
    "GatingTemplateError",
    "MissingMarkerError",
    "OverrideError",
    "ReleaseSpecError",
    "SampleSheetError",
    "StatusError",
]


class CikflowError(Exception):
    """Base class of every error cikflow raises on purpose."""

    #: short machine-readable name, written to ``failed.tsv``
    code = "cikflow_error"


class FcsReadError(CikflowError):
    """An FCS file is missing, not an FCS file, truncated or otherwise unreadable."""

    code = "fcs_read_error"


class FcsNotFoundError(FcsReadError):
    """The FCS file does not exist (or is not a regular file)."""

    code = "fcs_not_found"


class FcsHeaderError(FcsReadError):
    """The file is not an FCS file: its 58-byte HEADER is missing, foreign or unreadable."""

    code = "fcs_header_error"


class FcsTextError(FcsReadError):
    """The TEXT segment cannot be parsed, or a required keyword is missing or invalid."""

    code = "fcs_text_error"


class FcsOffsetError(FcsReadError):
    """Segment offsets are impossible or contradict each other beyond what can be repaired."""

    code = "fcs_offset_error"


class FcsTruncatedError(FcsReadError):
    """The file ends before the end of a segment it declares (a partial copy)."""

    code = "fcs_truncated"


class FcsDataError(FcsReadError):
    """The DATA segment does not hold the events the TEXT segment declares ($TOT, $PnB)."""

    code = "fcs_data_error"


class FcsUnsupportedError(FcsReadError):
    """A valid FCS layout cikflow does not read ($DATATYPE A, histogram $MODE, odd $PnB)."""

    code = "fcs_unsupported"


class MissingMarkerError(CikflowError):
    """A marker the gating template needs is not in the file's panel.

    ``absent`` is False when the marker matches several detectors or a panel override
    names no detector: the file has it, the configuration must say which.
    """

    code = "missing_marker"

    def __init__(self, message: str, *, absent: bool = True) -> None:
        super().__init__(message)
        self.absent = absent


class CompensationError(CikflowError):
    """A spillover matrix is malformed or does not match the file's detectors."""

    code = "compensation_error"


class SampleSheetError(CikflowError):
    """A sample-sheet row or column is invalid."""

    code = "sample_sheet_error"


class GatingTemplateError(CikflowError):
    """A gating template is invalid; the message names the gate and the field."""

    code = "gating_template_error"


class GatingError(CikflowError):
    """Gating a sample failed (for example an empty parent population)."""

    code = "gating_error"


class EmptyBaseError(GatingError):
    """The template's base population holds no event; fractions cannot be computed.

    Attributes
    ----------
    outcome : object
        The gating up to the failure (a :class:`cikflow.gating.apply.GatingOutcome`
        whose gate table shows where the events went), so a report can show it.
    emptied : str
        The first gate on the base's path that holds no event.
    """

    code = "empty_base"

    def __init__(self, message: str, *, outcome: object = None, emptied: str = "") -> None:
        super().__init__(message)
        self.outcome = outcome
        self.emptied = emptied


class ExportError(CikflowError):
    """Gates cannot be written in the requested exchange format; the message says why."""

    code = "export_error"


class ConfigError(CikflowError):
    """The workflow configuration is invalid."""

    code = "config_error"


class CikflowWarning(UserWarning):
    """A recoverable oddity worth a line in the log and the report."""


class GatingMLWarning(CikflowWarning):
    """Part of a GatingML 2.0 template is ignored; the message names the file, line and element."""


class GatingMLGateWarning(GatingMLWarning):
    """A GatingML gate cannot be built or computed and is left out, with the gates under it.

    Attributes
    ----------
    gate : str
        ID of the gate at fault.
    reason : str
        Why it cannot be built or computed.
    dependants : tuple of str
        IDs of the gates left out with it: its descendants and the Boolean gates
        referencing it (or them).
    """

    def __init__(self, message: str, *, gate: str, reason: str, dependants: tuple[str, ...] = ()):
        super().__init__(message)
        self.gate = gate
        self.reason = reason
        self.dependants = dependants


class OverrideError(CikflowError):
    """The reviewer overrides file is invalid; the message names the file and the entry."""

    code = "override_error"


class ReleaseSpecError(CikflowError):
    """A release specification is invalid; the message names the file and the field."""

    code = "release_spec_error"


class StatusError(CikflowError):
    """A sample's ``status.json`` does not follow its schema; the message names the field."""

    code = "status_error"


class AuditError(CikflowError):
    """The audit trail is unreadable or broken, or a record is invalid (kind, meaning).

    The message names the file, line or field.
    """

    code = "audit_error"
