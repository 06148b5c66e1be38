"""Read a FlowJo 10 workspace (.wsp) as a gating template, and the counts FlowJo stored in it.

flowkit's :func:`flowkit.parse_wsp` does the parsing: it turns each sample's gate
tree into a GatingStrategy with that sample's compensation and transforms (FlowJo
keeps gates untransformed; flowkit converts them to GatingML's transformed scale).
FlowJo keeps gates per sample, and a sample group's own gate list may be empty
(every gate adjusted per sample, as in ``flowjo-wsp-coereba/CytoML.wsp``), so a
template is made from the group's samples: the first sample's gates are the
template gates, and every sample's own gates are custom sample gates under its
name (see :func:`cikflow.gating.concrete.merge_strategies`).

flowkit does not read the event counts FlowJo stores with each population;
:func:`read_flowjo_counts` reads them (``Population/@count``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from cikflow.exceptions import CikflowError, GatingTemplateError
from cikflow.gating.concrete import merge_strategies
from cikflow.gating.template import Template

__all__ = ["FLOWJO_COUNT_COLUMNS", "read_flowjo_counts", "read_flowjo_template"]

#: columns of :func:`read_flowjo_counts`
FLOWJO_COUNT_COLUMNS = ["sample", "gate", "gate_path", "count"]
#: FlowJo's group holding every sample of a workspace
ALL_SAMPLES = "All Samples"


def _uri_name(uri: str | None) -> str | None:
    """File name in a FlowJo ``DataSet/@uri`` (``file:/C:/x/y.fcs`` → ``y.fcs``)."""
    if not uri:
        return None
    return PurePosixPath(unquote(urlparse(uri).path).replace("\\", "/")).name or None


def _aliases(name: str, uri: str | None) -> list[str]:
    """IDs a sample may be gated under: its FlowJo name, file name and their stems."""
    keys = [name, Path(name).stem]
    file_name = _uri_name(uri)
    if file_name:
        keys += [file_name, Path(file_name).stem]
    return list(dict.fromkeys(k for k in keys if k and k != name))


def read_flowjo_template(
    path: str | Path,
    *,
    group: str = ALL_SAMPLES,
    sample: str | None = None,
) -> Template:
    """Read the gates of a FlowJo 10 workspace as a template.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.wsp`` file.
    group : str
        Sample group whose samples' gates make the template.
    sample : str, optional
        Take only this sample's gates (its FlowJo name, usually the FCS file
        name) as the template, for every file; ``group`` is then ignored.

    Returns
    -------
    Template
        Kind ``"gatingml"`` (the gates are GatingML 2.0 gates on detector names,
        gated by :func:`cikflow.gating.gate_fcs` like a GatingML template).
        Its ``strategy`` gates a file whose flowkit Sample ID (by default the
        file stem, see :func:`cikflow.io.read_fcs`) is a workspace sample's name,
        file name or file stem with that sample's own gates, compensation and
        transforms; any other file with the first sample's.

    Raises
    ------
    GatingTemplateError
        The file is not a FlowJo 10 workspace flowkit can read, the group or
        sample does not exist or has no gates, or the group's samples have
        different gate trees (then pass ``sample``).
    """
    import flowkit as fk

    path = Path(path)
    if not path.is_file():
        raise GatingTemplateError(f"{path}: gating template not found")
    raw = path.read_bytes()
    try:
        wsp = fk.parse_wsp(str(path))
    except Exception as exc:  # flowkit raises plain errors on any defect
        raise GatingTemplateError(
            f"{path.name}: not a FlowJo 10 workspace flowkit can read ({type(exc).__name__}: {exc})"
        ) from exc
    samples: dict[str, Any] = wsp["samples"]
    if sample is not None:
        if sample not in samples:
            raise GatingTemplateError(
                f"{path.name}: no sample '{sample}' (samples: {', '.join(sorted(samples))})"
            )
        names = [sample]
    else:
        if group not in wsp["groups"]:
            raise GatingTemplateError(
                f"{path.name}: no sample group '{group}' "
                f"(groups: {', '.join(sorted(wsp['groups']))})"
            )
        names = [n for n in wsp["groups"][group]["samples"] if n in samples]
    names = [n for n in names if samples[n]["gating_strategy"].get_gate_ids()]
    if not names:
        where = f"sample '{sample}'" if sample is not None else f"group '{group}'"
        raise GatingTemplateError(f"{path.name}: {where} has no gates")
    try:
        strategy = merge_strategies(
            {n: samples[n]["gating_strategy"] for n in names},
            aliases={n: _aliases(n, samples[n].get("sample_uri")) for n in names},
        )
    except CikflowError as exc:
        raise GatingTemplateError(f"{path.name}: {exc}") from exc
    return Template(
        name=path.stem,
        version="",
        kind="gatingml",
        spec={},
        sha256=hashlib.sha256(raw).hexdigest(),
        strategy=strategy,
    )


def read_flowjo_counts(path: str | Path) -> pd.DataFrame:
    """The event counts FlowJo stored for every sample and gate of a workspace.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.wsp`` file.

    Returns
    -------
    pandas.DataFrame
        One row per sample and gate, columns :data:`FLOWJO_COUNT_COLUMNS`:
        ``sample`` (FlowJo sample name), ``gate``, ``gate_path`` (``root/…/gate``,
        as in cikflow's gate tables) and ``count`` (events; -1 where FlowJo
        stored none).

    Raises
    ------
    GatingTemplateError
        The file is missing or not XML.
    """
    from lxml import etree

    path = Path(path)
    try:
        doc = etree.parse(str(path))
    except (OSError, etree.XMLSyntaxError) as exc:
        raise GatingTemplateError(f"{path.name}: not a readable workspace ({exc})") from exc
    rows: list[dict[str, Any]] = []
    tags = {"Population", "AndNode", "OrNode", "NotNode"}

    def walk(el: Any, sample: str, parents: tuple[str, ...]) -> None:
        subs = el.find("Subpopulations")
        if subs is None:
            return
        for child in subs:
            if child.tag not in tags:
                continue
            name = child.get("name")
            rows.append(
                {
                    "sample": sample,
                    "gate": name,
                    "gate_path": "/".join((*parents, name)),
                    "count": int(child.get("count", "-1")),
                }
            )
            walk(child, sample, (*parents, name))

    for node in doc.getroot().iterfind("SampleList/Sample/SampleNode"):
        walk(node, node.get("name"), ("root",))
    return pd.DataFrame(rows, columns=FLOWJO_COUNT_COLUMNS)
