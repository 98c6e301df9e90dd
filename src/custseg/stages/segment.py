"""The segment stage: gold customer_features -> segments, profiles, comparison, MLflow.

1. Fit the scaler (one Spark aggregation) and bring the scaled features to
   the driver - up to ``segment.max_driver_customers`` (its default is in defaults.yaml);
   above it a seeded sample of that size (``scale_out.py``).
2. Tune and fit every configured method on them; measure each; pick the
   recommended one by the comparison rule (see ``comparison.py``). Above
   ``max_driver_customers``, or with ``segment.engine: spark``, refit it on
   all customers with its Spark estimator, which runs the exact single-node
   algorithm up to its driver limit (``segment.engine``, ``exact_max_rows``)
   and its distributed path above it; the comparison table and MLflow say
   which engine fitted each method.
3. Number its segments stably: matched to the current champion's segments.
4. Assign every customer with the same distributed scorer ``custseg score``
   uses, describe each segment, write the gold tables.
5. Log it all to MLflow (parent run, nested runs per method and sweep point),
   register the recommended model and move the ``champion`` alias to it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from custseg import tracking
from custseg.config import Config
from custseg.errors import InputDataError
from custseg.features import FEATURE_COLUMNS
from custseg.scoring import score_frame
from custseg.segment import figures
from custseg.segment.comparison import (
    advise_dbscan,
    comparison_markdown,
    comparison_table,
    recommend,
)
from custseg.segment.diagnostics import downsample_curve
from custseg.segment.evaluation import sample_indices
from custseg.segment.scale_out import refit_on_all
from custseg.segment.scaling import FeatureScaler
from custseg.segment.segmenter import Segmenter
from custseg.segment.structure import check_structure
from custseg.segment.tuning import MethodResult, tune
from custseg.stages.report import StageReport

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

PROJECTION_SAMPLE = 20_000
FIGURE_POINTS = 5_000


def load_truth(config: Config, customer_ids: pd.Series) -> np.ndarray | None:
    """Planted archetypes aligned to ``customer_ids`` (codes; unknown customers get their own
    code)."""
    import pandas as pd

    path = (
        Path(config.segment.truth_path)
        if config.segment.truth_path
        else Path(config.input.path) / "truth" / "customer_archetypes.csv"
    )
    if not path.is_file():
        if config.segment.truth_path:
            raise InputDataError(f"truth file not found: {path}")
        return None
    truth = pd.read_csv(path, dtype={"customer_id": str})
    if not {"customer_id", "archetype"} <= set(truth.columns):
        raise InputDataError(
            f"truth file {path} must have columns customer_id,archetype; it has "
            f"{', '.join(truth.columns)}"
        )
    aligned = customer_ids.map(truth.set_index("customer_id")["archetype"]).fillna("__unknown__")
    return pd.factorize(aligned)[0]


def _centroids(raw: pd.DataFrame, labels: np.ndarray, features: list[str]) -> dict[int, np.ndarray]:
    frame = raw[features].assign(_label=labels)
    means = frame[frame["_label"] >= 0].groupby("_label")[features].mean()
    return {int(k): means.loc[k].to_numpy(dtype=np.float64) for k in means.index}


def _segment_numbers(
    result: MethodResult, raw: pd.DataFrame, scaler: FeatureScaler, champion: Segmenter | None
) -> tuple[dict[int, int], str]:
    """Clusterer label -> stable segment number, matched to the champion's segments when there is
    one."""
    import pandas as pd

    from custseg.profile import match_segments

    labels = sorted(int(x) for x in np.unique(result.labels) if x >= 0)
    if champion is None or not champion.centroids:
        mapping = {label: label + 1 for label in labels}
        how = "first model: segments numbered by size"
    else:
        # Compare centroids on the new model's scale, so every feature weighs the same.
        new = _centroids(raw, result.labels, scaler.features)
        old_frame = pd.DataFrame.from_dict(
            champion.centroids, orient="index", columns=champion.features
        )
        new_frame = pd.DataFrame.from_dict(new, orient="index", columns=scaler.features)
        common = [f for f in scaler.kept if f in old_frame.columns]
        sub = FeatureScaler(
            common,
            [f for f in scaler.log_features if f in common],
            common,
            [m for f, m in zip(scaler.kept, scaler.means, strict=True) if f in common],
            [s for f, s in zip(scaler.kept, scaler.stds, strict=True) if f in common],
        )
        old_scaled = dict(zip(old_frame.index, sub.transform_pandas(old_frame), strict=True))
        new_scaled = dict(zip(new_frame.index, sub.transform_pandas(new_frame), strict=True))
        mapping = match_segments(new_scaled, old_scaled)
        how = "matched to the champion's segments by nearest centroids"
    mapping[-1] = -1
    return mapping, how


def _projection(X: np.ndarray, seed: int) -> np.ndarray:
    """The top two principal axes (2 x d) of a sample of the scaled features."""
    idx = sample_indices(X.shape[0], PROJECTION_SAMPLE, seed)
    sample = X[idx] - X[idx].mean(axis=0)
    if sample.shape[1] == 1:
        return np.array([[1.0], [0.0]])
    _, _, vt = np.linalg.svd(sample, full_matrices=False)
    return vt[:2]


def segment(spark: SparkSession, config: Config, progress=print) -> StageReport:
    import pyspark.sql.functions as F

    from custseg.profile import (
        business_insights,
        describe_segments,
        profile_markdown,
        segment_statistics,
        typical_gap_days,
    )
    from custseg.storage import Lakehouse

    started = time.perf_counter()
    seg_cfg = config.segment
    lake = Lakehouse(spark, config.storage)
    features = lake.read("gold", "customer_features")
    n = features.count()
    if n < 2:
        raise InputDataError(
            f"gold.customer_features has {n} customer(s) with orders; segmentation needs at least 2"
        )
    scaler = FeatureScaler.fit(features, FEATURE_COLUMNS, seg_cfg.log_features)
    left_out = [
        f"{', '.join(names)} left out: {why}"
        for names, why in (
            (scaler.zero_variance, "no variance"),
            (scaler.unavailable, "not available in this input"),
        )
        if names
    ]
    progress(
        f"  {n:,} customers, {len(scaler.kept)} features"
        + (f" ({'; '.join(left_out)})" if left_out else "")
    )
    # At most max_driver_customers rows reach the driver: numeric feature columns only, nothing
    # personal. Above that, the methods are compared on a seeded sample (see scale_out).
    large = n > seg_cfg.max_driver_customers
    source = features
    if large:
        m = seg_cfg.max_driver_customers
        progress(
            f"  comparing methods on a sample of {m:,}; the recommended one is refitted on all "
            f"{n:,}"
        )
        source = features.sample(fraction=min(1.0, 1.2 * m / n), seed=seg_cfg.random_seed).limit(m)
    raw = source.select("customer_id", *FEATURE_COLUMNS).orderBy("customer_id").toPandas()
    X = scaler.transform_pandas(raw)
    truth = load_truth(config, raw["customer_id"])

    results: list[MethodResult] = []
    for method in seg_cfg.methods:
        progress(f"  tuning {method}")
        results.append(tune(method, X, seg_cfg, truth))
    recommended_name = recommend(results)
    advise_dbscan(results)
    table = comparison_table(results, recommended_name)
    best = next(r for r in results if r.method == recommended_name)
    if large:
        for r in results:
            r.engine = f"{r.engine}, on a sample of {len(X):,}"
    if large or seg_cfg.engine == "spark":
        driver_rows = {"auto": seg_cfg.exact_max_rows, "single": n, "spark": 0}[seg_cfg.engine]
        progress(f"  fitting {best.method} on all {n:,} customers (engine {seg_cfg.engine})")
        best = refit_on_all(best, features, scaler, n, X, driver_rows)
        progress(f"  {best.method}: {best.engine}")
        results = [best if r.method == best.method else r for r in results]
        table = comparison_table(results, recommended_name)

    tracking.setup(config.tracking)
    champion = tracking.load_champion(config.tracking)
    mapping, numbering = _segment_numbers(best, raw, scaler, champion[0] if champion else None)
    structure = check_structure(X, int(best.metrics.get("n_clusters", 0)), seg_cfg.random_seed)
    projection = _projection(X, seg_cfg.random_seed)
    segmenter = Segmenter(
        method=best.method,
        scaler=scaler,
        clusterer=best.estimator,
        segment_map=mapping,
        centroids={
            mapping[k]: v.tolist() for k, v in _centroids(raw, best.labels, scaler.features).items()
        },
        projection=projection,
    )

    report = StageReport("segment")
    # Set by the Spark estimators (cluster/_engine.py); absent when tuned single-node only.
    fit_report = getattr(best.estimator, "fit_report_", None)
    tags = {
        "custseg.stage": "segment",
        "custseg.recommended": best.method,
        "custseg.engine": best.engine,
        "custseg.approximate": str(bool(fit_report) and not fit_report["exact"]).lower(),
        "custseg.structure": structure.verdict if structure else "not measured",
    }
    with tracking.run("segment", tags=tags) as parent:
        run_id = parent.info.run_id
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

        progress("  assigning customers and describing segments")
        scored = score_frame(features, segmenter)
        with_features = scored.join(features.select("customer_id", *FEATURE_COLUMNS), "customer_id")
        # Statistics of every feature with values; words only for the ones the model clustered on.
        available = [f for f in FEATURE_COLUMNS if f not in scaler.unavailable]
        stats = segment_statistics(with_features, available)
        profiles = describe_segments(
            stats,
            seg_cfg.outlier_share,
            described=scaler.kept,
            typical_gap_days=typical_gap_days(features),
        )
        segmenter.segment_names = {int(r.segment): str(r.archetype) for r in profiles.itertuples()}

        model_uris = _log_methods(results, scaler, raw, X, projection, best, segmenter)
        version = tracking.register_version(
            model_uris[best.method], config.tracking, tags={"method": best.method, "run_id": run_id}
        )
        tracking.log_metrics({f"{r.method}.{k}": v for r in results for k, v in r.metrics.items()})
        tracking.log_table(table, "method_comparison")
        tracking.log_table(profiles, "segment_profiles")
        idx = sample_indices(len(X), FIGURE_POINTS, seg_cfg.random_seed)
        tracking.log_figure(
            figures.projection_figure(
                X[idx] @ projection.T, segmenter.assign(best.labels[idx]), segmenter.segment_names
            ),
            "projection",
        )

        progress("  writing gold tables")
        names = F.create_map(
            *[x for k, v in sorted(segmenter.segment_names.items()) for x in (F.lit(k), F.lit(v))]
        )
        previous = (
            lake.read("gold", "customer_segments")
            if lake.exists("gold", "customer_segments")
            else None
        )
        segments_df = scored.withColumns(
            {
                "segment_name": names[F.col("segment")],
                "method": F.lit(best.method),
                "model_version": F.lit(version),
                "run_id": F.lit(run_id),
            }
        )
        if previous is not None:
            # The live version: the new one stays pending (unpublished) until the block below ends.
            previous = previous.select("customer_id", "segment")
        with (
            lake.publishing()
        ):  # every gold table of the run goes live together, then the alias moves
            lake.write(segments_df, "gold", "customer_segments")
            lake.write(
                _small(spark, profiles.assign(method=best.method, run_id=run_id)),
                "gold",
                "segment_profiles",
                files=1,
            )
            lake.write(
                _small(spark, table.assign(run_id=run_id)), "gold", "method_comparison", files=1
            )
            _write_diagnostics(spark, lake, results, run_id)
            migration = None
            if previous is not None:
                from custseg.profile import migration_counts

                migration = migration_counts(
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

        tracking.move_alias(version, config.tracking)

    report.tables["gold.customer_segments"] = lake.read("gold", "customer_segments").count()
    report.tables["gold.segment_profiles"] = len(profiles)
    report.tables["gold.method_comparison"] = len(table)
    report.notes.append(f"recommended: {best.method} ({best.choice}); {numbering}")
    report.notes.append(
        f"registered {config.tracking.model_name} version {version} as @{config.tracking.alias} "
        f"(run {run_id})"
    )
    if structure is not None:
        report.notes.append(structure.summary())
    for r in results:
        if r.diagnostics is not None:
            report.notes.append(r.diagnostics.summary())
        if r.error:
            report.notes.append(f"{r.method} could not run: {r.error}")
    report.extra.update(
        comparison=table,
        comparison_markdown=comparison_markdown(table),
        profiles=profiles,
        profile_markdown=profile_markdown(profiles),
        insights=business_insights(profiles),
        run_id=run_id,
        model_version=version,
        recommended=best.method,
    )
    report.seconds = time.perf_counter() - started
    return report


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


def _write_diagnostics(spark: SparkSession, lake, results: list[MethodResult], run_id: str) -> None:
    """The DBSCAN k-distance curve and the hierarchical merge tree, for the dashboard."""
    import pandas as pd

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
