"""The audit trail (``results/audit.jsonl``): records, their hash chain, the state they replay.

Pure computation; reading and appending the file is :mod:`cikflow.io.audit`.

The trail is one JSON record per line, appended and never rewritten. Every record has
``time`` (UTC, ``2026-12-04T18:06:05Z``), ``by`` (who), ``what`` (its kind, one of
:data:`KINDS`), ``reason`` (empty for automatic records) and ``prev``: the SHA-256 of
the previous record's exact line (UTF-8, without its newline); the first record's
``prev`` is :data:`GENESIS`. An edited, inserted or deleted line breaks the chain at
the next record (:func:`check_chain`). The chain cannot show an edit of the last line
or a cut after any line: a signature's hashes, or a copy of the last line's SHA-256
kept elsewhere, cover that.

Kinds and their own fields:

- ``baseline``, ``input_added``, ``input_changed``, ``input_removed``: one input of
  the run (``item``: ``sample_sheet``, ``template``, ``release_spec`` or
  ``fcs:<sample>``; ``path``; ``old`` and ``new``: its SHA-256, or null where the file
  is new, gone, or could not be read). Replaying them (:func:`replay`) gives the
  inputs of the last audited run; the run after compares its own with that.
- ``signature``: ``meaning`` (:data:`MEANINGS`), ``batch`` (or ``all``),
  ``release_sha256`` and ``report_sha256`` (:func:`report_digest`) of what was signed.
- ``override_added``, ``override_changed``, ``override_removed``: a reviewer's entry
  (:mod:`cikflow.review`) the run applied first, changed or no longer applies:
  ``sample``, ``gate``, ``old`` and ``new`` (the entry: ``set``, ``accept_flags``,
  ``reason``, ``by``; null where there is none); ``by`` and ``reason`` are the
  entry's (a removal: who ran the workflow, no reason). Replaying them
  (:func:`replay_overrides`) gives the entries of the last audited run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cikflow.exceptions import AuditError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "GENESIS",
    "INPUT_KINDS",
    "KINDS",
    "MEANINGS",
    "SIGNATURE_BEGIN",
    "SIGNATURE_END",
    "ChainBreak",
    "SignatureCheck",
    "chain_lines",
    "check_chain",
    "check_signatures",
    "input_changes",
    "input_state",
    "line_sha256",
    "override_changes",
    "parse_trail",
    "replay",
    "replay_overrides",
    "report_digest",
    "signature_record",
    "utc_stamp",
]

#: ``prev`` of the first record
GENESIS = "0" * 64
INPUT_KINDS = ("baseline", "input_added", "input_changed", "input_removed")
OVERRIDE_KINDS = ("override_added", "override_changed", "override_removed")
KINDS = (*INPUT_KINDS, "signature", *OVERRIDE_KINDS)
MEANINGS = ("reviewed", "approved")
#: the batch report's signature block lies between these two comments
SIGNATURE_BEGIN = "<!-- cikflow:signatures -->"
SIGNATURE_END = "<!-- /cikflow:signatures -->"
_BLOCK = re.compile(re.escape(SIGNATURE_BEGIN) + ".*?" + re.escape(SIGNATURE_END), re.DOTALL)
#: where a record's own fields go: after these, before ``reason`` and ``prev``
_HEAD = ("time", "by", "what")


def utc_stamp(when: dt.datetime) -> str:
    """A time as the trail writes it: UTC, whole seconds, ``Z`` (``2026-12-04T18:06:05Z``)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def line_sha256(line: str) -> str:
    """SHA-256 (hex) of one trail line: its UTF-8 bytes without the newline."""
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def _line(record: Mapping[str, Any], *, prev: str) -> str:
    """One record as its line: time, by, what, its own fields, reason, prev."""
    own = {k: v for k, v in record.items() if k not in (*_HEAD, "reason", "prev")}
    ordered = {
        **{k: record[k] for k in _HEAD},
        **own,
        "reason": record.get("reason", ""),
        "prev": prev,
    }
    return json.dumps(ordered, ensure_ascii=False, separators=(", ", ": "))


