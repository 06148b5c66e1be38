"""Release specifications and their verdicts per batch (domain notes §6).

A release specification is a versioned list of criteria, each a metric of the
harvested product (:func:`cikflow.counts.harvest_metrics`), an operator and a
limit, e.g. ``viability_percent >= 70`` or ``CIK_cells_per_kg >= 2.5e6``. Every
criterion gives, per batch, :data:`PASS`, :data:`FAIL` or :data:`NOT_EVALUABLE`
with the value, the limit and the reason. The batch passes when every criterion
passes, fails when any criterion fails, and is not evaluable otherwise.

Specs are read and schema-validated by :func:`cikflow.io.release.read_release_spec`;
nothing here touches files.
"""

from __future__ import annotations

import math
import operator as _op
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cikflow.counts import metric_names
from cikflow.exceptions import ReleaseSpecError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "DECISION_RULES",
    "FAIL",
    "INDETERMINATE",
    "NOT_EVALUABLE",
    "OPERATORS",
    "PASS",
    "RELEASE_COLUMNS",
    "SYMBOLS",
    "Criterion",
    "ReleaseSpec",
    "batch_decision",
    "batch_verdict",
    "decide",
    "evaluate_criterion",
    "evaluate_release",
    "spec_from_dict",
    "spec_problems",
]

PASS = "PASS"
FAIL = "FAIL"
NOT_EVALUABLE = "NOT EVALUABLE"
INDETERMINATE = "INDETERMINATE"
#: decision rules a spec may name
DECISION_RULES = ("guard_banded", "point")

#: comparison operators a criterion may use: value OP limit passes
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": _op.ge,
    ">": _op.gt,
    "<=": _op.le,
    "<": _op.lt,
}
#: how operators are printed
SYMBOLS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}
_NEGATION = {">=": "<", ">": "≤", "<=": ">", "<": "≥"}

#: columns of ``results/release.tsv``, one row per batch and criterion
RELEASE_COLUMNS: list[str] = [
    "batch",
    "spec",
    "spec_version",
    "criterion",
    "metric",
    "operator",
    "limit",
    "unit",
    "value",
    "verdict",
    "reason",
    "day",
    "samples",
    "review_required",
    "batch_verdict",
    "value_low",
    "value_high",
    "decision_rule",
    "decision",
    "batch_decision",
]


@dataclass(frozen=True)
class Criterion:
    """One release criterion: ``metric operator limit`` passes.

    Attributes
    ----------
    id : str
        Short name, unique in its spec (default: the metric).
    metric : str
        A harvest metric (:func:`cikflow.counts.metric_names`).
    operator : str
        One of :data:`OPERATORS`.
    limit : float
        The limit, in ``unit``.
    unit : str
        Unit of the metric and the limit (``%``, ``cells/kg`` …).
    description : str
        What the criterion means, shown in the certificate.
    """

    id: str
    metric: str
    operator: str
    limit: float
    unit: str
    description: str = ""


@dataclass(frozen=True)
class ReleaseSpec:
    """A versioned release specification.

    Attributes
    ----------
    name, version : str
        Identify the spec in ``release.tsv`` and the report.
    criteria : tuple of Criterion
        In the order they are reported.
    description : str
        Free text.
    sha256 : str
        SHA-256 of the spec file ("" when built in memory).
    """

    name: str
    version: str
    criteria: tuple[Criterion, ...]
    description: str = ""
    sha256: str = ""
    decision_rule: str = "guard_banded"


def spec_from_dict(data: Mapping[str, Any], *, sha256: str = "") -> ReleaseSpec:
    """Build a :class:`ReleaseSpec` from a schema-valid mapping.

    Parameters
    ----------
    data : mapping
        The spec document (``name``, ``version``, ``criteria`` …), already
        validated against ``release.schema.yaml``.
    sha256 : str
        SHA-256 of the file it came from.

    Returns
    -------
    ReleaseSpec

    Raises
    ------
    ReleaseSpecError
        Two criteria share an ``id``, or an operator is unknown.

    Examples
    --------
    >>> spec = spec_from_dict({"name": "demo", "version": "1", "criteria": [
    ...     {"metric": "viability_percent", "operator": ">=", "limit": 70, "unit": "%"}]})
    >>> spec.criteria[0].id, spec.criteria[0].limit
    ('viability_percent', 70.0)
    """
    criteria = []
    seen: set[str] = set()
    for i, c in enumerate(data["criteria"]):
        cid = str(c.get("id") or c["metric"])
        if cid in seen:
            msg = f"criteria[{i}]: id {cid!r} is used twice; give each criterion its own id"
            raise ReleaseSpecError(msg)
        if c["operator"] not in OPERATORS:
            msg = f"criteria[{i}]: operator {c['operator']!r} is not one of {list(OPERATORS)}"
            raise ReleaseSpecError(msg)
        seen.add(cid)
        criteria.append(
            Criterion(
                id=cid,
                metric=str(c["metric"]),
                operator=str(c["operator"]),
                limit=float(c["limit"]),
                unit=str(c["unit"]),
                description=str(c.get("description") or ""),
            )
        )
    return ReleaseSpec(
        name=str(data["name"]),
        version=str(data["version"]),
        criteria=tuple(criteria),
        description=str(data.get("description") or "").strip(),
        sha256=sha256,
        decision_rule=str(data.get("decision_rule") or "guard_banded"),
    )


