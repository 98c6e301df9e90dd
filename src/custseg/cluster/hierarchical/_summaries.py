"""Micro-cluster summaries of a Spark DataFrame of features, computed in parallel.

Many customers are summarised by a few thousand *micro-clusters*, each a
clustering feature (BIRCH's CF): the number of customers, the sum of their
feature vectors and the sum of their squared norms. From those follow the
micro-cluster's mean, its within-cluster sum of squares and its radius, which
is all that Ward's merge cost (sizes and means) or a data-bubble summary
(size, mean, extent) needs.

How they are made (:func:`micro_cluster_summaries`):

1. a bounded, seeded sample of customers comes to the driver
   (:func:`sample_features`) and a few Lloyd iterations of k-means with random
   initial centres place ``n_micro`` centres on it (:func:`seed_centers`);
2. one distributed pass (``mapInArrow``, then a ``groupBy`` of at most
   ``n_micro`` keys) gives every customer to its nearest centre and adds up
   the clustering features (:func:`summarise_around`).

A customer belongs to the micro-cluster of its nearest *centre*
(:meth:`MicroClusters.assign`), so labelling customers later with that rule
reproduces exactly the memberships the summaries describe. The means
(linear sum / count) differ slightly from the centres; algorithms that work on
the summaries use the means and counts.

Why not Spark's own k-means with k in the thousands: each of its iterations
is a full pass computing n x k distances on the JVM, and it needs many
iterations plus a k-means|| initialisation (several more passes); the
sample-seeded route costs one pass over the data (``benchmarks/bench_hierarchical.py
--compare-summarisers`` measures both). Per-partition clustering followed by a
merge would also be one pass, but its micro-clusters depend on how the data
happens to be partitioned, and labelling customers consistently afterwards
needs a second pass anyway.

Only the DataFrame API is used (no RDDs, no ``sparkContext``); nothing
per-customer is collected: the sample is bounded, the summaries are
``n_micro`` rows.

>>> micro = micro_cluster_summaries(df, features, n_micro=1000, n_rows=df.count(),
...                                 seed=0, col_name="features")   # doctest: +SKIP
>>> micro.means.shape, int(micro.counts.sum()) == df.count()        # doctest: +SKIP
((1000, 8), True)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import functions as F
from sklearn.cluster import KMeans

from custseg.errors import ParameterError

from .._common.spark_frames import collect_features, raise_non_finite
from ._micro_clusters import MicroClusters, nearest_center

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame


# A sample of this many customers per micro-cluster seeds the centres (at least MIN_SAMPLE_ROWS,
# at most MAX_SAMPLE_ROWS): enough for k-means to place every centre among real customers,
# small enough that seeding stays a second or two on the driver.
SAMPLE_ROWS_PER_MICRO_CLUSTER = 25


MIN_SAMPLE_ROWS = 20_000


MAX_SAMPLE_ROWS = 200_000


# Lloyd iterations on the sample: the summaries are exact whatever the centres, so the centres
# only need to be reasonable; more iterations cost driver time for little gain in compactness.
SEED_KMEANS_ITERATIONS = 5


# Reason codes of rows the summarising pass cannot place (negative micro-cluster ids).
_NULL_OR_NOT_FINITE = -1


_WRONG_LENGTH = -2


def sample_size_for(n_micro: int, n_rows: int) -> int:
    """How many customers seed ``n_micro`` centres (all of them when the data is small)."""
    wanted = min(MAX_SAMPLE_ROWS, max(MIN_SAMPLE_ROWS, SAMPLE_ROWS_PER_MICRO_CLUSTER * n_micro))
    return min(n_rows, wanted)


def sample_features(
    dataset: DataFrame, features: Column, n_rows: int, size: int, seed: int, col_name: str
) -> np.ndarray:
    """A seeded sample of about ``size`` customers' features (at most ``size``), on the driver.

    A Bernoulli sample a little larger than needed, cut at ``size`` rows, so one pass
    usually suffices; the same seed and partitioning give the same sample.
    """
    fraction = min(1.0, 1.2 * size / max(1, n_rows))
    sampled = dataset.select(features.alias("f"))
    if fraction < 1.0:
        sampled = sampled.sample(withReplacement=False, fraction=fraction, seed=seed)
    X = collect_features(sampled.limit(size), col_name)
    if X.shape[0] and not np.isfinite(X).all():
        raise_non_finite(dataset, features, col_name)  # counts them all and names the features
        bad = int((~np.isfinite(X).all(axis=1)).sum())
        raise ParameterError(
            f"featuresCol {col_name!r} holds NaN or infinite values ({bad} rows in a sample of "
            f"{X.shape[0]}); impute or drop them before clustering"
        )
    return X


def seed_centers(sample: np.ndarray, n_micro: int, seed: int) -> np.ndarray:
    """``n_micro`` centres (fewer if the sample has fewer distinct rows) placed by k-means.

    Random initial centres (k-means++ costs n x k x log k distances, seconds per
    thousand centres) and a few Lloyd iterations: the summaries computed around the
    centres are exact whatever they are, so the centres need only be reasonable.
    """

    distinct = np.unique(sample, axis=0)
    if distinct.shape[0] <= n_micro:
        return distinct
    kmeans = KMeans(
        n_clusters=n_micro,
        init="random",
        n_init=1,
        max_iter=SEED_KMEANS_ITERATIONS,
        random_state=seed,
    )
    return np.ascontiguousarray(kmeans.fit(sample).cluster_centers_)


def summarise_around(
    dataset: DataFrame, features: Column, centers: np.ndarray, col_name: str, sample: np.ndarray
) -> MicroClusters:
    """One distributed pass: every customer to its nearest centre, clustering features summed.

    Each task adds up its rows' features per centre in numpy (one output row per
    non-empty micro-cluster), then a ``groupBy`` over the micro-cluster id merges the
    tasks' partial sums. Rows whose features are null, non-finite or of another length
    are counted, and refused with a ParameterError naming how many.
    """

    n_micro, n_dims = centers.shape
    ls_names = [f"ls_{j}" for j in range(n_dims)]
    schema = ", ".join(["micro int", "n long", "ss double", *(f"{c} double" for c in ls_names)])
    summarise = _partition_summariser(np.ascontiguousarray(centers, dtype=np.float64))
    partial = dataset.select(features.alias("f")).mapInArrow(summarise, schema)
    merged = partial.groupBy("micro").agg(
        F.sum("n").alias("n"), F.sum("ss").alias("ss"), *(F.sum(c).alias(c) for c in ls_names)
    )
    table = merged.toArrow()  # at most n_micro + 2 rows: bounded, whatever the data size
    micro_ids = table.column("micro").to_numpy()
    counts = table.column("n").to_numpy().astype(np.int64)
    if counts[micro_ids < 0].sum():
        raise_non_finite(dataset, features, col_name)  # names the features (NaN / infinity)
    _refuse_unplaceable_rows(micro_ids, counts, col_name, n_dims)
    order = np.argsort(micro_ids)
    ids = micro_ids[order]
    linear_sums = np.column_stack([table.column(c).to_numpy() for c in ls_names])[order]
    return MicroClusters(
        centers=np.ascontiguousarray(centers[ids]),
        counts=counts[order],
        linear_sums=np.ascontiguousarray(linear_sums, dtype=np.float64),
        squared_sums=table.column("ss").to_numpy()[order].astype(np.float64),
        sample=sample,
    )


def micro_cluster_summaries(
    dataset: DataFrame,
    features: Column,
    n_micro: int,
    *,
    n_rows: int,
    seed: int,
    col_name: str,
) -> MicroClusters:
    """Summarise the customers of ``dataset`` into at most ``n_micro`` micro-clusters.

    ``features`` is the features column as ``array<double>`` (see
    ``_common.spark_frames.features_as_array``), ``n_rows`` the row count (sizes the sample),
    ``seed`` fixes the sample and the seeding k-means, ``col_name`` names the column in
    messages.
    Costs one pass for the sample and one for the summaries.
    """
    sample = sample_features(
        dataset, features, n_rows, sample_size_for(n_micro, n_rows), seed, col_name
    )
    if sample.shape[0] == 0:
        raise ParameterError(
            f"the sample of featuresCol {col_name!r} is empty ({n_rows} rows counted)"
        )
    centers = seed_centers(sample, n_micro, seed)
    return summarise_around(dataset, features, centers, col_name, sample)


def _partition_summariser(centers: np.ndarray) -> Any:
    """The ``mapInArrow`` function: Arrow batches of ``f`` -> one summary row per micro-cluster."""
    n_micro, n_dims = centers.shape

    def summarise(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:

        counts = np.zeros(n_micro, dtype=np.int64)
        linear_sums = np.zeros((n_micro, n_dims))
        squared_sums = np.zeros(n_micro)
        unplaceable = {_NULL_OR_NOT_FINITE: 0, _WRONG_LENGTH: 0}
        for batch in batches:
            column = batch.column(0)
            if len(column) == 0:
                continue
            present = column.is_valid().to_numpy(zero_copy_only=False)
            lengths = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False)
            right_length = present & (lengths == n_dims)
            unplaceable[_WRONG_LENGTH] += int((present & ~right_length).sum())
            unplaceable[_NULL_OR_NOT_FINITE] += int((~present).sum())
            if not right_length.any():
                continue
            if not right_length.all():
                column = column.filter(pa.array(right_length))
            # Nulls inside an array become NaN here and are counted with the non-finite rows.
            values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            X = values.reshape(-1, n_dims)
            finite = np.isfinite(X).all(axis=1)
            if not finite.all():
                unplaceable[_NULL_OR_NOT_FINITE] += int((~finite).sum())
                X = X[finite]
            nearest = nearest_center(X, centers)
            counts += np.bincount(nearest, minlength=n_micro)
            squared_sums += np.bincount(
                nearest, weights=np.einsum("ij,ij->i", X, X), minlength=n_micro
            )
            for j in range(n_dims):
                linear_sums[:, j] += np.bincount(nearest, weights=X[:, j], minlength=n_micro)
        ids = np.flatnonzero(counts)
        reasons = [code for code, n in unplaceable.items() if n]
        columns = {
            "micro": np.concatenate([ids, reasons]).astype(np.int32),
            "n": np.concatenate([counts[ids], [unplaceable[c] for c in reasons]]).astype(np.int64),
            "ss": np.concatenate([squared_sums[ids], np.zeros(len(reasons))]),
        }
        for j in range(n_dims):
            columns[f"ls_{j}"] = np.concatenate([linear_sums[ids, j], np.zeros(len(reasons))])
        yield pa.RecordBatch.from_pydict(columns)

    return summarise


def _refuse_unplaceable_rows(
    micro_ids: np.ndarray, counts: np.ndarray, col_name: str, n_dims: int
) -> None:
    total = int(counts.sum())
    bad = {int(i): int(n) for i, n in zip(micro_ids, counts, strict=True) if i < 0}
    if bad.get(_NULL_OR_NOT_FINITE):
        raise ParameterError(
            f"featuresCol {col_name!r} is null, NaN or infinite in {bad[_NULL_OR_NOT_FINITE]} of "
            f"{total} rows; impute or drop them before clustering"
        )
    if bad.get(_WRONG_LENGTH):
        raise ParameterError(
            f"featuresCol {col_name!r} holds vectors of a length other than {n_dims} in "
            f"{bad[_WRONG_LENGTH]} of {total} rows"
        )
