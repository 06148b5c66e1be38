"""The only HTML writer: sample and batch reports, offline, every string escaped.

Pages are rendered by Jinja2 with autoescaping on, so any text that came from an
FCS file or a sample sheet is shown literally. plotly.js is written once per
report folder (``plotly.min.js``) and loaded with a relative ``<script src>``:
no request leaves the machine when a report is opened.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cikflow.counts import BATCH_METRICS, POPULATION_METRICS
from cikflow.release import SYMBOLS
from cikflow.report.corrections import correction_rows, open_flags, review_context, set_gates
from cikflow.report.figures import (
    absolute_counts_figure,
    cluster_map_figure,
    drift_figure,
    fold_expansion_figure,
    fractions_figure,
    gate_figure,
)
from cikflow.report.record import miflowcyt_annex, record_header

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["write_batch_report", "write_plotly_js", "write_sample_report"]

PLOTLY_JS = "plotly.min.js"
REVIEW_TEXT = "automated analysis — review required"
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
#: harvest metrics shown in full for each population a release criterion names (the
#: product); every other population drawn shows its dose only (``<population>_cells_per_kg``)
PRODUCT_METRICS = (
    "percent_of_base",
    "total_cells",
    "fold_expansion",
    "cells_per_kg",
    "infused_cells_per_kg",
)


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


def _plotly_inline() -> Any:
    """plotly.js as trusted markup for an inline ``<script>`` (the package's own file)."""
    from markupsafe import Markup
    from plotly.offline import get_plotlyjs

    return Markup(get_plotlyjs())  # plotly's own bundle, never input data


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
    clusters: Mapping[str, Any] | None = None,
    concordance: pd.DataFrame | None = None,
    panels: Mapping[str, Mapping[str, Any]] | None = None,
    standalone: bool = False,
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
    clusters : mapping, optional
        The cluster map (:func:`cikflow.clustering.cluster_map`), drawn beside
        the gates.
    concordance : pandas.DataFrame, optional
        Gate vs cluster per population (``concordance.tsv``); its populations, in
        the template's order, give the cluster map its colours.
    panels : mapping, optional
        Each report panel's data by name (``plots.json`` ``panels``), drawn under its
        title and caption in registry order (:mod:`cikflow.report.panels`).
    standalone : bool
        Inline plotly.js (about 4.6 MB) so that the page works alone, e-mailed or filed
        away from its report folder; otherwise it loads ``plotly_js``.
    """
    from cikflow.report.panels import panels as registered

    panel_blocks = [
        {
            "name": p.name,
            "title": p.title,
            "caption": p.caption,
            "div": _div(p.figure(panels[p.name]), f"{p.name}-plot"),
        }
        for p in registered()
        if panels and p.name in panels
    ]
    figures = [_div(gate_figure(dict(p)), f"gate-{i}") for i, p in enumerate(plots)]
    if clusters:
        populations = _populations(concordance) if concordance is not None else None
        figures.append(
            _div(cluster_map_figure(dict(clusters), populations=populations), "cluster-map")
        )
    # a failed sample's status lacks what was never read; show those fields empty
    empty = {"panel": {}, "transforms": {}, "fits": []}
    status = {**dict.fromkeys(_SAMPLE_FIELDS, ""), **empty, **status}
    html = (
        _env()
        .get_template("sample.html.j2")
        .render(
            s=status,
            figures=figures,
            gates=_gate_rows(gates, base=status.get("base")),
            plotly_js=plotly_js,
            plotly_inline=_plotly_inline() if standalone else None,
            index_href=index_href,
            review_text=REVIEW_TEXT,
            concordance=_concordance_rows(concordance),
            panels=panel_blocks,
            open_flags=open_flags(status["flags"] or []),
            accepted_flags=[f for f in status["flags"] or [] if f.get("accepted_by")],
            corrections=correction_rows([status]),
            set_gates=set_gates(status),
        )
    )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html)


def _gate_rows(gates: pd.DataFrame, *, base: str | None) -> list[dict[str, Any]]:
    """The gate table's rows; ``above_base`` marks the base's ancestors (no % of base)."""
    rows = gates.to_dict("records")
    above = set()
    for row in rows:
        if base and row["gate"] == base:
            above = set(str(row["gate_path"]).split("/")[1:-1])
    return [{**row, "above_base": row["gate"] in above} for row in rows]


def _concordance_rows(table: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Gate vs cluster rows for a report table (numbers formatted, discordance marked)."""
    if table is None or table.empty:
        return []
    return [
        {
            "batch": _text(r.get("batch")),
            "sample": _text(r.get("sample")),
            "day": _number(r.get("day"), unit="day"),
            "population": _text(r["population"]),
            "gate": f"{float(r['gate_percent_of_base']):.2f}",
            "cluster": f"{float(r['cluster_percent_of_base']):.2f}",
            "difference": f"{float(r['difference_pp']):+.2f}",
            "f1": f"{float(r['f1']):.3f}",
            "margin": _number(r["margin_pp"]),
            "discordant": str(r["discordant"]).lower() == "true",
        }
        for r in table.to_dict("records")
    ]


def write_batch_report(
    out_path: str | Path,
    *,
    summary: pd.DataFrame,
    flags: pd.DataFrame,
    failed: pd.DataFrame,
    statuses: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any],
    sample_href: str = "samples/{sample}.html",
    release: pd.DataFrame | None = None,
    release_provenance: Mapping[str, Any] | None = None,
    kinetics: pd.DataFrame | None = None,
    harvest: pd.DataFrame | None = None,
    concordance: pd.DataFrame | None = None,
    drift: pd.DataFrame | None = None,
    notes: Sequence[str] = (),
    populations: Sequence[str] | None = None,
    generated: dt.datetime | None = None,
    gates: Mapping[str, pd.DataFrame] | None = None,
    signatures: str | None = None,
) -> None:
    """Write the batch report (``index.html``) and plotly.js beside it.

    Populations are drawn in the template's order and colours (``populations``); the
    harvest list: batch metrics, every metric of a population a release criterion
    names, the dose of every other population drawn.

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
    release : pandas.DataFrame, optional
        ``release.tsv``: shown first, as the release certificate per batch.
    release_provenance : mapping, optional
        Its provenance record (the spec's name, version and SHA-256).
    kinetics : pandas.DataFrame, optional
        Every batch's ``kinetics.tsv``: absolute counts and fold expansion
        over culture days (log axes) and a table of total cells.
    harvest : pandas.DataFrame, optional
        Every batch's ``harvest.tsv``: the dose and other metrics at harvest.
    concordance : pandas.DataFrame, optional
        ``concordance.tsv``: gate vs cluster per sample and population.
    drift : pandas.DataFrame, optional
        Every batch's ``drift.tsv``: each day's distance from the batch's
        reference clusters, drawn over culture days.
    notes : sequence of str
        Lines about the run shown under the title (e.g. why there is no PDF).
    populations : sequence of str, optional
        Populations drawn; default those below the base: ``concordance``'s (each has
        a cluster-based value), else those after the base in ``summary``.
    generated, gates : optional
        The analysis date printed (default: now, UTC); template SHA-256 → one of its
        samples' ``gates.tsv`` (the annex's gate hierarchy).
    signatures : str, optional
        The signature block (markers included); default: none, as of ``generated``.
    """
    out = Path(out_path)
    write_plotly_js(out.parent)
    # not the base and its ancestors (beads, leukocytes …): they would dwarf the rest
    populations = list(populations or _populations(concordance) or _below_base(summary))
    product = _product_populations(release, populations=populations)
    shown = _harvest_shown(populations, product=product)
    batches = [
        _batch_section(
            summary,
            batch=batch,
            index=i,
            populations=populations,
            shown=shown,
            tables=(kinetics, harvest, concordance, drift),
        )
        for i, batch in enumerate(sorted(summary["batch"].astype(str).unique()))
    ]
    template = _env().get_template("index.html.j2")
    html = template.render(
        batches=batches,
        **review_context(flags, statuses=statuses),
        failed=failed.to_dict("records"),
        notes=list(notes),
        sample_href=sample_href,
        provenance=provenance,
        release=_certificates(release, batches=[b["batch"] for b in batches]),
        **_record_context(
            provenance,
            signatures=signatures,
            statuses=statuses,
            generated=generated,
            release_provenance=release_provenance,
            gates=gates,
        ),
    )
    out.write_text(html)


