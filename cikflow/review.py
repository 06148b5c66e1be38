"""Reviewer corrections: per-sample gate overrides and accepted flags.

A reviewer acts on one sample without touching the template: an entry of the
overrides file (``overrides:`` in ``config/config.yaml``) either sets a gate's
coordinates for that sample, with the fields the template uses for that gate kind,
or accepts flags a gate raised, or both; each with a reason and an author.

.. code-block:: yaml

    - sample: B01_d14
      gate: cd3_cd56
      set: {x: {at: 2000}}        # CD3 divider at 2000 (data units); CD56 refitted per side
      reason: "CD3 valley shallow; set at the CD3-dim shoulder as on days 7 and 21"
      by: "AB"
    - sample: B02_d07
      gate: viable
      accept_flags: [no_valley]   # keep the fitted gate, mark these flags as reviewed
      reason: "bimodal by eye; fallback acceptable"
      by: "AB"

Settable fields per gate kind (data units, like the template): ``range`` and
``rectangle``: ``dimensions`` (``{CD16: {min: 2000}}``; a bound not given keeps
its value); ``polygon``: ``vertices``; ``quadrant``: ``x`` and ``y``, each
``{at: value}`` (``y`` of a per-side quadrant: one value for both sides, or
``{"-": …, "+": …}``). A quadrant whose ``x`` alone is set keeps its ``y`` fitted,
within the sides of the new ``x``. An accepted flag stays in every table and
report, marked with who accepted it and why, and no longer makes the sample
review-required.

Pure computation; reading the file is :func:`cikflow.io.read_overrides`.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from cikflow.exceptions import GatingTemplateError
from cikflow.gating.template import apply_set, settable_fields

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import pandas as pd

    from cikflow.gating.template import Template

__all__ = [
    "ACCEPTED_COLUMNS",
    "Override",
    "apply_set",
    "for_sample",
    "mark_accepted",
    "needs_review",
    "override_problems",
    "set_text",
    "settable_fields",
    "with_covers",
]

#: columns a flag table gains: who accepted the flag, and why (empty: not accepted)
ACCEPTED_COLUMNS = ["accepted_by", "accepted_reason"]


@dataclass(frozen=True)
class Override:
    """One reviewer entry of the overrides file.

    Attributes
    ----------
    sample, gate : str
        The sample (sheet ID) and the template gate it applies to.
    reason, by : str
        Why, and who (initials or name).
    values : dict
        The ``set`` fields (data units); empty when the entry only accepts flags.
    accept_flags : tuple of str
        Flags of the gate (or of the populations it defines) marked as reviewed.
    entry : int
        Position in the file (1 = first), for messages.
    covers : tuple of str
        The names whose flags ``accept_flags`` matches: the gate and the populations
        it defines (a quadrant's; :func:`with_covers`); the gate alone when empty.
    """

    sample: str
    gate: str
    reason: str
    by: str
    values: dict[str, Any] = field(default_factory=dict)
    accept_flags: tuple[str, ...] = ()
    entry: int = 0
    covers: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        """``entry 2 (sample 'B02_d07', gate 'viable')``: how messages name the entry."""
        return f"entry {self.entry} (sample '{self.sample}', gate '{self.gate}')"

    def as_record(self) -> dict[str, Any]:
        """JSON-ready form (the entry's YAML fields, and ``covers``)."""
        return {
            "sample": self.sample,
            "gate": self.gate,
            "set": copy.deepcopy(self.values),
            "accept_flags": list(self.accept_flags),
            "reason": self.reason,
            "by": self.by,
            "covers": list(self.covers),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, entry: int = 0) -> Override:
        """The entry of :meth:`as_record` (or of the overrides file's YAML)."""
        return cls(
            sample=str(record.get("sample", "")),
            gate=str(record.get("gate", "")),
            reason=str(record.get("reason") or ""),
            by=str(record.get("by") or ""),
            values=copy.deepcopy(dict(record.get("set") or {})),
            accept_flags=tuple(str(f) for f in record.get("accept_flags") or ()),
            entry=entry,
            covers=tuple(str(c) for c in record.get("covers") or ()),
        )


def set_text(values: Mapping[str, Any], *, axes: Sequence[str] = ()) -> str:
    """An entry's ``set`` fields as text; ``axes``: the gate's x and y dimensions.

    >>> set_text({"x": {"at": 2000}, "dimensions": {"CD16": {"min": 900}}})
    'x at 2000; CD16 min 900'
    >>> set_text({"y": {"at": {"-": 500, "+": 900}}}, axes=["CD3", "CD56"])
    'CD56 at {-: 500, +: 900}'
    """
    names = dict(zip(("x", "y"), axes, strict=False))
    parts = []
    for key, value in values.items():
        if key in ("x", "y"):
            at = value["at"]
            if isinstance(at, dict):
                at = "{" + ", ".join(f"{side}: {v}" for side, v in at.items()) + "}"
            parts.append(f"{names.get(key, key)} at {at}")
        elif key == "dimensions":
            parts.extend(
                f"{dim} {bound} {v}" for dim, bounds in value.items() for bound, v in bounds.items()
            )
        else:
            parts.append(f"{key} {value}")
    return "; ".join(parts)


def for_sample(overrides: Iterable[Override], sample: str) -> list[Override]:
    """The entries of one sample, in file order."""
    return [o for o in overrides if o.sample == sample]


def with_covers(overrides: Iterable[Override], *, template: Template) -> list[Override]:
    """The entries with :attr:`Override.covers` set from the template.

    >>> from cikflow.gating.template import Template
    >>> t = Template(name="t", version="1", kind="yaml", spec={"gates": [
    ...     {"name": "q", "parent": "root", "type": "quadrant",
    ...      "x": {"dimension": "CD3", "at": 1}, "y": {"dimension": "CD56", "at": 1},
    ...      "quadrants": {"T": "+-", "CIK": "++", "NK": "-+", "DN": "--"}}]})
    >>> o = Override(sample="s", gate="q", reason="r", by="AB", accept_flags=("x",))
    >>> with_covers([o], template=t)[0].covers
    ('q', 'T', 'CIK', 'NK', 'DN')
    """
    owner = _gate_names(template)[1] if template.kind == "yaml" else {}
    out = []
    for o in overrides:
        pops = [p for p, g in owner.items() if g == o.gate and p != o.gate]
        out.append(replace(o, covers=(o.gate, *pops)))
    return out


def _hint(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'X'?)' for the closest known name, or ''."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _gate_names(template: Template) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Template gates by name, and each population name → the gate that defines it."""
    from cikflow.gating.model import from_spec, identity_scale

    gates = {g["name"]: g for g in template.spec.get("gates", [])}
    owner: dict[str, str] = {}
    for name, spec in gates.items():
        for pop, _ in from_spec(spec, scale=identity_scale).populations():
            owner[pop] = name
    return gates, owner


def _set_problem(gate: Mapping[str, Any], values: Mapping[str, Any]) -> str | None:
    """Why an override's ``set`` does not fit its gate (None if it does)."""
    from cikflow.gating.model import from_spec, identity_scale

    allowed = settable_fields(gate)
    kind = gate["type"]
    for key in values:
        if key not in allowed:
            fields = ", ".join(allowed) or "none (accept_flags only)"
            return f"set: field '{key}' is not one a {kind} gate has (settable: {fields})"
    for axis in ("x", "y"):
        if axis in values and (not isinstance(values[axis], dict) or set(values[axis]) != {"at"}):
            return f"set: field '{axis}' takes {{at: value}} only, not {values[axis]!r}"
    if "dimensions" in values:
        dims = values["dimensions"]
        if not isinstance(dims, dict):
            return "set: field 'dimensions' takes {dimension: {min, max}}"
        for dim, bounds in dims.items():
            if dim not in gate["dimensions"]:
                return (
                    f"set: dimension '{dim}' is not one of the gate's "
                    f"({', '.join(gate['dimensions'])})"
                )
            if not isinstance(bounds, dict) or not set(bounds) <= {"min", "max"}:
                return f"set: dimension '{dim}' takes {{min: value, max: value}}"
    try:
        from_spec(apply_set(gate, values), scale=identity_scale)
    except (GatingTemplateError, KeyError, TypeError, ValueError, IndexError) as exc:
        text = str(exc).removeprefix(f"gate '{gate['name']}': ")
        return f"set: {text}"
    return None


def override_problems(
    overrides: Sequence[Override], *, samples: Sequence[str], template: Template
) -> list[str]:
    """What is wrong with an overrides file against the sheet and the template.

    Parameters
    ----------
    overrides : sequence of Override
        The file's entries.
    samples : sequence of str
        The sample sheet's sample IDs.
    template : Template
        The gating template.

    Returns
    -------
    list of str
        One message per problem, each naming its entry (none when all is well):
        an unknown sample or gate, a ``set`` field the gate kind does not have
        or a value that makes no gate, an empty ``reason`` or ``by``, an entry
        with neither ``set`` nor ``accept_flags``, two entries for one sample's
        gate.

    Examples
    --------
    >>> from cikflow.gating.template import Template
    >>> t = Template(name="t", version="1", kind="yaml", spec={"gates": [
    ...     {"name": "viable", "parent": "root", "type": "range",
    ...      "dimensions": {"Viability": {"min": None, "max": 3000}}}]})
    >>> o = Override(sample="B01_d41", gate="viable", reason="", by="AB",
    ...              accept_flags=("no_valley",), entry=1)
    >>> for p in override_problems([o], samples=["B01_d14"], template=t):
    ...     print(p)
    entry 1 (sample 'B01_d41', gate 'viable'): unknown sample 'B01_d41' (did you mean 'B01_d14'?)
    entry 1 (sample 'B01_d41', gate 'viable'): reason is empty: say why
    """
    problems: list[str] = []
    known = set(samples)
    if template.kind != "yaml":
        gates, owner = {}, {name: name for name in template.reported}
    else:
        gates, owner = _gate_names(template)
    seen: dict[tuple[str, str], int] = {}
    for o in overrides:
        where = o.where
        if o.sample not in known:
            hint = _hint(o.sample, known)
            problems.append(f"{where}: unknown sample '{o.sample}'{hint}")
        if o.gate not in gates and o.gate not in owner:
            hint = _hint(o.gate, {*gates, *owner})
            problems.append(f"{where}: unknown gate '{o.gate}'{hint}")
        elif o.values:
            if o.gate not in gates:
                what = (
                    "a YAML template's gates"
                    if template.kind == "yaml"
                    else "gates of a YAML template (this one is imported)"
                )
                problems.append(f"{where}: set: only {what} can be set; '{o.gate}' is not one")
            elif (problem := _set_problem(gates[o.gate], o.values)) is not None:
                problems.append(f"{where}: {problem}")
        if not o.reason.strip():
            problems.append(f"{where}: reason is empty: say why")
        if not o.by.strip():
            problems.append(f"{where}: by is empty: say who")
        if not o.values and not o.accept_flags:
            problems.append(f"{where}: nothing to do: give set, accept_flags or both")
        key = (o.sample, o.gate)
        if key in seen:
            problems.append(
                f"{where}: entry {seen[key]} already overrides this sample's gate: "
                "one entry per sample and gate"
            )
        seen.setdefault(key, o.entry)
    return problems


def mark_accepted(flags: pd.DataFrame, overrides: Sequence[Override]) -> pd.DataFrame:
    """The flag rows with :data:`ACCEPTED_COLUMNS` filled where an entry accepts them.

    An entry accepts a flag of its sample when the flag is in its ``accept_flags``
    and names its gate, or a population that gate defines (:attr:`Override.covers`).

    Parameters
    ----------
    flags : pandas.DataFrame
        Flag rows with ``sample``, ``gate`` and ``flag``.
    overrides : sequence of Override
        The entries (of any samples).

    Returns
    -------
    pandas.DataFrame
        A copy with ``accepted_by`` and ``accepted_reason`` (empty where not accepted).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"sample": ["s", "s", "t"], "gate": ["CIK", "viable", "CIK"],
    ...                   "flag": ["no_valley", "no_valley", "no_valley"]})
    >>> o = Override(sample="s", gate="q", reason="ok by eye", by="AB",
    ...              accept_flags=("no_valley",), covers=("q", "CIK"))
    >>> mark_accepted(f, [o])["accepted_by"].tolist()
    ['AB', '', '']
    """
    out = flags.copy()
    for col in ACCEPTED_COLUMNS:
        if col not in out.columns:
            out[col] = ""
        out[col] = out[col].fillna("").astype(str)
    for o in overrides:
        if not o.accept_flags or out.empty:
            continue
        hit = (
            (out["sample"].astype(str) == o.sample)
            & out["gate"].fillna("").astype(str).isin(o.covers or (o.gate,))
            & out["flag"].isin(o.accept_flags)
        )
        out.loc[hit, "accepted_by"] = o.by
        out.loc[hit, "accepted_reason"] = o.reason
    return out


def needs_review(flags: pd.DataFrame) -> bool:
    """Whether any flag row is not accepted (no ``accepted_by``)."""
    if flags.empty:
        return False
    if "accepted_by" not in flags.columns:
        return True
    return bool((flags["accepted_by"].fillna("").astype(str) == "").any())