def chain_lines(records: Sequence[Mapping[str, Any]], *, last_line: str | None) -> list[str]:
    """The lines that append records to a trail, each chained to the one before.

    Parameters
    ----------
    records : sequence of mapping
        Each with ``time``, ``by`` and ``what`` (one of :data:`KINDS`), its own fields
        and optionally ``reason``; a ``prev`` given is replaced.
    last_line : str or None
        The trail's last line (the first new record's ``prev`` is its SHA-256), or
        None for an empty trail (``prev`` is :data:`GENESIS`).

    Returns
    -------
    list of str
        One line per record, without newlines.

    Raises
    ------
    AuditError
        A record lacks ``time``, ``by`` or ``what``, or its ``what`` is unknown.
    """
    prev = GENESIS if last_line is None else line_sha256(last_line)
    out = []
    for record in records:
        missing = [k for k in _HEAD if not record.get(k)]
        if missing:
            raise AuditError(f"audit record {dict(record)}: no {', '.join(missing)}")
        if record["what"] not in KINDS:
            raise AuditError(f"audit record kind {record['what']!r} is not one of {KINDS}")
        line = _line(record, prev=prev)
        out.append(line)
        prev = line_sha256(line)
    return out


@dataclass(frozen=True)
class ChainBreak:
    """The first record at which a trail's chain breaks.

    Attributes
    ----------
    line : int
        Its line number (1-based).
    time, what : str
        Its ``time`` and ``what`` (empty when the line does not parse).
    problem : str
        What is wrong.
    """

    line: int
    time: str
    what: str
    problem: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" ({self.time}, {self.what})" if self.what else "")
        return f"audit trail broken at {where}: {self.problem}"


def parse_trail(lines: Sequence[str], *, source: str = "audit.jsonl") -> list[dict[str, Any]]:
    """The records of a trail's lines (the chain is not checked: :func:`check_chain`).

    Raises
    ------
    AuditError
        A line is not a JSON object; the message names the source and line.
    """
    out = []
    for number, line in enumerate(lines, start=1):
        record = _parsed(line)
        if record is None:
            raise AuditError(f"{source}: line {number} is not a JSON record")
        out.append(record)
    return out


