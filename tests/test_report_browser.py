"""The HTML reports opened in a real, offline Chromium (Debian's, driven by Playwright).

A small simulated batch plus one "payload" FCS file, whose header keywords and
sample-sheet label carry HTML/JS, is run through cikflow's public step functions
(``gate_file`` → ``summarize`` → ``sample_report`` → ``batch_report``) into a
temporary ``results/`` folder, as the Snakemake rules do. The pages are then
opened from ``file://`` and checked for console errors, requests leaving the
machine, unrendered plots, working links, and payloads that execute instead of
showing as text. A deliberately bad page checks that the detector itself fires.

The launch flags follow ``../shared/BROWSER.md`` (they keep Chromium from calling
out on its own). The whole module skips when ``/usr/bin/chromium`` or the
``playwright`` package is absent; a browser is never downloaded.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from cikflow.io import read_json, read_table, write_fcs, write_table
from cikflow.io.simulated import write_simulated
from cikflow.simulate import CHANNELS, simulate_batches
from cikflow.steps import batch_report, gate_file, sample_report, summarize

if TYPE_CHECKING:
    from collections.abc import Iterator

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(
        f"Chromium not installed at {CHROMIUM} (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (pip package) not installed"
)

#: measured in ../shared/BROWSER.md: with these the browser makes no request on its own;
#: never add --disable-features= (it replaces Playwright's own list)
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--gaia-url=http://127.0.0.1:1",
    "--component-updater=url-source=http://127.0.0.1:1/",
]
TIMEOUT_MS = 20_000
CONFIG = {"panel": {"aliases": {"Viability": ["7-AAD"]}}}
DAYS = (0, 21)
N_EVENTS = 3000

PAYLOAD = "payload"
PAYLOAD_BATCH = "P01"
FIL_PAYLOAD = "<script>window.__xss=1</script>.fcs"
SMNO_PAYLOAD = '<img src=x onerror="window.__xss=2">'
LABEL_PAYLOAD = '<script>window.__xss=3</script><img src=x onerror="window.__xss=4">'
CYT_PAYLOAD = '<img src=x onerror="window.__xss=5">'
#: FSC-A's $PnS label (no marker is gated on it), shown in the batch report's annex
PNS_PAYLOAD = "<script>window.__xss=6</script>"

#: true once every plotly graph div on the page holds its SVG
_PLOTS_DRAWN = """() => [...document.querySelectorAll('.plotly-graph-div')]
    .every(d => d.querySelector('.plotly .main-svg'))"""
#: per graph div: its plotly SVGs, its traces, and the trace groups drawn in its plot area
#: (heatmap ``g.hm``, scatter and bar ``g.trace``, each in a ``.mlayer``)
_PLOT_STATS = """() => [...document.querySelectorAll('.plotly-graph-div')].map(d => ({
    id: d.id,
    svgs: d.querySelectorAll('.plotly .main-svg').length,
    traces: (d.data || []).length,
    drawn: d.querySelectorAll('.main-svg .cartesianlayer .mlayer > *').length,
}))"""


@dataclass
class Report:
    """The report folder built once for the module."""

    root: Path
    results: Path
    index: Path
    samples: dict[str, Path]
    plots: dict[str, list[dict[str, Any]]]
    batches: list[str]


@dataclass
class PageRun:
    """An open page and what the detector recorded while it loaded and ran."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, repo_dir: Path) -> Report:
    """Simulate, gate, summarize and report a small batch plus the payload file."""
    root = tmp_path_factory.mktemp("browser_report")
    data, results = root / "data", root / "results"
    template = repo_dir / "config" / "gating" / "cik_default.yaml"

    batches = simulate_batches(n_batches=1, days=DAYS, n_events=N_EVENTS, seed=7)
    write_simulated(batches, data)
    rows: list[dict[str, Any]] = [
        {**s.sheet, "fcs": str(data / str(s.sheet["fcs"]))} for s in batches[0].samples
    ]
    tube = batches[0].samples[0]
    payload_fcs = data / f"{PAYLOAD}.fcs"
    write_fcs(
        payload_fcs,
        tube.events,
        pnn=[c[0] for c in CHANNELS],
        pns=[PNS_PAYLOAD if c[0] == "FSC-A" else c[1] for c in CHANNELS],
        keywords={
            **tube.keywords,
            "$FIL": FIL_PAYLOAD,
            "$SMNO": SMNO_PAYLOAD,
            "$CYT": CYT_PAYLOAD,
        },
    )
    # a batch of its own, so that the batch report draws two figures
    rows.append(
        {
            **tube.sheet,
            "sample": PAYLOAD,
            "batch": PAYLOAD_BATCH,
            "fcs": str(payload_fcs),
            "label": LABEL_PAYLOAD,
        }
    )
    sheet = data / "samples.tsv"
    write_table(pd.DataFrame(rows), sheet)

    sample_dirs = []
    for row in rows:
        out = results / "samples" / row["sample"]
        status = gate_file(row["fcs"], template_path=template, out_dir=out, row=row, config=CONFIG)
        assert status["status"] == "ok", status
        sample_dirs.append(out)
    summarize(sample_dirs, out_dir=results, sheet_path=sheet, template_path=template, config=CONFIG)
    html_dir = results / "report"
    samples = {}
    for d in sample_dirs:
        samples[d.name] = html_dir / "samples" / f"{d.name}.html"
        sample_report(d, out_path=samples[d.name])
    index = html_dir / "index.html"
    batch_report(results, sample_dirs=sample_dirs, out_path=index)
    return Report(
        root=root,
        results=results,
        index=index,
        samples=samples,
        plots={d.name: read_json(d / "plots.json")["gates"] for d in sample_dirs},
        batches=sorted(read_table(results / "summary.tsv")["batch"].astype(str).unique()),
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, launched once for the module."""
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def open_page(browser: Any, path: Path) -> Iterator[PageRun]:
    """Open ``path`` from ``file://`` in a fresh context and wait for its plots.

    Records console errors and uncaught exceptions, and records and aborts every
    request whose URL is not ``file://``.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    run = PageRun(page=page)

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            run.outside_requests.append(r.request.url)
            r.abort()

    def console(msg: Any) -> None:
        if msg.type == "error":
            run.console_errors.append(f"console: {msg.text}")

    context.route("**/*", route)
    page.on("console", console)
    page.on("pageerror", lambda exc: run.console_errors.append(f"pageerror: {exc}"))
    try:
        page.goto(path.resolve().as_uri(), wait_until="load")
        page.wait_for_function(_PLOTS_DRAWN)
        yield run
    finally:
        context.close()


def _assert_clean(run: PageRun) -> None:
    assert run.console_errors == []
    assert run.outside_requests == []


def _assert_plots(run: PageRun, expected: int) -> None:
    stats = run.page.evaluate(_PLOT_STATS)
    assert len(stats) == expected, stats
    for s in stats:
        assert s["svgs"] > 0, s
        assert s["traces"] > 0, s
        assert s["drawn"] >= s["traces"], s


def _assert_no_payload_ran(run: PageRun) -> None:
    assert run.page.evaluate("() => typeof window.__xss") == "undefined"
    # an <img src=x onerror=…> parsed as HTML would be in the DOM even before its error fires
    assert run.page.locator('img[src="x"]').count() == 0


def test_batch_report_loads_offline_with_all_plots(browser: Any, report: Report) -> None:
    assert report.batches == ["B01", PAYLOAD_BATCH]
    with open_page(browser, report.index) as run:
        _assert_plots(run, len(report.batches))
        assert run.page.locator("a.sample-link").count() == len(report.samples)
        _assert_clean(run)


@pytest.mark.parametrize("sample", ["B01_d21", PAYLOAD])
def test_sample_report_loads_offline_with_all_plots(
    browser: Any, report: Report, sample: str
) -> None:
    assert report.plots[sample], "the sample should have drawable gates"
    with open_page(browser, report.samples[sample]) as run:
        # the acquisition view, the gates, then the cluster map
        _assert_plots(run, len(report.plots[sample]) + 2)
        assert run.page.locator("#acquisition .plotly .main-svg").count() > 0
        _assert_clean(run)


def test_gate_table_shows_each_population_interval(browser: Any, report: Report) -> None:
    populations = pd.read_csv(report.results / "samples" / "B01_d21" / "populations.tsv", sep="\t")
    cik = populations[(populations["gate"] == "CIK") & (populations["method"] == "gate")].iloc[0]
    with open_page(browser, report.samples["B01_d21"]) as run:
        rows = run.page.locator("#gate-table tr").all_inner_texts()
        assert rows[0].split("\t")[-1] == "interval (% of base)"
        cells = next(r for r in rows if r.startswith("CIK\t")).split("\t")
        low, high = cik["percent_of_base_low"], cik["percent_of_base_high"]
        assert cells[-1] == f"{low:.2f} – {high:.2f}"
        assert low <= float(cells[-2]) <= high
        _assert_clean(run)


def test_sample_link_and_back_link(browser: Any, report: Report) -> None:
    with open_page(browser, report.index) as run:
        page = run.page
        page.locator("a.sample-link", has_text="B01_d00").click()
        page.wait_for_url(report.samples["B01_d00"].resolve().as_uri())
        page.wait_for_function(_PLOTS_DRAWN)
        assert page.locator("h1").inner_text() == "Sample B01_d00"
        page.locator("#back-to-batch").click()
        page.wait_for_url(report.index.resolve().as_uri())
        assert page.locator("h1").inner_text().endswith("batch report")
        _assert_clean(run)


def test_payload_shown_literally_in_batch_report(browser: Any, report: Report) -> None:
    with open_page(browser, report.index) as run:
        _assert_no_payload_ran(run)
        row = run.page.locator("#samples tr", has=run.page.locator("a", has_text=PAYLOAD))
        assert LABEL_PAYLOAD in row.inner_text()
        assert "<script>window.__xss=3</script>" in run.page.evaluate(
            "() => document.body.innerText"
        )
        # the MIFlowCyt annex names the payload file's instrument and $PnS as text
        assert CYT_PAYLOAD in run.page.locator("#miflowcyt-instrument").inner_text()
        panels = run.page.locator("#miflowcyt p.panel-samples").all_inner_texts()
        assert panels[-1].endswith(f"1 sample(s): {PAYLOAD}")
        channels = run.page.locator("#miflowcyt table.miflowcyt-channels").last.inner_text()
        assert f"FSC-A\t{PNS_PAYLOAD}" in channels
        _assert_clean(run)


def test_payload_shown_literally_in_sample_report(browser: Any, report: Report) -> None:
    with open_page(browser, report.samples[PAYLOAD]) as run:
        _assert_no_payload_ran(run)
        assert run.page.locator("h1").inner_text() == f"Sample {PAYLOAD} — {LABEL_PAYLOAD}"
        header = run.page.locator("#header").inner_text()
        assert f"{FIL_PAYLOAD} / {SMNO_PAYLOAD}" in header
        _assert_clean(run)


def test_detector_fires_on_bad_page(browser: Any, report: Report) -> None:
    bad = report.root / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>bad</title>\n"
        "<script>window.__xss=9</script>\n"
        '<script>console.error("boom")</script>\n'
        '<script src="https://cdn.plot.ly/plotly-2.0.0.min.js"></script>\n'
        '<script>throw new Error("kaboom")</script>\n'
        "</head><body><h1>bad</h1></body></html>\n"
    )
    with open_page(browser, bad) as run:
        assert run.page.evaluate("() => window.__xss") == 9
        assert "console: boom" in run.console_errors
        assert any("kaboom" in e for e in run.console_errors if e.startswith("pageerror:"))
        assert run.outside_requests == ["https://cdn.plot.ly/plotly-2.0.0.min.js"]


