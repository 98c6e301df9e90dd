"""DBSCAN: a memory-light exact kernel, its eps diagnostics, and the Spark estimator.

The single-node ``DBSCAN`` gives scikit-learn's result (Euclidean, ``eps``
inclusive, ``min_samples`` counting the point itself) with the kernels each box
of the distributed fit runs (``_dbscan_kernels``), on all rows at once; memory
and time follow the rows, never the full neighbour lists:

1. core detection: a k-NN query with k = min_samples, bounded at eps (a point
   is core when its min_samples-th neighbour is within eps);
2. core connectivity: each core point's few nearest cores give fragments,
   and bounded queries join the fragments within eps of each other;
3. border points: the cluster of the nearest core point within ``eps`` --
   the same rule ``predict`` applies to new customers, so predicting the
   training data reproduces ``labels_`` exactly.

Core points and noise are identical to scikit-learn's; a border point within
``eps`` of cores of two clusters may get the other cluster than
scikit-learn's (whose choice depends on the visiting order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pyspark import keyword_only
from pyspark.ml.param import Param, TypeConverters

from custseg.errors import ModelError, ParameterError

from ._base import BaseClusterer, even_chunks, thread_map
from ._dbscan_kernels import core_counts, core_tree, local_clusters, nearest_core
from ._spark import SparkClusterEstimator, SparkClusterModel, _SparkClusterParams, spark_param
from ._validation import (
    check_features,
    check_int,
    check_not_above_rows,
    check_positive,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from ._dbscan_spark import DistributedFit

# Rows per tree query handed to one thread.
_QUERY_CHUNK = 4_096


class DBSCAN(BaseClusterer):
    """Density-based clustering with scikit-learn's semantics; noise is labelled -1.

    Parameters
    ----------
    eps : float
        Neighbourhood radius (Euclidean, inclusive). ``knee_point(k_distance_curve(X, min_samples))``
        suggests one.
    min_samples : int
        Points within ``eps`` (the point itself included) that make a point a core point.

    Attributes
    ----------
    labels_ : ndarray of int, shape (n,)
        Cluster of each training point, 0..n_clusters_-1 numbered by first core point; -1 = noise.
    core_sample_indices_ : ndarray of int
        Indices of the core points.
    components_ : ndarray, shape (n_core, n_features)
        The core points (what ``predict`` and ``to_dict`` keep).
    core_labels_ : ndarray of int
        Cluster of each core point in ``components_``.
    n_clusters_ : int

    Example
    -------
    >>> DBSCAN(eps=0.5, min_samples=2).fit([[0.0], [0.4], [5.0]]).labels_
    array([ 0,  0, -1])
    """

    method = "dbscan"

    def __init__(self, eps: float, min_samples: int = 10) -> None:
        self.eps = eps
        self.min_samples = min_samples

    def validate_params(self) -> None:
        check_positive("eps", self.eps)
        check_int("min_samples", self.min_samples, 1)

    def check_data_size(self, n_rows: int) -> None:
        check_not_above_rows("min_samples", self.min_samples, n_rows)

    def params_for_sample(self, ratio: float) -> dict[str, Any]:
        # The same density (neighbours within eps per volume) in a sample ratio times thinner.
        return {"eps": self.eps, "min_samples": max(1, round(self.min_samples / ratio))}

    def fit(self, X: Any, y: Any = None) -> DBSCAN:
        """Cluster ``X`` (customers x features); returns self."""
        self.validate_params()
        X = check_features(X)
        n = X.shape[0]
        self.check_data_size(n)

        eps = float(self.eps)
        is_core = core_counts(X, eps, self.min_samples) >= self.min_samples
        core_idx = np.flatnonzero(is_core)
        self.n_features_in_ = X.shape[1]
        self._set_core(X[core_idx], local_clusters(X[core_idx], eps))
        labels = np.full(n, -1, dtype=np.int64)
        labels[core_idx] = self.core_labels_
        other = np.flatnonzero(~is_core)
        if other.size:
            labels[other] = self._assign(X[other])[0]
        self.core_sample_indices_ = core_idx
        self.labels_ = labels
        return self

    def _set_core(self, components: np.ndarray, core_labels: np.ndarray) -> None:
        self.components_ = np.ascontiguousarray(components, dtype=np.float64).reshape(
            -1, self.n_features_in_
        )
        self.core_labels_ = np.asarray(core_labels, dtype=np.int64)
        self.n_clusters_ = int(self.core_labels_.max()) + 1 if self.core_labels_.size else 0
        self._core_tree = core_tree(self.components_) if self.components_.shape[0] else None

    def _assign(self, X: np.ndarray, threaded: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(label, is_core) for each row: the nearest core point's cluster if within eps.

        The distributed fit's rule (``nearest_core``), so noise means exactly "no core
        point within eps", ties at eps included.
        """
        return nearest_core(
            X, self.components_, self.core_labels_, float(self.eps),
            tree=self._core_tree, workers=-1 if threaded else 1,
        )  # fmt: skip

    def predict(self, X: Any) -> np.ndarray:
        """Label of the nearest core point if it is within eps, else -1 (noise)."""
        return self._assign(self._check_predict_input(X))[0]

    def predict_outputs(self, X: np.ndarray) -> tuple[np.ndarray, ...]:
        """(label, is_core) per row, single-threaded (it runs inside Spark tasks).

        is_core means the row coincides with a core point.
        """
        return self._assign(self._check_predict_input(X), threaded=False)

    def _state_to_dict(self) -> dict[str, Any]:
        return {
            "components": self.components_,
            "core_labels": self.core_labels_,
            "n_clusters": self.n_clusters_,
        }

    def _state_from_dict(self, data: dict[str, Any]) -> None:
        self._set_core(np.asarray(data["components"]), np.asarray(data["core_labels"]))


