"""One sample's clusters and the gate-versus-cluster concordance check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cikflow.clustering.batch import base_levels, cluster_map
from cikflow.clustering.labelling import (
    DIVIDER_COLUMNS,
    Divider,
    _cluster_medians,
    _descendants,
    label_clusters,
    resolve_dividers,
    tree_populations,
)
from cikflow.clustering.model import (
    _DECADES,
    CLUSTERING_DEFAULTS,
    ClusterModel,
    _check_values,
    marker_values,
)
from cikflow.exceptions import ConfigError
from cikflow.gating.model import from_spec, identity_scale
from cikflow.gating.template import make_transform, transform_name

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cikflow.gating.apply import GatingOutcome
    from cikflow.gating.template import Template

__all__ = [
    "CLUSTER_COLUMNS",
    "CONCORDANCE_COLUMNS",
    "BaseEvents",
    "GatedClusters",
    "SampleClusters",
    "base_events",
    "cluster_base",
    "cluster_outcome",
    "cluster_sample",
    "concordance",
    "gate_levels",
]

#: per-cluster table (``clusters.tsv``); marker medians follow as ``median_<marker>``
CLUSTER_COLUMNS = ["sample", "cluster", "events", "percent_of_base", "phenotype"]


#: per-population concordance of gate and cluster (``concordance.tsv``)
CONCORDANCE_COLUMNS = [
    "population",
    "gate",
    "gate_events",
    "cluster_events",
    "gate_percent_of_base",
    "cluster_percent_of_base",
    "difference_pp",
    "f1",
    "margin_pp",
    "discordant",
]


@dataclass(frozen=True)
class SampleClusters:
    """One sample's clustering.

    Attributes
    ----------
    model : ClusterModel
        The fitted over-clustering.
    labels : numpy.ndarray
        int32, cluster of every clustered (base) event.
    phenotypes : list of str
        Phenotype of every cluster.
    members : dict of str to numpy.ndarray
        Reported population → boolean over the clustered events (cluster-based).
    clusters : pandas.DataFrame
        One row per cluster: :data:`CLUSTER_COLUMNS` then ``median_<marker>``
        (transformed units).
    dividers : pandas.DataFrame
        The thresholds the labels used (:data:`DIVIDER_COLUMNS`).
    gates : dict of str to numpy.ndarray
        Every gate below the base → boolean over the clustered events.
    """

    model: ClusterModel
    labels: np.ndarray
    phenotypes: list[str]
    members: dict[str, np.ndarray]
    clusters: pd.DataFrame
    dividers: pd.DataFrame
    gates: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def event_phenotypes(self) -> np.ndarray:
        """Phenotype of every clustered event (object array)."""
        return np.asarray(self.phenotypes, dtype=object)[self.labels]


def cluster_sample(
    values: np.ndarray,
    *,
    template: Template,
    markers: Sequence[str],
    overrides: Mapping[tuple[str, str], float] | None = None,
    dividers: Mapping[tuple[str, str], Divider] | None = None,
    n_clusters: int = 25,
    max_events: int = 50_000,
    random_state: int = 0,
    sample: str = "",
) -> SampleClusters:
    """Over-cluster one sample's base events and name the clusters.

    Parameters
    ----------
    values : numpy.ndarray
        Transformed markers of the base population's events
        (:func:`marker_values` of the events in the base gate).
    template : Template
        The YAML template (base, gates, populations, transforms).
    markers : sequence of str
        The columns of ``values``.
    overrides : mapping, optional
        ``(gate, dimension) → threshold`` (transformed units) used instead.
    dividers : mapping, optional
        Known thresholds (``(gate, dimension) → Divider``), instead of
        ``overrides``; any other is placed on the cluster medians.
    n_clusters, max_events, random_state : int
        :class:`ClusterModel` settings.
    sample : str
        Sample ID written in the cluster table.

    Returns
    -------
    SampleClusters
    """
    x = _check_values(values, n_features=len(markers))
    model = ClusterModel(n_clusters=n_clusters, max_events=max_events, random_state=random_state)
    model.fit(x)
    labels = model.predict(x)
    named = label_clusters(
        x,
        labels,
        template=template,
        markers=markers,
        dividers=(
            dict(dividers)
            if dividers is not None
            else resolve_dividers(template, overrides=overrides)
        ),
        random_state=random_state,
    )
    members = {pop: named.gates[gate][labels] for pop, gate in tree_populations(template).items()}
    k = len(model.cluster_centers_)
    counts = np.bincount(labels, minlength=k)
    medians = _cluster_medians(x, labels, k)
    table = pd.DataFrame(
        {
            "sample": sample,
            "cluster": np.arange(k),
            "events": counts,
            "percent_of_base": 100.0 * counts / max(len(x), 1),
            "phenotype": named.phenotypes,
            **{f"median_{m}": medians[:, j] for j, m in enumerate(markers)},
        }
    )
    dividers = pd.DataFrame(
        [
            {
                "gate": d.gate,
                "dimension": d.dimension,
                "value": d.value,
                "transformed": d.transformed,
                "source": d.source,
            }
            for d in named.dividers
        ],
        columns=DIVIDER_COLUMNS,
    )
    gates = {name: inside[labels] for name, inside in named.gates.items()}
    return SampleClusters(model, labels, named.phenotypes, members, table, dividers, gates)


def concordance(
    gate_members: Mapping[str, np.ndarray],
    cluster_members: Mapping[str, np.ndarray],
    *,
    populations: Mapping[str, str],
    margin_pp: float = 2.0,
) -> pd.DataFrame:
    """Gate-based vs cluster-based membership of every population.

    Parameters
    ----------
    gate_members, cluster_members : mapping of str to numpy.ndarray
        Population → boolean over the same events (the base population's).
    populations : mapping of str to str
        Population → gate name, in report order.
    margin_pp : float
        Largest allowed ``|gate − cluster|`` percent of base (percentage points).

    Returns
    -------
    pandas.DataFrame
        :data:`CONCORDANCE_COLUMNS`: events and percent of base by each method,
        the difference (cluster − gate, percentage points), the per-event F1 of
        the two labelings, and ``discordant`` (difference above the margin).

    Examples
    --------
    >>> g = {"CIK": np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], bool)}
    >>> c = {"CIK": np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], bool)}
    >>> row = concordance(g, c, populations={"CIK": "CIK"}).iloc[0]
    >>> float(row["difference_pp"]), round(float(row["f1"]), 3), bool(row["discordant"])
    (10.0, 0.8, True)
    """
    from cikflow.evaluate import f1_score

    rows = []
    for pop, gate in populations.items():
        if pop not in gate_members or pop not in cluster_members:
            continue
        g = np.asarray(gate_members[pop], dtype=bool)
        c = np.asarray(cluster_members[pop], dtype=bool)
        n = len(g)
        gp = 100.0 * g.sum() / n if n else np.nan
        cp = 100.0 * c.sum() / n if n else np.nan
        diff = cp - gp
        rows.append(
            {
                "population": pop,
                "gate": gate,
                "gate_events": int(g.sum()),
                "cluster_events": int(c.sum()),
                "gate_percent_of_base": gp,
                "cluster_percent_of_base": cp,
                "difference_pp": diff,
                "f1": f1_score(g, c),
                "margin_pp": float(margin_pp),
                "discordant": bool(abs(diff) > margin_pp),
            }
        )
    return pd.DataFrame(rows, columns=CONCORDANCE_COLUMNS)


@dataclass(frozen=True)
class GatedClusters:
    """A gated sample's clustering, in the tables the workflow writes.

    Attributes
    ----------
    markers : list of str
        Clustered markers, in column order.
    result : SampleClusters
        Model, labels and phenotypes of the base events.
    populations : pandas.DataFrame
        Cluster-based ``population, gate, events, percent_of_base,
        percent_parent`` of every population below the base.
    concordance : pandas.DataFrame
        :func:`concordance` of gate and cluster.
    flags : list of dict
        ``gate_cluster_discordant`` flags: ``{"flag", "gate", "reason"}``.
    pool : pandas.DataFrame
        A seeded subsample of the base events' transformed markers (one column
        per marker), for the batch's reference model.
    map : dict
        :func:`cluster_map` of the first two-marker gate below the base.
    levels : dict
        :func:`base_levels` of the base events (data units), for the batch's
        scatter and gain drift.
    """

    markers: list[str]
    result: SampleClusters
    populations: pd.DataFrame
    concordance: pd.DataFrame
    flags: list[dict[str, Any]]
    pool: pd.DataFrame
    map: dict[str, Any]
    levels: dict[str, dict] = field(default_factory=dict)


_DECADE_TICKS = (-1000.0, 0.0, 100.0, 1000.0, 10000.0, 100000.0)


def _axis(template: Template, dim: str, detector: str) -> dict[str, Any]:
    tname = transform_name(template.spec, dim)
    xform = make_transform(template.spec["transforms"][tname])
    if xform is None:
        vals = [2.0, 3.0, 4.0, 5.0]
        return {
            "dim": dim,
            "detector": detector,
            "transform": "log10 / 4.5",
            "ticks": {"vals": [v / _DECADES for v in vals], "raw": [10**v for v in vals]},
        }
    vals = xform.apply(np.array(_DECADE_TICKS).reshape(-1, 1))[:, 0]
    return {
        "dim": dim,
        "detector": detector,
        "transform": tname,
        "ticks": {"vals": [float(v) for v in vals], "raw": list(_DECADE_TICKS)},
    }


def _map_dims(template: Template, markers: Sequence[str]) -> tuple[str, str] | None:
    for gate in _descendants(template, scale=identity_scale):
        if len(gate.dims) == 2 and all(d in markers for d in gate.dims):
            return gate.dims[0], gate.dims[1]
    return (markers[0], markers[1]) if len(markers) >= 2 else None


@dataclass(frozen=True)
class BaseEvents:
    """A gated sample's base events: all that its clustering needs of the gating.

    Attributes
    ----------
    sample : str
        Sample ID.
    values : numpy.ndarray
        Shape (n_base, n_dims): the base events' compensated values (data
        units, exactly as gated: float32, or float64 where a channel needs it),
        one column per template dimension.
    channel_map : dict of str to str
        Template dimension → detector, in column order.
    membership : dict of str to numpy.ndarray
        Gate → boolean over the base events (parents applied).
    dividers : dict
        ``(gate, dimension) → Divider`` given to the cluster labels: empty
        from :func:`base_events` (the clusters place their own thresholds,
        independent of the gates' fits).
    """

    sample: str
    values: np.ndarray
    channel_map: dict[str, str]
    membership: dict[str, np.ndarray]
    dividers: dict[tuple[str, str], Divider]


def base_events(
    outcome: GatingOutcome,
    *,
    template: Template,
    compensated: Any = None,
    pnn: Sequence[str] | None = None,
) -> BaseEvents:
    """The base events of a gated sample, with their gate membership and fitted dividers.

    Parameters
    ----------
    outcome : GatingOutcome
        The sample's gating (base membership, channel map, fitted thresholds).
    template : Template
        The YAML template it was gated with.
    compensated : numpy.ndarray or CompensatedEvents, optional
        Compensated events, file channel order (default ``outcome.compensated``).
    pnn : sequence of str, optional
        The file's detector names (default those of ``compensated``).

    Returns
    -------
    BaseEvents

    Raises
    ------
    ConfigError
        The template has no base gate.
    """
    base = outcome.membership[template.base] if template.base else None
    if base is None:
        raise ConfigError(f"template '{template.name}' has no base gate to cluster")
    return BaseEvents(
        sample=outcome.sample,
        values=_gate_values(outcome, base, compensated=compensated, pnn=pnn),
        channel_map=dict(outcome.channel_map),
        membership={
            gate: np.asarray(m[base], dtype=bool) for gate, m in outcome.membership.items()
        },
        dividers={},  # the clusters place their own: independent of the gates' fits
    )


def gate_levels(outcome: GatingOutcome, *, gate: str) -> dict[str, Any] | None:
    """Median of every dimension of one gate's events (:func:`base_levels`), with their count.

    The counting beads' levels are the batch's instrument reference
    (:func:`~cikflow.clustering.level_drift`): the same particles every day.

    Parameters
    ----------
    outcome : GatingOutcome
        The sample's gating; its compensated events must still hold the
        template's channels.
    gate : str
        The gate.

    Returns
    -------
    dict or None
        ``{"events": n, "scatter": {dim: median}, "fluorescence": {dim: median}}``
        (compensated data units), or None where the gating has no such gate.
    """
    members = outcome.membership.get(gate)
    if members is None:
        return None
    values = _gate_values(outcome, members)
    return {"events": len(values), **base_levels(values, channel_map=outcome.channel_map)}


def _gate_values(
    outcome: GatingOutcome,
    members: np.ndarray,
    *,
    compensated: Any = None,
    pnn: Sequence[str] | None = None,
) -> np.ndarray:
    """Compensated values of a gate's events, one column per template dimension."""
    compensated = outcome.compensated if compensated is None else compensated
    pnn = list(compensated.pnn if pnn is None else pnn)
    # each column as gating held it (float32, or float64 where float32 is not exact):
    # stacking widens to the widest, which float64 holds exactly
    columns = [
        np.asarray(compensated[members, pnn.index(outcome.channel_map[d])])
        for d in outcome.channel_map
    ]
    n = int(np.count_nonzero(members))
    return np.column_stack(columns) if columns else np.empty((n, 0), dtype=np.float32)


def cluster_outcome(
    outcome: GatingOutcome,
    *,
    template: Template,
    compensated: Any,
    pnn: Sequence[str],
    settings: Mapping[str, Any] | None = None,
    bins: int = 96,
) -> GatedClusters:
    """Cluster a gated sample's base events and compare with its gates.

    :func:`base_events` then :func:`cluster_base`.

    Parameters
    ----------
    outcome : GatingOutcome
        The sample's gating (base membership, fitted thresholds, gate members).
    template : Template
        The YAML template it was gated with.
    compensated : numpy.ndarray or CompensatedEvents
        Compensated events, file channel order (read as ``compensated[rows, j]``).
    pnn : sequence of str
        The file's detector names.
    settings : mapping, optional
        The ``clustering`` config section (:data:`CLUSTERING_DEFAULTS` fill gaps).
    bins : int
        Bins per axis of the cluster map.

    Returns
    -------
    GatedClusters

    Raises
    ------
    ConfigError
        The template has no base, a marker is missing from the template, or a
        gate below the base uses a dimension that is not clustered.
    """
    events = base_events(outcome, template=template, compensated=compensated, pnn=pnn)
    return cluster_base(events, template=template, settings=settings, bins=bins)


def cluster_base(
    events: BaseEvents,
    *,
    template: Template,
    settings: Mapping[str, Any] | None = None,
    bins: int = 96,
) -> GatedClusters:
    """Cluster a sample's base events and compare with its gates.

    Parameters
    ----------
    events : BaseEvents
        The sample's base events (:func:`base_events`).
    template : Template
        The YAML template it was gated with.
    settings : mapping, optional
        The ``clustering`` config section (:data:`CLUSTERING_DEFAULTS` fill gaps).
    bins : int
        Bins per axis of the cluster map.

    Returns
    -------
    GatedClusters

    Raises
    ------
    ConfigError
        A marker is missing from the template, or a gate below the base uses a
        dimension that is not clustered.
    """
    cfg = {**CLUSTERING_DEFAULTS, **dict(settings or {})}
    markers = [str(m) for m in cfg["markers"]]
    seed = int(cfg["random_state"])
    dims = list(events.channel_map)
    values = marker_values(
        events.values,
        pnn=dims,
        channel_map={d: d for d in dims},
        template=template,
        markers=markers,
    )
    result = cluster_sample(
        values,
        template=template,
        markers=markers,
        dividers=events.dividers,
        n_clusters=int(cfg["n_clusters"]),
        max_events=int(cfg["subsample"]),
        random_state=seed,
        sample=events.sample,
    )
    pops = tree_populations(template)
    n_base = len(values)
    table = concordance(
        {pop: events.membership[gate] for pop, gate in pops.items()},
        result.members,
        populations=pops,
        margin_pp=float(cfg["margin_pp"]),
    )
    rng = np.random.default_rng(seed)
    keep = np.arange(n_base)
    if n_base > int(cfg["subsample"]):
        keep = np.sort(rng.choice(n_base, size=int(cfg["subsample"]), replace=False))
    pool = pd.DataFrame(values[keep], columns=markers)
    cmap = _outcome_map(
        values,
        phenotypes=result.event_phenotypes,
        template=template,
        markers=markers,
        channel_map=events.channel_map,
        bins=bins,
    )
    return GatedClusters(
        markers=markers,
        result=result,
        populations=_population_table(result, template=template, populations=pops, n_base=n_base),
        concordance=table,
        flags=_discordance_flags(table),
        pool=pool,
        map=cmap,
        levels=base_levels(events.values, channel_map=events.channel_map),
    )


def _population_table(
    result: SampleClusters, *, template: Template, populations: Mapping[str, str], n_base: int
) -> pd.DataFrame:
    """Cluster-based events and percentages of every population below the base."""
    rows = []
    for pop, gate in populations.items():
        members = result.members[pop]
        parent = _parent_of(template, gate)
        parent_n = n_base if parent == template.base else int(result.gates[parent].sum())
        n = int(members.sum())
        rows.append(
            {
                "population": pop,
                "gate": gate,
                "events": n,
                "percent_of_base": 100.0 * n / n_base if n_base else np.nan,
                "percent_parent": 100.0 * n / parent_n if parent_n else np.nan,
            }
        )
    return pd.DataFrame(
        rows, columns=["population", "gate", "events", "percent_of_base", "percent_parent"]
    )


def _discordance_flags(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A ``gate_cluster_discordant`` flag for every discordant row of the concordance table."""
    return [
        {
            "flag": "gate_cluster_discordant",
            "gate": r["gate"],
            "reason": (
                f"{r['population']}: gate {r['gate_percent_of_base']:.2f} % vs cluster "
                f"{r['cluster_percent_of_base']:.2f} % of base "
                f"({r['difference_pp']:+.2f} pp, margin {r['margin_pp']:g} pp; "
                f"per-event F1 {r['f1']:.3f})"
            ),
        }
        for r in table.to_dict("records")
        if r["discordant"]
    ]


def _outcome_map(
    values: np.ndarray,
    *,
    phenotypes: np.ndarray,
    template: Template,
    markers: Sequence[str],
    channel_map: Mapping[str, str],
    bins: int,
) -> dict[str, Any]:
    """The cluster map on the first 2-D gate's clustered markers (empty if none)."""
    dims = _map_dims(template, markers)
    cmap: dict[str, Any] = {}
    if dims is not None:
        cmap = cluster_map(
            values,
            event_phenotypes=phenotypes,
            markers=markers,
            x=dims[0],
            y=dims[1],
            bins=bins,
            axes={d: _axis(template, d, channel_map[d]) for d in dims},
        )
    return cmap


def _parent_of(template: Template, gate_name: str) -> str:
    for spec in template.spec["gates"]:
        gate = from_spec(spec, scale=identity_scale)
        if gate.name == gate_name:
            return gate.parent
        if gate_name in (pop for pop, _ in gate.populations()):
            return gate.name
    raise ConfigError(f"template '{template.name}' has no gate '{gate_name}'")
