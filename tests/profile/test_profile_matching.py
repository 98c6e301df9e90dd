"""Stable segment numbers across retrains and migration counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custseg.errors import InputDataError, ParameterError
from custseg.profile import match_segments, migration_counts, migration_matrix, relabel


def test_matching_recovers_a_shuffled_permutation() -> None:
    rng = np.random.default_rng(3)
    champion = {k: rng.normal(size=5) * 10 for k in range(8)}
    permutation = rng.permutation(8)  # new segment j is champion segment permutation[j]
    new = {j: champion[int(permutation[j])] + rng.normal(scale=0.05, size=5) for j in range(8)}
    new[-1] = np.zeros(5)
    mapping = match_segments(new, champion)
    assert mapping == {-1: -1, **{j: int(permutation[j]) for j in range(8)}}


def test_extra_new_segments_get_fresh_numbers_after_the_max() -> None:
    champion = {2: np.array([0.0, 0.0]), 5: np.array([10.0, 10.0])}
    new = {
        0: np.array([10.0, 9.0]),  # -> 5
        1: np.array([50.0, 50.0]),  # left over -> 6
        2: np.array([0.5, 0.0]),  # -> 2
        3: np.array([60.0, 60.0]),  # left over -> 7
    }
    # Total distance is minimised, so 1 and 3 (far from both) are the ones left over.
    assert match_segments(new, champion) == {0: 5, 1: 6, 2: 2, 3: 7}


def test_fewer_new_segments_and_empty_champion() -> None:
    champion = {0: np.array([0.0]), 1: np.array([5.0]), 2: np.array([9.0])}
    assert match_segments({0: np.array([8.0]), 1: np.array([0.2])}, champion) == {0: 2, 1: 0}
    assert match_segments({3: np.array([1.0]), -1: np.array([0.0])}, {}) == {-1: -1, 3: 0}


@pytest.mark.parametrize(
    ("new", "champion", "message"),
    [
        (
            {0: np.array([1.0, 2.0])},
            {0: np.array([1.0])},
            "2 features but champion centroids have 1",
        ),
        ({0: np.array([1.0]), 1: np.array([1.0, 2.0])}, {0: np.array([1.0])}, "same length"),
        ({0: np.array([np.nan])}, {0: np.array([1.0])}, "finite"),
    ],
)
def test_matching_bad_input(new, champion, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        match_segments(new, champion)


def test_relabel_keeps_the_container_type() -> None:
    mapping = {0: 5, 1: 2}
    np.testing.assert_array_equal(relabel(np.array([0, 1, -1, 0]), mapping), [5, 2, -1, 5])
    assert relabel([1, 1, 0], mapping) == [2, 2, 5]
    series = pd.Series([0, -1], index=["a", "b"], name="segment")
    pd.testing.assert_series_equal(
        relabel(series, mapping), pd.Series([5, -1], index=["a", "b"], name="segment")
    )
    with pytest.raises(ParameterError, match=r"no entry for label\(s\) \[7\]"):
        relabel(np.array([0, 7]), mapping)


def test_migration_matrix_by_hand() -> None:
    previous = pd.Series({"a": 0, "b": 0, "c": 1, "d": 1, "e": -1, "gone": 1})
    current = pd.Series({"a": 0, "b": 1, "c": 1, "d": 2, "e": 0, "new": 2})
    matrix = migration_matrix(previous, current)
    # a: 0->0, b: 0->1, c: 1->1, d: 1->2, e: -1->0.
    expected = pd.DataFrame(
        {0: [1, 1, 0], 1: [0, 1, 1], 2: [0, 0, 1]},
        index=pd.Index([-1, 0, 1], name="previous"),
    ).rename_axis(columns="current")
    pd.testing.assert_frame_equal(matrix, expected)
    assert matrix.to_numpy().sum() == 5  # "gone" and "new" are not in both runs


def test_migration_matrix_rejects_duplicate_ids() -> None:
    with pytest.raises(InputDataError, match=r"previous segments repeat customer id\(s\) \['a'\]"):
        migration_matrix(pd.Series([0, 1], index=["a", "a"]), pd.Series([0], index=["a"]))


@pytest.mark.spark
def test_spark_migration_counts_match_pandas(spark) -> None:
    previous = pd.DataFrame({"customer_id": list("abcdeg"), "segment": [0, 0, 1, 1, -1, 1]})
    current = pd.DataFrame({"customer_id": list("abcden"), "cluster": [0, 1, 1, 2, 0, 2]})
    counts = migration_counts(
        spark.createDataFrame(previous),
        spark.createDataFrame(current),
        seg_col=("segment", "cluster"),
    ).toPandas()
    assert counts.columns.tolist() == ["previous", "current", "customers"]
    assert [tuple(r) for r in counts.itertuples(index=False)] == [
        (-1, 0, 1),
        (0, 0, 1),
        (0, 1, 1),
        (1, 1, 1),
        (1, 2, 1),
    ]
    pivot = counts.pivot(index="previous", columns="current", values="customers").fillna(0)
    matrix = migration_matrix(
        previous.set_index("customer_id")["segment"], current.set_index("customer_id")["cluster"]
    )
    np.testing.assert_array_equal(pivot.to_numpy(), matrix.to_numpy())
    with pytest.raises(InputDataError, match="current segments lack"):
        migration_counts(spark.createDataFrame(previous), spark.createDataFrame(current))