def test_screenshots(browser: Any, report: Report) -> None:
    """Full-page PNGs of the batch and payload reports.

    Written into ``$CIKFLOW_SCREENSHOTS`` when set (e.g. ``results/report/screenshots``,
    for the closing note), else beside the temporary report.
    """
    out = Path(os.environ.get("CIKFLOW_SCREENSHOTS") or report.root)
    out.mkdir(parents=True, exist_ok=True)
    for name, path in (("index", report.index), (PAYLOAD, report.samples[PAYLOAD])):
        png = out / f"{name}.png"
        with open_page(browser, path) as run:
            run.page.screenshot(path=str(png), full_page=True)
            _assert_clean(run)
        assert png.is_file()
        assert png.stat().st_size > 10_000, f"{png}: {png.stat().st_size} bytes"


def test_standalone_sample_report_works_away_from_its_folder(
    browser: Any, report: Report, tmp_path: Path
) -> None:
    """report.standalone: plotly.js inlined; the page alone in a folder draws every plot."""
    lonely = tmp_path / "mailed" / "B01_d21.html"
    sample_report(report.results / "samples" / "B01_d21", out_path=lonely, standalone=True)
    assert sorted(p.name for p in lonely.parent.iterdir()) == ["B01_d21.html"]
    with open_page(browser, lonely) as run:
        _assert_plots(run, len(report.plots["B01_d21"]) + 2)
        assert run.page.locator("#plotly-missing").count() == 0
        _assert_clean(run)


def test_sample_report_away_from_plotly_says_why_its_plots_are_blank(
    browser: Any, report: Report, tmp_path: Path
) -> None:
    lonely = tmp_path / "filed" / "B01_d21.html"
    lonely.parent.mkdir()
    lonely.write_bytes(report.samples["B01_d21"].read_bytes())
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(lonely.resolve().as_uri(), wait_until="load")
        message = page.locator("#plotly-missing")
        assert message.is_visible()
        assert "report.standalone: true" in message.inner_text()
    finally:
        context.close()
    # in its own folder the same page draws its plots and shows no such message
    with open_page(browser, report.samples["B01_d21"]) as run:
        assert run.page.locator("#plotly-missing").count() == 0