def _batch_section(
    summary: pd.DataFrame,
    *,
    batch: str,
    index: int,
    populations: list[str],
    shown: Sequence[str],
    tables: tuple[pd.DataFrame | None, ...],
) -> dict[str, Any]:
    """One batch's section: fractions, counts and harvest, clusters and drift.

    ``tables``: every batch's kinetics, harvest, concordance and drift (or None).
    """
    kinetics, harvest, concordance, drift = tables
    base = _base_population(summary) if len(summary) else None
    rows = summary[summary["batch"].astype(str) == batch]
    return {
        **_fraction_block(rows, batch=batch, index=index, populations=populations, base=base),
        **_count_blocks(
            kinetics, harvest, batch=batch, index=index, populations=populations, shown=shown
        ),
        **_cluster_blocks(concordance, drift, batch=batch, index=index),
    }


def _record_context(
    provenance: Mapping[str, Any],
    *,
    statuses: Sequence[Mapping[str, Any]],
    generated: dt.datetime | None,
    release_provenance: Mapping[str, Any] | None,
    gates: Mapping[str, pd.DataFrame] | None,
    signatures: str | None = None,
) -> dict[str, Any]:
    """The samples (sorted), the record header, the footer line, the annex, the signatures."""
    from cikflow.audit import utc_stamp
    from cikflow.report.signatures import signature_block

    generated = generated or dt.datetime.now(dt.UTC)
    record = record_header(
        provenance,
        statuses=statuses,
        generated=generated,
        release_provenance=release_provenance,
    )
    if signatures is None:  # none: the block's markers, for `cikflow sign` to fill
        signatures = signature_block([], as_of=utc_stamp(generated))
    return {
        "signatures": signatures,
        "samples": sorted(
            statuses, key=lambda s: (str(s.get("batch")), s.get("day") or 0, str(s["sample"]))
        ),
        "review_text": REVIEW_TEXT,
        "plotly_js": PLOTLY_JS,
        "release_spec": (release_provenance or {}).get("release_spec"),
        "record": record,
        "footer": _css_text(f"cikflow {record['version']} · analysed {record['analysis_date']}"),
        "annex": miflowcyt_annex(statuses, provenance=provenance, gates=gates),
    }


