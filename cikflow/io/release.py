"""Read a release specification (``config/release/*.yaml``), validated against its schema."""

from __future__ import annotations

import functools
import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cikflow.exceptions import ReleaseSpecError
from cikflow.release import ReleaseSpec, spec_from_dict

__all__ = ["read_release_spec"]

#: a YAML 1.1 scalar such as 2.5e6 (no exponent sign) that PyYAML reads as text
_UNSIGNED_EXPONENT = re.compile(r"^[-+]?\d+(\.\d*)?[eE]\d+$")


@functools.cache
def _validator() -> Any:
    import jsonschema

    text = resources.files("cikflow").joinpath("schemas/release.schema.yaml").read_text()
    return jsonschema.Draft202012Validator(yaml.safe_load(text))


def _where(error: Any) -> str:
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def read_release_spec(path: str | Path) -> ReleaseSpec:
    """Read and validate a release specification.

    Parameters
    ----------
    path : str or pathlib.Path
        YAML file with ``name``, ``version``, ``description`` and ``criteria``
        (``cikflow/schemas/release.schema.yaml``).

    Returns
    -------
    ReleaseSpec
        With the file's SHA-256.

    Raises
    ------
    ReleaseSpecError
        The file is missing, not YAML, or breaks the schema; the message names
        the file and the field, e.g. ``default.yaml: criteria[1].operator: '=>'
        is not one of ['>=', '>', '<=', '<']``.
    """
    path = Path(path)
    if not path.is_file():
        raise ReleaseSpecError(f"{path}: release specification not found")
    raw = path.read_bytes()
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ReleaseSpecError(f"{path.name}: not valid YAML ({exc})") from exc
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for error in errors:
            message = error.message
            if (
                error.validator == "type"
                and isinstance(error.instance, str)
                and _UNSIGNED_EXPONENT.match(error.instance)
            ):
                message += " (YAML reads an exponent without a sign as text: write 2.5e+6)"
            lines.append(f"{path.name}: {_where(error)}: {message}")
        raise ReleaseSpecError("\n".join(lines))
    try:
        return spec_from_dict(doc, sha256=hashlib.sha256(raw).hexdigest())
    except ReleaseSpecError as exc:
        raise ReleaseSpecError(f"{path.name}: {exc}") from None
