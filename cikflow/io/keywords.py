"""Keyword-only scan of FCS files (fcsparser ``meta_data_only``): fast, no event data."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

__all__ = ["read_keywords", "read_panel"]

log = logging.getLogger(__name__)


def read_keywords(path: str | Path) -> dict[str, str]:
    """TEXT keywords of an FCS file (upper-case keys), through fcsparser.

    Raises whatever fcsparser raises for an unreadable file.
    """
    import fcsparser

    path = Path(path)
    with path.open("rb") as fh:
        magic = fh.read(6)
    if not magic.startswith(b"FCS"):
        msg = f"not an FCS file (it starts with {magic!r}, not 'FCS' and a version)"
        raise ValueError(msg)
    # fcsparser warns (UserWarning) about oddities of real instrument files, e.g. a
    # TEXT segment that does not end with its delimiter; the keywords are still
    # read. Record those warnings and log them (pytest turns stray warnings into
    # errors, and a draft sheet should not fail for them).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta = fcsparser.parse(path, meta_data_only=True, reformat_meta=False)
    for warning in caught:
        log.warning("%s: fcsparser: %s", path, str(warning.message).replace("\n", " "))
    return {str(k).strip().upper(): str(v).strip() for k, v in meta.items() if k != "__header__"}


def read_panel(path: str | Path) -> tuple[list[str], list[str]]:
    """Detector ($PnN) and marker ($PnS, "" where absent) labels of a file, in channel order.

    Raises whatever :func:`read_keywords` raises for an unreadable file.
    """
    keywords = read_keywords(path)
    n = int(keywords.get("$PAR", "0"))
    pnn = [keywords.get(f"$P{i}N", f"P{i}") for i in range(1, n + 1)]
    pns = [keywords.get(f"$P{i}S", "") for i in range(1, n + 1)]
    return pnn, pns
