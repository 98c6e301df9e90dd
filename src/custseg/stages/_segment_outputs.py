"""What the segment stage writes: its MLflow runs (parameters, metrics, tables, figures, one
pyfunc model per method) and its gold tables (see ``segment.py`` for the steps)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyspark.sql.functions as F

from custseg import profile, tracking
from custseg.config import Config, SegmentConfig
from custseg.features import FEATURE_COLUMNS
from custseg.segment import figures
from custseg.segment.diagnostics import downsample_curve
from custseg.segment.evaluation import sample_indices
from custseg.segment.scaling import FeatureScaler
from custseg.segment.segmenter import Segmenter
from custseg.segment.tuning import MethodResult
from custseg.storage import Lakehouse

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from custseg.segment.structure import StructureCheck

FIGURE_POINTS = 5_000


def log_inputs(
    n: int,
    scaler: FeatureScaler,
    seg_cfg: SegmentConfig,
    structure: StructureCheck | None,
    fit_report: dict | None,
    raw: pd.DataFrame,
    lake: Lakehouse,
) -> None:
    """The parent run's parameters, the structure and agreement metrics, the dataset logged."""
    tracking.log_params(
        {
            "n_customers": n,
            "features": ",".join(scaler.kept),
            "zero_variance_features": ",".join(scaler.zero_variance) or "none",
            "unavailable_features": ",".join(scaler.unavailable) or "none",
            "methods": ",".join(seg_cfg.methods),
            "max_driver_customers": seg_cfg.max_driver_customers,
            "engine": seg_cfg.engine,
            "exact_max_rows": seg_cfg.exact_max_rows or "estimated",
            "random_seed": seg_cfg.random_seed,
        }
    )
    if structure is not None:
        tracking.log_metrics(
            {
                "structure_silhouette": structure.silhouette,
                "structure_reference_silhouette": structure.reference_silhouette,
            }
        )
    if fit_report and "agreement_ari" in fit_report:
        tracking.log_metrics({"agreement_ari": fit_report["agreement_ari"]})
    tracking.log_dataset(
        raw[FEATURE_COLUMNS],
        source=str(lake.location("gold", "customer_features")),
        name="gold.customer_features",
    )


def log_results(
    results: list[MethodResult],
    table: pd.DataFrame,
    profiles: pd.DataFrame,
    raw: pd.DataFrame,
    X: np.ndarray,
    best: MethodResult,
    segmenter: Segmenter,
    config: Config,
    run_id: str,
) -> str:
    """A nested run and a model per method, the recommended model registered, the comparison,
    the profiles and the projection figure on the parent run; returns the registered version."""
    scaler, projection = segmenter.scaler, segmenter.projection
    model_uris = _log_methods(results, scaler, raw, X, projection, best, segmenter)
    version = tracking.register_version(
        model_uris[best.method], config.tracking, tags={"method": best.method, "run_id": run_id}
    )
    tracking.log_metrics({f"{r.method}.{k}": v for r in results for k, v in r.metrics.items()})
    tracking.log_table(table, "method_comparison")
    tracking.log_table(profiles, "segment_profiles")
    idx = sample_indices(len(X), FIGURE_POINTS, config.segment.random_seed)
    tracking.log_figure(
        figures.projection_figure(
            X[idx] @ projection.T, segmenter.assign(best.labels[idx]), segmenter.segment_names
        ),
        "projection",
    )
    return version


def write_gold(
    spark: SparkSession,
    lake: Lakehouse,
    scored: DataFrame,
    segmenter: Segmenter,
    profiles: pd.DataFrame,
    table: pd.DataFrame,
    results: list[MethodResult],
    version: str,
    run_id: str,
) -> None:
    """Every gold table of the run, published together; the migration from the previous
    segments when there were some."""
    method = segmenter.method
    names = F.create_map(
        *[x for k, v in sorted(segmenter.segment_names.items()) for x in (F.lit(k), F.lit(v))]
    )
    previous = (
        lake.read("gold", "customer_segments") if lake.exists("gold", "customer_segments") else None
    )
    segments_df = scored.withColumns(
        {
            "segment_name": names[F.col("segment")],
            "method": F.lit(method),
            "model_version": F.lit(version),
            "run_id": F.lit(run_id),
        }
    )
    if previous is not None:
        # The live version: the new one stays pending (unpublished) until the block below ends.
        previous = previous.select("customer_id", "segment")
    with lake.publishing():  # every gold table of the run goes live together, then the alias moves
        lake.write(segments_df, "gold", "customer_segments")
        lake.write(
            _small(spark, profiles.assign(method=method, run_id=run_id)),
            "gold",
            "segment_profiles",
            files=1,
        )
        lake.write(_small(spark, table.assign(run_id=run_id)), "gold", "method_comparison", files=1)
        _write_diagnostics(spark, lake, results, run_id)
        if previous is not None:
            migration = profile.migration_counts(
                previous,
                lake.read("gold", "customer_segments").select("customer_id", "segment"),
            )
            lake.write(
                migration.withColumn("run_id", F.lit(run_id)),
                "gold",
                "segment_migration",
                files=1,
            )
            tracking.log_table(
                lake.read("gold", "segment_migration").toPandas(), "segment_migration"
            )


