"""Compensation through flowkit's Matrix, and the transforms of a template's dimensions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cikflow.exceptions import CompensationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import flowkit

    from cikflow.events import FcsData

__all__ = ["CompensatedEvents", "compensate", "spillover_matrix"]


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
            matrix = fk.Matrix(text, detectors)
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


#: events per block when compensating: a block's float64 detectors stay in cache
#: (16,384 events × 14 detectors × 8 bytes = 1.8 MB; measured fastest of 2k–1M)
_CHUNK = 1 << 14


class CompensatedEvents:
    """A file's compensated events, computed once and read as ``events[rows, j]``.

    The matrix's detectors are compensated together, block by block, as
    ``raw @ inv(S)`` (flowkit's ``Matrix.apply`` solves ``Sᵀ x = rawᵀ``; the two
    agree to ~1e-12 relative) the first time one is asked for; other channels are
    the file's values, exactly (see :meth:`column`). Compensated columns are kept
    as float32 — seven significant digits, finer than any plot bin or cluster
    needs, at half the memory — and
    :meth:`exact` gives float64 values of chosen events with flowkit's
    arithmetic, with which gating decides every event near a gate bound
    (:mod:`cikflow.gating.engine`). Gating, fitting, plots and clustering of one
    sample share one such object: nothing is compensated twice and no float64
    copy of all channels is made.

    Parameters
    ----------
    fcs : FcsData
        The file (possibly restricted to some events).
    matrix : flowkit.Matrix or None
        Spillover matrix; None: uncompensated.
    """

    def __init__(self, fcs: FcsData, matrix: flowkit.Matrix | None) -> None:
        self.fcs: FcsData | None = fcs
        self.pnn = list(fcs.pnn)
        self.matrix = matrix
        self.shape = (fcs.n_events, len(fcs.pnn))
        self._detectors = [fcs.pnn.index(d) for d in matrix.detectors] if matrix is not None else []
        self._solved: np.ndarray | None = None
        self._plain: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def compensates(self, j: int) -> bool:
        """Whether channel ``j`` is one of the matrix's detectors."""
        return j in self._detectors

    def column(self, j: int) -> np.ndarray:
        """(n_events,): channel ``j`` compensated (kept: do not modify).

        float32 for the matrix's detectors; other channels exactly the file's
        values: float32 where that holds every value exactly (float32 or 16-bit
        data without gain or log), float64 otherwise.
        """
        if j in self._detectors:
            if self._solved is None:
                self._solved = self._solve_all()
            return self._solved[self._detectors.index(j)]
        if j not in self._plain:
            values = self._file().column(j)
            narrow = values.astype(np.float32)
            # (the NaN-aware comparison is several times slower: only when needed)
            exact = np.array_equal(narrow, values) or np.array_equal(narrow, values, equal_nan=True)
            self._plain[j] = narrow if exact else values
        return self._plain[j]

    def exact(self, rows: np.ndarray | slice, channels: Sequence[int] | None = None) -> np.ndarray:
        """float64 (n_rows, n_channels): channels of events ``rows``, compensated.

        The detectors with flowkit's arithmetic (solve ``Sᵀ x = rawᵀ``, which
        needs every detector). ``channels`` (file channel indices, in the order
        wanted) limits the columns returned; None is every channel.
        """
        wanted = list(range(self.shape[1])) if channels is None else list(channels)
        detectors = self._detectors if any(j in self._detectors for j in wanted) else []
        read = wanted + [j for j in detectors if j not in wanted]
        events = self._file().block(read, rows)
        if detectors:
            assert self.matrix is not None
            idx = [read.index(j) for j in detectors]
            events[:, idx] = np.linalg.solve(self.matrix.matrix.T, events[:, idx].T).T
        return events[:, : len(wanted)]

    def _solve_all(self) -> np.ndarray:
        assert self.matrix is not None
        n = self.shape[0]
        out = np.empty((len(self._detectors), n), dtype=np.float32)
        inverse = np.linalg.inv(self.matrix.matrix)
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            block = self._file().block(self._detectors, slice(start, stop))
            out[:, start:stop] = (block @ inverse).T
        return out

    def _file(self) -> FcsData:
        if self.fcs is None:
            msg = "the file's values were released (CompensatedEvents.release)"
            raise RuntimeError(msg)
        return self.fcs

    def release(self, channels: Iterable[int]) -> None:
        """Keep ``channels`` and let go of the file's values.

        Once nothing else refers to the file, its bytes are freed: a per-sample
        job calls this after the last step that needs other channels or exact
        values, so the steps after it (clustering) run without the file in memory.
        Asking for another channel, or for :meth:`exact`, then raises RuntimeError.
        """
        for j in channels:
            self.column(j)
        self.fcs = None

    def __getitem__(self, key: tuple[Any, int]) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], int | np.integer)):
            msg = "compensated events are indexed as events[rows, channel]"
            raise TypeError(msg)
        rows, j = key
        return self.column(int(j))[rows]


def compensate(fcs: FcsData, matrix: flowkit.Matrix | None) -> np.ndarray:
    """Compensated events (n_events × n_channels, file channel order).

    Channels outside the matrix pass through unchanged; the matrix's detectors
    become ``raw @ inv(spillover)`` with flowkit's arithmetic (``Matrix.apply``).
    A float64 copy of every channel: the processing pipeline reads a
    :class:`CompensatedEvents` instead.
    """
    return CompensatedEvents(fcs, matrix).exact(slice(None))
