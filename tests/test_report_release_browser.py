"""The batch report's release certificate and count figures in offline Chromium.

A small simulated culture goes through the public steps (gate, summarize with the
sample sheet, batch kinetics, release verdicts, batch report); the page must open
with no console error and no request leaving the machine, show the certificate
before the batch sections, and draw the absolute-count and fold-expansion figures
on log axes. Reuses the launcher of ``test_report_browser`` (skips the same way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from steps_run import run_steps
from test_report_browser import _assert_clean, browser, open_page

__all__ = ["browser"]  # test_report_browser's launcher, a fixture of this module too

#: per plot: its id, y-axis type and trace count
_AXES = """() => [...document.querySelectorAll('.plotly-graph-div')].map(d => ({
    id: d.id,
    yaxis: d.layout.yaxis.type || 'linear',
    traces: (d.data || []).length,
    drawn: d.querySelectorAll('.main-svg .cartesianlayer .mlayer > *').length,
    errorbars: d.querySelectorAll('.main-svg .errorbar').length,
    with_error_y: (d.data || []).filter(t => t.error_y && t.error_y.arrayminus).length,
}))"""


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, repo_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("release_report")
    return run_steps(root, repo_dir=repo_dir, seed=7, sample_reports=False).index


def test_certificate_first_and_count_figures_on_log_axes(browser: Any, index: Path) -> None:
    with open_page(browser, index) as run:
        page = run.page
        plots = {p["id"]: p for p in page.evaluate(_AXES)}
        assert set(plots) == {"batch-0", "batch-0-counts", "batch-0-fold"}
        assert plots["batch-0"]["yaxis"] == "linear"
        for name in ("batch-0-counts", "batch-0-fold"):
            assert plots[name]["yaxis"] == "log"
            assert plots[name]["traces"] == 7
            assert plots[name]["drawn"] >= plots[name]["traces"]
            # every population's count and fold carries its interval as an error bar
            assert plots[name]["with_error_y"] == 7
            assert plots[name]["errorbars"] >= 7
        assert plots["batch-0"]["with_error_y"] == plots["batch-0"]["traces"]
        headings = page.locator("h2").all_inner_texts()
        assert headings.index("Release certificate") < headings.index("Batch B01")
        rows = page.locator("table.release tr").all_inner_texts()
        assert len(rows) == 1 + 3
        dose = next(r for r in rows if r.startswith("dose_CIK"))
        assert "CIK_cells_per_kg" in dose
        assert "≥ 2.5e+06" in dose
        assert "cells/kg" in dose
        release = pd.read_csv(index.parent.parent / "release.tsv", sep="\t")
        dose_row = release.set_index("criterion").loc["dose_CIK"]
        header = page.locator("table.release tr").first.inner_text().split("\t")
        assert header == [
            "criterion",
            "metric",
            "value",
            "interval",
            "limit",
            "unit",
            "rule",
            "decision",
            "reason",
        ]
        cells = dose.split("\t")
        assert cells[3] == f"{dose_row['value_low']:.4g} – {dose_row['value_high']:.4g}"
        assert cells[6] == "guard-banded"
        assert cells[7] == dose_row["decision"]
        verdict = page.locator("h3.certificate").inner_text()
        assert verdict == f"Batch B01: {release['batch_decision'].iloc[0]}"
        assert page.locator("#harvest-B01").is_visible()
        _assert_clean(run)


#: computed print styles of the elements a record page must not break or cover
_PRINT_STYLE = """() => {
    const s = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
    return {
        modebars: [...document.querySelectorAll('.modebar-container')]
            .map(m => getComputedStyle(m).display),
        row: s('table.release tr', 'breakInside'),
        release_table: s('table.release', 'breakInside'),
        h2: s('h2', 'breakAfter'),
        code_space: s('table.release code', 'whiteSpace'),
        code_break: s('table.release code', 'wordBreak'),
        nav: s('#contents', 'display'),
        signoff: s('#signoff', 'breakInside'),
        annex: s('#miflowcyt', 'breakBefore'),
    };
}"""


def test_print_media_hides_toolbars_and_keeps_rows_and_headings(browser: Any, index: Path) -> None:
    with open_page(browser, index) as run:
        page = run.page
        screen = page.evaluate(_PRINT_STYLE)
        assert len(screen["modebars"]) == 3
        assert "none" not in screen["modebars"]
        assert screen["nav"] == "block"
        page.emulate_media(media="print")
        printed = page.evaluate(_PRINT_STYLE)
        assert printed["modebars"] == ["none"] * 3
        assert printed["nav"] == "none"
        assert printed["row"] == printed["release_table"] == printed["signoff"] == "avoid"
        assert printed["h2"] == "avoid"
        assert printed["annex"] == "page"
        # an identifier never breaks inside (no break-all, no wrapping)
        assert (printed["code_space"], printed["code_break"]) == ("nowrap", "normal")
        _assert_clean(run)


def test_samples_table_follows_the_certificate(browser: Any, index: Path) -> None:
    with open_page(browser, index) as run:
        page = run.page
        headings = page.locator("h2").all_inner_texts()
        assert headings[:3] == ["Release certificate", "Samples", "Batch B01"]
        assert headings[-2:] == ["Annex: MIFlowCyt", "Review and approval"]
        links = page.locator("#samples a.sample-link").all_inner_texts()
        assert links == ["B01_d00", "B01_d21"]
        assert page.locator("#contents a").all_inner_texts()[:3] == [
            "Release certificate",
            "Samples",
            "Batch B01",
        ]
        signoff = page.locator("table.signoff tr").all_inner_texts()
        assert [r.split("\t")[0] for r in signoff] == ["", "Reviewed by", "Approved by"]
        _assert_clean(run)
