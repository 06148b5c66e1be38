"""Tidy TSV tables with a provenance sidecar, and small JSON/YAML helpers."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np

__all__ = [
    "read_json",
    "read_table",
    "read_yaml",
    "sidecar_path",
    "write_json",
    "write_membership",
    "write_table",
    "write_text_gz",
]


def sidecar_path(path: str | Path) -> Path:
    """Path of the provenance sidecar of a table: ``<table>.provenance.json``."""
    path = Path(path)
    return path.with_name(path.name + ".provenance.json")


def _clean(value: Any) -> Any:
    """Make a value JSON-safe and stable (NaN → None, numpy → python, sorted keys)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(data: Mapping[str, Any], path: str | Path) -> None:
    """Write JSON deterministically (sorted keys, NaN as null, trailing newline)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(dict(data)), indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file (safe loader)."""
    with Path(path).open() as fh:
        return yaml.safe_load(fh)


def write_table(
    table: pd.DataFrame,
    path: str | Path,
    *,
    provenance: Mapping[str, Any] | None = None,
) -> None:
    """Write a tidy tab-separated table and, if given, its provenance sidecar.

    Floats are written with 10 significant digits so that reruns are
    byte-identical and values round-trip well within any reported precision.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", index=False, float_format="%.10g", lineterminator="\n")
    if provenance is not None:
        write_json(provenance, sidecar_path(path))


#: Columns that hold names, read as text: a sample ``007`` or a batch ``01`` keeps its zeros.
_TEXT_COLUMNS = (
    "batch",
    "sample",
    "samples",
    "fcs",
    "label",
    "gate",
    "gate_path",
    "parent",
    "population",
    "phenotype",
    "flag",
    "spec",
    "spec_version",
)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`write_table` (``.tsv`` or ``.tsv.gz``).

    Name columns (batch, sample, gate, population, ...) are read as text, never as numbers;
    empty cells are NaN as in every other column.
    """
    return pd.read_csv(
        path, sep="\t", keep_default_na=True, dtype=dict.fromkeys(_TEXT_COLUMNS, str)
    )


def write_text_gz(text: str, path: str | Path) -> None:
    """Write text gzip-compressed with a zero timestamp (byte-identical reruns)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(text.encode())


#: the column of :func:`write_membership` marking events acquisition QC removed
QC_REMOVED = "qc_removed"


def write_membership(
    membership: Mapping[str, np.ndarray],
    path: str | Path,
    *,
    qc_keep: np.ndarray | None = None,
) -> None:
    """Write per-event gate membership: one row per event of the file, in file order.

    Parameters
    ----------
    membership : mapping of str to numpy.ndarray
        Gate name → bool, shape (n_kept,): membership of the events gating saw.
    path : str or pathlib.Path
        Output ``.tsv.gz``.
    qc_keep : numpy.ndarray, optional
        bool, shape (n_events,): the events acquisition QC kept (default: all).

    Notes
    -----
    The first column, ``qc_removed``, is 1 for an event acquisition QC removed and 0
    otherwise; each gate column is 1/0 for kept events and empty (NA) for removed
    ones, which gating never saw.
    """
    import numpy as np

    gates = list(membership)
    if QC_REMOVED in gates:
        msg = f"a gate may not be named {QC_REMOVED!r}: that column marks QC-removed events"
        raise ValueError(msg)
    columns = [np.asarray(membership[g], dtype=np.int8) for g in gates]
    n_kept = columns[0].size if columns else None
    keep = np.ones(n_kept or 0, dtype=bool) if qc_keep is None else np.asarray(qc_keep, bool)
    if n_kept is not None and int(keep.sum()) != n_kept:
        msg = f"membership holds {n_kept} events, but QC kept {int(keep.sum())}"
        raise ValueError(msg)
    kept = iter(np.column_stack(columns).tolist() if columns else [[]] * int(keep.sum()))
    removed = "1" + "\t" * len(gates)
    lines = ["\t".join([QC_REMOVED, *gates])]
    lines.extend("\t".join(["0", *map(str, next(kept))]) if k else removed for k in keep.tolist())
    write_text_gz("\n".join(lines) + "\n", path)
