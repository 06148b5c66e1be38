"""Gating: templates in marker space turned into flowkit strategies, applied per file."""

from __future__ import annotations

from cikflow.gating.apply import GATE_TABLE_COLUMNS, GatingOutcome, gate_fcs
from cikflow.gating.template import (
    GateInfo,
    Template,
    build_strategy,
    template_dimensions,
    validate_template,
)

__all__ = [
    "GATE_TABLE_COLUMNS",
    "GateInfo",
    "GatingOutcome",
    "Template",
    "build_strategy",
    "gate_fcs",
    "template_dimensions",
    "validate_template",
]
