"""HTML reports (plotly, offline)."""

from __future__ import annotations

from cikflow.report.html import write_batch_report, write_plotly_js, write_sample_report
from cikflow.report.pdf import print_pdf

__all__ = ["print_pdf", "write_batch_report", "write_plotly_js", "write_sample_report"]