def _css_text(text: str) -> str:
    """``text`` safe inside a CSS string in a ``<style>`` element (nothing to escape left).

    >>> _css_text('cikflow 0.1.0 · analysed 2026-01-02 09:30 UTC"</style>')
    'cikflow 0.1.0 · analysed 2026-01-02 09:30 UTC/style'
    """
    return re.sub(r"[^\w .:+·/-]", "", text)


def _fraction_block(
    rows: pd.DataFrame, *, batch: str, index: int, populations: list[str], base: str | None
) -> dict[str, Any]:
    """A batch's fractions over culture days: figure, days and table (% of base)."""
    table = rows.pivot_table(
        index="population", columns="day", values="percent_of_base", sort=False
    )
    figure = fractions_figure(rows, batch=batch, populations=populations, base=base or "base")
    return {
        "batch": batch,
        "figure": _div(figure, f"batch-{index}"),
        "days": [int(d) for d in table.columns],
        "table": [
            {"population": pop, "values": [None if v != v else float(v) for v in table.loc[pop]]}
            for pop in populations
            if pop in table.index
        ],
    }


def _populations(table: pd.DataFrame | None) -> list[str]:
    """The populations of a table with a ``population`` column, in their first order."""
    if table is None or table.empty or "population" not in table.columns:
        return []
    return [str(p) for p in dict.fromkeys(table["population"].astype(str))]


def _base_population(summary: pd.DataFrame) -> str | None:
    """The base: the first population at exactly 100 % of base in every row of ``summary``."""
    percent = summary.groupby("population", sort=False)["percent_of_base"]
    return next(
        (p for p in _populations(summary) if bool(percent.get_group(p).eq(100).all())), None
    )


def _below_base(summary: pd.DataFrame) -> list[str]:
    """The populations after the base in ``summary`` (template order); all without a base."""
    populations = _populations(summary)
    base = _base_population(summary)
    return populations[populations.index(base) + 1 :] if base else populations


def _product_populations(release: pd.DataFrame | None, *, populations: Sequence[str]) -> list[str]:
    """The populations a release criterion's metric names (``<population>_<metric>``)."""
    if release is None or release.empty:
        return []
    metrics = set(release["metric"].astype(str))
    return [
        pop
        for pop in populations
        if any(f"{pop}_{suffix}" in metrics for suffix, _ in POPULATION_METRICS)
    ]


def _harvest_shown(populations: Sequence[str], *, product: Sequence[str]) -> list[str]:
    """Harvest metrics listed under a batch's dose, in this order (when present)."""
    shown = [name for name, _ in BATCH_METRICS]
    shown += [f"{pop}_{suffix}" for pop in product for suffix in PRODUCT_METRICS]
    return shown + [f"{pop}_cells_per_kg" for pop in populations if pop not in product]