def decide(
    verdict: str, *, low: float, high: float, criterion: Criterion, rule: str = "guard_banded"
) -> str:
    """A criterion's decision from its point verdict and the value's interval.

    Parameters
    ----------
    verdict : str
        The point verdict (:func:`evaluate_criterion`).
    low, high : float
        The value's interval (NaN when none is known), in the criterion's unit.
    criterion : Criterion
        The criterion (operator, limit).
    rule : {"guard_banded", "point"}
        ``point``: the verdict. ``guard_banded``: PASS when the whole interval
        passes, FAIL when the whole interval fails, :data:`INDETERMINATE` (review
        before release) when it straddles the limit; without an interval, the
        verdict.

    Returns
    -------
    str
        PASS, FAIL, INDETERMINATE or NOT EVALUABLE.

    Examples
    --------
    >>> c = Criterion(id="dose", metric="CIK_cells_per_kg", operator=">=", limit=2.5e6,
    ...               unit="cells/kg")
    >>> decide("PASS", low=2.4e6, high=2.8e6, criterion=c)
    'INDETERMINATE'
    >>> decide("PASS", low=2.4e6, high=2.8e6, criterion=c, rule="point")
    'PASS'
    >>> decide("FAIL", low=1.0e6, high=2.0e6, criterion=c)
    'FAIL'
    """
    if rule == "point" or verdict == NOT_EVALUABLE or not (np.isfinite(low) and np.isfinite(high)):
        return verdict
    passes = OPERATORS[criterion.operator]
    ends = [passes(low, criterion.limit), passes(high, criterion.limit)]
    if all(ends):
        return PASS
    if not any(ends):
        return FAIL
    return INDETERMINATE


def batch_decision(decisions: Iterable[str]) -> str:
    """A batch's decision: FAIL, else NOT EVALUABLE, else INDETERMINATE, else PASS.

    Parameters
    ----------
    decisions : iterable of str
        Its criteria's decisions.

    Returns
    -------
    str
        The batch's decision.

    Examples
    --------
    >>> batch_decision(["PASS", "INDETERMINATE"])
    'INDETERMINATE'
    """
    decisions = list(decisions)
    for worst in (FAIL, NOT_EVALUABLE, INDETERMINATE):
        if worst in decisions:
            return worst
    return PASS if decisions else NOT_EVALUABLE


def spec_problems(
    spec: ReleaseSpec, *, populations: Sequence[str], bead_population: str = "beads"
) -> list[str]:
    """Criteria whose metric the pipeline cannot compute for these populations.

    Parameters
    ----------
    spec : ReleaseSpec
        The spec.
    populations : sequence of str
        The gating template's reported populations.
    bead_population : str
        Population of the counting beads.

    Returns
    -------
    list of str
        One message per unknown metric; empty when every metric is known.

    Examples
    --------
    >>> spec = spec_from_dict({"name": "x", "version": "1", "criteria": [
    ...     {"metric": "CIK_cells_per_kilo", "operator": ">=", "limit": 1, "unit": "cells/kg"}]})
    >>> spec_problems(spec, populations=["CIK"])
    ["criterion 'CIK_cells_per_kilo': unknown metric 'CIK_cells_per_kilo' (did you mean 'CIK_cells_per_kg'?)"]
    """  # noqa: E501
    import difflib

    known = metric_names(populations, bead_population=bead_population)
    problems = []
    for c in spec.criteria:
        if c.metric in known:
            continue
        hint = difflib.get_close_matches(c.metric, known, n=1)
        more = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(known)})"
        problems.append(f"criterion {c.id!r}: unknown metric {c.metric!r}{more}")
    return problems


def _fmt(value: float, unit: str) -> str:
    text = f"{value:.4g}"
    return f"{text} {unit}".strip()


def evaluate_criterion(value: float, *, criterion: Criterion, reason: str = "") -> tuple[str, str]:
    """Verdict of one criterion for one value.

    Parameters
    ----------
    value : float
        The metric's value (NaN when it could not be computed).
    criterion : Criterion
        The criterion.
    reason : str
        Why the value is NaN (from the metric), used in the verdict's reason.

    Returns
    -------
    tuple of str
        ``(verdict, reason)``: :data:`PASS`, :data:`FAIL` or
        :data:`NOT_EVALUABLE`, and the comparison or the missing input in words.

    Examples
    --------
    >>> c = Criterion(id="dose", metric="CIK_cells_per_kg", operator=">=", limit=2.5e6,
    ...               unit="cells/kg")
    >>> evaluate_criterion(4.1e6, criterion=c)
    ('PASS', '4.1e+06 cells/kg ≥ 2.5e+06 cells/kg')
    >>> evaluate_criterion(9.0e5, criterion=c)
    ('FAIL', '9e+05 cells/kg < 2.5e+06 cells/kg')
    >>> evaluate_criterion(float("nan"), criterion=c, reason="weight_kg is empty for batch B02")
    ('NOT EVALUABLE', 'CIK_cells_per_kg not evaluable: weight_kg is empty for batch B02')
    """
    number = float(value) if value is not None else math.nan
    if not math.isfinite(number):
        return NOT_EVALUABLE, f"{criterion.metric} not evaluable: {reason or 'no value'}"
    limit = _fmt(criterion.limit, criterion.unit)
    shown = _fmt(number, criterion.unit)
    if OPERATORS[criterion.operator](number, criterion.limit):
        return PASS, f"{shown} {SYMBOLS[criterion.operator]} {limit}"
    return FAIL, f"{shown} {_NEGATION[criterion.operator]} {limit}"


