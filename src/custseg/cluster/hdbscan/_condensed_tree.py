"""HDBSCAN's condensed tree and excess-of-mass selection over a weighted spanning tree.

The distributed HDBSCAN (``_distributed``) ends with a minimum spanning tree whose
vertices are *bubbles*: groups of customers, weighted by how many they hold. This
module turns that tree into cluster labels the way HDBSCAN does for single points
(Campello et al.; hdbscan's ``_condense_tree`` and ``_get_clusters``), with three
differences that matter for weighted vertices:

1. **Every customer counts.** A vertex that falls out of a cluster contributes
   ``weight * (lambda - lambda_birth)`` to its stability. (fast_hdbscan's weighted
   condensed tree, used here before, counts such a vertex as one point whatever its
   weight, which under-rates clusters made of heavy bubbles.)
2. **A single vertex is never a cluster of its own.** A bubble is a box of the data
   space, not a group the data formed; its customers join the hierarchy one by one in
   exact HDBSCAN. So when one vertex splits off, it falls out of its cluster, however
   heavy it is, and only groups of two or more vertices weighing ``min_cluster_size``
   or more become clusters. When every weight is below ``min_cluster_size`` this
   changes nothing; above it (about 150 customers per bubble at 10^7 customers and
   65,536 bubbles) it keeps a region of bubbles joining one at a time one cluster,
   instead of a tree as deep as there are bubbles.
3. **No recursion.** The tree is walked in loops over arrays, so its depth does not
   matter (fast_hdbscan's recursive selection overflowed the C stack on a chain of a
   few ten thousand clusters, and took time quadratic in the depth).

With unit weights the labels are HDBSCAN's (``tests/cluster/test_condensed_tree.py``
checks them against fast_hdbscan's and against points expanded from weighted vertices).
"""

from __future__ import annotations

import numpy as np

from .._common.linkage import linkage_matrix


# whole: single linkage, one root-down walk sharing its owner / fell / fall_lambda arrays, then
# selection: one algorithm, as in hdbscan's own tree code
def weighted_hdbscan(
    mst: np.ndarray, weights: np.ndarray, min_cluster_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the vertices (``-1`` noise) and each label's birth distance.

    ``mst`` is a spanning tree ``(m - 1, 3)`` of vertex, vertex, mutual-reachability
    distance; ``weights`` the customers behind each vertex. The root cluster is never
    selected (hdbscan's ``allow_single_cluster=False``); labels are numbered in the
    order clusters are born from the top of the tree.
    """
    weights = np.asarray(weights, dtype=np.float64)
    m = weights.size
    if m < 2:
        return np.full(m, -1, dtype=np.int64), np.zeros(0)
    # Single linkage: the tree's edges by increasing distance (ties by vertex numbers, as
    # fast_hdbscan sorts them); row i creates node m + i, vertices are nodes 0 .. m - 1.
    mst = np.asarray(mst, dtype=np.float64)
    merges = linkage_matrix(mst[np.lexsort((mst[:, 1], mst[:, 0], mst[:, 2]))], weights)
    with np.errstate(divide="ignore"):
        lambdas = np.where(merges[:, 2] > 0, 1.0 / merges[:, 2], np.inf)

    # Walk the nodes from the root down; children always have smaller numbers than
    # their parent. A node either carries a cluster (owner) or has fallen out of one
    # (owner, at fall_lambda): everything below a fallen node falls out with it.
    n_nodes = 2 * m - 1
    owner = np.full(n_nodes, -1, dtype=np.int64)
    fell = np.zeros(n_nodes, dtype=bool)
    fall_lambda = np.zeros(n_nodes)
    cluster_parent = [-1]
    cluster_birth = [0.0]
    cluster_size = [float(weights.sum())]
    owner[n_nodes - 1] = 0
    big = np.zeros(n_nodes, dtype=bool)
    big[m:] = merges[:, 3] >= min_cluster_size  # a single vertex is never a cluster
    for node in range(n_nodes - 1, m - 1, -1):
        left, right = int(merges[node - m, 0]), int(merges[node - m, 1])
        here = owner[node]
        if fell[node]:
            owner[left] = owner[right] = here
            fell[left] = fell[right] = True
            fall_lambda[left] = fall_lambda[right] = fall_lambda[node]
            continue
        lam = lambdas[node - m]
        if big[left] and big[right]:
            for child in (left, right):
                owner[child] = len(cluster_parent)
                cluster_parent.append(here)
                cluster_birth.append(lam)
                cluster_size.append(merges[child - m, 3])
            continue
        for child in (left, right):
            owner[child] = here
            if not big[child]:
                fell[child] = True
                fall_lambda[child] = lam

    parent = np.asarray(cluster_parent, dtype=np.int64)
    birth = np.asarray(cluster_birth)
    size = np.asarray(cluster_size)
    n_clusters = parent.size
    vertex_owner = owner[:m]
    # Stability: each vertex's weight times how long it stayed, plus each child
    # cluster's weight times how long it stayed before splitting off.
    with np.errstate(invalid="ignore"):
        stay = np.nan_to_num(fall_lambda[:m] - birth[vertex_owner], nan=0.0, posinf=np.inf)
        stability = np.bincount(vertex_owner, weights * stay, minlength=n_clusters)
        kids = np.arange(1, n_clusters)
        child_stay = np.nan_to_num(birth[kids] - birth[parent[kids]], nan=0.0, posinf=np.inf)
        stability += np.bincount(parent[kids], size[kids] * child_stay, minlength=n_clusters)

    # Excess of mass, bottom-up (children have larger numbers): keep a cluster when its
    # stability is at least its children's best total; the root is never kept.
    best = np.zeros(n_clusters)
    children_best = np.zeros(n_clusters)
    keep = np.zeros(n_clusters, dtype=bool)
    for c in range(n_clusters - 1, 0, -1):
        own = max(stability[c], 0.0)
        if children_best[c] > own:
            best[c] = children_best[c]
        else:
            best[c] = own
            keep[c] = True
        children_best[parent[c]] += best[c]
    # A kept cluster under a kept ancestor is not selected; label = selected ancestor-or-self.
    label_of = np.full(n_clusters, -1, dtype=np.int64)
    selected = []
    for c in range(1, n_clusters):
        if label_of[parent[c]] >= 0:
            label_of[c] = label_of[parent[c]]
        elif keep[c]:
            label_of[c] = len(selected)
            selected.append(c)
    labels = label_of[vertex_owner]
    labels[fall_lambda[:m] == 0.0] = -1  # fell out at an infinite distance: not connected
    with np.errstate(divide="ignore"):
        births = np.where(birth[selected] > 0, 1.0 / birth[selected], np.inf)
    return labels, births
