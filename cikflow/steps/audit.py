"""The audit trail's steps: a run's changes, a signature, the report's signature block.

Each reads the trail and the results through :mod:`cikflow.io`, calls
:mod:`cikflow.audit` and appends through :mod:`cikflow.io.audit`.
"""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path
from typing import Any

from cikflow.audit import (
    INPUT_KINDS,
    chain_lines,
    check_chain,
    check_signatures,
    input_changes,
    input_state,
    override_changes,
    parse_trail,
    replay,
    replay_overrides,
    report_digest,
    signature_record,
    utc_stamp,
)
from cikflow.exceptions import AuditError

__all__ = ["AUDIT_NAME", "audit_run", "default_author", "report_signatures", "sign_results"]

#: the trail's name in a results folder
AUDIT_NAME = "audit.jsonl"


def default_author() -> str:
    """The operating-system user name (``unknown`` where there is none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user entry (some containers)
        return "unknown"


def _trail(results: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The trail's lines and records; a broken chain is an error naming the record."""
    from cikflow.io.audit import read_lines

    path = results / AUDIT_NAME
    lines = read_lines(path)
    broken = check_chain(lines)
    if broken is not None:
        raise AuditError(f"{path}: {broken}")
    return lines, parse_trail(lines, source=str(path))


def audit_run(
    results_dir: str | Path,
    *,
    by: str | None = None,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Append one record per input the run changed (a ``baseline`` per input at first).

    The run's inputs are those its provenance records list (``summary.tsv`` and
    ``release.tsv`` sidecars: sheet, template, release spec, every FCS file); the
    trail's are its input records replayed (:func:`cikflow.audit.replay`). Then one
    record per reviewer entry added, changed or removed since the trail's last
    (the ``summary.tsv`` sidecar's ``review``; :func:`cikflow.audit.override_changes`).

    Parameters
    ----------
    results_dir : str or pathlib.Path
        The results folder (``results/``).
    by : str, optional
        Who ran it; default :func:`default_author`.
    now : datetime.datetime, optional
        The records' time; default now.

    Returns
    -------
    list of dict
        The records appended (none when nothing changed, or before a summary exists).

    Raises
    ------
    AuditError
        The trail's chain is broken (nothing is appended).
    """
    from cikflow.io import read_json, sidecar_path
    from cikflow.io.audit import append_lines

    results = Path(results_dir)
    summary = sidecar_path(results / "summary.tsv")
    if not summary.is_file():
        return []
    release = sidecar_path(results / "release.tsv")
    current = input_state(
        read_json(summary), release_provenance=read_json(release) if release.is_file() else None
    )
    lines, records = _trail(results)
    first = not any(r.get("what") in INPUT_KINDS for r in records)
    changes = input_changes(replay(records), current, baseline=first)
    stamp = utc_stamp(now or dt.datetime.now(dt.UTC))
    author = by or default_author()
    new = [{"time": stamp, "by": author, **c, "reason": ""} for c in changes]
    entries = read_json(summary).get("review") or []
    new += [
        {"time": stamp, **c}
        for c in override_changes(replay_overrides(records), entries, runner=author)
    ]
    append_lines(results / AUDIT_NAME, chain_lines(new, last_line=lines[-1] if lines else None))
    return new


def _signed_files(results: Path) -> tuple[str | None, str | None]:
    """SHA-256 of ``release.tsv`` and :func:`~cikflow.audit.report_digest` of the report."""
    from cikflow.io import file_sha256

    release = results / "release.tsv"
    report = results / "report" / "index.html"
    return (
        file_sha256(release) if release.is_file() else None,
        report_digest(report.read_text(encoding="utf-8")) if report.is_file() else None,
    )


def sign_results(
    results_dir: str | Path,
    *,
    by: str,
    meaning: str,
    batch: str | None = None,
    reason: str = "",
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Sign a results folder's release: append a ``signature`` record, update the report.

    The record holds the SHA-256 of ``release.tsv`` and the digest of
    ``report/index.html`` without its signature block; the report's signature block
    is then rendered anew from the trail (the PDF is reprinted by the next run).

    Parameters
    ----------
    results_dir : str or pathlib.Path
        The results folder, with ``release.tsv`` and ``report/index.html``.
    by : str
        The signer's name.
    meaning : str
        ``reviewed`` or ``approved``.
    batch : str, optional
        The batch signed for; default all (``all``).
    reason : str
        A comment recorded with the signature.
    now : datetime.datetime, optional
        The signature's time; default now.

    Returns
    -------
    dict
        The record appended.

    Raises
    ------
    AuditError
        A bad meaning or empty name, no release table or report, a batch the release
        table does not hold, or a broken trail.
    """
    from cikflow.io import read_table
    from cikflow.io.audit import append_lines, replace_text
    from cikflow.report.signatures import with_signature_block

    results = Path(results_dir)
    release_sha, report_sha = _signed_files(results)
    if release_sha is None or report_sha is None:
        raise AuditError(
            f"{results}: nothing to sign: release.tsv and report/index.html are made by a run"
        )
    if batch is not None:
        batches = set(read_table(results / "release.tsv")["batch"].astype(str))
        if batch not in batches:
            raise AuditError(f"{results}/release.tsv: no batch {batch!r} ({sorted(batches)})")
    stamp = utc_stamp(now or dt.datetime.now(dt.UTC))
    record = signature_record(
        by,
        meaning=meaning,
        time=stamp,
        release_sha256=release_sha,
        report_sha256=report_sha,
        batch=batch,
        reason=reason,
    )
    lines, _ = _trail(results)
    last = lines[-1] if lines else None
    append_lines(results / AUDIT_NAME, chain_lines([record], last_line=last))
    report = results / "report" / "index.html"
    html = report.read_text(encoding="utf-8")
    block = report_signatures(results, as_of=stamp)
    replace_text(report, with_signature_block(html, block, source=str(report)))
    return record


def report_signatures(
    results_dir: str | Path, *, as_of: str, release_path: str | Path | None = None
) -> str:
    """The report's signature block: the trail's signatures against ``release.tsv`` now.

    Parameters
    ----------
    results_dir : str or pathlib.Path
        The results folder holding ``audit.jsonl``.
    as_of : str
        The time stated in the block (UTC, :func:`cikflow.audit.utc_stamp`).
    release_path : str or pathlib.Path, optional
        ``release.tsv``; default the results folder's.

    Returns
    -------
    str
        The block's HTML; a broken trail shows no signature, only where it breaks.
    """
    from html import escape

    from cikflow.audit import SIGNATURE_BEGIN, SIGNATURE_END
    from cikflow.io import file_sha256
    from cikflow.report.signatures import signature_block

    results = Path(results_dir)
    try:
        _, records = _trail(results)
    except AuditError as exc:
        return (
            f'{SIGNATURE_BEGIN}<div id="signatures"><h3>Signatures</h3>'
            f'<p class="bad">Not shown: {escape(str(exc))}</p></div>{SIGNATURE_END}'
        )
    release = Path(release_path) if release_path else results / "release.tsv"
    release_sha = file_sha256(release) if release.is_file() else None
    return signature_block(check_signatures(records, release_sha256=release_sha), as_of=as_of)
