"""The template language on a second panel.

FlowSOM's mouse file 68983.fcs against the expert's per-event FlowJo labels (GPL data,
used from ../shared only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cikflow.evaluate import f1_score
from cikflow.gating import gate_fcs
from cikflow.io import read_fcs, read_template
from cikflow.uncertainty import population_intervals

#: FlowJo's counts in the expert workspace (gating.wsp)
FLOWJO = {"NK cells": 312, "NK T cells": 535}


@pytest.fixture(scope="module")
def template(repo_dir):
    return read_template(repo_dir / "config" / "gating" / "flowsom_68983.yaml")


@pytest.fixture(scope="module")
def outcome(shared_data, template):
    folder = shared_data / "flowsom-68983"
    result = gate_fcs(read_fcs(folder / "68983.fcs"), template, aliases={"NK1.1": ["NK1/1"]})
    labels = pd.read_csv(folder / "gatingResult.csv", header=None)[0].to_numpy()
    return result, labels


@pytest.mark.parametrize(("gate", "label"), [("NK_cells", "NK cells"), ("NKT_cells", "NK T cells")])
def test_nk_and_nkt_agree_with_the_expert(outcome, gate, label):
    result, labels = outcome
    truth = labels == label
    assert truth.sum() == FLOWJO[label]
    assert f1_score(result.membership[gate], truth) >= 0.95
    # the count stays within 10 % of FlowJo's
    assert abs(int(result.membership[gate].sum()) - FLOWJO[label]) <= 0.1 * FLOWJO[label]


def test_every_gate_is_data_driven_and_unflagged(outcome):
    result, _ = outcome
    methods = {i.name: i.method for i in result.infos}
    assert all(m != "static" for n, m in methods.items() if n != "NK1_1pos"), methods
    assert result.flags == []
    assert np.array_equal(
        result.membership["NK1_1pos"],
        result.membership["NK_cells"] | result.membership["NKT_cells"],
    )


@pytest.mark.parametrize(("gate", "label"), [("NK_cells", "NK cells"), ("NKT_cells", "NK T cells")])
def test_the_experts_share_lies_in_the_95_percent_interval(outcome, template, gate, label):
    """The interval of a data-driven gate holds the expert's share of the same base.

    NK 1.71 % (interval 1.64-2.13 %, point 1.86 %), NK T 2.88 % (2.79-3.64 %, 3.08 %).
    """
    result, labels = outcome
    base = result.membership[template.spec["base"]]
    expert = 100 * np.count_nonzero((labels == label) & base) / np.count_nonzero(base)
    row = population_intervals(result, template=template).set_index("gate").loc[gate]
    assert row["percent_of_base_low"] <= expert <= row["percent_of_base_high"]