def _number(value: Any, *, unit: str = "") -> str:
    """A value for the report: 4 significant digits, n/a for NaN."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if number != number:
        return "n/a"
    if unit == "day" or (unit == "events" and number.is_integer()):
        return f"{number:.0f}"
    return f"{number:.4g}"


def _text(value: Any) -> str:
    return "" if value is None or value != value else str(value)


def _certificates(release: pd.DataFrame | None, *, batches: Sequence[str]) -> list[dict[str, Any]]:
    """One release certificate per batch: verdict and criteria rows."""
    if release is None or release.empty:
        return []
    names = [str(b) for b in dict.fromkeys(release["batch"].astype(str))]
    order = [b for b in batches if b in names] + [b for b in names if b not in batches]
    out = []
    for batch in order:
        rows = release[release["batch"].astype(str) == batch]
        decided = "batch_decision" in rows.columns
        out.append(
            {
                "batch": batch,
                "verdict": str(rows["batch_decision" if decided else "batch_verdict"].iloc[0]),
                "review": bool(rows["review_required"].astype(str).str.lower().eq("true").any()),
                "rows": [
                    {
                        "criterion": _text(r["criterion"]),
                        "metric": _text(r["metric"]),
                        "value": _number(r["value"], unit=_text(r["unit"])),
                        "limit": f"{SYMBOLS.get(r['operator'], r['operator'])} "
                        f"{_number(r['limit'])}",
                        "unit": _text(r["unit"]),
                        "verdict": _text(r["verdict"]),
                        "reason": _text(r["reason"]),
                        "day": _number(r["day"], unit="day"),
                        **_decision(r),
                    }
                    for r in rows.to_dict("records")
                ],
            }
        )
    return out


def _decision(row: Mapping[str, Any]) -> dict[str, str]:
    """A criterion's interval, decision rule and decision, as the certificate shows them."""
    unit = _text(row.get("unit"))
    low, high = row.get("value_low"), row.get("value_high")
    known = all(isinstance(v, int | float) and v == v for v in (low, high))
    rule = _text(row.get("decision_rule")) or "point"
    decision = _text(row.get("decision")) or _text(row["verdict"])
    note = ""
    if decision != _text(row["verdict"]):
        note = f"point estimate {_text(row['verdict'])}; its interval straddles the limit"
    return {
        "interval": f"{_number(low, unit=unit)} – {_number(high, unit=unit)}" if known else "",
        "rule": rule.replace("_", "-"),
        "decision": decision,
        "note": note,
    }


def _count_blocks(
    kinetics: pd.DataFrame | None,
    harvest: pd.DataFrame | None,
    *,
    batch: str,
    index: int,
    populations: list[str],
    shown: Sequence[str],
) -> dict[str, Any]:
    """A batch's count figures, total-cell table and the harvest metrics ``shown``."""
    blocks: dict[str, Any] = {
        "counts_figure": None,
        "fold_figure": None,
        "count_days": [],
        "count_table": [],
        "harvest": [],
    }
    rows = None if kinetics is None else kinetics[kinetics["batch"].astype(str) == batch]
    if rows is not None and not rows.empty:
        blocks["counts_figure"] = _div(
            absolute_counts_figure(rows, batch=batch, populations=populations),
            f"batch-{index}-counts",
        )
        blocks["fold_figure"] = _div(
            fold_expansion_figure(rows, batch=batch, populations=populations),
            f"batch-{index}-fold",
        )
        table = rows.pivot_table(
            index="population", columns="day", values="total_cells", sort=False, dropna=False
        )
        blocks["count_days"] = [int(d) for d in table.columns]
        blocks["count_table"] = [
            {"population": pop, "values": [_number(v) for v in table.loc[pop]]}
            for pop in populations
            if pop in table.index
        ]
    metrics = None if harvest is None else harvest[harvest["batch"].astype(str) == batch]
    if metrics is not None and not metrics.empty:
        by_metric = {str(r["metric"]): r for r in metrics.to_dict("records")}
        blocks["harvest"] = [
            {
                "metric": name,
                "value": _number(by_metric[name]["value"], unit=_text(by_metric[name]["unit"])),
                "unit": _text(by_metric[name]["unit"]),
                "reason": _text(by_metric[name]["reason"]),
            }
            for name in shown
            if name in by_metric
        ]
    return blocks


def _cluster_blocks(
    concordance: pd.DataFrame | None, drift: pd.DataFrame | None, *, batch: str, index: int
) -> dict[str, Any]:
    """A batch's gate-vs-cluster table and drift figure and table (empty when absent)."""
    blocks: dict[str, Any] = {"concordance": [], "drift_figure": None, "drift": []}
    if concordance is not None and not concordance.empty:
        rows = concordance[concordance["batch"].astype(str) == batch]
        blocks["concordance"] = _concordance_rows(rows)
    rows = None if drift is None else drift[drift["batch"].astype(str) == batch]
    if rows is not None and not rows.empty:
        blocks["drift_figure"] = _div(drift_figure(rows, batch=batch), f"batch-{index}-drift")
        blocks["drift"] = [
            {
                "sample": _text(r["sample"]),
                "day": _number(r["day"], unit="day"),
                "mean_distance": _number(r["mean_distance"]),
                "ratio": _number(r["drift_ratio"]),
                "limit": _number(r["drift_limit"]),
                "scatter_fold": _number(r.get("scatter_fold")),
                "gain_fold": _number(r.get("gain_fold")),
                "source": _text(r.get("level_source")),
                "drifted": str(r["drifted"]).lower() == "true",
                "reason": _text(r.get("reason")),
            }
            for r in rows.sort_values("day").to_dict("records")
        ]
    return blocks
