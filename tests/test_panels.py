"""Report panels: one registry, so that a new sample-report panel is one module.

The exercise of the gate-model issue: a panel of the lymphocytes' CD3 histogram,
written here as a panel module would be, appears in the sample report with no other
change (gate step and report iterate the registry).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from cikflow.io import read_json, read_table
from cikflow.io.simulated import write_simulated
from cikflow.report import panels as registry
from cikflow.report.panels import Panel, PanelContext, panel_data, register
from cikflow.simulate import simulate_batches
from cikflow.steps import gate_file, sample_report

CONFIG = {"panel": {"aliases": {"Viability": ["7-AAD"]}}, "gating": {"min_events": 50}}


def _cd3_counts(context: PanelContext) -> dict[str, object] | None:
    """Events of the base population per CD3 decade (a 'gated' panel's data)."""
    outcome = context.outcome
    base = outcome.membership[context.template.base]
    column = context.fcs.pnn.index(outcome.channel_map["CD3"])
    cd3 = np.asarray(outcome.compensated[:, column])[base]
    edges = [-np.inf, 1e2, 1e3, 1e4, np.inf]
    return {"counts": np.histogram(cd3, bins=edges)[0].tolist(), "events": int(base.sum())}


def _cd3_figure(data: dict[str, object]) -> go.Figure:
    return go.Figure(go.Bar(x=["<100", "100-1k", "1k-10k", ">10k"], y=data["counts"]))


@pytest.fixture
def cd3_panel(monkeypatch):
    registry.panels()  # the project's own panels registered in the real registry first
    monkeypatch.setattr(registry, "PANELS", dict(registry.PANELS))  # undone after the test
    return register(
        Panel(
            name="cd3-decades",
            title="CD3 per decade",
            caption="Viable lymphocytes by CD3 decade.",
            stage="gated",
            data=_cd3_counts,
            figure=_cd3_figure,
        )
    )


def test_a_registered_panel_reaches_plots_json_and_the_report(cd3_panel, tmp_path, repo_dir):
    batches = simulate_batches(n_batches=1, days=(0,), n_events=3000, seed=5)
    write_simulated(batches, tmp_path)
    out = tmp_path / "out"
    template = repo_dir / "config" / "gating" / "cik_default.yaml"
    status = gate_file(tmp_path / "B01_d00.fcs", template_path=template, out_dir=out, config=CONFIG)
    assert status["status"] == "ok"
    stored = read_json(out / "plots.json")["panels"]
    assert list(stored) == ["acquisition", "cd3-decades"]  # the project's own panel first
    lymphocytes = read_table(out / "gates.tsv").set_index("gate").loc["lymphocytes"]
    assert stored["cd3-decades"]["events"] == lymphocytes["events"]
    assert sum(stored["cd3-decades"]["counts"]) == lymphocytes["events"]
    page = tmp_path / "report.html"
    sample_report(out, out_path=page)
    html = page.read_text()
    assert '<div id="cd3-decades">' in html
    assert 'id="cd3-decades-plot"' in html
    assert "Viable lymphocytes by CD3 decade." in html
    assert html.index('id="acquisition-plot"') < html.index('id="cd3-decades-plot"')


def test_a_panel_without_data_is_left_out_and_a_bad_stage_refused(monkeypatch):
    registry.panels()
    monkeypatch.setattr(registry, "PANELS", dict(registry.PANELS))
    register(Panel("nothing", "t", "c", stage="gated", data=lambda c: None, figure=go.Figure))
    assert panel_data("gated", PanelContext(fcs=None)) == {}
    with pytest.raises(ValueError, match="stage must be 'read' or 'gated'"):
        register(Panel("x", "t", "c", stage="later", data=lambda c: None, figure=go.Figure))
