"""Marker → detector mapping of one file, from its $PnS labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cikflow.exceptions import MissingMarkerError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["merge_aliases", "resolve_panel"]


def _norm(text: str) -> str:
    return "".join(text.split()).casefold()


def merge_aliases(
    *sources: Mapping[str, Sequence[str]] | None,
) -> dict[str, list[str]]:
    """Union of several marker → alias mappings (a template's, then the config's).

    Examples
    --------
    >>> merge_aliases({"NK1.1": ["NK1/1"]}, {"NK1.1": ["NK-1.1"], "Viability": ["7-AAD"]})
    {'NK1.1': ['NK1/1', 'NK-1.1'], 'Viability': ['7-AAD']}
    """
    out: dict[str, list[str]] = {}
    for source in sources:
        for marker, names in (source or {}).items():
            known = out.setdefault(marker, [])
            known.extend(n for n in names if n not in known)
    return out


def resolve_panel(
    dims: Sequence[str],
    *,
    pnn: Sequence[str],
    pns: Sequence[str],
    aliases: Mapping[str, Sequence[str]] | None = None,
    overrides: Mapping[str, str] | None = None,
    source: str = "file",
) -> dict[str, str]:
    """Map template dimensions (markers or detectors) to a file's detectors ($PnN).

    A dimension resolves, in this order, to: the detector given in ``overrides``;
    the detector whose $PnN equals it (scatter, Time, or a template written in
    detector names); the detector whose $PnS equals it or one of its
    ``aliases`` (case and white space ignored).

    Parameters
    ----------
    dims : sequence of str
        Dimension names the template uses.
    pnn, pns : sequence of str
        The file's detector and marker labels, in channel order.
    aliases : mapping of str to sequence of str, optional
        Other $PnS spellings per marker, e.g. ``{"Viability": ["7-AAD", "L/D"]}``.
    overrides : mapping of str to str, optional
        Marker → $PnN, for files whose $PnS is missing or wrong.
    source : str
        File name, for error messages.

    Returns
    -------
    dict of str to str
        Dimension → $PnN.

    Raises
    ------
    MissingMarkerError
        A dimension matches no detector, or matches several.

    Examples
    --------
    >>> resolve_panel(["FSC-A", "CD3", "Viability"], pnn=["FSC-A", "FL1-A", "FL3-A"],
    ...               pns=["", "CD3 ", "7-AAD"], aliases={"Viability": ["7-AAD"]})
    {'FSC-A': 'FSC-A', 'CD3': 'FL1-A', 'Viability': 'FL3-A'}
    """
    aliases = aliases or {}
    overrides = overrides or {}
    out: dict[str, str] = {}
    for dim in dims:
        if dim in overrides:
            if overrides[dim] not in pnn:
                raise MissingMarkerError(
                    f"{source}: panel override {dim} -> '{overrides[dim]}' names no detector "
                    f"of the file (detectors: {', '.join(pnn)})",
                    absent=False,
                )
            out[dim] = overrides[dim]
            continue
        if dim in pnn:
            out[dim] = dim
            continue
        wanted = {_norm(dim), *(_norm(a) for a in aliases.get(dim, ()))}
        hits = [n for n, s in zip(pnn, pns, strict=True) if s and _norm(s) in wanted]
        if len(hits) == 1:
            out[dim] = hits[0]
        elif not hits:
            shown = ", ".join(f"{n}={s}" for n, s in zip(pnn, pns, strict=True) if s) or "none"
            raise MissingMarkerError(
                f"{source}: marker '{dim}' needed by the gating template is not in the panel "
                f"($PnS labels: {shown}); add an alias or override under 'panel' in the config"
            )
        else:
            raise MissingMarkerError(
                f"{source}: marker '{dim}' matches several detectors ({', '.join(hits)}); "
                "set a panel override in the config",
                absent=False,
            )
    return out
