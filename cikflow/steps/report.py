"""The report steps: a sample's HTML page, and the batch report linking them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cikflow.steps.cluster import cluster_gated_sample, clustering_record
from cikflow.steps.files import SampleFiles, sample_files
from cikflow.summary import gate_rows

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["ReportInputs", "batch_report", "cluster_and_report", "sample_report"]


def cluster_and_report(
    files: SampleFiles,
    *,
    template_path: str | Path,
    out_path: str | Path,
    config: Mapping[str, Any] | None = None,
    standalone: bool = False,
) -> None:
    """A sample's second job: cluster it from its base events, then write its HTML report.

    :func:`~cikflow.steps.cluster.cluster_gated_sample` (the sample's final
    ``populations.tsv`` and ``flags.tsv``, ``clusters.tsv``, ``concordance.tsv``,
    ``markers.tsv.gz`` and ``clustering.json``), then :func:`sample_report`. The
    gate step leaves the clustering to this job, so that a clustering setting
    reruns no gating and a sample still takes two jobs.

    Parameters
    ----------
    files : SampleFiles
        The sample's files: those the gate step wrote (``status``, ``plots``,
        ``gates``, ``gate_populations``, ``gate_flags``, ``base``) and those
        written here (``populations``, ``flags``, ``clusters``, ``concordance``,
        ``markers``, ``clustering``).
    template_path : str or pathlib.Path
        The template the sample was gated with.
    out_path : str or pathlib.Path
        The HTML page.
    config : mapping, optional
        Workflow configuration (``clustering``, ``report.bins`` sections).
    standalone : bool
        Inline plotly.js.
    """
    cluster_gated_sample(files, template_path=template_path, config=config)
    sample_report(files, out_path=out_path, standalone=standalone)


def sample_report(
    sample: str | Path | SampleFiles, *, out_path: str | Path, standalone: bool = False
) -> None:
    """Write a sample's HTML report from its ``status.json``, ``plots.json`` and ``gates.tsv``.

    The gate table shows each population's interval of percent of base, from
    ``populations.tsv`` where it exists. A ``clustering.json`` (written where the
    sample is clustered apart from gating, :func:`cluster_and_report`) adds the
    clustering record, its flags and the cluster map.

    ``standalone`` inlines plotly.js so that the page works away from its report folder.

    Parameters
    ----------
    sample : str, pathlib.Path or SampleFiles
        The sample's folder, or its files (``status``, ``plots``, ``gates``,
        ``populations``, ``concordance`` and ``clustering``: drawn with the
        cluster map when the sample was clustered).
    out_path : str or pathlib.Path
        The HTML page.
    standalone : bool
        Inline plotly.js.
    """
    from cikflow.io import read_json, read_table
    from cikflow.report import write_sample_report

    (files,) = sample_files([sample])
    plots = read_json(files.plots)
    status, cluster_map = clustering_record(files)
    concordance = files.concordance
    gates = read_table(files.gates)
    if files.populations is not None and files.populations.is_file():
        gates = _with_intervals(gates, read_table(files.populations))
    write_sample_report(
        out_path,
        status=status.to_json(),
        plots=plots["gates"],
        gates=gates,
        clusters=plots.get("clusters") or cluster_map or None,
        concordance=(
            read_table(concordance) if concordance is not None and concordance.is_file() else None
        ),
        panels=plots.get("panels", {}),
        standalone=standalone,
    )


def _with_intervals(gates: pd.DataFrame, populations: pd.DataFrame) -> pd.DataFrame:
    """The gate table with each population's ``percent_of_base_low`` / ``_high`` (by gate)."""
    columns = ["percent_of_base_low", "percent_of_base_high"]
    if not set(columns) <= set(populations.columns):
        return gates
    bounds = gate_rows(populations).drop_duplicates("gate").set_index("gate")[columns]
    return gates.join(bounds, on="gate")


