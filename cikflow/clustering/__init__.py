"""Clustering of the base population, phenotype labels, and the gate-vs-cluster check.

An automated gate is trusted more when an independent method agrees with it. This
module clusters the template's base population (viable lymphocytes in the default
template) on transformed markers (CD3, CD16, CD56 by default) and names each cluster
by its phenotype, so that every reported population below the base has a second,
cluster-based value beside the gate-based one.

Method
------
1. **Over-clustering.** :class:`ClusterModel` fits k-means (scikit-learn
   :class:`~sklearn.cluster.KMeans`, k-means++ initialisation, ``n_init`` restarts)
   with more clusters than populations (default 25) on a seeded subsample of at
   most ``max_events`` events, then assigns every event to its nearest centroid.
   Lloyd's algorithm on a random subsample estimates the same centroids as on all
   events (they are means of the same distributions), at a fraction of the cost.
2. **Phenotype labels.** The template's gates below the base are applied to each
   cluster's *median* marker vector (transformed units), parents first, with the
   clusters' own thresholds, never a gate's: per marker, the weighted two-class
   split of the parent clusters' medians (:func:`median_divider`, Otsu 1979 on
   cluster medians weighted by their events), within each subset where the
   template splits per subset (CD56 within CD3+ and within CD3−), so that a
   wrong valley of a gate is contradicted, not copied. A cluster's phenotype is the
   deepest reported population whose gate holds its median (``other`` if none).
3. **Cluster-based populations.** A population's cluster-based members are the
   events of the clusters its gate holds. :func:`concordance` compares them with
   the gate-based members: percent of base, the difference in percentage points,
   and the per-event F1 of the two labelings; a difference above ``margin_pp``
   is the ``gate_cluster_discordant`` flag.
4. **Per batch** (:func:`balanced_pool`, :func:`drift_table`): one reference
   model fitted on an equal share of every culture day's events, applied to every
   day, so that clusters mean the same thing across the culture. A day's drift
   figure is its mean distance to the nearest centroid of the same model fitted
   on the *other* days, divided by those days' own (1 = typical): a day cannot
   hide its shift in centroids fitted partly on itself.

Markers enter in their template transform (logicle for fluorescence: one unit
spans ``m`` = 4.5 decades); a dimension without a transform (scatter) enters as
``log10(value) / 4.5`` so that a decade weighs the same in every dimension.

Nothing here reads files or draws: arrays and tables in, arrays and tables out.
"""

from __future__ import annotations

from cikflow.clustering.batch import (
    DRIFT_COLUMNS,
    LEVEL_DRIFT_DEFAULTS,
    balanced_pool,
    base_levels,
    cluster_map,
    drift_table,
    level_drift,
    median_dividers,
)
from cikflow.clustering.labelling import (
    DIVIDER_COLUMNS,
    ClusterLabels,
    Divider,
    label_clusters,
    median_divider,
    resolve_dividers,
    tree_populations,
)
from cikflow.clustering.model import (
    CLUSTERING_DEFAULTS,
    ClusterModel,
    marker_values,
)
from cikflow.clustering.sample import (
    CLUSTER_COLUMNS,
    CONCORDANCE_COLUMNS,
    BaseEvents,
    GatedClusters,
    SampleClusters,
    base_events,
    cluster_base,
    cluster_outcome,
    cluster_sample,
    concordance,
    gate_levels,
)

__all__ = [
    "CLUSTERING_DEFAULTS",
    "CLUSTER_COLUMNS",
    "CONCORDANCE_COLUMNS",
    "DIVIDER_COLUMNS",
    "DRIFT_COLUMNS",
    "LEVEL_DRIFT_DEFAULTS",
    "BaseEvents",
    "ClusterLabels",
    "ClusterModel",
    "Divider",
    "GatedClusters",
    "SampleClusters",
    "balanced_pool",
    "base_events",
    "base_levels",
    "cluster_base",
    "cluster_map",
    "cluster_outcome",
    "cluster_sample",
    "concordance",
    "drift_table",
    "gate_levels",
    "label_clusters",
    "level_drift",
    "marker_values",
    "median_divider",
    "median_dividers",
    "resolve_dividers",
    "tree_populations",
]
