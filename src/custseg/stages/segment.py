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

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from custseg import profile, tracking
from custseg.config import Config
from custseg.errors import InputDataError
from custseg.features import FEATURE_COLUMNS
from custseg.scoring import score_frame
from custseg.segment.comparison import (
    advise_dbscan,
    comparison_markdown,
    comparison_table,
    recommend,
)
from custseg.segment.evaluation import sample_indices
from custseg.segment.scale_out import refit_on_all
from custseg.segment.scaling import FeatureScaler
from custseg.segment.segmenter import Segmenter
from custseg.segment.structure import check_structure
from custseg.segment.tuning import MethodResult, tune
from custseg.stages._segment_outputs import log_inputs, log_results, write_gold
from custseg.stages.report import StageReport
from custseg.storage import Lakehouse

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from custseg.config import SegmentConfig
    from custseg.segment.structure import StructureCheck

PROJECTION_SAMPLE = 20_000


def load_truth(config: Config, customer_ids: pd.Series) -> np.ndarray | None:
    """Planted archetypes aligned to ``customer_ids`` (codes; unknown customers get their own
    code)."""
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
        mapping = profile.match_segments(new_scaled, old_scaled)
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
    """Run the stage: the steps of the module docstring, one function each."""
    started = time.perf_counter()
    seg_cfg = config.segment
    lake = Lakehouse(spark, config.storage)
    features = lake.read("gold", "customer_features")
    n = features.count()
    scaler = _fit_scaler(features, n, seg_cfg, progress)
    raw, large = _to_driver(features, n, seg_cfg, progress)
    X = scaler.transform_pandas(raw)
    truth = load_truth(config, raw["customer_id"])
    results, recommended_name = _compare_methods(X, truth, seg_cfg, progress)
    results, best, table = _fit_recommended(
        results, recommended_name, features, scaler, n, X, large, seg_cfg, progress
    )
    segmenter, numbering, structure = _number_segments(best, raw, X, scaler, config)

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
        log_inputs(n, scaler, seg_cfg, structure, fit_report, raw, lake)

        progress("  assigning customers and describing segments")
        scored, profiles = _describe(features, segmenter, scaler, seg_cfg)
        version = log_results(results, table, profiles, raw, X, best, segmenter, config, run_id)

        progress("  writing gold tables")
        write_gold(spark, lake, scored, segmenter, profiles, table, results, version, run_id)
        tracking.move_alias(version, config.tracking)

    report = _stage_report(
        lake, results, table, profiles, best, structure, numbering, config, version, run_id
    )
    report.seconds = time.perf_counter() - started
    return report


def _fit_scaler(features: DataFrame, n: int, seg_cfg: SegmentConfig, progress) -> FeatureScaler:
    """Step 1a: the scaler, fitted by one Spark aggregation; says which features are left out."""
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
    return scaler


def _to_driver(
    features: DataFrame, n: int, seg_cfg: SegmentConfig, progress
) -> tuple[pd.DataFrame, bool]:
    """Step 1b: the unscaled features on the driver, and whether they are only a sample.

    At most max_driver_customers rows reach the driver: numeric feature columns only, nothing
    personal. Above that, the methods are compared on a seeded sample (see scale_out).
    """
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
    return raw, large


def _compare_methods(
    X: np.ndarray, truth: np.ndarray | None, seg_cfg: SegmentConfig, progress
) -> tuple[list[MethodResult], str]:
    """Step 2a: tune and measure every configured method; the name of the recommended one."""
    results: list[MethodResult] = []
    for method in seg_cfg.methods:
        progress(f"  tuning {method}")
        results.append(tune(method, X, seg_cfg, truth))
    recommended_name = recommend(results)
    advise_dbscan(results)
    return results, recommended_name


def _fit_recommended(
    results: list[MethodResult],
    recommended_name: str,
    features: DataFrame,
    scaler: FeatureScaler,
    n: int,
    X: np.ndarray,
    large: bool,
    seg_cfg: SegmentConfig,
    progress,
) -> tuple[list[MethodResult], MethodResult, pd.DataFrame]:
    """Step 2b: refit the recommended method on all customers with its Spark estimator when the
    driver saw a sample or ``segment.engine`` is spark; the results, the best and the table."""
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
    return results, best, table


def _number_segments(
    best: MethodResult, raw: pd.DataFrame, X: np.ndarray, scaler: FeatureScaler, config: Config
) -> tuple[Segmenter, str, StructureCheck | None]:
    """Step 3: the segmenter, its segments numbered to match the champion's (read from MLflow),
    and the structure check; also says how the segments were numbered."""
    seg_cfg = config.segment
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
    return segmenter, numbering, structure


def _describe(
    features: DataFrame, segmenter: Segmenter, scaler: FeatureScaler, seg_cfg: SegmentConfig
) -> tuple[DataFrame, pd.DataFrame]:
    """Step 4a: every customer scored, and the segment profiles; names the segmenter's segments."""
    scored = score_frame(features, segmenter)
    with_features = scored.join(features.select("customer_id", *FEATURE_COLUMNS), "customer_id")
    # Statistics of every feature with values; words only for the ones the model clustered on.
    available = [f for f in FEATURE_COLUMNS if f not in scaler.unavailable]
    stats = profile.segment_statistics(with_features, available)
    profiles = profile.describe_segments(
        stats,
        seg_cfg.outlier_share,
        described=scaler.kept,
        typical_gap_days=profile.typical_gap_days(features),
    )
    segmenter.segment_names = {int(r.segment): str(r.archetype) for r in profiles.itertuples()}
    return scored, profiles


def _stage_report(
    lake: Lakehouse,
    results: list[MethodResult],
    table: pd.DataFrame,
    profiles: pd.DataFrame,
    best: MethodResult,
    structure: StructureCheck | None,
    numbering: str,
    config: Config,
    version: str,
    run_id: str,
) -> StageReport:
    """The stage's report: the tables written, the notes and the extras the CLI and the report
    show."""
    report = StageReport("segment")
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
        profile_markdown=profile.profile_markdown(profiles),
        insights=profile.business_insights(profiles),
        run_id=run_id,
        model_version=version,
        recommended=best.method,
    )
    return report
