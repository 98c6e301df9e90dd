"""Spark estimators: same labels as the single-node kernels, both column types, save/load,
errors."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from custseg.cluster import (
    DBSCAN,
    HDBSCAN,
    Hierarchical,
    KMeans,
    SparkDBSCAN,
    SparkDBSCANModel,
    SparkHDBSCAN,
    SparkHDBSCANModel,
    SparkHierarchical,
    SparkHierarchicalModel,
    SparkKMeans,
    SparkKMeansModel,
)
from custseg.errors import ModelError, ParameterError

pytestmark = pytest.mark.spark

X, _ = make_blobs(120, centers=3, cluster_std=0.7, random_state=0)
X = np.vstack([X, [[20.0, 20.0], [-20.0, 5.0]]])  # two outliers: noise for the density methods

METHODS = {
    "dbscan": (SparkDBSCAN, {"eps": 0.8, "min_samples": 5}, DBSCAN),
    "hierarchical": (SparkHierarchical, {"k_range": [2, 5]}, Hierarchical),
    "hdbscan": (SparkHDBSCAN, {"min_cluster_size": 8}, HDBSCAN),
    "kmeans": (SparkKMeans, {"k": 3}, KMeans),
}


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="module")
def df(spark):
    """Rows in X's order (a local list keeps its order when collected), both column types."""
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql.types import ArrayType, DoubleType, LongType, StructField, StructType

    schema = StructType(
        [
            StructField("id", LongType()),
            StructField("arr", ArrayType(DoubleType())),
            StructField("vec", VectorUDT()),
        ]
    )
    rows = [(i, X[i].tolist(), Vectors.dense(X[i])) for i in range(len(X))]
    return spark.createDataFrame(rows, schema)


