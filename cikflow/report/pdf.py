"""The batch report printed to PDF by headless Chromium, for the batch record.

Chromium is an outside program (Debian's ``chromium`` package): it is found as
``$CIKFLOW_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on ``PATH``, and a
missing browser is a :class:`ChromiumNotFoundError`, never a bare ``FileNotFoundError``.
The flags keep the browser from calling out on its own (``../shared/BROWSER.md``);
each run gets a throw-away profile, so parallel or cluster jobs never share one.

The page itself lays out the record (``templates/base.html.j2``): A4 landscape, and
"Page n of N", the version and the analysis date in CSS ``@page`` margin boxes,
which Chromium prints; ``--no-pdf-header-footer`` keeps its own header and footer
(the file's URL) off the page.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from cikflow.exceptions import CikflowError

__all__ = ["ChromiumNotFoundError", "PdfError", "find_chromium", "pdf_plan", "print_pdf"]

log = logging.getLogger(__name__)

#: flags of every print run: headless, offline, no first-run or update traffic
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
#: virtual time (ms) the page gets to run its scripts (plotly draws) before printing
VIRTUAL_TIME_BUDGET_MS = 10_000
#: a PDF smaller than this is taken as a failed print
MIN_PDF_BYTES = 1_000


class PdfError(CikflowError):
    """Chromium ran but did not write a PDF of the page."""

    code = "pdf_error"


class ChromiumNotFoundError(PdfError):
    """No Chromium executable to print with."""

    code = "chromium_not_found"


def find_chromium(chromium: str | os.PathLike[str] | None = None) -> Path:
    """Return the Chromium executable: ``chromium``, ``$CIKFLOW_CHROMIUM`` or one on ``PATH``."""
    candidates = [str(chromium)] if chromium else []
    if not candidates and os.environ.get("CIKFLOW_CHROMIUM"):
        candidates = [os.environ["CIKFLOW_CHROMIUM"]]
    if not candidates:
        candidates = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
    for c in candidates:
        found = shutil.which(c)
        if found:
            return Path(found)
    raise ChromiumNotFoundError(
        f"no Chromium executable ({' or '.join(candidates)}) to print the report to PDF: "
        "install Debian's `chromium` package (or Google Chrome) or set CIKFLOW_CHROMIUM"
    )


def pdf_plan(mode: str = "auto") -> tuple[Path | None, list[str]]:
    """Whether and with what the batch report is printed to PDF (``report.pdf``).

    Parameters
    ----------
    mode : {"auto", "always", "never"}
        ``auto``: with a browser when one is found, else none and a note saying so;
        ``always``: a browser or :class:`ChromiumNotFoundError`; ``never``: none.

    Returns
    -------
    browser : pathlib.Path or None
        The executable, or None when no PDF is to be made.
    notes : list of str
        Lines for the terminal and the batch report (why there is no PDF).

    Examples
    --------
    >>> pdf_plan("never")
    (None, [])
    """
    if mode == "never":
        return None, []
    try:
        return find_chromium(), []
    except ChromiumNotFoundError as exc:
        if mode == "always":
            raise ChromiumNotFoundError(f"{exc} (report.pdf: always)") from None
        return None, [
            "No PDF of the batch report was made: no Chromium or Chrome was found "
            "(report.pdf: auto); install Debian's chromium to get results/report/index.pdf."
        ]


def _is_pdf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(5) == b"%PDF-"


def print_pdf(
    html: str | os.PathLike[str],
    pdf: str | os.PathLike[str],
    *,
    chromium: str | os.PathLike[str] | None = None,
    timeout: float = 120.0,
) -> Path:
    """Print the page ``html`` (a local file) to ``pdf`` with headless Chromium.

    Returns the PDF path. Raises :class:`ChromiumNotFoundError` when no browser is
    found and :class:`PdfError` when the browser fails, times out or writes no PDF.
    """
    html_path, pdf_path = Path(html).resolve(), Path(pdf).resolve()
    if not html_path.is_file():
        raise PdfError(f"{html_path}: no such HTML file to print")
    exe = find_chromium(chromium)
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    partial = pdf_path.with_name(pdf_path.name + ".partial")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="cikflow-chromium-") as profile:
        cmd = [
            str(exe),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
            f"--print-to-pdf={partial}",
            "--no-pdf-header-footer",
            html_path.as_uri(),
        ]
        log.info("printing %s to %s with %s", html_path, pdf_path, exe)
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            partial.unlink(missing_ok=True)
            raise PdfError(f"{html_path}: Chromium did not print within {timeout:g} s") from exc
    size = partial.stat().st_size if partial.is_file() else 0
    if run.returncode != 0 or size < MIN_PDF_BYTES or not _is_pdf(partial):
        partial.unlink(missing_ok=True)
        tail = "\n".join(run.stderr.strip().splitlines()[-5:])
        raise PdfError(
            f"{html_path}: Chromium exited with status {run.returncode} and wrote "
            f"{size} bytes of PDF; its last messages:\n{tail}"
        )
    partial.replace(pdf_path)
    log.info("wrote %s (%d bytes)", pdf_path, size)
    return pdf_path