@dataclass(frozen=True)
class ReportInputs:
    """The batch report's input files.

    Attributes
    ----------
    summary, flags, failed : pathlib.Path
        ``summary.tsv`` (and its provenance sidecar), ``flags.tsv``, ``failed.tsv``.
    status : sequence of pathlib.Path
        Every sample's ``status.json``.
    clustering : sequence of pathlib.Path
        Every sample's ``clustering.json``, in the order of ``status`` (its
        clustering flags join the sample's flags); empty when the gate step
        clustered.
    gates : sequence of pathlib.Path
        Every sample's ``gates.tsv`` (one per gating template gives the annex its
        gate hierarchy; a missing one is skipped).
    release : pathlib.Path, optional
        ``release.tsv`` (and its provenance sidecar).
    concordance : pathlib.Path, optional
        ``concordance.tsv``, the gate vs cluster concordance (drawn when it exists).
    kinetics, harvest, drift : sequence of pathlib.Path
        Per batch (named by its folder), ``kinetics.tsv``, ``harvest.tsv`` and
        ``drift.tsv`` (a missing drift table is left out).
    """

    summary: Path
    flags: Path
    failed: Path
    status: Sequence[Path] = ()
    clustering: Sequence[Path] = ()
    gates: Sequence[Path] = ()
    release: Path | None = None
    concordance: Path | None = None
    kinetics: Sequence[Path] = ()
    harvest: Sequence[Path] = ()
    drift: Sequence[Path] = ()

    @classmethod
    def from_named(cls, named: Any) -> ReportInputs:
        """The inputs from an object naming them as attributes (a rule's ``input``).

        Parameters
        ----------
        named : object
            Has ``summary``, ``flags``, ``failed`` and optionally ``status``,
            ``clustering``, ``gates``, ``release``, ``concordance``, ``kinetics``,
            ``harvest``, ``drift``.

        Returns
        -------
        ReportInputs
            The paths.
        """
        one = {n: Path(getattr(named, n)) for n in ("summary", "flags", "failed")}
        opt = {n: Path(getattr(named, n)) for n in ("release", "concordance") if hasattr(named, n)}
        many = {
            n: [Path(p) for p in getattr(named, n)]
            for n in ("status", "clustering", "gates", "kinetics", "harvest", "drift")
            if hasattr(named, n)
        }
        return cls(**one, **opt, **many)

    @classmethod
    def in_folders(
        cls,
        results_dir: str | Path,
        *,
        sample_dirs: Sequence[str | Path] = (),
        batch_dirs: Sequence[str | Path] = (),
        release_path: str | Path | None = None,
    ) -> ReportInputs:
        """The inputs under their default names in the results, sample and batch folders.

        Parameters
        ----------
        results_dir : str or pathlib.Path
            Holds ``summary.tsv``, ``flags.tsv``, ``failed.tsv``, ``concordance.tsv``.
        sample_dirs : sequence of str or pathlib.Path
            Each holds a ``status.json``.
        batch_dirs : sequence of str or pathlib.Path
            Each holds ``kinetics.tsv``, ``harvest.tsv`` and ``drift.tsv``.
        release_path : str or pathlib.Path, optional
            ``release.tsv``.

        Returns
        -------
        ReportInputs
            The paths.
        """
        r = Path(results_dir)
        return cls(
            summary=r / "summary.tsv",
            flags=r / "flags.tsv",
            failed=r / "failed.tsv",
            status=[f.status for f in sample_files(sample_dirs)],
            clustering=[Path(d) / "clustering.json" for d in sample_dirs],
            gates=[f.gates for f in sample_files(sample_dirs) if f.gates],
            release=Path(release_path) if release_path else None,
            concordance=r / "concordance.tsv",
            kinetics=[Path(d) / "kinetics.tsv" for d in batch_dirs],
            harvest=[Path(d) / "harvest.tsv" for d in batch_dirs],
            drift=[Path(d) / "drift.tsv" for d in batch_dirs],
        )


