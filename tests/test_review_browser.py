"""Reviewer corrections and a signature, seen in offline Chromium.

A small simulated culture goes through the public steps with a reviewer's entries (one
sample's CD3 divider set, with a reason that carries HTML; another sample's flags
accepted), then is signed. The batch report must list the corrections with reason and
author and show the signature; the sample report must mark the set gate, draw the
fitted gate dashed beside it and list accepted flags apart from the open ones. Reuses
the launcher of ``test_report_browser`` (skips the same way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from steps_run import run_steps
from test_report_browser import _assert_clean, browser, open_page

from cikflow.steps.audit import audit_run, sign_results

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["browser"]  # test_report_browser's launcher, a fixture of this module too

REASON = "<b>CD3 shoulder</b> as on day 7"  # shown as text, never as markup
REVIEW = {
    "B01_d21": [
        {
            "sample": "B01_d21",
            "gate": "cd3_cd56",
            "set": {"x": {"at": 2000}},
            "accept_flags": [],
            "reason": REASON,
            "by": "AB",
            "covers": ["cd3_cd56", "T", "CIK", "NK", "CD3neg_CD56neg"],
        }
    ],
    "B01_d00": [
        {
            "sample": "B01_d00",
            "gate": "cd3_cd56",
            "set": {},
            "accept_flags": ["imprecise"],
            "reason": "3,000-event tube: precision accepted",
            "by": "CD",
            "covers": ["cd3_cd56", "T", "CIK", "NK", "CD3neg_CD56neg"],
        }
    ],
}
#: per plot: traces with a dashed line, and the scatter traces drawn
_DASHED = """() => [...document.querySelectorAll('.plotly-graph-div')].map(d => ({
    title: (d.layout.title && d.layout.title.text) || '',
    dashed: (d.data || []).filter(t => t.line && t.line.dash === 'dash').length,
    drawn_lines: d.querySelectorAll('.main-svg .scatterlayer .trace .js-line').length,
}))"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory, repo_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("review_report")
    run = run_steps(root, repo_dir=repo_dir, seed=7, review=REVIEW)
    audit_run(run.results, by="ops")
    sign_results(run.results, by="A. Reviewer", meaning="reviewed")
    return {"index": run.index, **run.samples}


def _rows(page: Any, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"{selector} tr",
        "rows => rows.map(r => [...r.children].map(c => c.innerText.trim()))",
    )


def test_batch_report_lists_corrections_and_the_signature(browser: Any, pages: dict) -> None:
    with open_page(browser, pages["index"]) as run:
        _assert_clean(run)
        page = run.page
        assert page.evaluate("window.__xss") is None
        assert page.locator("#corrections-heading").is_visible()
        rows = _rows(page, "#corrections")
        assert rows[0] == [
            "sample",
            "gate",
            "set to (data units)",
            "flags accepted",
            "reason",
            "by",
        ]
        assert rows[1:] == [
            ["B01_d00", "cd3_cd56", "", "imprecise", "3,000-event tube: precision accepted", "CD"],
            ["B01_d21", "cd3_cd56", "CD3 at 2000", "", REASON, "AB"],
        ]
        assert page.locator("#corrections b").count() == 0  # the reason's markup is text
        # accepted flags stay in the flag table, marked with who and why
        flags = _rows(page, "#flag-table")
        accepted = [r for r in flags[1:] if r[4]]
        assert {(r[0], r[1], r[2]) for r in accepted} == {
            ("B01_d00", "T", "imprecise"),
            ("B01_d00", "NK", "imprecise"),
        }
        assert all(r[4] == "by CD: 3,000-event tube: precision accepted" for r in accepted)
        banner = page.locator("#review-banner").inner_text()
        assert f"{len(flags) - 1 - len(accepted)} flag(s)" in banner
        assert f"{len(accepted)} more accepted by a reviewer" in banner
        signatures = page.locator("#signatures").inner_text()
        assert "A. Reviewer" in signatures
        assert "reviewed" in signatures


def test_sample_report_marks_the_set_gate_and_draws_the_fitted_one_dashed(
    browser: Any, pages: dict
) -> None:
    with open_page(browser, pages["B01_d21"]) as run:
        _assert_clean(run)
        page = run.page
        assert page.evaluate("window.__xss") is None
        rows = _rows(page, "#correction-table")
        assert rows[1] == ["cd3_cd56", "CD3 at 2000", "", REASON, "AB"]
        # the gate table marks the quadrant's populations; the fits table the quadrant
        marked = page.locator("#gate-table tr.overridden td:first-child").all_inner_texts()
        assert marked == [f"{p} (set by AB)" for p in ("T", "CIK", "NK", "CD3neg_CD56neg")]
        fits = page.locator("#fits tr.overridden td:first-child").all_inner_texts()
        assert fits == ["cd3_cd56"]
        plots = page.evaluate(_DASHED)
        dashed = [p for p in plots if p["dashed"]]
        assert len(dashed) == 1
        assert "set by reviewer" in dashed[0]["title"]
        # every line trace is drawn: the dashed fitted gate and the applied one
        assert dashed[0]["drawn_lines"] >= 2 * dashed[0]["dashed"]
    with open_page(browser, pages["B01_d00"]) as run:
        page = run.page
        accepted = page.locator("#accepted-flags li").all_inner_texts()
        assert len(accepted) == 2
        assert all("accepted by CD: 3,000-event tube" in a for a in accepted)
        assert page.locator("tr.overridden").count() == 0  # flags accepted, no gate set
