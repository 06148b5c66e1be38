"""The provenance record written beside every table: versions, configuration, inputs."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cikflow import __version__

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["config_hash", "provenance"]

_VERSIONED = (
    "flowkit",
    "flowio",
    "fcsparser",
    "numpy",
    "pandas",
    "scikit-learn",
    "plotly",
    "snakemake",
)


def _versions() -> dict[str, str]:
    out = {"cikflow": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of a configuration mapping in canonical JSON (sorted keys).

    Parameters
    ----------
    config : mapping
        The configuration.

    Returns
    -------
    str
        The hex digest.
    """
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def provenance(
    *,
    step: str,
    config: Mapping[str, Any] | None = None,
    inputs: Mapping[str, str] | None = None,
    template: Mapping[str, Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance record written beside every table.

    It holds no time stamp, so that reruns on the same inputs write
    byte-identical sidecars.

    Parameters
    ----------
    step : str
        The step's name.
    config : mapping, optional
        The configuration it ran with (hashed).
    inputs : mapping of str to str, optional
        Input name to path; each file's SHA-256 is recorded.
    template : mapping, optional
        The template's name, version, path and SHA-256.
    parameters : mapping, optional
        Anything else that decides the output.

    Returns
    -------
    dict
        ``step``, ``versions``, ``config_sha256``, ``template``, ``inputs``,
        ``parameters``.
    """
    from cikflow.io import file_sha256

    return {
        "step": step,
        "versions": _versions(),
        "config_sha256": config_hash(config) if config is not None else None,
        "template": dict(template or {}),
        "inputs": {
            name: {"path": str(p), "sha256": file_sha256(p) if Path(p).is_file() else None}
            for name, p in sorted((inputs or {}).items())
        },
        "parameters": dict(parameters or {}),
    }
