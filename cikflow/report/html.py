"""The only HTML writer: sample and batch reports, offline, every string escaped.

Pages are rendered by Jinja2 with autoescaping on, so any text that came from an
FCS file or a sample sheet is shown literally. plotly.js is written once per
report folder (``plotly.min.js``) and loaded with a relative ``<script src>``:
no request leaves the machine when a report is opened.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cikflow.report.figures import fractions_figure, gate_figure

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["write_batch_report", "write_plotly_js", "write_sample_report"]

PLOTLY_JS = "plotly.min.js"
REVIEW_TEXT = "automated analysis — review required"
#: populations drawn over culture days in the batch report, in legend order
FRACTION_POPULATIONS = (
    "T",
    "CIK",
    "CIK_CD16pos",
    "CIK_CD16neg",
    "NK",
    "NK_CD56bright",
    "NK_CD56dim",
)
_SAMPLE_FIELDS = (
    "label",
    "error",
    "message",
    "sha256",
    "instrument",
    "acquisition_date",
    "acquisition_time",
    "fcs_fil",
    "fcs_smno",
    "events",
    "compensation",
    "flags",
)
_PLOT_CONFIG = {"displaylogo": False, "responsive": False}


@functools.cache
def _env() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("cikflow", "report/templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _div(fig: go.Figure, div_id: str) -> str:
    from markupsafe import Markup

    # plotly writes "<" inside its JSON as \u003c, so no label can close the script tag
    return Markup(
        fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=_PLOT_CONFIG)
    )


def write_plotly_js(report_dir: str | Path) -> Path:
    """Write plotly.js once into ``report_dir`` (offline; no CDN)."""
    from plotly.offline import get_plotlyjs

    path = Path(report_dir) / PLOTLY_JS
    path.parent.mkdir(parents=True, exist_ok=True)
    js = get_plotlyjs()
    if not path.is_file() or path.read_text() != js:
        path.write_text(js)
    return path


def write_sample_report(
    out_path: str | Path,
    *,
    status: Mapping[str, Any],
    plots: Sequence[Mapping[str, Any]],
    gates: pd.DataFrame,
    plotly_js: str = f"../{PLOTLY_JS}",
    index_href: str = "../index.html",
) -> None:
    """Write one sample's HTML report.

    Parameters
    ----------
    out_path : str or pathlib.Path
        The HTML file.
    status : mapping
        The sample's ``status.json`` (file, SHA-256, instrument, panel, flags…).
    plots : sequence of mapping
        Gate plot data (:func:`cikflow.plotdata.gate_plot_data`).
    gates : pandas.DataFrame
        The sample's gate table.
    plotly_js, index_href : str
        Relative links to plotly.js and to the batch report.
    """
    figures = [_div(gate_figure(dict(p)), f"gate-{i}") for i, p in enumerate(plots)]
    # a failed sample's status lacks what was never read; show those fields empty
    status = {**dict.fromkeys(_SAMPLE_FIELDS, ""), "panel": {}, "transforms": {}, **status}
    html = (
        _env()
        .get_template("sample.html.j2")
        .render(
            s=status,
            figures=figures,
            gates=gates.to_dict("records"),
            plotly_js=plotly_js,
            index_href=index_href,
            review_text=REVIEW_TEXT,
        )
    )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html)


def write_batch_report(
    out_path: str | Path,
    *,
    summary: pd.DataFrame,
    flags: pd.DataFrame,
    failed: pd.DataFrame,
    statuses: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any],
    sample_href: str = "samples/{sample}.html",
) -> None:
    """Write the batch report (``index.html``) and plotly.js beside it.

    Parameters
    ----------
    out_path : str or pathlib.Path
        The HTML file.
    summary, flags, failed : pandas.DataFrame
        ``summary.tsv``, ``flags.tsv`` and ``failed.tsv``.
    statuses : sequence of mapping
        Every sample's ``status.json`` (for links, file names and hashes).
    provenance : mapping
        The summary's provenance record.
    sample_href : str
        Link pattern to a sample report.
    """
    out = Path(out_path)
    write_plotly_js(out.parent)
    # the base and its ancestors (beads, leukocytes …) would dwarf the populations of interest
    populations = [p for p in dict.fromkeys(summary["population"]) if p in FRACTION_POPULATIONS]
    batches = []
    for i, batch in enumerate(sorted(summary["batch"].astype(str).unique())):
        rows = summary[summary["batch"].astype(str) == batch]
        table = rows.pivot_table(
            index="population", columns="day", values="percent_of_base", sort=False
        )
        batches.append(
            {
                "batch": batch,
                "figure": _div(
                    fractions_figure(rows, batch=batch, populations=populations), f"batch-{i}"
                ),
                "days": [int(d) for d in table.columns],
                "table": [
                    {
                        "population": pop,
                        "values": [None if v != v else float(v) for v in table.loc[pop]],
                    }
                    for pop in populations
                    if pop in table.index
                ],
            }
        )
    html = (
        _env()
        .get_template("index.html.j2")
        .render(
            batches=batches,
            flags=flags.to_dict("records"),
            failed=failed.to_dict("records"),
            samples=sorted(
                statuses, key=lambda s: (str(s.get("batch")), s.get("day") or 0, str(s["sample"]))
            ),
            sample_href=sample_href,
            provenance=provenance,
            review_text=REVIEW_TEXT,
            plotly_js=PLOTLY_JS,
        )
    )
    out.write_text(html)
