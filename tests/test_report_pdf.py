"""The batch report printed to PDF by headless Chromium (rule ``batch_pdf``).

A two-tube batch is gated, summarized, given its release verdicts and reported into
a temporary ``results/`` folder, then ``index.html`` is printed with Debian's
Chromium and the PDF's text read back (pypdf): page numbers, analysis date and
version on every page, whole table rows, unbroken identifiers, the MIFlowCyt annex
and the sign-off block. Skips when ``/usr/bin/chromium`` is absent; the
missing-browser error is checked either way.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from steps_run import run_steps

from cikflow import __version__
from cikflow.io import read_json
from cikflow.report.pdf import ChromiumNotFoundError, PdfError, find_chromium, print_pdf

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason=f"Chromium not installed at {CHROMIUM}"
)


@pytest.fixture(scope="module")
def index_html(tmp_path_factory: pytest.TempPathFactory, repo_dir: Path) -> Path:
    return run_steps(tmp_path_factory.mktemp("pdf_report"), repo_dir=repo_dir, seed=3).index


@pytest.fixture(scope="module")
def pages(index_html: Path) -> list[str]:
    """The printed record's text, page by page."""
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    pypdf = pytest.importorskip("pypdf", reason="pypdf (test extra) not installed")
    pdf = print_pdf(index_html, index_html.with_name("record.pdf"), chromium=CHROMIUM)
    reader = pypdf.PdfReader(pdf)
    # A4 landscape (points)
    assert [round(float(x)) for x in reader.pages[0].mediabox[2:]] == [842, 595]
    return [p.extract_text() for p in reader.pages]


@needs_chromium
def test_batch_report_printed_to_pdf(index_html: Path) -> None:
    pdf = index_html.with_suffix(".pdf")
    assert print_pdf(index_html, pdf, chromium=CHROMIUM) == pdf.resolve()
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-"
    assert len(data) > 10_000, len(data)
    assert not pdf.with_name(pdf.name + ".partial").exists()


def _analysis_date(index_html: Path) -> str:
    """The analysis date the HTML record states."""
    return index_html.read_text().split('id="analysis-date">')[1].split("<")[0]


def test_every_page_is_numbered_dated_and_versioned(index_html: Path, pages: list[str]) -> None:
    date = _analysis_date(index_html)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", date), date
    n = len(pages)
    assert n >= 3
    for i, text in enumerate(pages, start=1):
        assert f"Page {i} of {n}" in text, (i, text[-300:])
        assert f"cikflow {__version__} · analysed {date}" in text, i
        assert "CIK culture QC — batch record" in text, i


def test_record_opens_with_its_facts_and_the_samples(index_html: Path, pages: list[str]) -> None:
    first = pages[0]
    status = read_json(index_html.parents[1] / "samples" / "B01_d00" / "status.json")
    template = status["provenance"]["template"]
    spec = read_json(index_html.parents[1] / "release.tsv.provenance.json")["release_spec"]
    assert f"analysis date {_analysis_date(index_html)}" in first
    assert f"software cikflow {__version__}" in first
    assert template["sha256"] in first
    assert spec["sha256"] in first
    text = "\n".join(pages)
    # the samples table comes right after the release certificate, before any batch section
    assert (
        text.index("Release certificate")
        < text.index("Samples\nsample")
        < text.index("Batch B01: populations")
    )


def test_rows_and_identifiers_are_never_split(index_html: Path, pages: list[str]) -> None:
    text = "\n".join(pages)
    # metric names print whole (a break inside one would leave it in two pieces)
    for metric in ("viability_percent", "CIK_percent_of_base", "CIK_cells_per_kg"):
        assert metric in text, metric
    # every sample's row (link, file, acquisition date, status) lies on one page, one line,
    # and so does its input file's row with the file's whole SHA-256
    for sample in ("B01_d00", "B01_d21"):
        sha = read_json(index_html.parents[1] / "samples" / sample / "status.json")["sha256"]
        row = re.compile(rf"{sample} B01 \d+ {sample}\.fcs \d\d-[A-Z]{{3}}-\d{{4}} ok review")
        lines = [line for page in pages for line in page.splitlines()]
        assert len([line for line in lines if row.match(line)]) == 1, sample
        inputs = [line for line in lines if line.startswith(f"{sample} ") and sha in line]
        assert len(inputs) == 1, (sample, inputs)
        assert inputs[0].endswith(f"{sample}.fcs {sha}")


def test_record_ends_with_the_annex_and_the_sign_off(pages: list[str]) -> None:
    text = "\n".join(pages)
    annex = text[text.index("Annex: MIFlowCyt") :]
    for part in (
        "1. Experiment overview",
        "2. Instrument",
        "3. Channels and reagents",
        "4. Data analysis",
    ):
        assert part in annex, part
    assert "instrument ($CYT) cikflow simulator (2)" in annex
    assert "PerCP-Cy5-5-A 7-AAD Viability logicle" in annex
    assert f"cikflow {__version__}; flowkit " in annex
    assert "Gating: template cik_default version 2" in annex
    last = pages[-1]
    assert "Review and approval" in last
    assert re.search(r"name signature date\s*\nReviewed by\s*\nApproved by", last), last[-400:]
    assert text.index("Annex: MIFlowCyt") < text.index("Review and approval")


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
