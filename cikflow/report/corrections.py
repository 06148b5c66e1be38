"""What the reports show of a reviewer's corrections (:mod:`cikflow.review`).

Gates set for one sample and flags accepted, with reason and author; flags split
into those still asking for review and those a reviewer accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cikflow.review import set_text

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

__all__ = ["correction_rows", "flag_rows", "open_flags", "review_context", "set_gates"]


def _text(value: Any) -> str:
    """A table cell as text: empty for a missing value (NaN, None)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def correction_rows(statuses: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Every reviewer entry of the samples: sample, gate, set, accepted flags, reason, by.

    >>> s = [{"sample": "B01_d14", "review": [{"sample": "B01_d14", "gate": "cd3_cd56",
    ...       "set": {"x": {"at": 2000}}, "accept_flags": [], "reason": "shallow",
    ...       "by": "AB", "covers": []}]}, {"sample": "B01_d21"}]
    >>> correction_rows(s)[0]["set"], len(correction_rows(s))
    ('x at 2000', 1)
    """
    rows = []
    for status in statuses:
        # the gate step wrote each set gate's fields with its dimensions' names
        named = {f["gate"]: f.get("set") for f in status.get("fits") or ()}
        for entry in status.get("review") or ():
            rows.append(
                {
                    "sample": str(entry["sample"]),
                    "gate": str(entry["gate"]),
                    "set": named.get(entry["gate"]) or set_text(entry.get("set") or {}),
                    "accept_flags": ", ".join(entry.get("accept_flags") or ()),
                    "reason": str(entry["reason"]),
                    "by": str(entry["by"]),
                }
            )
    return rows


def set_gates(status: Mapping[str, Any]) -> dict[str, str]:
    """Gate or population → who set it, for the gates a reviewer set on this sample.

    A quadrant's populations are marked with it (the gate table lists them, not the
    quadrant).

    >>> set_gates({"review": [{"gate": "q", "set": {"x": {"at": 1}}, "by": "AB",
    ...                        "covers": ["q", "T", "CIK"]}]})
    {'q': 'AB', 'T': 'AB', 'CIK': 'AB'}
    """
    return {
        str(name): str(e["by"])
        for e in status.get("review") or ()
        if e.get("set")
        for name in (e.get("covers") or [e["gate"]])
    }


def flag_rows(flags: pd.DataFrame) -> list[dict[str, Any]]:
    """Flag table rows with ``accepted_by`` and ``accepted_reason`` as text (empty if not)."""
    rows = flags.to_dict("records")
    for row in rows:
        row["accepted_by"] = _text(row.get("accepted_by"))
        row["accepted_reason"] = _text(row.get("accepted_reason"))
    return rows


def open_flags(flags: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The flags no reviewer accepted (those still asking for review)."""
    return [f for f in flags if not _text(f.get("accepted_by"))]


def review_context(
    flags: pd.DataFrame, *, statuses: Sequence[Mapping[str, Any]]
) -> dict[str, list[Any]]:
    """The batch report's flags, ``flags`` (all), ``open_flags`` and ``corrections``."""
    rows = flag_rows(flags)
    return {"flags": rows, "open_flags": open_flags(rows), "corrections": correction_rows(statuses)}
