"""The batch report printed to PDF by headless Chromium (rule ``batch_pdf``).

A one-tube batch is gated, summarized and reported into a temporary ``results/``
folder, then ``index.html`` is printed with Debian's Chromium. Skips when
``/usr/bin/chromium`` is absent; the missing-browser error is checked either way.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cikflow.io import write_table
from cikflow.io.simulated import write_simulated
from cikflow.report.pdf import ChromiumNotFoundError, PdfError, find_chromium, print_pdf
from cikflow.simulate import simulate_batches
from cikflow.steps import batch_report, gate_file, sample_report, summarize

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"Chromium not installed at {CHROMIUM}"
)
CONFIG = {"panel": {"aliases": {"Viability": ["7-AAD"]}}}


@pytest.fixture(scope="module")
def index_html(tmp_path_factory: pytest.TempPathFactory, repo_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("pdf_report")
    data, results = root / "data", root / "results"
    template = repo_dir / "config" / "gating" / "cik_default.yaml"
    batches = simulate_batches(n_batches=1, days=(0,), n_events=3000, seed=3)
    write_simulated(batches, data)
    rows = [{**s.sheet, "fcs": str(data / str(s.sheet["fcs"]))} for s in batches[0].samples]
    sheet = data / "samples.tsv"
    write_table(pd.DataFrame(rows), sheet)
    sample_dirs = []
    for row in rows:
        out = results / "samples" / row["sample"]
        gate_file(row["fcs"], template_path=template, out_dir=out, row=row, config=CONFIG)
        sample_report(out, out_path=results / "report" / "samples" / f"{row['sample']}.html")
        sample_dirs.append(out)
    summarize(sample_dirs, out_dir=results, sheet_path=sheet, template_path=template, config=CONFIG)
    index = results / "report" / "index.html"
    batch_report(results, sample_dirs=sample_dirs, out_path=index)
    return index


@needs_chromium
def test_batch_report_printed_to_pdf(index_html: Path) -> None:
    pdf = index_html.with_suffix(".pdf")
    assert print_pdf(index_html, pdf, chromium=CHROMIUM) == pdf.resolve()
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-"
    assert len(data) > 10_000, len(data)
    assert not pdf.with_name(pdf.name + ".partial").exists()


def test_missing_chromium_is_a_named_error(tmp_path: Path) -> None:
    html = tmp_path / "index.html"
    html.write_text("<!DOCTYPE html><title>x</title><p>x</p>")
    with pytest.raises(ChromiumNotFoundError, match="no Chromium executable"):
        print_pdf(html, tmp_path / "index.pdf", chromium=tmp_path / "no-such-chromium")
    assert not (tmp_path / "index.pdf").exists()


def test_missing_html_is_a_pdf_error(tmp_path: Path) -> None:
    with pytest.raises(PdfError, match="no such HTML file"):
        print_pdf(tmp_path / "absent.html", tmp_path / "index.pdf")


def test_google_chrome_is_found_when_chromium_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "google-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CIKFLOW_CHROMIUM", raising=False)
    assert find_chromium() == fake


def test_pdf_plan_follows_report_pdf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cikflow.report.pdf import pdf_plan

    monkeypatch.setenv("CIKFLOW_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert pdf_plan("never") == (None, [])
    browser, notes = pdf_plan("auto")
    assert browser is None
    assert notes == [
        "No PDF of the batch report was made: no Chromium or Chrome was found "
        "(report.pdf: auto); install Debian's chromium to get results/report/index.pdf."
    ]
    with pytest.raises(ChromiumNotFoundError, match=r"report\.pdf: always"):
        pdf_plan("always")
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CIKFLOW_CHROMIUM", str(fake))
    assert pdf_plan("always") == (fake, [])
