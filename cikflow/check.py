"""Check a run's inputs against each other before any analysis, in seconds.

``cikflow check`` (and the workflow at start) reads the configuration, the sample sheet,
the gating template and the release specification, then only the *keywords* of every
FCS file (no event data), and says what would fail: a template marker that no file
carries (a typo, or a panel without it: an error), a marker missing from some files (those
samples will fail: a warning), a release criterion on a metric the template does not give,
a ``clustering.markers`` entry the template has no dimension for (or a gate below the base on
a marker not clustered): :func:`check_clustering_markers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cikflow.exceptions import CikflowError, ConfigError, MissingMarkerError
from cikflow.panel import merge_aliases, resolve_panel

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

    from cikflow.gating.template import Template

__all__ = [
    "CheckProblem",
    "check_clustering_markers",
    "check_files",
    "check_inputs",
    "marker_problems",
]


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


def _edit_distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) that turn ``a`` into ``b``.

    Written here because difflib ranks by shared characters, so for short markers it
    finds 'CD69' as near to 'CD56' as 'CD57' is; no dependency of the project offers
    an edit distance.

    Examples
    --------
    >>> [_edit_distance("cd57", b) for b in ("cd56", "cd75", "cd69")]
    [1, 1, 2]
    """
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, prev2[j - 2] + 1)
            row.append(cost)
        prev2, prev = prev, row
    return prev[-1]


def _digits(text: str) -> list[str]:
    return sorted(c for c in text if c.isdigit())


def _suggest(marker: str, labels: Sequence[str]) -> str:
    """' (did you mean 'X'?)' for the label one edit away (two for long names), or ''.

    The label must have the same digits: CD57 and CD56 are different molecules, one
    edit apart, and nothing tells a typo from a panel without the marker; CD61 for
    CD16 (a swap) or NK1/1 for NK1.1 keep their digits.

    Examples
    --------
    >>> _suggest("CD61", ["CD3", "CD16", "CD56"]), _suggest("Viabilty", ["CD3", "Viability"])
    (" (did you mean 'CD16'?)", " (did you mean 'Viability'?)")
    >>> _suggest("CD57", ["CD3", "CD56", "CD69"])
    ''
    """
    want = _norm(marker)
    limit = 1 if len(want) < 8 else 2
    scored = sorted(
        (_edit_distance(want, _norm(label)), label)
        for label in labels
        if _norm(label) and _digits(_norm(label)) == _digits(want)
    )
    return f" (did you mean '{scored[0][1]}'?)" if scored and scored[0][0] <= limit else ""


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
    >>> panels = {"a.fcs": (["FL1-A", "FL2-A"], ["CD3", "CD16"]),
    ...           "b.fcs": (["FL1-A", "FL2-A"], ["CD3", "CD16"])}
    >>> [str(p) for p in marker_problems(dims=["CD3", "CD61"], panels=panels)]
    ["error: template: marker 'CD61' is in none of the 2 files (did you mean 'CD16'?); \
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
    # a label another template marker already stands for is no candidate (CD16 for CD56)
    taken = {_norm(n) for d in dims for n in (d, *(aliases or {}).get(d, ()))}
    labels = sorted({s for _, pns in panels.values() for s in pns if _norm(s) not in taken})
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


def check_clustering_markers(
    clustering: Mapping[str, Any] | None, *, template: Template, label: str | None = None
) -> None:
    """The cluster second opinion's markers against the template, before any job.

    Every ``clustering.markers`` entry must be a dimension of the template's gates,
    and every gate below the template's base must use clustered markers only.

    Parameters
    ----------
    clustering : mapping, optional
        The configuration's ``clustering`` section; without ``markers``, the default
        (:data:`cikflow.clustering.CLUSTERING_DEFAULTS`: CD3, CD16, CD56).
    template : Template
        The gating template; GatingML and FlowJo templates (not clustered) pass.
    label : str, optional
        How the message names the template (its path); default its name.

    Raises
    ------
    ConfigError
        Naming the marker the template lacks and the dimensions it has, or the gate
        below the base and the marker it uses that is not clustered.

    Examples
    --------
    >>> from cikflow.gating.template import Template
    >>> spec = {"base": "NK", "gates": [{"name": "NK", "parent": "root", "type": "range",
    ...                                  "dimensions": {"NK1.1": {"min": 1000, "max": None}}}]}
    >>> t = Template(name="mouse", version="1", kind="yaml", spec=spec)
    >>> check_clustering_markers({"markers": ["NK1.1"]}, template=t)
    >>> try:
    ...     check_clustering_markers({"markers": ["CD3", "NK1.1"]}, template=t)
    ... except ConfigError as exc:
    ...     print(str(exc).split(";")[0])
    clustering.markers: 'CD3' is not a dimension of template 'mouse' (it has NK1.1)
    """
    from cikflow.clustering import CLUSTERING_DEFAULTS
    from cikflow.gating.model import from_spec, identity_scale
    from cikflow.gating.template import template_dimensions

    if template.kind != "yaml":
        return
    name = label or template.name
    markers = [str(m) for m in (clustering or {}).get("markers") or CLUSTERING_DEFAULTS["markers"]]
    dims = template_dimensions(template)
    for marker in markers:
        if marker not in dims:
            raise ConfigError(
                f"clustering.markers: '{marker}' is not a dimension of template '{name}' "
                f"(it has {', '.join(dims)}); set clustering.markers in the configuration "
                "to the template's markers"
            )
    below = {template.base}
    for spec in template.spec.get("gates", []):
        if spec["parent"] not in below:
            continue
        gate = from_spec(spec, scale=identity_scale)
        below.update([gate.name, *(pop for pop, _ in gate.populations())])
        absent = [d for d in gate.dims if d not in markers]
        if absent:
            raise ConfigError(
                f"clustering.markers ({', '.join(markers)}) lack '{absent[0]}', used by gate "
                f"'{gate.name}' below the base of template '{name}'; add it to "
                "clustering.markers in the configuration"
            )


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
    populations = template.reported
    if populations:
        bead = config.get("counts", {}).get("bead_population", "beads")
        problems = [
            CheckProblem(str(config["release_spec"]), message, fatal=True)
            for message in spec_problems(spec, populations=populations, bead_population=bead)
        ]
    files = check_files(
        sheet=sheet,
        template=template,
        panel=config.get("panel"),
        base_dir=base,
        label=str(config["template"]),
    )
    try:  # after the panel check, so that a marker typo is named first, with its hint
        check_clustering_markers(
            config.get("clustering"), template=template, label=str(config["template"])
        )
    except ConfigError as exc:
        files.append(CheckProblem(str(config["template"]), str(exc), fatal=True))
    return sorted(problems + files, key=lambda p: not p.fatal)
