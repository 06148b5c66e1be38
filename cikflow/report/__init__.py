"""HTML reports (plotly, offline)."""

from __future__ import annotations

from cikflow.report.html import write_batch_report, write_plotly_js, write_sample_report

__all__ = ["write_batch_report", "write_plotly_js", "write_sample_report"]