def _parsed(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def check_chain(lines: Sequence[str]) -> ChainBreak | None:
    """The first record whose line does not parse or whose ``prev`` is wrong, or None.

    Parameters
    ----------
    lines : sequence of str
        The trail's lines, without newlines.

    Returns
    -------
    ChainBreak or None
        None when every line is a record with ``time`` and ``what`` and every ``prev``
        is the SHA-256 of the line before (:data:`GENESIS` for the first).
    """
    expected = GENESIS
    for number, line in enumerate(lines, start=1):
        record = _parsed(line)
        if record is None:
            return ChainBreak(number, "", "", "not a JSON record")
        time, what = str(record.get("time", "")), str(record.get("what", ""))
        if not time or what not in KINDS:
            problem = f"no time or an unknown kind ({what!r})"
            return ChainBreak(number, time, what, problem)
        if record.get("prev") != expected:
            if number == 1:
                problem = f"prev is not {GENESIS[:8]}… (the first record's)"
            else:
                problem = (
                    f"prev is not the SHA-256 of line {number - 1}: line {number - 1} "
                    f"was edited, a line was inserted or removed there, or this prev was"
                )
            return ChainBreak(number, time, what, problem)
        expected = line_sha256(line)
    return None


def replay(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The inputs of the last audited run: the input records replayed in order.

    Returns
    -------
    dict
        ``item`` → ``{"path": …, "sha256": …}``; an ``input_removed`` drops its item.
    """
    state: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("what") not in INPUT_KINDS:
            continue
        item = str(record["item"])
        if record["what"] == "input_removed":
            state.pop(item, None)
        else:
            state[item] = {"path": record.get("path"), "sha256": record.get("new")}
    return state


def input_state(
    summary_provenance: Mapping[str, Any],
    *,
    release_provenance: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """The inputs a run recorded: sheet, template, release spec and every FCS file.

    Parameters
    ----------
    summary_provenance : mapping
        ``summary.tsv.provenance.json`` (``inputs`` and ``fcs_inputs``).
    release_provenance : mapping, optional
        ``release.tsv.provenance.json`` (its ``release_spec`` input).

    Returns
    -------
    dict
        ``item`` → ``{"path": …, "sha256": …}``, items as in :func:`replay`; inputs
        under ``results/`` (tables a step made) are left out.
    """
    state: dict[str, dict[str, Any]] = {}
    for doc in (summary_provenance, release_provenance or {}):
        for name, entry in (doc.get("inputs") or {}).items():
            path = str((entry or {}).get("path") or "")
            if path and not path.startswith("results/"):
                state[str(name)] = {"path": path, "sha256": entry.get("sha256")}
    for sample, entry in (summary_provenance.get("fcs_inputs") or {}).items():
        state[f"fcs:{sample}"] = {"path": entry.get("fcs"), "sha256": entry.get("sha256")}
    return state


def input_changes(
    old: Mapping[str, Mapping[str, Any]],
    new: Mapping[str, Mapping[str, Any]],
    *,
    baseline: bool = False,
) -> list[dict[str, Any]]:
    """The input records that take a trail's state ``old`` to a run's inputs ``new``.

    Parameters
    ----------
    old, new : mapping
        ``item`` → ``{"path", "sha256"}`` (:func:`replay`, :func:`input_state`).
    baseline : bool
        The trail holds no input record yet: one ``baseline`` record per input.

    Returns
    -------
    list of dict
        ``what``, ``item``, ``path``, ``old``, ``new`` (sorted by item); no ``time``,
        ``by`` or ``prev`` yet. Empty when nothing changed.
    """
    out = []
    for item in sorted(set(old) | set(new)):
        before, after = old.get(item), new.get(item)
        if baseline:
            what = "baseline" if after is not None else None
        elif before is None:
            what = "input_added"
        elif after is None:
            what = "input_removed"
        elif (before.get("sha256"), before.get("path")) != (after.get("sha256"), after.get("path")):
            what = "input_changed"
        else:
            what = None
        if what:
            path = (after or before or {}).get("path")
            out.append(
                {
                    "what": what,
                    "item": item,
                    "path": path,
                    "old": None if baseline or before is None else before.get("sha256"),
                    "new": None if after is None else after.get("sha256"),
                }
            )
    return out


def _override_key(entry: Mapping[str, Any]) -> str:
    return f"{entry['sample']}/{entry['gate']}"


def _override_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What an override record keeps of an entry (not its derived ``covers``)."""
    return {k: entry.get(k) for k in ("set", "accept_flags", "reason", "by")}


def replay_overrides(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The reviewer entries of the last audited run: the override records replayed.

    Returns
    -------
    dict
        ``sample/gate`` → ``{"sample", "gate", "set", "accept_flags", "reason", "by"}``.
    """
    state: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("what") not in OVERRIDE_KINDS:
            continue
        key = _override_key(record)
        if record["what"] == "override_removed":
            state.pop(key, None)
        else:
            state[key] = {"sample": record["sample"], "gate": record["gate"], **record["new"]}
    return state


def override_changes(
    old: Mapping[str, Mapping[str, Any]],
    entries: Sequence[Mapping[str, Any]],
    *,
    runner: str,
) -> list[dict[str, Any]]:
    """The override records that take a trail's entries ``old`` to a run's ``entries``.

    Parameters
    ----------
    old : mapping
        :func:`replay_overrides` of the trail.
    entries : sequence of mapping
        The entries the run applied (:meth:`cikflow.review.Override.as_record`).
    runner : str
        Who ran the workflow: ``by`` of a removal.

    Returns
    -------
    list of dict
        ``what``, ``by``, ``sample``, ``gate``, ``old``, ``new``, ``reason`` (sorted by
        sample and gate); no ``time`` or ``prev`` yet. Empty when nothing changed.

    Examples
    --------
    >>> e = {"sample": "B01_d14", "gate": "cd3_cd56", "set": {"x": {"at": 2000}},
    ...      "accept_flags": [], "reason": "shallow", "by": "AB", "covers": []}
    >>> [(r["what"], r["by"], r["old"]) for r in override_changes({}, [e], runner="ops")]
    [('override_added', 'AB', None)]
    >>> state = replay_overrides([{**r, "what": r["what"]}
    ...                           for r in override_changes({}, [e], runner="ops")])
    >>> override_changes(state, [e], runner="ops")
    []
    >>> [(r["what"], r["by"], r["new"]) for r in override_changes(state, [], runner="ops")]
    [('override_removed', 'ops', None)]
    """
    new = {_override_key(e): e for e in entries}
    out = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        was = _override_fields(before) if before is not None else None
        now = _override_fields(after) if after is not None else None
        if was == now:
            continue
        what = (
            "override_added"
            if was is None
            else "override_removed"
            if now is None
            else "override_changed"
        )
        entry = after if after is not None else before
        out.append(
            {
                "what": what,
                "by": str(now["by"]) if now is not None else runner,
                "sample": entry["sample"],
                "gate": entry["gate"],
                "old": was,
                "new": now,
                "reason": str(now["reason"]) if now is not None else "",
            }
        )
    return out


def report_digest(html: str) -> str:
    """SHA-256 of a batch report with its signature block emptied.

    Signing rewrites the block (:data:`SIGNATURE_BEGIN` … :data:`SIGNATURE_END`), so
    the digest of what was signed stays the same as signatures are added.
    """
    return hashlib.sha256(
        _BLOCK.sub(SIGNATURE_BEGIN + SIGNATURE_END, html).encode("utf-8")
    ).hexdigest()


def signature_record(
    by: str,
    *,
    meaning: str,
    time: str,
    release_sha256: str,
    report_sha256: str,
    batch: str | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """A ``signature`` record (not yet chained).

    Raises
    ------
    AuditError
        ``meaning`` is not one of :data:`MEANINGS`, or ``by`` is empty.
    """
    if meaning not in MEANINGS:
        raise AuditError(f"signature meaning {meaning!r} is not one of {', '.join(MEANINGS)}")
    if not by.strip():
        raise AuditError("a signature needs a name (--by)")
    return {
        "time": time,
        "by": by,
        "what": "signature",
        "meaning": meaning,
        "batch": batch or "all",
        "release_sha256": release_sha256,
        "report_sha256": report_sha256,
        "reason": reason,
    }


@dataclass(frozen=True)
class SignatureCheck:
    """One signature against the files as they are now.

    Attributes
    ----------
    line : int
        The signature's line in the trail.
    record : dict
        The signature record.
    changed : tuple of str
        The signed files whose SHA-256 differs now (``release.tsv``, ``report/index.html``).
    superseded : bool
        A later signature has the same meaning and batch.
    """

    line: int
    record: dict[str, Any]
    changed: tuple[str, ...]
    superseded: bool

    @property
    def matches(self) -> bool:
        """No signed file changed."""
        return not self.changed


def check_signatures(
    records: Sequence[Mapping[str, Any]],
    *,
    release_sha256: str | None,
    report_sha256: str | None = None,
) -> list[SignatureCheck]:
    """Every signature of a trail against the current ``release.tsv`` (and report).

    Parameters
    ----------
    records : sequence of mapping
        The trail's records (:func:`parse_trail`), in order.
    release_sha256 : str or None
        SHA-256 of ``release.tsv`` now (None: it is gone).
    report_sha256 : str or None
        :func:`report_digest` of ``report/index.html`` now; None: not compared (the
        batch report, rendered anew by a rerun, checks the release table only).

    Returns
    -------
    list of SignatureCheck
        In trail order.
    """
    signed = [(n, dict(r)) for n, r in enumerate(records, start=1) if r.get("what") == "signature"]
    out = []
    for i, (number, record) in enumerate(signed):
        changed = []
        if record.get("release_sha256") != release_sha256:
            changed.append("release.tsv")
        if report_sha256 is not None and record.get("report_sha256") != report_sha256:
            changed.append("report/index.html")
        key = (record.get("meaning"), record.get("batch"))
        later = any((r.get("meaning"), r.get("batch")) == key for _, r in signed[i + 1 :])
        out.append(SignatureCheck(number, record, tuple(changed), later))
    return out
