"""What the batch record states beside the results: its header and the MIFlowCyt annex.

Both are built from what the batch report already reads, the summary's and the
release's provenance records and every sample's ``status.json`` (with one
``gates.tsv`` per gating template for the gate hierarchy); no HTML here, the page
template lays them out. Every string is passed on as it came, to be escaped there.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping, Sequence

    import pandas as pd

__all__ = ["miflowcyt_annex", "record_header"]

#: software whose version the annex names (as the provenance record spells them)
ANNEX_SOFTWARE = ("cikflow", "flowkit", "flowio", "numpy", "scikit-learn", "python")


def _templates(
    statuses: Sequence[Mapping[str, Any]], provenance: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Each gating template the samples were gated with (name, version, path, SHA-256)."""
    found: dict[str, dict[str, Any]] = {}
    for s in statuses:
        t = (s.get("provenance") or {}).get("template") or {}
        if t.get("sha256"):
            entry = found.setdefault(t["sha256"], {**t, "samples": []})
            entry["samples"].append(str(s["sample"]))
    if not found:  # every sample failed before gating: the summary's template input
        t = (provenance.get("inputs") or {}).get("template") or {}
        if t.get("sha256"):
            found[t["sha256"]] = {"name": "", "version": "", **t, "samples": []}
    return [
        {k: str(t.get(k) or "") for k in ("name", "version", "path", "sha256")}
        | {"samples": t["samples"]}
        for t in found.values()
    ]


