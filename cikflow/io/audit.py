"""Read and append the audit trail (``results/audit.jsonl``); rewrite a report in place.

The records and their hash chain are :mod:`cikflow.audit`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cikflow.exceptions import AuditError

__all__ = ["append_lines", "read_lines", "replace_text"]


def read_lines(path: str | Path) -> list[str]:
    """The trail's lines without their newlines; an absent trail has none.

    Raises
    ------
    AuditError
        The file is not UTF-8 text, or its last line has no newline (a torn append).
    """
    path = Path(path)
    if not path.is_file():
        return []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AuditError(f"{path}: not UTF-8 text ({exc})") from None
    if text and not text.endswith("\n"):
        raise AuditError(f"{path}: the last line has no newline (an append was cut short)")
    return text.splitlines()


def append_lines(path: str | Path, lines: list[str]) -> None:
    """Append lines to the trail in one write, then fsync; create it where absent.

    Parameters
    ----------
    path : str or pathlib.Path
        ``results/audit.jsonl``.
    lines : list of str
        Lines without newlines (:func:`cikflow.audit.chain_lines`).
    """
    if not lines:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise AuditError(f"{path}: only {written} of {len(data)} bytes appended")
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_text(path: str | Path, text: str) -> None:
    """Replace a text file atomically (a temporary file beside it, then a rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
