"""The batch report's signature block: the trail's signatures as HTML (pure).

The block lies between :data:`cikflow.audit.SIGNATURE_BEGIN` and
:data:`~cikflow.audit.SIGNATURE_END`; the report renders it, and ``cikflow sign``
replaces it after appending a signature (:func:`with_signature_block`).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from cikflow.audit import SIGNATURE_BEGIN, SIGNATURE_END
from cikflow.exceptions import AuditError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cikflow.audit import SignatureCheck

__all__ = ["signature_block", "with_signature_block"]


def _status(check: SignatureCheck) -> tuple[str, str]:
    """(CSS class, text) of a signature's status."""
    if check.changed:
        return "bad", f"no longer matches ({', '.join(check.changed)} changed since)"
    if check.superseded:
        return "", "matches; signed again later"
    return "ok", "matches release.tsv"


def signature_block(checks: Sequence[SignatureCheck], *, as_of: str) -> str:
    """The signature block of the batch report.

    Parameters
    ----------
    checks : sequence of SignatureCheck
        The trail's signatures against the current ``release.tsv``
        (:func:`cikflow.audit.check_signatures`).
    as_of : str
        When the trail was read (UTC), stated in the block.

    Returns
    -------
    str
        HTML, markers included.
    """
    head = (
        f'<div id="signatures"><h3>Signatures</h3><p class="legend">Signatures as of '
        f"{escape(as_of)}, from <code>audit.jsonl</code>; each compared with "
        "<code>release.tsv</code> as it was then. <code>cikflow verify results/</code> "
        "checks them against the files as they are now.</p>"
    )
    if not checks:
        body = (
            "<p>None yet: <code>cikflow sign results/ --by NAME --meaning "
            "reviewed|approved</code> signs this release.</p>"
        )
    else:
        rows = []
        for c in checks:
            css, text = _status(c)
            r = c.record
            cells = [r.get("meaning"), r.get("by"), r.get("batch"), r.get("time")]
            tds = "".join(f"<td>{escape(str(v or ''))}</td>" for v in cells)
            rows.append(f'<tr>{tds}<td class="{css}">{escape(text)}</td></tr>')
        body = (
            '<table class="signatures whole"><thead><tr><th>meaning</th><th>name</th>'
            "<th>batch</th><th>signed (UTC)</th><th>status</th></tr></thead>"
            + "".join(rows)
            + "</table>"
        )
    return f"{SIGNATURE_BEGIN}{head}{body}</div>{SIGNATURE_END}"


def with_signature_block(html: str, block: str, *, source: str = "index.html") -> str:
    """A report's HTML with its signature block replaced by ``block``.

    Raises
    ------
    AuditError
        The report has no signature block (made by an older cikflow: rerun the workflow).
    """
    start, end = html.find(SIGNATURE_BEGIN), html.find(SIGNATURE_END)
    if start < 0 or end < start:
        raise AuditError(
            f"{source}: no signature block (a report from an older cikflow): rerun the workflow"
        )
    return html[:start] + block + html[end + len(SIGNATURE_END) :]