def record_header(
    provenance: Mapping[str, Any],
    *,
    statuses: Sequence[Mapping[str, Any]],
    generated: dt.datetime,
    release_provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The facts the batch record opens with and repeats on every printed page.

    Parameters
    ----------
    provenance : mapping
        The summary's provenance record (versions, config hash, inputs).
    statuses : sequence of mapping
        Every sample's ``status.json``.
    generated : datetime.datetime
        When the analysis was reported (the analysis date).
    release_provenance : mapping, optional
        The release table's provenance record (its ``release_spec``).

    Returns
    -------
    dict
        ``analysis_date`` (``YYYY-MM-DD HH:MM`` and the zone), ``version`` (cikflow's),
        ``config_sha256``, ``templates`` (name, version, path, SHA-256, samples) and
        ``release_spec`` (name, version, path, SHA-256; None without a release).

    Examples
    --------
    >>> import datetime as dt
    >>> when = dt.datetime(2026, 1, 2, 9, 30, tzinfo=dt.UTC)
    >>> h = record_header({"versions": {"cikflow": "0.1.0"}}, statuses=[], generated=when)
    >>> h["analysis_date"], h["version"], h["templates"], h["release_spec"]
    ('2026-01-02 09:30 UTC', '0.1.0', [], None)
    """
    spec = (release_provenance or {}).get("release_spec")
    return {
        "analysis_date": generated.strftime("%Y-%m-%d %H:%M %Z").strip(),
        "version": str((provenance.get("versions") or {}).get("cikflow", "unknown")),
        "config_sha256": str(provenance.get("config_sha256") or ""),
        "templates": _templates(statuses, provenance),
        "release_spec": (
            {k: str(spec.get(k) or "") for k in ("name", "version", "path", "sha256")}
            if spec
            else None
        ),
    }


def _transform_text(transform: Mapping[str, Any] | None) -> str:
    """A transform as ``logicle (t=262144, w=0.5, m=4.5, a=0)``; empty when none."""
    if not transform:
        return ""
    params = ", ".join(f"{k}={v}" for k, v in transform.items() if k != "type")
    return f"{transform.get('type', '')} ({params})" if params else str(transform.get("type", ""))


def _panel_channels(status: Mapping[str, Any]) -> list[dict[str, str]]:
    """One sample's channels: detector ($PnN), label ($PnS), marker gated on, transform."""
    markers = {det: dim for dim, det in (status.get("panel") or {}).items() if dim != det}
    transforms = status.get("transforms") or {}
    dims = {det: dim for dim, det in (status.get("panel") or {}).items()}
    pns = status.get("pns") or {det: "" for det in dims}
    return [
        {
            "pnn": str(det),
            "pns": str(label),
            "marker": markers.get(det, ""),
            "transform": _transform_text(transforms.get(dims.get(det, ""))),
        }
        for det, label in pns.items()
    ]


def _panels(statuses: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The analysed samples grouped by identical channels (one table per panel)."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for s in statuses:
        if s.get("status") != "ok" or not s.get("panel"):
            continue
        channels = _panel_channels(s)
        key = tuple(tuple(c.values()) for c in channels)
        groups.setdefault(key, {"channels": channels, "samples": []})["samples"].append(
            str(s["sample"])
        )
    return list(groups.values())


def _hierarchy(gates: pd.DataFrame | None) -> list[dict[str, Any]]:
    """One sample's gates in template order: name, depth below the root, type, parent."""
    if gates is None or gates.empty:
        return []
    return [
        {
            "gate": str(r["gate"]),
            "depth": max(str(r["gate_path"]).count("/") - 1, 0),
            "type": str(r.get("gate_type", "")),
            "parent": str(r.get("parent", "")),
        }
        for r in gates.to_dict("records")
    ]


def _counted(values: Sequence[Any]) -> str:
    """Distinct values with how many samples have each: ``a (3); b (1)``."""
    return "; ".join(f"{v} ({n})" for v, n in Counter(str(v) for v in values if v).items())


def miflowcyt_annex(
    statuses: Sequence[Mapping[str, Any]],
    *,
    provenance: Mapping[str, Any],
    gates: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """The run described after MIFlowCyt (Lee et al. 2008, Cytometry A 73:926).

    Parameters
    ----------
    statuses : sequence of mapping
        Every sample's ``status.json`` (instrument, ``pns``, panel, transforms, fits).
    provenance : mapping
        The summary's provenance record (software versions).
    gates : mapping of str to pandas.DataFrame, optional
        Template SHA-256 → one of its samples' ``gates.tsv`` (the gate hierarchy).

    Returns
    -------
    dict
        ``overview`` and ``data`` (lists of ``(field, value)``), ``instruments``,
        ``panels`` (channels and the samples measured with them), ``software``,
        ``gating`` (per template: name, version, SHA-256, hierarchy, fits).

    Examples
    --------
    >>> a = miflowcyt_annex([], provenance={"versions": {"cikflow": "0.1.0"}})
    >>> a["software"], a["panels"], a["gating"]
    ([('cikflow', '0.1.0')], [], [])
    """
    analysed = [s for s in statuses if s.get("status") == "ok"]
    versions = provenance.get("versions") or {}
    days = sorted({s.get("day") for s in statuses if isinstance(s.get("day"), int | float)})
    overview = [
        ("purpose", "quality control of cytokine-induced killer (CIK) cell products"),
        ("batches", ", ".join(sorted({str(s["batch"]) for s in statuses}))),
        ("culture days", ", ".join(f"{d:g}" for d in days)),
        (
            "samples",
            f"{len(statuses)} ({len(analysed)} analysed, {len(statuses) - len(analysed)} failed)",
        ),
    ]
    dates = sorted({str(s.get("acquisition_date")) for s in analysed if s.get("acquisition_date")})
    data = [
        ("acquisition dates ($DATE)", ", ".join(dates)),
        ("FCS versions", _counted([s.get("fcs_version") for s in analysed])),
        ("compensation", _counted([s.get("compensation") for s in analysed])),
        ("events per file", _events_range(analysed)),
    ]
    fits: dict[str, list[tuple[str, str]]] = {}
    for s in analysed:
        sha = ((s.get("provenance") or {}).get("template") or {}).get("sha256", "")
        done = [(str(f["gate"]), str(f.get("method") or "")) for f in s.get("fits") or []]
        fits.setdefault(sha, done)
    gating = [
        {
            **t,
            "hierarchy": _hierarchy((gates or {}).get(t["sha256"])),
            "fits": fits.get(t["sha256"], []),
        }
        for t in _templates(statuses, provenance)
    ]
    return {
        "overview": overview,
        "data": data,
        "instruments": _counted([s.get("instrument") for s in analysed]),
        "panels": _panels(statuses),
        "software": [(name, str(versions[name])) for name in ANNEX_SOFTWARE if name in versions],
        "gating": gating,
    }


def _events_range(statuses: Sequence[Mapping[str, Any]]) -> str:
    """The smallest and largest event count of the files read."""
    events = [int(s["events"]) for s in statuses if isinstance(s.get("events"), int)]
    if not events:
        return ""
    return f"{min(events):,} – {max(events):,}"
