"""Write a batch's annotated base events as an AnnData ``.h5ad`` file (the scverse export).

anndata is an optional extra (``pip install -e '.[anndata]'``); without it,
:func:`require_anndata` raises a named :class:`~cikflow.exceptions.ExportError`
before any work is done. The file is what :func:`anndata.read_h5ad` reads, and
so what ``scanpy.read_h5ad`` (the same function) reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cikflow.exceptions import ExportError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cikflow.scverse import EventMatrix

__all__ = ["INSTALL_HINT", "require_anndata", "write_h5ad"]

INSTALL_HINT = "install the anndata extra: pip install -e '.[anndata]'"


def require_anndata() -> Any:
    """The :mod:`anndata` module, or a named error saying how to install it.

    Returns
    -------
    module
        :mod:`anndata`.

    Raises
    ------
    ExportError
        anndata is not installed.
    """
    try:
        import anndata
    except ImportError as exc:
        raise ExportError(f"the .h5ad export needs anndata ({exc}); {INSTALL_HINT}") from None
    return anndata


def write_h5ad(
    matrix: EventMatrix,
    path: str | Path,
    *,
    provenance: Mapping[str, Any] | None = None,
) -> None:
    """Write an :class:`~cikflow.scverse.EventMatrix` as a gzip-compressed ``.h5ad`` file.

    Parameters
    ----------
    matrix : EventMatrix
        ``X``, ``obs``, ``var``, ``layers`` and ``uns``.
    path : str or pathlib.Path
        The ``.h5ad`` file to write (replaced whole: written beside it, then moved).
    provenance : mapping, optional
        Also written as the file's provenance sidecar (``<file>.provenance.json``).

    Raises
    ------
    ExportError
        anndata is not installed.
    """
    from cikflow.io.tables import sidecar_path, write_json

    anndata = require_anndata()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    adata = anndata.AnnData(
        X=matrix.X,
        obs=matrix.obs,
        var=matrix.var,
        layers=dict(matrix.layers),
        uns=dict(matrix.uns),
    )
    tmp = path.with_name(f".{path.name}.tmp")
    adata.write_h5ad(tmp, compression="gzip")
    tmp.replace(path)
    if provenance is not None:
        write_json(provenance, sidecar_path(path))
