"""A batch's reference clustering: one model on all its culture days, and its tables.

Pure computation (marker values and a template in, tables out, no file I/O) behind
the batch clustering step: the reference clusters with their phenotypes and
centroids, each day's drift from them, and the populations they give each day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cikflow.clustering import (
    DRIFT_COLUMNS,
    LEVEL_DRIFT_DEFAULTS,
    ClusterModel,
    balanced_pool,
    drift_table,
    label_clusters,
    median_dividers,
    resolve_dividers,
    tree_populations,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cikflow.clustering import ClusterLabels

__all__ = [
    "REFERENCE_COLUMNS",
    "REFERENCE_POPULATION_COLUMNS",
    "BatchReference",
    "batch_reference",
]

#: leading columns of ``reference.tsv`` (a ``centroid_<marker>`` column per marker follows)
REFERENCE_COLUMNS = ["batch", "cluster", "events", "phenotype"]
#: columns of ``reference_populations.tsv``
REFERENCE_POPULATION_COLUMNS = ["batch", "sample", "day", "population", "events", "percent"]


@dataclass(frozen=True)
class BatchReference:
    """A batch's reference tables.

    Attributes
    ----------
    reference : pandas.DataFrame
        One row per reference cluster: pooled events, phenotype, centroid per
        marker (transformed units).
    drift : pandas.DataFrame
        Per day, its distance to the reference (:data:`cikflow.clustering.DRIFT_COLUMNS`).
    populations : pandas.DataFrame
        Per day and population, the events and percent the reference clusters give.
    """

    reference: pd.DataFrame
    drift: pd.DataFrame
    populations: pd.DataFrame

    @classmethod
    def empty(cls) -> BatchReference:
        """The header-only tables of a batch without a clustered sample.

        Returns
        -------
        BatchReference
            Three empty tables with their columns.
        """
        return cls(
            reference=pd.DataFrame(columns=REFERENCE_COLUMNS),
            drift=pd.DataFrame(columns=DRIFT_COLUMNS),
            populations=pd.DataFrame(columns=REFERENCE_POPULATION_COLUMNS),
        )


def batch_reference(
    values: Mapping[str, np.ndarray],
    *,
    days: Mapping[str, Any],
    dividers: Sequence[pd.DataFrame],
    template: Any,
    settings: Mapping[str, Any],
    batch: str,
    levels: Mapping[str, Any] | None = None,
) -> BatchReference:
    """Fit a batch's reference clusters on all its days and measure each day's drift.

    Parameters
    ----------
    values : mapping of str to numpy.ndarray
        Per sample, its marker subsample (events x markers, transformed units).
    days : mapping of str to int
        Per sample, its culture day (days).
    dividers : sequence of pandas.DataFrame
        The thresholds each sample's cluster labels used (their medians name
        the reference clusters).
    template : Template
        The gating template (population tree, transforms).
    settings : mapping
        The ``clustering`` settings, defaults filled in (``markers``,
        ``n_clusters``, ``subsample`` in events, ``random_state``, ``drift_limit``,
        ``scatter_drift_limit``, ``gain_drift_limit``, ``drift_min_level``,
        ``bead_drift_limit``, ``drift_min_beads``).
    batch : str
        The batch.
    levels : mapping, optional
        Per sample, its base levels (:func:`cikflow.clustering.base_levels`,
        data units) and its beads' under ``"beads"``, for the scatter and
        all-channel gain drift (:func:`cikflow.clustering.level_drift`).

    Returns
    -------
    BatchReference
        Reference clusters, drift and reference populations (empty without values).
    """
    if not values:
        return BatchReference.empty()
    markers = [str(m) for m in settings["markers"]]
    seed = int(settings["random_state"])
    pool = balanced_pool(values, max_events=int(settings["subsample"]), random_state=seed)
    model = ClusterModel(
        n_clusters=int(settings["n_clusters"]), max_events=len(pool), random_state=seed
    ).fit(pool)
    labels = model.predict(pool)
    named = label_clusters(
        pool,
        labels,
        template=template,
        markers=markers,
        dividers=resolve_dividers(template, overrides=median_dividers(dividers)),
        random_state=seed,
    )
    k = len(model.cluster_centers_)
    reference = pd.DataFrame(
        {
            "batch": batch,
            "cluster": np.arange(k),
            "events": np.bincount(labels, minlength=k),
            "phenotype": named.phenotypes,
            **{f"centroid_{m}": model.cluster_centers_[:, j] for j, m in enumerate(markers)},
        }
    )
    drift = drift_table(
        model,
        values,
        days=days,
        batch=batch,
        drift_limit=float(settings["drift_limit"]),
        pool_events=int(settings["subsample"]),
        levels=levels,
        level_limits={k: settings[k] for k in LEVEL_DRIFT_DEFAULTS if k in settings},
    )
    populations = _reference_populations(
        model, values, named=named, template=template, days=days, batch=batch
    )
    return BatchReference(reference=reference, drift=drift, populations=populations)


def _reference_populations(
    model: ClusterModel,
    values: Mapping[str, np.ndarray],
    *,
    named: ClusterLabels,
    template: Any,
    days: Mapping[str, Any],
    batch: str,
) -> pd.DataFrame:
    """Per day and population, the events (count) and percent the reference clusters give."""
    rows = []
    for sample, x in values.items():
        assigned = model.predict(x)
        for pop, gate in tree_populations(template).items():
            n = int(named.gates[gate][assigned].sum())
            rows.append(
                {
                    "batch": batch,
                    "sample": sample,
                    "day": days[sample],
                    "population": pop,
                    "events": n,
                    "percent": 100.0 * n / len(x) if len(x) else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=REFERENCE_POPULATION_COLUMNS)