@pytest.fixture(scope="module")
def models(df) -> dict:
    """Each method fitted once on the array column (the tests share them)."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    return {
        m: cls(featuresCol="arr", predictionCol="segment", **p).fit(df)
        for m, (cls, p, _) in METHODS.items()
    }


@pytest.fixture(scope="module")
def scored(df, models) -> dict:
    return {m: model.transform(df).orderBy("id").toPandas() for m, model in models.items()}


def labels_of(scored, col: str = "segment") -> np.ndarray:
    return scored.orderBy("id").toPandas()[col].to_numpy()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_fit_transform_equals_single_node(models, scored, method: str) -> None:
    _, params, local_cls = METHODS[method]
    expected = local_cls(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    ).fit(X)
    np.testing.assert_array_equal(models[method].clusterer.labels_, expected.labels_)
    pdf = scored[method]
    assert list(pdf.columns[:4]) == ["id", "arr", "vec", "segment"]
    assert pdf["segment"].dtype == np.int32
    np.testing.assert_array_equal(pdf["segment"].to_numpy(), expected.labels_)


def test_dbscan_is_core_and_noise(scored) -> None:
    pdf = scored["dbscan"]
    ref = DBSCAN(eps=0.8, min_samples=5).fit(X)
    assert pdf["is_core"].dtype == bool
    np.testing.assert_array_equal(
        np.flatnonzero(pdf["is_core"].to_numpy()), ref.core_sample_indices_
    )
    assert (pdf["segment"].to_numpy()[-2:] == -1).all()


def test_vector_column_accepted(df, scored) -> None:
    by_vec = SparkDBSCAN(eps=0.8, min_samples=5, featuresCol="vec", predictionCol="segment").fit(df)
    np.testing.assert_array_equal(
        labels_of(by_vec.transform(df)), scored["dbscan"]["segment"].to_numpy()
    )


def test_transform_is_distributed(df, models, capsys) -> None:
    models["kmeans"].transform(df).explain()
    assert "ArrowEvalPython" in capsys.readouterr().out


def test_transform_new_data_and_nulls(spark, models) -> None:
    model = models["kmeans"]
    centers = model.clusterer.cluster_centers_
    rows = [(0, centers[0].tolist()), (1, None), (2, centers[2].tolist()), (3, [float("nan"), 0.0])]
    new = spark.createDataFrame(rows, "id long, arr array<float>")  # float arrays are cast
    out = new.transform(model.transform).orderBy("id").toPandas()
    assert out["segment"].iloc[0] == 0 and out["segment"].iloc[2] == 2
    assert out["segment"].isna().tolist() == [False, True, False, True]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_save_load_round_trip(df, models, scored, tmp_path, method: str) -> None:
    model = models[method]
    model.save(tmp_path / "model")
    model_cls = type(model)
    by_model, by_estimator = (
        model_cls.load(tmp_path / "model"),
        METHODS[method][0].load(tmp_path / "model"),
    )
    for loaded in (by_model, by_estimator):
        assert type(loaded) is model_cls
        assert loaded.getPredictionCol() == "segment" and loaded.getFeaturesCol() == "arr"
    # the vector column on the loaded model: same labels as the fitted model gave
    np.testing.assert_array_equal(
        labels_of(by_model.setFeaturesCol("vec").transform(df)),
        scored[method]["segment"].to_numpy(),
    )


def test_estimator_save_load(tmp_path) -> None:
    est = SparkHierarchical(n_clusters=4, linkage="average", featuresCol="f", maxDriverRows=500)
    est.save(tmp_path / "est")
    loaded = SparkHierarchical.load(tmp_path / "est")
    assert isinstance(loaded, SparkHierarchical)
    assert loaded.getOrDefault("n_clusters") == 4 and loaded.getOrDefault("linkage") == "average"
    assert loaded.getFeaturesCol() == "f" and loaded.getMaxDriverRows() == 500
    with pytest.raises(ModelError, match="not a fitted model"):
        SparkHierarchicalModel.load(tmp_path / "est")
    with pytest.raises(ModelError, match="not a SparkKMeans"):
        SparkKMeans.load(tmp_path / "est")
    with pytest.raises(ModelError, match="already exists; pass overwrite=True"):
        est.save(tmp_path / "est")
    est.setParams(n_clusters=2).save(tmp_path / "est", overwrite=True)
    assert SparkHierarchical.load(tmp_path / "est").getOrDefault("n_clusters") == 2
    with pytest.raises(ModelError, match="no saved custseg estimator or model"):
        SparkKMeansModel.load(tmp_path / "missing")


def test_kmeans_above_max_driver_rows_runs_spark_ml_kmeans(spark) -> None:
    """The large path: Spark ML's k-means on all rows, clusters numbered by decreasing size;
    with k=None, k is chosen by silhouette on a sample of maxDriverRows rows."""
    blobs, truth = make_blobs(600, centers=3, cluster_std=0.7, random_state=0)
    frame = spark.createDataFrame(
        [(i, row.tolist()) for i, row in enumerate(blobs)], "id long, arr array<double>"
    )
    model = SparkKMeans(k=3, featuresCol="arr", predictionCol="segment", maxDriverRows=100).fit(
        frame
    )
    labels = labels_of(model.transform(frame))
    assert adjusted_rand_score(truth, labels) > 0.95
    sizes = np.bincount(labels)
    assert list(sizes) == sorted(sizes, reverse=True)
    chosen = SparkKMeans(k_range=[2, 5], featuresCol="arr", maxDriverRows=300).fit(frame).clusterer
    assert chosen.n_clusters_ == 3 and set(chosen.silhouette_by_k_) == {2, 3, 4, 5}


def test_data_dependent_check(df) -> None:
    with pytest.raises(
        ParameterError, match=re.escape("min_samples (500) exceeds the number of customers (122)")
    ):
        SparkDBSCAN(eps=0.8, min_samples=500, featuresCol="arr").fit(df)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SparkDBSCAN(eps=-1.0), "eps must be > 0, got -1.0"),
        (lambda: SparkDBSCAN(eps=0.5, min_samples=0), "min_samples must be an integer >= 1, got 0"),
        (
            lambda: SparkDBSCAN(eps=0.5, maxDriverRows=-1),
            "maxDriverRows must be an integer >= 0, got -1",
        ),
        (lambda: SparkHierarchical(linkage="median"), "linkage must be one of"),
        (
            lambda: SparkHierarchical(n_clusters=0),
            "n_clusters must be None or an integer >= 1, got 0",
        ),
        (
            lambda: SparkHDBSCAN(min_cluster_size=1),
            "min_cluster_size must be an integer >= 2, got 1",
        ),
        (lambda: SparkKMeans(k_range=[4, 2]), "k_range must be a pair"),
        (lambda: SparkKMeans(predictionCol=""), "predictionCol must be a non-empty column name"),
        (lambda: SparkDBSCAN(eps=0.5).setParams(eps=0.0), "eps must be > 0, got 0.0"),
        (lambda: SparkKMeans().setParams(kk=3), "SparkKMeans has no param 'kk'"),
    ],
    ids=[
        "eps",
        "min_samples",
        "maxDriverRows",
        "linkage",
        "n_clusters",
        "min_cluster_size",
        "k_range",
        "predictionCol",
        "setParams",
        "unknown",
    ],
)
def test_bad_params_at_construction(make, message: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(message)):
        make()


def test_bad_features_column(spark, df) -> None:
    with pytest.raises(ParameterError, match="featuresCol 'nope' is not a column"):
        SparkKMeans(k=2, featuresCol="nope").fit(df)
    text = spark.createDataFrame([("a",)], "features string")
    with pytest.raises(
        ParameterError, match="must be a vector or array<double> column, got string"
    ):
        SparkKMeans(k=2).fit(text)
    with_null = spark.createDataFrame(
        [([0.0, 1.0],), (None,), ([1.0, 2.0],)], "features array<double>"
    )
    with pytest.raises(ParameterError, match="featuresCol 'features' is null in 1 of 3 rows"):
        SparkKMeans(k=2).fit(with_null)
    with_nan = spark.createDataFrame(
        [([0.0, 1.0],), ([float("nan"), 1.0],), ([1.0, None],), ([2.0, 2.0],)],
        "features array<double>",
    )
    with pytest.raises(ParameterError, match="NaN or infinite values in 2 of 4 rows"):
        SparkKMeans(k=2).fit(with_nan)
    with pytest.raises(ParameterError, match="empty DataFrame"):
        SparkKMeans(k=2).fit(with_null.limit(0))
    ragged = spark.createDataFrame([([0.0, 1.0],), ([1.0],)], "features array<double>")
    with pytest.raises(ParameterError, match="vectors of different lengths"):
        SparkKMeans(k=2).fit(ragged)


def test_model_params_copied(df, models) -> None:
    model = models["dbscan"]
    assert isinstance(model, SparkDBSCANModel) and isinstance(models["hdbscan"], SparkHDBSCANModel)
    assert (model.getEps(), model.getMinSamples(), model.getIsCoreCol()) == (0.8, 5, "is_core")
    renamed = model.copy({model.isCoreCol: "core", model.predictionCol: "cluster"})
    assert renamed.transform(df).columns[-2:] == ["cluster", "core"]
    assert model.getIsCoreCol() == "is_core"
