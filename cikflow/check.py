"""Check a run's inputs against each other before any analysis, in seconds.

``cikflow check`` (and the workflow at start) reads the configuration, the sample sheet,
the gating template and the release specification, then only the *keywords* of every
FCS file (no event data), and says what would fail: a template marker that no file
carries (a typo, or a panel without it: an error), a marker missing from some files (those
samples will fail: a warning), a release criterion on a metric the template does not give.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cikflow.exceptions import CikflowError, MissingMarkerError
from cikflow.panel import merge_aliases, resolve_panel

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

    from cikflow.gating.template import Template

__all__ = ["CheckProblem", "check_files", "check_inputs", "marker_problems"]


@dataclass(frozen=True)
class CheckProblem:
    """One thing a check found.

    Attributes
    ----------
    where : str
        The file (FCS, sheet, template, spec) the problem is in or about.
    message : str
        What is wrong, and what to do.
    fatal : bool
        True: the run cannot give results (stops before any job); False: some samples
        will fail, the rest go on.
    """

    where: str
    message: str
    fatal: bool

    def __str__(self) -> str:
        return f"{'error' if self.fatal else 'warning'}: {self.where}: {self.message}"


def _norm(text: str) -> str:
    return "".join(text.split()).casefold()


def _suggest(marker: str, labels: Sequence[str]) -> str:
    """' (did you mean 'X'?)' from the files' $PnS labels, or ''.

    The nearest label by :class:`difflib.SequenceMatcher` ratio (at least 0.6), where a
    label with the same characters (a transposition: CD61 for CD16) ranks first.

    Examples
    --------
    >>> _suggest("CD61", ["CD3", "CD16", "CD56"]), _suggest("CD57", ["CD3", "CD56"])
    (" (did you mean 'CD16'?)", " (did you mean 'CD56'?)")
    """
    want = _norm(marker)
    scored = []
    for label in labels:
        norm = _norm(label)
        if not norm:
            continue
        ratio = difflib.SequenceMatcher(None, want, norm).ratio()
        if ratio >= 0.6:
            scored.append((sorted(norm) == sorted(want), ratio, label))
    return f" (did you mean '{max(scored)[2]}'?)" if scored else ""


def marker_problems(
    *,
    dims: Sequence[str],
    panels: Mapping[str, tuple[Sequence[str], Sequence[str]]],
    aliases: Mapping[str, Sequence[str]] | None = None,
    overrides: Mapping[str, str] | None = None,
    template: str = "template",
) -> list[CheckProblem]:
    """Template dimensions that files lack, as :class:`CheckProblem` (see module docs).

    Parameters
    ----------
    dims : sequence of str
        Dimensions the template's gates use (markers or detectors).
    panels : mapping of str to (pnn, pns)
        File name → its $PnN and $PnS labels in channel order.
    aliases, overrides : mapping, optional
        The panel configuration (:func:`cikflow.panel.resolve_panel`).
    template : str
        Template name or path, for the messages.

    Examples
    --------
    >>> panels = {"a.fcs": (["FL1-A", "FL2-A"], ["CD3", "CD56"]),
    ...           "b.fcs": (["FL1-A", "FL2-A"], ["CD3", "CD56"])}
    >>> [str(p) for p in marker_problems(dims=["CD3", "CD57"], panels=panels)]
    ["error: template: marker 'CD57' is in none of the 2 files (did you mean 'CD56'?); \
fix the template or add an alias under 'panel.aliases' (or 'aliases:' in the template)"]
    """
    missing: dict[str, list[str]] = {}
    several: list[CheckProblem] = []
    for name, (pnn, pns) in panels.items():
        for dim in dims:
            try:
                resolve_panel(
                    [dim], pnn=pnn, pns=pns, aliases=aliases, overrides=overrides, source=name
                )
            except MissingMarkerError as exc:
                if exc.absent:
                    missing.setdefault(dim, []).append(name)
                else:
                    message = str(exc).removeprefix(f"{name}: ")
                    several.append(CheckProblem(name, message, fatal=False))
    labels = sorted({s for _, pns in panels.values() for s in pns if s.strip()})
    problems: list[CheckProblem] = []
    for dim, files in missing.items():
        if len(files) == len(panels):
            hint = _suggest(dim, labels)
            problems.append(
                CheckProblem(
                    template,
                    f"marker '{dim}' is in none of the {len(files)} files{hint}; fix the "
                    "template or add an alias under 'panel.aliases' (or 'aliases:' in the "
                    "template)",
                    fatal=True,
                )
            )
        else:
            problems.extend(
                CheckProblem(
                    name,
                    f"marker '{dim}' (template {template}) is not in this file's panel; "
                    "this sample will fail",
                    fatal=False,
                )
                for name in files
            )
    return problems + several


def check_files(
    *,
    sheet: pd.DataFrame,
    template: Template,
    panel: Mapping[str, Any] | None = None,
    base_dir: str | Path = ".",
    label: str | None = None,
) -> list[CheckProblem]:
    """Every sheet file's panel (keywords only) against the template's markers.

    Parameters
    ----------
    sheet : pandas.DataFrame
        The validated sample sheet (its ``fcs`` column).
    template : Template
        The gating template; GatingML and FlowJo templates (gates on detector names)
        are not checked.
    panel : mapping, optional
        The configuration's ``panel`` section (``aliases``, ``overrides``).
    base_dir : str or pathlib.Path
        Folder the sheet's relative paths start from.
    label : str, optional
        How messages name the template (its path); default its name.

    Returns
    -------
    list of CheckProblem
        Fatal problems first. Files not there yet (the demo's, made on first run) are
        left to the run, which names a missing file as that sample's failure.
    """
    from cikflow.gating.template import template_dimensions
    from cikflow.io.keywords import read_panel

    if template.kind != "yaml":
        return []
    problems: list[CheckProblem] = []
    panels: dict[str, tuple[list[str], list[str]]] = {}
    for fcs in sheet["fcs"].astype(str):
        path = Path(base_dir) / fcs
        if not path.is_file():
            continue
        try:
            panels[fcs] = read_panel(path)
        except Exception as exc:  # fcsparser raises many types; all mean "unreadable"
            message = f"unreadable keywords ({exc}); this sample will fail"
            problems.append(CheckProblem(fcs, message, fatal=False))
    panel = panel or {}
    if panels:
        problems.extend(
            marker_problems(
                dims=template_dimensions(template),
                panels=panels,
                aliases=merge_aliases(template.aliases, panel.get("aliases")),
                overrides=panel.get("overrides"),
                template=label or template.name,
            )
        )
    return sorted(problems, key=lambda p: not p.fatal)


def check_inputs(config: Mapping[str, Any], *, base_dir: str | Path = ".") -> list[CheckProblem]:
    """Check sheet, template, release spec and every FCS file's panel of a configuration.

    Parameters
    ----------
    config : mapping
        A validated configuration (:func:`cikflow.io.config.read_config`).
    base_dir : str or pathlib.Path
        Folder the configuration's relative paths start from (the workflow's directory).

    Returns
    -------
    list of CheckProblem
        Fatal problems first; empty when all is well.
    """
    from cikflow.io import read_template
    from cikflow.io.release import read_release_spec
    from cikflow.io.samplesheet import read_sample_sheet
    from cikflow.release import spec_problems

    base = Path(base_dir)
    try:
        sheet = read_sample_sheet(base / config["samples"])
        template = read_template(base / config["template"])
        spec = read_release_spec(base / config["release_spec"])
    except CikflowError as exc:
        return [CheckProblem(type(exc).__name__, str(exc), fatal=True)]
    problems = []
    if template.populations:
        bead = config.get("counts", {}).get("bead_population", "beads")
        problems = [
            CheckProblem(str(config["release_spec"]), message, fatal=True)
            for message in spec_problems(
                spec, populations=list(template.populations), bead_population=bead
            )
        ]
    files = check_files(
        sheet=sheet,
        template=template,
        panel=config.get("panel"),
        base_dir=base,
        label=str(config["template"]),
    )
    return sorted(problems + files, key=lambda p: not p.fatal)
