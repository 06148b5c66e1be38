"""Tamper check: recompute the SHA-256 of every input a results folder records.

Every table cikflow writes has a provenance record (``*.provenance.json`` sidecars, the
``provenance`` of each ``status.json``) listing its inputs with their SHA-256 at the time
the table was made: the sample sheet, the gating template, the release specification
(``inputs``) and every FCS file (``fcs_inputs`` of ``summary.tsv``, ``inputs.fcs`` of each
sample). :func:`verify_results` hashes each listed file again and says which changed.
:func:`verify_audit` checks the audit trail (``audit.jsonl``): its hash chain and every
signature against the signed files as they are now.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cikflow.io import file_sha256, read_json

if TYPE_CHECKING:
    from cikflow.audit import ChainBreak, SignatureCheck

__all__ = [
    "VERIFY_COLUMNS",
    "AuditCheck",
    "remove_stale",
    "stale_samples",
    "verify_audit",
    "verify_results",
]

VERIFY_COLUMNS = ["path", "status", "recorded_sha256", "current_sha256", "records"]


def _records(doc: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(path, recorded sha256) pairs of one provenance record."""
    out = [
        (str(item["path"]), item.get("sha256"))
        for item in (doc.get("inputs") or {}).values()
        if isinstance(item, dict) and item.get("path")
    ]
    out += [
        (str(item["fcs"]), item.get("sha256"))
        for item in (doc.get("fcs_inputs") or {}).values()
        if isinstance(item, dict) and item.get("fcs")
    ]
    return out


def _run_samples(results: Path) -> set[str] | None:
    """Samples of the last run (``summary.tsv`` and ``failed.tsv``), or None before one."""
    from cikflow.io import read_table

    if not (results / "summary.tsv").is_file():
        return None
    names = set(read_table(results / "summary.tsv")["sample"].astype(str))
    if (results / "failed.tsv").is_file():
        names |= set(read_table(results / "failed.tsv")["sample"].astype(str))
    return names


def stale_samples(results_dir: str | Path) -> list[str]:
    """Samples with results (a ``samples/<sample>`` folder or a report) not in the last run.

    They are left over from a sample sheet that has since dropped them: the batch outputs
    and :func:`verify_results` ignore them; :func:`remove_stale` deletes them.
    """
    results = Path(results_dir)
    current = _run_samples(results)
    if current is None:
        return []
    found = {p.name for p in (results / "samples").glob("*") if p.is_dir()}
    found |= {p.stem for p in (results / "report" / "samples").glob("*.html")}
    return sorted(found - current)


def remove_stale(results_dir: str | Path) -> list[Path]:
    """Delete the results of :func:`stale_samples`; return the paths removed."""
    import shutil

    results = Path(results_dir)
    removed = []
    for sample in stale_samples(results):
        for path in (
            results / "samples" / sample,
            results / "report" / "samples" / f"{sample}.html",
        ):
            if path.is_dir():
                shutil.rmtree(path)
                removed.append(path)
            elif path.is_file():
                path.unlink()
                removed.append(path)
    return removed


def verify_results(results_dir: str | Path, *, base_dir: str | Path | None = None) -> pd.DataFrame:
    """Check every recorded input of a results folder against the file as it is now.

    Parameters
    ----------
    results_dir : str or pathlib.Path
        A results folder (``results/``), searched recursively for ``*.provenance.json``
        and ``status.json``.
    base_dir : str or pathlib.Path, optional
        Folder that relative input paths are relative to; default the results folder's
        parent (the workflow's working directory).

    Returns
    -------
    pandas.DataFrame
        One row per input path, columns :data:`VERIFY_COLUMNS`. ``status``: ``ok``
        (same SHA-256), ``changed`` (different), ``missing`` (recorded with a hash,
        gone now), ``appeared`` (absent when the results were made, present now),
        ``absent`` (absent then and now), ``inconsistent`` (records disagree with each
        other: the results were made from different versions of the file). A record
        without a hash (a step that could not read the file) is compared with none.
        ``records`` counts the provenance records that list the path. Results of
        :func:`stale_samples` are not read.
    """
    results = Path(results_dir)
    base = Path(base_dir) if base_dir is not None else results.resolve().parent
    recorded: dict[str, set[str | None]] = {}
    counts: dict[str, int] = {}
    stale = {results / "samples" / s for s in stale_samples(results)}
    sources = sorted(results.rglob("*.provenance.json")) + sorted(results.rglob("status.json"))
    for source in sources:
        if source.parent in stale:
            continue
        doc = read_json(source)
        doc = doc.get("provenance", doc) if source.name == "status.json" else doc
        for path, sha in _records(doc):
            recorded.setdefault(path, set()).add(sha)
            counts[path] = counts.get(path, 0) + 1
    rows = []
    for path in sorted(recorded):
        hashes = recorded[path]
        file = Path(path) if Path(path).is_absolute() else base / path
        current = file_sha256(file) if file.is_file() else None
        known = sorted(h for h in hashes if h)  # None: that step did not hash the file
        if len(known) > 1:
            status = "inconsistent"
        elif not known:
            status = "appeared" if current else "absent"
        elif current is None:
            status = "missing"
        else:
            status = "ok" if current == known[0] else "changed"
        rows.append(
            {
                "path": path,
                "status": status,
                "recorded_sha256": ",".join(known) if known else None,
                "current_sha256": current,
                "records": counts[path],
            }
        )
    return pd.DataFrame(rows, columns=VERIFY_COLUMNS)


@dataclass(frozen=True)
class AuditCheck:
    """The audit trail of a results folder checked (:func:`verify_audit`).

    Attributes
    ----------
    records : int
        Lines in the trail (0: none yet).
    broken : ChainBreak or None
        The first record at which the chain breaks.
    signatures : list of SignatureCheck
        Every signature against ``release.tsv`` and ``report/index.html`` as they are now
        (empty when the chain is broken).
    """

    records: int
    broken: ChainBreak | None
    signatures: list[SignatureCheck]

    @property
    def ok(self) -> bool:
        """The chain holds and every signature not signed again later still matches."""
        return self.broken is None and all(s.matches for s in self.signatures if not s.superseded)


def verify_audit(results_dir: str | Path) -> AuditCheck:
    """Check a results folder's ``audit.jsonl``: its hash chain, then its signatures.

    The chain: every line is a record and every ``prev`` is the SHA-256 of the line
    before (:func:`cikflow.audit.check_chain`). Each signature: the SHA-256 of
    ``release.tsv`` and the digest of ``report/index.html`` without its signature block
    (:func:`cikflow.audit.report_digest`) against those it recorded.

    Parameters
    ----------
    results_dir : str or pathlib.Path
        The results folder.

    Returns
    -------
    AuditCheck
        What holds and what does not.
    """
    from cikflow.audit import check_chain, check_signatures, parse_trail, report_digest
    from cikflow.io.audit import read_lines

    results = Path(results_dir)
    lines = read_lines(results / "audit.jsonl")
    broken = check_chain(lines)
    if broken is not None:
        return AuditCheck(len(lines), broken, [])
    release, report = results / "release.tsv", results / "report" / "index.html"
    checks = check_signatures(
        parse_trail(lines),
        release_sha256=file_sha256(release) if release.is_file() else None,
        report_sha256=report_digest(report.read_text(encoding="utf-8"))
        if report.is_file()
        else "",  # gone: matches no signature
    )
    return AuditCheck(len(lines), None, checks)