def _small(spark: SparkSession, frame: pd.DataFrame) -> DataFrame:
    """A small pandas table (profiles, comparison) as a Spark DataFrame with plain column types."""
    clean = frame.copy()
    for col in clean.columns:
        if str(clean[col].dtype) in ("Int64", "object"):
            clean[col] = clean[col].astype(object).where(clean[col].notna(), None)
    return spark.createDataFrame(clean)


def _log_methods(
    results: list[MethodResult],
    scaler: FeatureScaler,
    raw: pd.DataFrame,
    X: np.ndarray,
    projection: np.ndarray,
    best: MethodResult,
    best_segmenter: Segmenter,
) -> dict[str, str]:
    """A nested run per method (with nested runs per sweep point), its figures and its pyfunc
    model."""
    uris: dict[str, str] = {}
    example = raw[scaler.features].head(5)
    for r in results:
        with tracking.run(r.method, nested=True, tags={"custseg.method": r.method}):
            if r.error:
                tracking.log_params({"error": r.error[:250]})
                continue
            tracking.log_params({**r.params, "choice": r.choice[:250], "engine": r.engine[:250]})
            tracking.log_metrics({**r.metrics, "seconds": r.seconds})
            for i, point in enumerate(r.sweep):
                with tracking.run(
                    f"{r.method}-sweep-{i}", nested=True, tags={"custseg.sweep": r.method}
                ):
                    tracking.log_params(point.params)
                    tracking.log_metrics(point.metrics)
            if r.diagnostics is not None and r.k_distance is not None:
                d = r.diagnostics
                tracking.log_params({"dbscan_verdict": d.verdict})
                tracking.log_metrics(
                    {
                        "knee_eps": d.knee_eps,
                        "density_ratio": d.density_ratio,
                        "k_distance_cv": d.k_distance_cv,
                    }
                )
                tracking.log_figure(
                    figures.k_distance_figure(r.k_distance, d.knee_eps, d.eps, d.min_samples),
                    "k_distance",
                )
            if r.method == "hierarchical":
                tracking.log_figure(
                    figures.dendrogram_figure(r.estimator.linkage_matrix_, r.estimator.n_clusters_),
                    "dendrogram",
                )
            if r is best:
                segmenter = best_segmenter
            else:
                segmenter = Segmenter(
                    r.method,
                    scaler,
                    r.estimator,
                    {int(x): int(x) + 1 for x in np.unique(r.labels) if x >= 0} | {-1: -1},
                    projection=projection,
                )
            uris[r.method] = tracking.log_segmenter(segmenter, example)
    return uris


def _write_diagnostics(
    spark: SparkSession, lake: Lakehouse, results: list[MethodResult], run_id: str
) -> None:
    """The DBSCAN k-distance curve and the hierarchical merge tree, for the dashboard."""
    for r in results:
        if r.method == "dbscan" and r.k_distance is not None and r.diagnostics is not None:
            rank, dist = downsample_curve(r.k_distance)
            frame = pd.DataFrame(
                {"rank": rank.astype("int64"), "k_distance": dist.astype("float64")}
            )
            frame = frame.assign(
                knee_eps=r.diagnostics.knee_eps,
                eps=r.diagnostics.eps,
                diagnostics=json.dumps(r.diagnostics.as_dict()),
                run_id=run_id,
            )
            lake.write(spark.createDataFrame(frame), "gold", "dbscan_k_distance", files=1)
        if r.method == "hierarchical" and r.estimator is not None:
            Z = r.estimator.linkage_matrix_
            frame = pd.DataFrame(Z, columns=["left", "right", "distance", "size"]).assign(
                run_id=run_id
            )
            lake.write(spark.createDataFrame(frame), "gold", "hierarchy_linkage", files=1)
