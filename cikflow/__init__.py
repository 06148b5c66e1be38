"""cikflow: reproducible flow-cytometry QC of cytokine-induced killer (CIK) cell products."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from cikflow.exceptions import CikflowError, CikflowWarning

try:
    __version__ = version("cikflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["CikflowError", "CikflowWarning", "__version__"]