def batch_report(
    results_dir: str | Path | None = None,
    *,
    out_path: str | Path,
    sample_dirs: Sequence[str | Path] = (),
    release_path: str | Path | None = None,
    batch_dirs: Sequence[str | Path] = (),
    inputs: ReportInputs | None = None,
    notes: Sequence[str] = (),
) -> None:
    """Write the batch report from ``summary.tsv``, ``flags.tsv``, ``failed.tsv`` and statuses.

    With a release table the report opens with the release certificate; with
    each batch's ``kinetics.tsv`` and ``harvest.tsv`` it draws absolute counts
    and fold expansion over culture days and states the dose. Where present,
    the gate vs cluster concordance and each batch's drift from its reference
    clusters are shown too; the fractions drawn are the gate-based ones.

    Parameters
    ----------
    results_dir : str or pathlib.Path, optional
        With ``sample_dirs``, ``release_path`` and ``batch_dirs``: the inputs
        under their default names (:meth:`ReportInputs.in_folders`), when
        ``inputs`` is not given.
    out_path : str or pathlib.Path
        The report's ``index.html``.
    sample_dirs, release_path, batch_dirs : optional
        See ``results_dir``.
    inputs : ReportInputs, optional
        The input files, named one by one.
    notes : sequence of str
        Lines about the run shown under the title (e.g. why there is no PDF).
    """
    from cikflow.io import read_json, read_table, sidecar_path
    from cikflow.report import write_batch_report

    if inputs is None:
        if results_dir is None:
            raise TypeError("batch_report: give results_dir or inputs")
        inputs = ReportInputs.in_folders(
            results_dir, sample_dirs=sample_dirs, batch_dirs=batch_dirs, release_path=release_path
        )
    release = inputs.release
    concordance = inputs.concordance
    statuses = _statuses(inputs)
    # a batch whose samples all failed has a header-only table: nothing to stack
    drift = _stacked([p for p in inputs.drift if p.is_file()], by_folder=False)
    from cikflow.audit import utc_stamp
    from cikflow.steps.audit import report_signatures

    generated = dt.datetime.now(dt.UTC)
    # signatures as of now (audit.jsonl is read, not a rule input: every run appends to it)
    signatures = report_signatures(
        Path(inputs.summary).parent, as_of=utc_stamp(generated), release_path=release
    )
    write_batch_report(
        out_path,
        summary=gate_rows(read_table(inputs.summary)),
        flags=read_table(inputs.flags),
        failed=read_table(inputs.failed),
        statuses=statuses,
        provenance=read_json(sidecar_path(inputs.summary)),
        release=read_table(release) if release else None,
        release_provenance=read_json(sidecar_path(release)) if release else None,
        kinetics=_stacked(inputs.kinetics),
        harvest=_stacked(inputs.harvest),
        concordance=(
            read_table(concordance) if concordance is not None and concordance.is_file() else None
        ),
        drift=drift,
        notes=notes,
        generated=generated,
        gates=_template_gates(statuses, gates=inputs.gates),
        signatures=signatures,
    )


def _template_gates(
    statuses: Sequence[Mapping[str, Any]], *, gates: Sequence[Path]
) -> dict[str, pd.DataFrame]:
    """Template SHA-256 → the ``gates.tsv`` of its first analysed sample (the hierarchy)."""
    from cikflow.io import read_table

    by_sample = {p.parent.name: p for p in gates}
    out: dict[str, pd.DataFrame] = {}
    for s in statuses:
        sha = ((s.get("provenance") or {}).get("template") or {}).get("sha256")
        path = by_sample.get(str(s["sample"]))
        if s.get("status") == "ok" and sha and sha not in out and path and path.is_file():
            out[sha] = read_table(path)
    return out


def _stacked(paths: Sequence[Path], *, by_folder: bool = True) -> pd.DataFrame | None:
    """The non-empty tables stacked (``batch`` from each one's folder), or None."""
    from cikflow.io import read_table

    tables = [read_table(p) for p in paths]
    if by_folder:
        tables = [t.assign(batch=p.parent.name) for t, p in zip(tables, paths, strict=True)]
    tables = [t for t in tables if not t.empty]
    return pd.concat(tables, ignore_index=True) if tables else None


def _statuses(inputs: ReportInputs) -> list[dict[str, Any]]:
    """Every sample's status, with its clustering record and flags where written apart."""
    clustering = list(inputs.clustering) or [None] * len(inputs.status)
    files = sample_files(status=list(inputs.status), clustering=clustering)
    return [clustering_record(f)[0].to_json() for f in files]
