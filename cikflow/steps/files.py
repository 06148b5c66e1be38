"""Where a sample's result files are: explicit paths, or the default names in a folder.

The workflow's rules declare every file and pass the paths; the Python API and the
command line may name a folder instead, and then the default names below apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["SampleFiles", "sample_files"]


@dataclass(frozen=True)
class SampleFiles:
    """The result files of one sample (a path each; ``None`` where not used).

    Attributes
    ----------
    status : pathlib.Path, optional
        ``status.json`` (:class:`cikflow.io.status.SampleStatus`).
    gates, populations, flags : pathlib.Path, optional
        ``gates.tsv``, ``populations.tsv``, ``flags.tsv``.
    plots : pathlib.Path, optional
        ``plots.json`` (gate plots, cluster map, report panels).
    gatingml : pathlib.Path, optional
        ``gates.xml``, the gates applied as GatingML 2.0.
    clusters, concordance, markers : pathlib.Path, optional
        ``clusters.tsv``, ``concordance.tsv``, ``markers.tsv.gz``. When the
        gate step is given ``clusters``, it clusters the sample itself; the
        workflow leaves that to the sample's report job (:func:`~cikflow.steps.cluster_and_report`).
    gate_populations, gate_flags : pathlib.Path, optional
        ``gate_populations.tsv`` and ``gate_flags.tsv``: the gate step's rows,
        before the clustering adds its own (``populations``, ``flags``).
    base : pathlib.Path, optional
        ``base_events.npz``: the base events, their gate membership and the
        gates' fitted dividers, from which the sample is clustered.
    clustering : pathlib.Path, optional
        ``clustering.json``: the clustering record, its flags and the cluster map
        (in ``status.json`` and ``plots.json`` when the gate step clustered; the
        gate step never writes it, the reports read it where it exists).
    events : pathlib.Path, optional
        ``events.tsv.gz``, per-event gate membership (written only when set).
    """

    status: Path | None = None
    gates: Path | None = None
    populations: Path | None = None
    flags: Path | None = None
    plots: Path | None = None
    gatingml: Path | None = None
    clusters: Path | None = None
    concordance: Path | None = None
    markers: Path | None = None
    gate_populations: Path | None = None
    gate_flags: Path | None = None
    base: Path | None = None
    clustering: Path | None = None
    events: Path | None = None

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))

    @classmethod
    def in_folder(cls, folder: str | Path, *, events: bool = False) -> SampleFiles:
        """The default file names in a sample's folder.

        Parameters
        ----------
        folder : str or pathlib.Path
            The sample's result folder (``results/samples/<sample>``).
        events : bool
            Also name ``events.tsv.gz``.

        Returns
        -------
        SampleFiles
            Every file in ``folder``.
        """
        d = Path(folder)
        return cls(
            status=d / "status.json",
            gates=d / "gates.tsv",
            populations=d / "populations.tsv",
            flags=d / "flags.tsv",
            plots=d / "plots.json",
            gatingml=d / "gates.xml",
            clusters=d / "clusters.tsv",
            concordance=d / "concordance.tsv",
            markers=d / "markers.tsv.gz",
            clustering=d / "clustering.json",
            events=d / "events.tsv.gz" if events else None,
        )


def sample_files(
    samples: Sequence[str | Path | SampleFiles] | None = None,
    **paths: Sequence[str | Path],
) -> list[SampleFiles]:
    """Every sample's files, from folders or from one list of paths per file.

    Parameters
    ----------
    samples : sequence of str, pathlib.Path or SampleFiles, optional
        Sample folders (default names) or :class:`SampleFiles`.
    **paths : sequence of str or pathlib.Path
        Otherwise, one list per file (``status=[…], flags=[…]``), in the same
        sample order.

    Returns
    -------
    list of SampleFiles
        One per sample.
    """
    if samples is not None:
        return [s if isinstance(s, SampleFiles) else SampleFiles.in_folder(s) for s in samples]
    names = list(paths)
    columns = [list(paths[n]) for n in names]
    return [SampleFiles(**dict(zip(names, row, strict=True))) for row in zip(*columns, strict=True)]


def _out_path(explicit: str | Path | None, folder: str | Path | None, name: str) -> Path:
    """The explicit path, or the default name in the output folder."""
    if explicit is not None:
        return Path(explicit)
    if folder is None:
        raise TypeError(f"give out_dir or the path of {name}")
    return Path(folder) / name
