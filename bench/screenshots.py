"""Screenshots of the batch report and sample reports of an existing results folder.

    .venv/bin/python bench/screenshots.py                      # results/, first sample
    .venv/bin/python bench/screenshots.py --results .test/results --sample B01_d21

Opens ``<results>/report/index.html`` and each chosen sample report from ``file://`` in
Debian's headless Chromium (driven by the ``playwright`` pip package, launch flags of
``../shared/BROWSER.md``; never ``playwright install``), waits until every plotly graph
has drawn its SVG, and saves full-page PNGs as
``<results>/report/screenshots/{index,<sample>}.png``. Any request that is not
``file://`` is aborted and reported, as are console errors; either makes the exit
status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
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
PLOTS_DRAWN = """() => [...document.querySelectorAll('.plotly-graph-div')]
    .every(d => d.querySelector('.plotly .main-svg'))"""


def shoot(browser: Any, page_path: Path, png: Path) -> list[str]:
    """Save a full-page screenshot of ``page_path``; return the problems seen."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    problems: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith("file://"):
            r.continue_()
        else:
            problems.append(f"outside request: {url}")
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on(
        "console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    try:
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        page.wait_for_function(PLOTS_DRAWN)
        png.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(png), full_page=True)
    finally:
        context.close()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder")
    parser.add_argument(
        "--sample", action="append", default=[], help="sample report(s) to shoot (default: first)"
    )
    parser.add_argument("--chromium", default=CHROMIUM, help="Chromium executable")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    report = args.results / "report"
    index = report / "index.html"
    if not index.is_file():
        print(f"{index}: no batch report; run the workflow first", file=sys.stderr)
        return 2
    if not args.sample:  # the run's first sample, never a stale one left by an older sheet
        from cikflow.io import read_table

        first = read_table(args.results / "summary.tsv")["sample"].astype(str).iloc[:1]
    samples = args.sample or list(first)
    pages = [("index", index)] + [(s, report / "samples" / f"{s}.html") for s in samples]
    out = report / "screenshots"
    status = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=LAUNCH_ARGS)
        try:
            for name, path in pages:
                if not path.is_file():
                    print(f"{path}: no such report", file=sys.stderr)
                    status = 1
                    continue
                png = out / f"{name}.png"
                problems = shoot(browser, path, png)
                print(f"{png}  {png.stat().st_size:,} bytes")
                for problem in problems:
                    print(f"  {problem}", file=sys.stderr)
                    status = 1
        finally:
            browser.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