def _kth_distances(X: np.ndarray, k: int, tree: Any) -> np.ndarray:
    """Distance of each row of X to its k-th nearest point in ``tree`` (itself included)."""
    step = max(1, min(_QUERY_CHUNK, 1_000_000 // k))
    parts = thread_map(
        lambda a, b: tree.query(X[a:b], k=k)[0][:, -1], even_chunks(X.shape[0], step)
    )
    return np.concatenate(list(parts))


def k_distance_curve(X: Any, k: int) -> np.ndarray:
    """Sorted (ascending) distance of every point to its k-th nearest neighbour, itself included.

    ``k`` counts the point itself, as DBSCAN's ``min_samples`` does: a point is a
    core point at radius eps exactly when its value here is <= eps. Plot it
    (or take :func:`knee_point`) to choose eps.
    """
    X = check_features(X)
    k = check_int("k", k, 1)
    check_not_above_rows("k", k, X.shape[0])
    from sklearn.neighbors import KDTree

    return np.sort(_kth_distances(X, k, KDTree(X)))


def knee_point(curve: Any) -> tuple[int, float]:
    """``(index, value)`` of the knee of an ascending curve such as :func:`k_distance_curve`.

    Kneedle-style: both axes scaled to [0, 1], the knee is the point farthest
    below the chord from the first to the last point. Robust fallbacks: a
    curve of 1 or 2 points, a flat one, or one without a convex bend (linear,
    concave) gives its median point. A knee value of 0 (duplicates) moves to
    the first positive value, so the result can be used as DBSCAN's eps; it
    stays 0 only when every value is 0.
    """
    y = np.asarray(curve, dtype=np.float64).ravel()
    if y.size == 0:
        raise ParameterError("curve must hold at least one value, got an empty curve")
    if not np.isfinite(y).all():
        raise ParameterError(f"curve holds {int((~np.isfinite(y)).sum())} NaN or infinite values")
    if np.any(np.diff(y) < 0):
        raise ParameterError("curve must be sorted ascending (as k_distance_curve returns it)")
    n = y.size
    span = y[-1] - y[0]
    index = (n - 1) // 2
    if n >= 3 and span > 0:
        x = np.linspace(0.0, 1.0, n)
        below = x - (y - y[0]) / span
        best = int(np.argmax(below))
        if below[best] > 1e-12:
            index = best
    if y[index] <= 0:
        positive = np.flatnonzero(y > 0)
        if positive.size:
            index = int(positive[0])
    return index, float(y[index])


# -- Spark -----------------------------------------------------------------------
# Own rows of one box of the distributed fit: what one task holds (its halo streams through
# it in chunks). 10^6 8-D rows: at most 1.04 GB in a Python worker (issue #5 benchmark, 10^7 rows).
DEFAULT_PARTITION_ROWS = 1_000_000
DEFAULT_MAX_MODEL_POINTS = 200_000


class _DBSCANParams(_SparkClusterParams):
    eps: Param[float] = spark_param(
        "eps", "neighbourhood radius (Euclidean, inclusive), > 0", TypeConverters.toFloat
    )
    min_samples: Param[int] = spark_param(
        "min_samples",
        "points within eps (itself included) that make a core point",
        TypeConverters.toInt,
    )
    isCoreCol: Param[str] = spark_param(
        "isCoreCol", "output column: is the row a core point", TypeConverters.toString
    )
    partitionRows: Param[int] = spark_param(
        "partitionRows",
        "distributed fit: most rows one spatial partition owns (a task holds them; its eps halo "
        "streams through in chunks)",
        TypeConverters.toInt,
    )
    maxModelPoints: Param[int] = spark_param(
        "maxModelPoints",
        "distributed fit: most core points the saved model keeps for scoring new rows",
        TypeConverters.toInt,
    )
    _algo_params = ("eps", "min_samples")
    _clusterer_cls = DBSCAN

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(
            min_samples=10,
            isCoreCol="is_core",
            partitionRows=DEFAULT_PARTITION_ROWS,
            maxModelPoints=DEFAULT_MAX_MODEL_POINTS,
        )

    def _validate(self, updates: dict[str, Any]) -> None:
        super()._validate(updates)
        for name in ("partitionRows", "maxModelPoints"):
            if name in updates:
                check_int(name, updates[name], 1)

    def getEps(self) -> float:
        return self.getOrDefault(self.eps)

    def getMinSamples(self) -> int:
        return self.getOrDefault(self.min_samples)

    def getIsCoreCol(self) -> str:
        return self.getOrDefault(self.isCoreCol)

    def getPartitionRows(self) -> int:
        return self.getOrDefault(self.partitionRows)

    def getMaxModelPoints(self) -> int:
        return self.getOrDefault(self.maxModelPoints)


class SparkDBSCANSummary:
    """What a fit leaves about its training rows (pyspark.ml's ``model.summary`` shape).

    ``predictions`` is the training DataFrame with ``predictionCol`` and
    ``isCoreCol``: on the distributed path these are the labels the fit computed
    (looked up from its checkpoint, not recomputed); on the driver path the
    model's rule applied to the rows, which equals the fitted ``labels_``.
    """

    def __init__(
        self,
        predictions: DataFrame,
        prediction_col: str,
        features_col: str,
        n_clusters: int,
        n_core: int,
        n_boxes: int,
    ) -> None:
        self.predictions = predictions
        self.predictionCol = prediction_col
        self.featuresCol = features_col
        self.numClusters = n_clusters
        self.numCorePoints = n_core
        self.numBoxes = (
            n_boxes  # spatial partitions of the distributed fit (0: fitted on the driver)
        )


class SparkDBSCANModel(SparkClusterModel, _DBSCANParams):
    """Fitted SparkDBSCAN: ``transform`` adds ``predictionCol`` (int, -1 = noise) and ``isCoreCol``.

    A row gets the cluster of the nearest core point within eps (noise if there
    is none), and ``is_core`` is true when the row coincides with a core point.
    On the training DataFrame that is exactly DBSCAN's labelling; after a
    distributed fit ``transform`` of that very DataFrame (and ``summary.predictions``)
    returns the labels the fit already computed.

    Which core points: the model keeps every core point when there are at most
    ``maxModelPoints`` of them, and then ``transform`` and the saved model are
    exact on any data. A larger distributed fit keeps a thinned set of them
    (``coreCover`` > 0: every core point lies within that distance, at most eps,
    of a kept one of its own cluster, and every kept one is a true core point).
    Such a model, in the session that fitted it, still transforms exactly: it
    routes rows to the fit's partitions and compares them with all core points
    there. Saved and loaded, it scores with the kept points only: a row it puts
    in a cluster does have a core point of that cluster within eps, and
    ``is_core`` then means "is a kept core point"; a row it calls noise may have
    a core point within eps when its distance to the kept points is in
    (eps, eps + coreCover].
    """

    coreCover: Param[float] = spark_param(
        "coreCover",
        "largest distance of a core point to the kept core points (0: all kept, scoring exact)",
        TypeConverters.toFloat,
    )

    def __init__(self, clusterer: BaseClusterer | None = None) -> None:
        super().__init__(clusterer)
        self._setDefault(coreCover=0.0)
        self._exact_fit: DistributedFit | None = None
        self._fit_result: DistributedFit | None = None
        self._training: DataFrame | None = None
        self._summary: SparkDBSCANSummary | None = None

    def getCoreCover(self) -> float:
        return self.getOrDefault(self.coreCover)

    @property
    def hasSummary(self) -> bool:
        """True after ``fit`` in this session (a loaded model has no training rows)."""
        return self._training is not None

    @property
    def summary(self) -> SparkDBSCANSummary:
        """The labelled training rows and a few figures (see :class:`SparkDBSCANSummary`)."""
        if self._training is None:
            raise ModelError(
                "this SparkDBSCANModel has no summary: it was loaded, not fitted in this session"
            )
        if self._summary is None:
            clusterer = self.clusterer
            assert isinstance(clusterer, DBSCAN)
            fit = self._fit_result
            n_core = fit.n_core if fit is not None else int(clusterer.components_.shape[0])
            self._summary = SparkDBSCANSummary(
                self.transform(self._training),
                self.getPredictionCol(),
                self.getFeaturesCol(),
                int(clusterer.n_clusters_),
                n_core,
                fit.partitioner.n_leaves if fit is not None else 0,
            )
        return self._summary

    def _attach(self, training: DataFrame, fit: DistributedFit | None) -> None:
        """Keep the training DataFrame and what the distributed fit left (labels, partitions)."""
        self._training = training
        self._fit_result = fit
        if fit is not None:
            self._set(coreCover=fit.cover)
            self._exact_fit = fit if fit.labelled_cores is not None else None

    def _output_columns(self) -> list[tuple[str, str]]:
        return [(self.getPredictionCol(), "int"), (self.getIsCoreCol(), "boolean")]

    def _transform(self, dataset: DataFrame) -> DataFrame:
        """The fit's own labels for its training DataFrame; the exact distributed
        assignment after a thinned fit; else a pandas UDF.

        The UDF applies the model's rule (``DBSCAN.predict_outputs``: the nearest
        kept core point within eps), one bounded nearest-neighbour query per row on
        the k-d tree the model keeps.
        """
        import uuid

        from pyspark.sql import functions as F

        from ._dbscan_spark import assign_exact
        from ._spark import features_as_array, make_predict_udf

        outputs = self._output_columns()
        names = [name for name, _ in outputs]
        if len(set(names)) != len(names):
            raise ParameterError(f"output column names must differ, got {names}")
        if self._fit_result is not None and dataset is self._training:
            return self._fit_result.predictions(dataset.columns, names[0], names[1])
        features = features_as_array(dataset, self.getFeaturesCol())
        if self._exact_fit is not None:
            return assign_exact(
                dataset, features, self._exact_fit, float(self.getEps()), names[0], names[1]
            )
        clusterer = self.clusterer
        assert isinstance(clusterer, DBSCAN)
        udf = make_predict_udf(clusterer, outputs)
        tmp = f"__custseg_{uuid.uuid4().hex}"
        out = dataset.withColumn(tmp, udf(features))
        out = out.withColumns({name: F.col(tmp)[f"c{i}"] for i, name in enumerate(names)})
        return out.drop(tmp)


class SparkDBSCAN(SparkClusterEstimator, _DBSCANParams):
    """DBSCAN on a Spark DataFrame of features (a vector or array<double> column).

    Up to ``maxDriverRows`` rows are clustered on the driver; above that the
    exact distributed algorithm of :mod:`custseg.cluster._dbscan_spark` runs
    (spatial partitions of at most ``partitionRows`` own rows each, one task each,
    more and smaller ones where that is quicker on the session's task slots; a
    task holds its own rows, and its eps halo streams through it in chunks).
    The fitted model's ``summary.predictions`` (and its ``transform`` of the
    training DataFrame) holds every training row's label without a second pass.

    >>> model = SparkDBSCAN(eps=0.6, min_samples=10, predictionCol="segment").fit(df)  # doctest: +SKIP
    >>> model.transform(df)  # adds "segment" and "is_core"                           # doctest: +SKIP
    """

    _model_cls = SparkDBSCANModel
    _distributed_is_exact = True

    @keyword_only
    def __init__(
        self,
        *,
        eps: float,
        min_samples: int = 10,
        featuresCol: str = "features",
        predictionCol: str = "prediction",
        isCoreCol: str = "is_core",
        maxDriverRows: int | None = None,
        maxExecutorRows: int | None = None,
        partitionRows: int = DEFAULT_PARTITION_ROWS,
        maxModelPoints: int = DEFAULT_MAX_MODEL_POINTS,
    ) -> None:
        super().__init__()
        self._distributed_fit: DistributedFit | None = None
        self.setParams(**self._input_kwargs)

    def _fit(self, dataset: DataFrame) -> SparkClusterModel:
        self._distributed_fit = None
        try:
            model = super()._fit(dataset)
            if isinstance(model, SparkDBSCANModel):
                model._attach(dataset, self._distributed_fit)
        finally:
            self._distributed_fit = None
        return model

    def _fit_distributed(
        self,
        dataset: DataFrame,
        features: Column,
        clusterer: BaseClusterer,
        n_rows: int,
        driver_rows: int,
    ) -> BaseClusterer:
        """Exact distributed DBSCAN; returns a DBSCAN holding the kept core points."""
        from ._dbscan_spark import fit_distributed

        assert isinstance(clusterer, DBSCAN)
        fit = fit_distributed(
            dataset,
            features,
            eps=float(clusterer.eps),
            min_samples=int(clusterer.min_samples),
            n_rows=n_rows,
            features_col=self.getFeaturesCol(),
            partition_rows=self.getPartitionRows(),
            max_model_points=self.getMaxModelPoints(),
        )
        clusterer.n_features_in_ = int(fit.components.shape[1])
        clusterer._set_core(fit.components, fit.core_labels)
        clusterer.n_clusters_ = fit.n_clusters
        self._distributed_fit = fit
        return clusterer
