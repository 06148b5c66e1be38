"""The one registry of data-driven gate methods: name → kinds, parameters and defaults.

A template's ``method:`` (YAML templates), an ``overrides:`` entry (imported
GatingML or FlowJo templates) and a quadrant divider's ``method:`` are all
looked up here, so each method has one set of defaults wherever it is used;
``tests/test_registry.py`` checks the template schema's enums against it.
Estimators live in :mod:`cikflow.gating.methods`; how a fit is turned into a
gate, in :mod:`cikflow.gating.fit` and :mod:`cikflow.gating.overrides`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cikflow.exceptions import GatingTemplateError
from cikflow.gating.methods import make_threshold
from cikflow.gating.shapes import BlobGate, SingletGate

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "METHODS",
    "REQUIRED",
    "Method",
    "blob_estimator",
    "get_method",
    "singlet_estimator",
    "threshold_estimator",
]

#: marks a parameter without a default
REQUIRED = object()


@dataclass(frozen=True)
class Method:
    """A data-driven way of placing a gate.

    Attributes
    ----------
    name : str
        What templates write in ``method:``.
    kinds : tuple of str
        Gate kinds (:data:`cikflow.gating.model.KINDS`) it can place.
    defaults : mapping
        Every parameter it takes and its default (:data:`REQUIRED`: none).
    divider : bool
        Whether it also places one divider of a quadrant gate.
    imported : bool
        Whether it can fit a gate of an imported GatingML or FlowJo template.
    description : str
        One line for the documentation.
    """

    name: str
    kinds: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    divider: bool = False
    imported: bool = False
    description: str = ""

    def params(self, given: Mapping[str, Any], *, where: str) -> dict[str, Any]:
        """``given`` completed with the defaults; a missing required parameter is an error."""
        out = {**self.defaults, **given}
        missing = [k for k, v in out.items() if v is REQUIRED]
        if missing:
            raise GatingTemplateError(f"{where}: method '{self.name}' needs params.{missing[0]}")
        return out


_THRESHOLD_KINDS = ("range", "rectangle")

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "static",
            ("range", "rectangle", "polygon", "quadrant", "boolean"),
            description="the template's coordinates, as written",
        ),
        Method(
            "valley",
            _THRESHOLD_KINDS,
            {
                "search": REQUIRED,
                "bandwidth": 0.012,
                "fallback": "quantile",
                "fallback_quantile": 0.5,
                "pick": "deepest",
                "floor": None,
                "intermediate_flag": None,
                "intermediate_max_share": 0.03,
                "negative_edge": False,
                "max_depth_ratio": 0.8,
            },
            divider=True,
            imported=True,
            description="deepest (or first above the main mode) valley within the search bounds",
        ),
        Method(
            "quantile",
            _THRESHOLD_KINDS,
            {"quantile": REQUIRED, "search": None},
            divider=True,
            imported=True,
            description="a quantile of the parent's events",
        ),
        Method(
            "tail",
            _THRESHOLD_KINDS,
            {"search": REQUIRED, "k": 4.0},
            divider=True,
            imported=True,
            description="mode of the negative population + k robust SD",
        ),
        Method(
            "mixture",
            _THRESHOLD_KINDS,
            {
                "search": REQUIRED,
                "min_separation": 1.5,
                "min_weight": 0.02,
                "fallback": "quantile",
                "fallback_quantile": 0.5,
            },
            divider=True,
            imported=True,
            description="where a two-component Gaussian mixture's posteriors cross (a shoulder)",
        ),
        Method("quadrant", ("quadrant",), description="each divider by its own method"),
        Method(
            "blob",
            ("polygon",),
            {
                "n_components": 3,
                "level": 0.9999,
                "merge": 3.0,
                "cut_enclosed": False,
                "log": "auto",
                "select": "largest",
                "seed": None,
                "max_events": 10_000,
            },
            imported=True,
            description="main Gaussian-mixture population as a polygon",
        ),
        Method(
            "singlets",
            ("polygon",),
            {"k": 5.0, "k_doublets": None},
            imported=True,
            description="FSC-H / FSC-A ratio band (median + k, − k_doublets robust spreads)",
        ),
        Method(
            "beads",
            ("rectangle",),
            {"search": [10000, 60000]},
            description="counting beads: bright in every fluorescence channel, small FSC",
        ),
    )
}


def get_method(name: str, *, kind: str, where: str, imported: bool = False) -> Method:
    """The registered method ``name``, checked against the gate kind it is to place.

    Raises
    ------
    GatingTemplateError
        Unknown method, a gate kind it cannot place, or (``imported``) a method
        that does not fit gates of imported templates.
    """
    usable = [m for m in METHODS.values() if m.imported or not imported]
    method = METHODS.get(name)
    if method is None or method not in usable:
        names = ", ".join(m.name for m in usable if m.name != "static")
        raise GatingTemplateError(f"{where}: field 'method': '{name}' is not one of {names}")
    if kind not in method.kinds:
        raise GatingTemplateError(
            f"{where}: method '{name}' needs a {' or '.join(method.kinds)} gate, not a {kind} gate"
        )
    return method


def threshold_estimator(
    name: str, params: Mapping[str, Any], *, where: str, random_state: int = 0
) -> Any:
    """A 1-D threshold estimator of method ``name`` (``search`` in transformed units)."""
    method = METHODS.get(name)
    if method is None or not method.divider:
        names = ", ".join(m.name for m in METHODS.values() if m.divider)
        raise GatingTemplateError(f"{where}: field 'method': '{name}' is not one of {names}")
    full = method.params(params, where=where)
    return make_threshold({**full, "method": name}, random_state=random_state)


def blob_estimator(
    params: Mapping[str, Any], *, linear: bool, where: str, random_state: int = 0
) -> BlobGate:
    """The ``blob`` estimator; ``log: auto`` takes log10 when the values are linear data."""
    p = METHODS["blob"].params(params, where=where)
    seed = p["seed"]
    return BlobGate(
        n_components=p["n_components"],
        level=p["level"],
        merge=p["merge"],
        cut_enclosed=bool(p["cut_enclosed"]),
        log=linear if p["log"] == "auto" else bool(p["log"]),
        select=p["select"],
        seed=tuple(seed) if seed else None,
        max_events=p["max_events"],
        random_state=random_state,
    )


def singlet_estimator(params: Mapping[str, Any], *, where: str) -> SingletGate:
    """The ``singlets`` estimator."""
    p = METHODS["singlets"].params(params, where=where)
    return SingletGate(k=p["k"], k_doublets=p["k_doublets"])
