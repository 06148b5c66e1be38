"""Read the reviewer overrides file (``overrides:`` in ``config/config.yaml``)."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cikflow.exceptions import OverrideError
from cikflow.review import Override

__all__ = ["read_overrides"]


@functools.cache
def _validator() -> Any:
    import jsonschema

    text = resources.files("cikflow").joinpath("schemas/overrides.schema.yaml").read_text()
    return jsonschema.Draft202012Validator(yaml.safe_load(text))


def _where(doc: Any, path: list[Any]) -> str:
    """``entry 2 (sample 'B02_d07', gate 'viable'): reason`` from a schema error's path."""
    if not path or not isinstance(path[0], int):
        return "(top level)"
    entry = doc[path[0]] if isinstance(doc[path[0]], dict) else {}
    who = ", ".join(
        f"{key} '{entry[key]}'" for key in ("sample", "gate") if isinstance(entry.get(key), str)
    )
    field = ".".join(str(p) for p in path[1:])
    return f"entry {path[0] + 1}" + (f" ({who})" if who else "") + (f": {field}" if field else "")


def read_overrides(path: str | Path) -> list[Override]:
    """Read and validate (schema only) a reviewer overrides file.

    Parameters
    ----------
    path : str or pathlib.Path
        YAML list of entries (``cikflow/schemas/overrides.schema.yaml``).

    Returns
    -------
    list of Override
        In file order (``entry`` 1, 2, …); empty for an empty file. Check them
        against the sheet and template with :func:`cikflow.review.override_problems`.

    Raises
    ------
    OverrideError
        The file is missing, not YAML, or an entry breaks the schema; the message
        names the file and the entry.
    """
    path = Path(path)
    if not path.is_file():
        raise OverrideError(f"{path}: overrides file not found")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise OverrideError(f"{path}: not valid YAML ({exc})") from None
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise OverrideError(
            "\n".join(f"{path}: {_where(doc, list(e.absolute_path))}: {e.message}" for e in errors)
        )
    return [Override.from_record(entry, entry=i + 1) for i, entry in enumerate(doc or [])]