def batch_verdict(verdicts: Iterable[str]) -> str:
    """A batch's verdict from its criteria's verdicts.

    FAIL if any criterion fails; else NOT EVALUABLE if any is not evaluable
    (or there is none); else PASS.

    Examples
    --------
    >>> batch_verdict(["PASS", "NOT EVALUABLE", "FAIL"])
    'FAIL'
    >>> batch_verdict(["PASS", "NOT EVALUABLE"])
    'NOT EVALUABLE'
    >>> batch_verdict(["PASS", "PASS"])
    'PASS'
    """
    verdicts = list(verdicts)
    if FAIL in verdicts:
        return FAIL
    if not verdicts or NOT_EVALUABLE in verdicts:
        return NOT_EVALUABLE
    return PASS


def evaluate_release(
    metrics: pd.DataFrame,
    *,
    spec: ReleaseSpec,
    batches: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Evaluate a release spec for every batch.

    Parameters
    ----------
    metrics : pandas.DataFrame
        Harvest metrics of one or more batches
        (:func:`cikflow.counts.harvest_metrics`: ``batch, metric, value, unit,
        day, samples, review_required, reason``).
    spec : ReleaseSpec
        The release specification.
    batches : sequence of str, optional
        Batches to report, in order; default every batch of ``metrics``
        (sorted). A batch without metrics is NOT EVALUABLE on every criterion.

    Returns
    -------
    pandas.DataFrame
        :data:`RELEASE_COLUMNS`, one row per batch and criterion in spec order;
        ``batch_verdict`` repeats the batch's overall verdict.

    Examples
    --------
    >>> spec = spec_from_dict({"name": "demo", "version": "1", "criteria": [
    ...     {"metric": "CIK_cells_per_kg", "operator": ">=", "limit": 2.5e6,
    ...      "unit": "cells/kg"}]})
    >>> m = pd.DataFrame({"batch": ["B1", "B2"], "metric": "CIK_cells_per_kg",
    ...                   "value": [4.0e6, 1.0e6], "unit": "cells/kg", "day": 21,
    ...                   "samples": "", "review_required": False, "reason": ""})
    >>> evaluate_release(m, spec=spec)[["batch", "value", "limit", "verdict"]]
      batch      value      limit verdict
    0    B1  4000000.0  2500000.0    PASS
    1    B2  1000000.0  2500000.0    FAIL
    """
    if batches is None:
        batches = sorted(dict.fromkeys(metrics["batch"].astype(str)))
    by_key = {(str(r["batch"]), str(r["metric"])): r for r in metrics.to_dict("records")}
    rows: list[dict[str, Any]] = []
    for batch in batches:
        batch_rows = []
        for c in spec.criteria:
            m = by_key.get((str(batch), c.metric))
            if m is None:
                low = high = math.nan
                value, why, day, samples, review = (
                    math.nan,
                    f"no metric {c.metric} for batch {batch}",
                    None,
                    "",
                    False,
                )
            else:
                value = _float(m.get("value"))
                low, high = _float(m.get("value_low")), _float(m.get("value_high"))
                why = _text(m.get("reason"))
                day, samples = m.get("day"), _text(m.get("samples"))
                review = _text(m.get("review_required")).lower() in ("true", "1")
            verdict, reason = evaluate_criterion(value, criterion=c, reason=why)
            batch_rows.append(
                {
                    "batch": batch,
                    "spec": spec.name,
                    "spec_version": spec.version,
                    "criterion": c.id,
                    "metric": c.metric,
                    "operator": c.operator,
                    "limit": c.limit,
                    "unit": c.unit,
                    "value": value,
                    "verdict": verdict,
                    "reason": reason,
                    "day": day,
                    "samples": samples,
                    "review_required": review,
                    "value_low": low,
                    "value_high": high,
                    "decision_rule": spec.decision_rule,
                    "decision": decide(
                        verdict, low=low, high=high, criterion=c, rule=spec.decision_rule
                    ),
                }
            )
        overall = batch_verdict(r["verdict"] for r in batch_rows)
        decision = batch_decision(r["decision"] for r in batch_rows)
        rows += [{**r, "batch_verdict": overall, "batch_decision": decision} for r in batch_rows]
    return pd.DataFrame(rows, columns=RELEASE_COLUMNS)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)
