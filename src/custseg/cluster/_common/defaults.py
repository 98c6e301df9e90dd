"""The clustering estimators' default parameters, stated once.

Each single-node estimator's ``__init__`` and its Spark twin's signature and
``_setDefault`` read these names, so a default changes in one place. (The segment
stage's own defaults live in the project's config.)
"""

from __future__ import annotations

# -- every estimator that chooses k ---------------------------------------------------------
# Candidate numbers of clusters (low, high), both included, when k is not given.
K_RANGE: tuple[int, int] = (2, 10)
# Above this many customers the silhouette that chooses k is computed on a seeded sample.
SILHOUETTE_SAMPLE = 10_000

# -- every Spark estimator ------------------------------------------------------------------
# None: the limits are estimated from rows x features x memory (see engine, one_executor).
MAX_DRIVER_ROWS: int | None = None
MAX_EXECUTOR_ROWS: int | None = None

# -- per method -----------------------------------------------------------------------------
DBSCAN_MIN_SAMPLES = 10
# Own rows of one box of the distributed fit: what one task holds (its halo streams through
# it in chunks). 10^6 8-D rows: at most 1.04 GB in a Python worker (issue #5 benchmark, 10^7 rows).
DBSCAN_PARTITION_ROWS = 1_000_000
# Core points a distributed fit's model keeps for scoring new rows (more: a thinned set).
DBSCAN_MAX_MODEL_POINTS = 200_000

HDBSCAN_MIN_CLUSTER_SIZE = 10
# Above the driver limit: most bubbles (customer summaries) the hierarchy is built on.
HDBSCAN_MAX_BUBBLES = 65_536

# Micro-clusters of SparkHierarchical's distributed path: enough that Ward on them agrees
# with exact Ward (ARI >= 0.97 on the blobs of benchmarks/bench_hierarchical.py at 50k and
# 100k), few enough that the tree (O(m^2) time) and the nearest-centre labelling (m distances
# per customer) stay cheap.
HIERARCHICAL_MICRO_CLUSTERS = 1000

KMEANS_N_INIT = 10
