"""Extra panels of the sample report, one registry: a new panel is one module.

A panel computes small plot data in the gate step (the only step that holds the
file's events) and draws it in the sample report. Its data go to ``plots.json``
under ``panels``; the report draws each panel found there, in registry order,
under its title and caption. Adding a panel touches three files: a module with
its data and figure functions that calls :func:`register`, its name in
:data:`_MODULES`, and a test.

Stages: ``read`` panels see the file as read, before acquisition QC removes anything
(:class:`PanelContext` ``fcs``, ``qc``, ``time_unit``); ``gated`` panels see the
events as gated, the gating outcome and the template (``fcs``, ``outcome``,
``template``). A panel's data function returns None when it has nothing to draw.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import plotly.graph_objects as go

__all__ = ["PANELS", "Panel", "PanelContext", "panel_data", "panels", "register"]

#: modules that register the project's own panels (imported on first use)
_MODULES = ("cikflow.report.acquisition_view",)


@dataclass(frozen=True)
class PanelContext:
    """What a panel's data function may read (fields of its stage; the others None).

    Attributes
    ----------
    fcs : FcsData
        ``read``: the file as read; ``gated``: the events gating saw (after QC).
    qc : mapping, optional
        ``read``: the ``qc`` record of ``status.json``.
    time_unit : str, optional
        ``read``: the unit of the Time channel (``s`` or ``time units``).
    outcome : GatingOutcome, optional
        ``gated``: memberships, gate table, gate models, compensated events.
    template : Template, optional
        ``gated``: the gating template.
    """

    fcs: Any
    qc: Mapping[str, Any] | None = None
    time_unit: str | None = None
    outcome: Any = None
    template: Any = None


@dataclass(frozen=True)
class Panel:
    """One panel of the sample report.

    Attributes
    ----------
    name : str
        Key in ``plots.json`` and the HTML id of its section (``<name>``) and plot
        (``<name>-plot``).
    title, caption : str
        Shown above the plot.
    stage : {"read", "gated"}
        When its data are computed (see the module notes).
    data : callable
        ``data(context)`` → JSON-ready mapping, or None (nothing to draw).
    figure : callable
        ``figure(data)`` → plotly Figure.
    """

    name: str
    title: str
    caption: str
    stage: str
    data: Callable[[PanelContext], Mapping[str, Any] | None]
    figure: Callable[[Mapping[str, Any]], go.Figure]


#: registered panels by name, in registration order
PANELS: dict[str, Panel] = {}


def register(panel: Panel) -> Panel:
    """Add ``panel`` to :data:`PANELS` (a panel of the same name is replaced).

    Parameters
    ----------
    panel : Panel
        The panel.

    Returns
    -------
    Panel
        The same panel (so a module can keep it).
    """
    if panel.stage not in ("read", "gated"):
        msg = f"panel '{panel.name}': stage must be 'read' or 'gated', not {panel.stage!r}"
        raise ValueError(msg)
    _load_own()  # the project's own panels come first
    PANELS[panel.name] = panel
    return panel


def panels() -> list[Panel]:
    """Every registered panel, the project's own first."""
    _load_own()
    return list(PANELS.values())


def _load_own() -> None:
    """Import the modules of the project's own panels (each registers itself, once)."""
    for module in _MODULES:
        importlib.import_module(module)


def panel_data(stage: str, context: PanelContext) -> dict[str, Mapping[str, Any]]:
    """The data of every panel of ``stage`` that has something to draw, by name.

    Parameters
    ----------
    stage : {"read", "gated"}
        Which panels.
    context : PanelContext
        What they read.
    """
    out = {}
    for panel in panels():
        if panel.stage == stage and (data := panel.data(context)) is not None:
            out[panel.name] = data
    return out
