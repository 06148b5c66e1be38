"""Batch plausibility: a culture day whose population leaves its batch's other days."""

from __future__ import annotations

import pandas as pd
import pytest
from steps_run import gated_days

from cikflow.io import read_table, write_table
from cikflow.steps import summarize
from cikflow.summary import jump_flags

CONFIG = {"panel": {"aliases": {"Viability": ["7-AAD"]}}, "gating": {"min_events": 50}}


def _series(values):
    return pd.DataFrame(
        {
            "batch": "B",
            "sample": ["d0", "d7", "d14", "d21"],
            "day": [0, 7, 14, 21],
            "population": "CIK",
            "percent_of_base": values,
        }
    )


@pytest.mark.parametrize(
    ("values", "flagged"),
    [
        ([2.0, 10.9, 19.5, 27.8], []),  # the simulator's CIK, smooth
        ([11.3, 9.1, 6.9, 5.5], []),  # NK declining
        ([2.0, 11.0, 19.0, 35.0], []),  # a trend that steepens at the end
        ([60.0, 62.0, 30.0, 31.0], []),  # two days move together: no one day to blame
        ([2.0, 11.0, 40.0, 28.0], ["d14"]),  # a spike: 12 points above d7-d21
        ([2.0, 11.0, 19.0, 3.0], ["d21"]),  # a collapse on the harvest day
        ([25.0, 11.0, 19.0, 27.0], ["d0"]),  # a first day off the trend
    ],
)
def test_one_day_off_its_batch_is_flagged_and_only_that_day(values, flagged):
    flags = jump_flags(_series(values), populations=["CIK"], max_jump_pp=10)
    assert flags["sample"].tolist() == flagged
    assert (flags["flag"] == "implausible_jump").all()


def test_summarize_flags_the_day_and_makes_it_review_required(tmp_path, repo_dir):
    template = repo_dir / "config" / "gating" / "cik_default.yaml"
    dirs = gated_days(tmp_path, repo_dir=repo_dir, config=CONFIG)
    # a gating fault on day 14: its CIK gate held almost nothing
    populations = read_table(dirs[2] / "populations.tsv")
    cik = (populations["population"] == "CIK") & (populations["method"] == "gate")
    populations.loc[cik, "percent_of_base"] = 0.5
    write_table(populations, dirs[2] / "populations.tsv")
    summary = summarize(dirs, out_dir=tmp_path / "out", template_path=template, config=CONFIG)
    flags = read_table(tmp_path / "out" / "flags.tsv")
    jumps = flags[flags["flag"] == "implausible_jump"]
    assert jumps["sample"].tolist() == ["B01_d14"]
    assert jumps["gate"].tolist() == ["CIK"]
    assert summary.loc[summary["sample"] == "B01_d14", "review_required"].all()
    off = summarize(
        dirs,
        out_dir=tmp_path / "off",
        template_path=template,
        config={**CONFIG, "plausibility": {"max_jump_pp": None}},
    )
    assert "implausible_jump" not in set(read_table(tmp_path / "off" / "flags.tsv")["flag"])
    assert len(off) == len(summary)
