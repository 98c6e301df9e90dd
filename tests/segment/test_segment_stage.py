"""The segment stage end to end on a planted feature table: gold tables, MLflow tree, registry,
scoring."""

import numpy as np
import pandas as pd
import pytest

from custseg import tracking
from custseg.config import load_config
from custseg.features import FEATURE_COLUMNS
from custseg.stages.segment import segment as run_segment
from custseg.storage import Lakehouse

SIZES = (300, 120, 40)


def planted_features(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three well separated, log-normal groups of customers in the nine features."""
    rng = np.random.default_rng(seed)
    centres = [
        [12, 600, 400, 10, 2, 6, 100, 9, 4],
        [3, 2500, 800, 40, 3, 2, 1250, 3, 2],
        [150, 6000, 60, 300, 0, 1, 6000, 2, 1],
    ]
    blocks, truth = [], []
    for g, (centre, size) in enumerate(zip(centres, SIZES, strict=True)):
        blocks.append(np.asarray(centre, dtype=float) * np.exp(rng.normal(0, 0.08, (size, 9))))
        truth += [g] * size
    frame = pd.DataFrame(np.vstack(blocks), columns=FEATURE_COLUMNS)
    frame["loyalty_segment"] = frame["loyalty_segment"].round().clip(0, 3)
    frame.insert(0, "customer_id", [f"c{i:05d}" for i in range(len(frame))])
    return frame, np.asarray(truth)


@pytest.fixture(scope="module")
def stage(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("segment")
    frame, truth = planted_features()
    truth_file = root / "truth.csv"
    pd.DataFrame({"customer_id": frame["customer_id"], "archetype": truth}).to_csv(
        truth_file, index=False
    )
    config = load_config(
        overrides={
            "storage.root": str(root / "lakehouse"),
            "tracking.tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
            "tracking.artifact_location": (root / "mlruns").as_uri(),
            "segment.truth_path": str(truth_file),
            "segment.stability_bootstraps": 2,
        }
    )
    lake = Lakehouse(spark, config.storage)
    lake.write(spark.createDataFrame(frame), "gold", "customer_features")
    first = run_segment(spark, config, progress=lambda _m: None)
    second = run_segment(spark, config, progress=lambda _m: None)
    return config, lake, frame, first, second


def test_recovers_planted_groups(stage):
    _config, lake, frame, first, _ = stage
    table = first.extra["comparison"].set_index("method")
    recommended = first.extra["recommended"]
    assert table.loc[recommended, "ari_truth"] == pytest.approx(1.0)
    assert set(table.index) == {"dbscan", "hierarchical", "hdbscan", "kmeans"}
    sizes = lake.read("gold", "customer_segments").groupBy("segment").count().toPandas()
    assert sorted(sizes["count"], reverse=True) == list(SIZES)


def test_gold_tables_and_profiles(stage):
    _config, lake, _frame, first, _ = stage
    profiles = lake.read("gold", "segment_profiles").toPandas()
    assert sorted(profiles["size"], reverse=True) == list(SIZES)
    assert {"archetype", "action", "description", "is_outlier"} <= set(profiles.columns)
    assert first.extra["profile_markdown"].startswith(
        "| Cluster | Units Purchased | Loyalty Segment | Num Orders | Count |"
    )
    assert lake.read("gold", "method_comparison").count() == 4
    assert lake.exists("gold", "dbscan_k_distance") and lake.exists("gold", "hierarchy_linkage")


def test_mlflow_run_tree_and_alias(stage):
    import mlflow
    from mlflow import MlflowClient

    config, _lake, _frame, first, second = stage
    tracking.setup(config.tracking)
    client = MlflowClient()
    parent = client.get_run(first.extra["run_id"])
    assert parent.info.status == "FINISHED"
    experiment = parent.info.experiment_id
    children = mlflow.search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert set(children["tags.mlflow.runName"]) == {"dbscan", "hierarchical", "hdbscan", "kmeans"}
    hier = children[children["tags.mlflow.runName"] == "hierarchical"].iloc[0]
    sweeps = mlflow.search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{hier['run_id']}'"
    )
    assert len(sweeps) >= 2  # one nested run per k tried
    version = client.get_model_version_by_alias(config.tracking.model_name, "champion")
    assert str(version.version) == second.extra["model_version"] == "2"
    assert not mlflow.search_runs(
        [experiment], filter_string="attributes.status = 'RUNNING'"
    ).shape[0]


def test_retrain_keeps_segment_numbers_and_stores_migration(stage):
    _config, lake, _frame, first, second = stage
    migration = lake.read("gold", "segment_migration").toPandas()
    assert (migration["previous"] == migration["current"]).all()
    assert migration["customers"].sum() == sum(SIZES)
    assert "matched to the champion" in second.notes[0]


def test_pyfunc_round_trip_reproduces_training_segments(stage):
    import mlflow

    config, lake, frame, _first, _ = stage
    tracking.setup(config.tracking)
    model = mlflow.pyfunc.load_model(tracking.champion_uri(config.tracking))
    predicted = model.predict(frame[FEATURE_COLUMNS])["segment"].to_numpy()
    trained = (
        lake.read("gold", "customer_segments")
        .toPandas()
        .set_index("customer_id")
        .loc[frame["customer_id"], "segment"]
    )
    assert (predicted == trained.to_numpy()).all()


def test_spark_scoring_with_the_champion(stage, spark):
    from custseg.stages.score import score

    config, lake, _frame, _first, _ = stage
    report = score(spark, config, progress=lambda _m: None)
    scored = lake.read("gold", "customer_scores").select("customer_id", "segment")
    trained = lake.read("gold", "customer_segments").select("customer_id", "segment")
    assert report.tables["gold.customer_scores"] == sum(SIZES)
    assert scored.exceptAll(trained).count() == 0


def _planted_lakehouse(spark, tmp_path, **segment):
    """A throwaway lakehouse and MLflow store holding the planted features; ``segment`` overrides
    ``segment.*`` settings (methods, max_driver_customers, ...)."""
    frame, _ = planted_features()
    config = load_config(
        overrides={
            "storage.root": str(tmp_path / "lakehouse"),
            "tracking.tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "tracking.artifact_location": (tmp_path / "mlruns").as_uri(),
            **{f"segment.{key}": value for key, value in segment.items()},
        }
    )
    Lakehouse(spark, config.storage).write(
        spark.createDataFrame(frame), "gold", "customer_features"
    )
    return config


def _kmeans_only(spark, tmp_path):
    """The planted lakehouse, segmented by k-means alone."""
    return _planted_lakehouse(spark, tmp_path, methods=["kmeans"])


def test_failed_run_ends_failed(spark, tmp_path, monkeypatch):
    import mlflow

    config = _kmeans_only(spark, tmp_path)

    def boom(*_a, **_k):
        raise RuntimeError("injected failure")

    monkeypatch.setattr("custseg.profile.describe_segments", boom)
    with pytest.raises(RuntimeError, match="injected failure"):
        run_segment(spark, config, progress=lambda _m: None)
    runs = mlflow.search_runs(search_all_experiments=True)
    assert set(runs["status"]) == {"FAILED"}
    assert not Lakehouse(spark, config.storage).exists("gold", "customer_segments")


@pytest.mark.parametrize("method", ["hierarchical"])
def test_above_max_driver_customers_compares_on_a_sample_and_fits_everyone(spark, tmp_path, method):
    """460 customers, 200 on the driver: the methods are compared on a sample of 200, the
    recommended one is refitted on all 460 by its Spark estimator (exact on the driver: 460
    rows are far below its estimated driver limit)."""
    from sklearn.metrics import adjusted_rand_score

    frame, truth = planted_features()
    config = _planted_lakehouse(
        spark, tmp_path, methods=[method], max_driver_customers=200, stability_bootstraps=2
    )
    lake = Lakehouse(spark, config.storage)
    report = run_segment(spark, config, progress=lambda _m: None)
    choice = report.extra["comparison"].set_index("method").loc[method, "choice"]
    assert "chosen on a sample of 200, refitted on all 460 customers" in choice
    segments = lake.read("gold", "customer_segments").toPandas().set_index("customer_id")
    labels = segments.loc[frame["customer_id"], "segment"].to_numpy()
    assert len(segments) == 460 and adjusted_rand_score(truth, labels) > 0.95
    # The registered model scores the customers as the gold table says.
    segmenter = tracking.load_segmenter(tracking.champion_uri(config.tracking))
    assert (segmenter.predict(frame) == labels).all()


@pytest.mark.parametrize(
    ("engine", "max_driver", "recommended_engine", "other_engine"),
    [
        ("auto", 200, "single-node, exact", "single-node, exact, on a sample of 200"),
        ("spark", 100_000, "Spark, approximate (ARI ", "single-node, exact"),
    ],
)
def test_the_engine_of_each_method_is_in_the_table_and_the_mlflow_run(
    spark, tmp_path, engine, max_driver, recommended_engine, other_engine
):
    import mlflow

    config = _planted_lakehouse(
        spark,
        tmp_path,
        methods=["hierarchical", "kmeans"],
        max_driver_customers=max_driver,
        stability_bootstraps=2,
        engine=engine,
    )
    report = run_segment(spark, config, progress=lambda _m: None)
    table = report.extra["comparison"].set_index("method")
    best = report.extra["recommended"]
    other = next(m for m in table.index if m != best)
    assert table.loc[best, "engine"].startswith(recommended_engine)
    assert table.loc[other, "engine"] == other_engine
    assert "refitted on all 460 customers" in table.loc[best, "choice"]
    assert f"| {table.loc[best, 'engine']} |" in report.extra["comparison_markdown"]
    run = mlflow.get_run(report.extra["run_id"])
    assert run.data.tags["custseg.engine"] == table.loc[best, "engine"]
    assert run.data.tags["custseg.approximate"] == str(engine == "spark").lower()
    assert run.data.params["engine"] == engine
    # The planted archetypes are distinct groups: the structure check says so.
    assert run.data.tags["custseg.structure"] == "clear"
    assert any(note.startswith("segment structure: clear") for note in report.notes)
    assert (
        run.data.metrics["structure_silhouette"]
        > run.data.metrics["structure_reference_silhouette"]
    )
    if engine == "spark":
        assert 0.9 <= run.data.metrics["agreement_ari"] <= 1.0
    else:
        assert "agreement_ari" not in run.data.metrics


def test_interrupted_run_ends_killed(spark, tmp_path, monkeypatch):
    import mlflow

    config = _kmeans_only(spark, tmp_path)

    def interrupt(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr("custseg.profile.describe_segments", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_segment(spark, config, progress=lambda _m: None)
    runs = mlflow.search_runs(search_all_experiments=True)
    assert list(runs["status"]) == ["KILLED"]
