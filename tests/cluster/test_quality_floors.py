"""CI's subset of the quality battery (``quality_battery.py``), with floors.

Each Spark estimator is forced onto its distributed path and compared with the exact
single-node algorithm given the same parameters:

- SparkHDBSCAN: ARI >= 0.9 against exact HDBSCAN and a noise share within 2 points of it;
- SparkHierarchical: ARI >= 0.95 against exact Ward cut at the same k, on the shapes where
  exact Ward is itself stable (a 5% subsample agrees with it at ARI >= 0.95); where it is
  not (8 of the 12 shapes, real data included), the test checks that it is not, since
  no approximation can be held to an answer that flips when 5% of the rows go;
- SparkDBSCAN: its distributed path is exact, so the labels are the same partition.
"""

from __future__ import annotations

import pytest
from quality_battery import compare, parameters, self_agreement, shapes

pytestmark = pytest.mark.spark

HDBSCAN_SHAPES = (
    "iris",
    "wine",
    "digits_64d",
    "moons",
    "elongated",
    "varied_density",
    "duplicates",
    "mixture_64d",
    "clusters_50",
)
# Exact Ward at the data's k, with itself on 95% subsamples: >= 0.99 on these, and 0.92 at
# best on the others (iris 0.53, breast cancer 0.49, moons 0.00).
WARD_STABLE = ("varied_density", "mixture_64d", "clusters_50")
WARD_UNSTABLE = (
    "iris",
    "wine",
    "breast_cancer",
    "digits_64d",
    "moons",
    "circles",
    "elongated",
    "duplicates",
)
DBSCAN_SHAPES = ("moons", "digits_64d", "duplicates", "varied_density")


def _shape(name):
    return shapes(1, (name,))[0]


@pytest.mark.parametrize("name", HDBSCAN_SHAPES)
def test_spark_hdbscan_agrees_with_exact_hdbscan(spark, name):
    row = compare(spark, _shape(name), "hdbscan")
    assert row["ari"] >= 0.9, row
    assert abs(row["noise"] - row["noise_exact"]) <= 0.02, row


@pytest.mark.parametrize("name", WARD_STABLE)
def test_spark_hierarchical_agrees_with_exact_ward_at_the_same_k(spark, name):
    row = compare(spark, _shape(name), "hierarchical")
    assert row["exact_self_ari"] >= 0.95
    assert row["ari"] >= 0.95, row


@pytest.mark.parametrize("name", WARD_UNSTABLE)
def test_exact_ward_is_itself_unstable_where_no_floor_is_set(name):
    from custseg.cluster import Hierarchical

    shape = _shape(name)
    exact = Hierarchical(**parameters("hierarchical", shape)).fit(shape.X).labels_
    assert self_agreement("hierarchical", shape, exact) < 0.95


@pytest.mark.parametrize("name", DBSCAN_SHAPES)
def test_distributed_dbscan_is_exact_on(spark, name):
    row = compare(spark, _shape(name), "dbscan")
    assert row["ari"] == pytest.approx(1.0) and row["noise"] == row["noise_exact"], row
