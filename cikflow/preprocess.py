"""Compensation through flowkit's Matrix, and the transforms of a template's dimensions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cikflow.exceptions import CompensationError

if TYPE_CHECKING:
    import flowkit

    from cikflow.io.fcs import FcsData

__all__ = ["compensate", "spillover_matrix"]


def spillover_matrix(
    fcs: FcsData,
    *,
    source: str = "fcs",
    matrix_csv: str | None = None,
) -> tuple[flowkit.Matrix | None, str]:
    """The compensation matrix to use for a file.

    Parameters
    ----------
    fcs : FcsData
        The file.
    source : {"fcs", "file", "none"}
        ``fcs``: the embedded ``$SPILLOVER`` (FCS 3.1) or ``$SPILL``/``SPILL``
        keyword; ``file``: ``matrix_csv`` (text of a CSV whose header row names
        the detectors, as flowkit reads it); ``none``: no compensation.
    matrix_csv : str, optional
        Contents of the matrix file for ``source="file"``.

    Returns
    -------
    matrix : flowkit.Matrix or None
        None when there is nothing to compensate with.
    description : str
        What was used, for the report ("$SPILLOVER (5 detectors)", "none", …).

    Raises
    ------
    CompensationError
        The keyword or file cannot be parsed or names detectors the file lacks.
    """
    import flowkit as fk

    name = fcs.path.name
    if source == "none":
        return None, "none (disabled in config)"
    if source == "file":
        if not matrix_csv:
            raise CompensationError(f"{name}: compensation source 'file' needs a matrix file")
        text, label = matrix_csv, "matrix file"
    else:
        key = next((k for k in ("spillover", "spill") if fcs.keywords.get(k)), None)
        if key is None:
            return None, "none ($SPILLOVER/$SPILL absent)"
        text, label = fcs.keywords[key], f"${key.upper()}"
    try:
        if source == "file":
            matrix = _matrix_from_csv(text)
        else:
            # the keyword names its own detectors (FCS 3.1: "n,name1,...,namen,values");
            # they may be a subset of the file's fluorescence channels
            tokens = [t.strip() for t in text.split(",")]
            detectors = tokens[1 : 1 + int(float(tokens[0]))]
            matrix = fk.Matrix(text, detectors, null_channels=fcs.sample.null_channels)
    except CompensationError:
        raise
    except Exception as exc:
        raise CompensationError(
            f"{name}: cannot parse {label} ({type(exc).__name__}: {exc})"
        ) from exc
    missing = [d for d in matrix.detectors if d not in fcs.pnn]
    if missing:
        raise CompensationError(f"{name}: {label} names detectors not in the file: {missing}")
    return matrix, f"{label} ({len(matrix.detectors)} detectors)"


def _matrix_from_csv(text: str) -> flowkit.Matrix:
    import flowkit as fk

    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    header = [h.strip() for h in lines[0].replace("\t", ",").split(",")]
    values = np.array([[float(v) for v in ln.replace("\t", ",").split(",")] for ln in lines[1:]])
    if values.shape != (len(header), len(header)):
        raise CompensationError(
            f"matrix file: {values.shape[0]}×{values.shape[1]} values for {len(header)} detectors"
        )
    return fk.Matrix(values, header)


def compensate(fcs: FcsData, matrix: flowkit.Matrix | None) -> np.ndarray:
    """Compensated events (n_events × n_channels, file channel order).

    Channels outside the matrix pass through unchanged; the matrix's detectors
    become ``raw @ inv(spillover)`` (flowkit ``Matrix.apply``).
    """
    if matrix is None:
        return fcs.events.copy()
    return matrix.apply(fcs.sample)
