"""A small lakehouse written with pyarrow alone (no Spark), shaped like the segment stage's output.

Three planted customer groups plus a few noise customers; DBSCAN is marked
weak (most customers noise) so the report has findings to explain; the
silver customers table holds names, tax ids and addresses the report must
never show, including a name that is an HTML script tag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HOSTILE = "<script>alert(1)</script>"


def write_table(root: Path, layer: str, table: str, frame: pd.DataFrame, version: int = 1) -> Path:
    """One table version the way custseg.storage lays it out: v0000000N/part-0.parquet, _SUCCESS,
    _current."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / layer / table
    target = folder / f"v{version:08d}"
    target.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), target / "part-0.parquet")
    (target / "_SUCCESS").touch()
    (folder / "_current").write_text(f"v{version:08d}\n", encoding="utf-8")
    return target


@dataclass
class ReportLake:
    root: Path
    store: Path
    features: pd.DataFrame
    customers: pd.DataFrame
    profiles: pd.DataFrame
    hostile: str = HOSTILE

    def write(self, layer: str, table: str, frame: pd.DataFrame, version: int) -> Path:
        return write_table(self.root, layer, table, frame, version)

    def config(self):
        from custseg.config import load_config

        return load_config(
            overrides={
                "storage.root": str(self.root),
                "tracking.tracking_uri": f"sqlite:///{self.store}",
            }
        )

    def source(self):
        from custseg.store.source import Source

        return Source.from_config(self.config())


def _features(rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    from custseg.features import FEATURE_COLUMNS

    centres = [
        [12, 600, 400, 10, 2, 6, 100, 9, 4],
        [3, 2500, 800, 40, 3, 2, 1250, 3, 2],
        [150, 6000, 60, 300, 0, 1, 6000, 2, 1],
    ]
    sizes = (50, 30, 15)
    blocks, labels = [], []
    for segment, (centre, size) in enumerate(zip(centres, sizes, strict=True), start=1):
        blocks.append(np.asarray(centre, dtype=float) * np.exp(rng.normal(0, 0.1, (size, 9))))
        labels += [segment] * size
    noise = np.asarray(centres[0], dtype=float) * np.exp(rng.normal(0, 1.5, (3, 9)))
    frame = pd.DataFrame(np.vstack([*blocks, noise]), columns=FEATURE_COLUMNS)
    frame["loyalty_segment"] = frame["loyalty_segment"].round().clip(0, 3)
    frame.insert(0, "customer_id", [f"R{i:06d}" for i in range(len(frame))])
    return frame, np.asarray(labels + [-1] * 3)


@pytest.fixture()
def write_table_to():
    """write_table, for tests that build a lakehouse of their own."""
    return write_table


@pytest.fixture()
def report_lake(tmp_path) -> ReportLake:
    from scipy.cluster.hierarchy import linkage

    from custseg.features import FEATURE_COLUMNS
    from custseg.profile import PROFILE_FEATURES, describe_segments, segment_statistics_pandas

    rng = np.random.default_rng(7)
    root = tmp_path / "lakehouse"
    features, labels = _features(rng)
    write_table(root, "gold", "customer_features", features)

    profiles = describe_segments(
        segment_statistics_pandas(features.assign(segment=labels), PROFILE_FEATURES)
    )
    names = dict(zip(profiles["segment"], profiles["archetype"], strict=True))
    segments = pd.DataFrame(
        {
            "customer_id": features["customer_id"],
            "segment": labels.astype("int32"),
            "pc1": rng.normal(size=len(features)),
            "pc2": rng.normal(size=len(features)),
            "segment_name": [names[s] for s in labels],
            "method": "hdbscan",
            "model_version": "1",
            "run_id": "run-1",
        }
    )
    write_table(root, "gold", "customer_segments", segments)
    write_table(root, "gold", "segment_profiles", profiles.assign(method="hdbscan", run_id="run-1"))

    diagnostics = {
        "eps": 0.4,
        "knee_eps": 0.4,
        "min_samples": 18,
        "n_clusters": 1,
        "noise_share": 0.62,
        "largest_share": 0.38,
        "density_ratio": 7.5,
        "k_distance_cv": 0.9,
        "verdict": "weak",
        "reasons": [
            "62% of customers are labelled noise",
            "densities vary: the 90th-percentile k-distance is 7.5x the 10th, so no single eps "
            "fits every segment",
        ],
        "recommendation": (
            "Use HDBSCAN, which adapts to varying density, or hierarchical (Ward) clustering."
        ),
    }
    comparison = pd.DataFrame(
        {
            "method": ["dbscan", "hierarchical", "hdbscan", "kmeans"],
            "params": ['{"eps": 0.4}', '{"n_clusters": 3}', '{"min_cluster_size": 10}', '{"k": 3}'],
            "choice": [
                "eps=0.4 (knee)",
                "k=3 by silhouette",
                "min_cluster_size=10",
                "k=3 by silhouette",
            ],
            "n_clusters": [1, 3, 3, 3],
            "noise_share": [0.62, 0.0, 0.03, 0.0],
            "largest_share": [0.38, 0.53, 0.52, 0.53],
            "silhouette": [0.2, 0.7, 0.75, 0.7],
            "davies_bouldin": [1.5, 0.5, 0.45, 0.5],
            "calinski_harabasz": [10.0, 300.0, 320.0, 300.0],
            "stability": [0.4, 1.0, 0.98, 1.0],
            "ari_truth": [np.nan, np.nan, np.nan, np.nan],
            "score": [0.076, 0.7, 0.7275, 0.7],
            "usable": [False, True, True, True],
            "recommended": [False, False, True, False],
            "note": ["DBSCAN is weak here: 62% of customers are labelled noise", "", "", ""],
            "seconds": [0.1, 0.2, 0.3, 0.1],
            "run_id": "run-1",
            "engine": ["single-node, exact"] * 3
            + ["Spark, approximate (ARI 0.950 against exact on a sample of 20,000)"],
        }
    )
    write_table(root, "gold", "method_comparison", comparison)
    curve = np.sort(rng.gamma(2.0, 0.2, len(features)))
    write_table(
        root,
        "gold",
        "dbscan_k_distance",
        pd.DataFrame(
            {
                "rank": np.arange(len(curve)),
                "k_distance": curve,
                "knee_eps": 0.4,
                "eps": 0.4,
                "diagnostics": json.dumps(diagnostics),
                "run_id": "run-1",
            }
        ),
    )
    Z = linkage(np.log1p(features[FEATURE_COLUMNS].to_numpy()), method="ward")
    write_table(
        root,
        "gold",
        "hierarchy_linkage",
        pd.DataFrame(Z, columns=["left", "right", "distance", "size"]).assign(run_id="run-1"),
    )

    n = len(features)
    customers = pd.DataFrame(
        {
            "customer_id": features["customer_id"],
            "customer_name": [f"DOE{i:03d}, JANE" for i in range(n)],
            "tax_id": [f"77{i:07d}" for i in range(n)],
            "tax_code": "EIN",
            "street": [f"Birch Lane {i}" for i in range(n)],
            "number": [str(i) for i in range(n)],
            "unit": None,
            "postcode": [f"PC-9{i:04d}" for i in range(n)],
            "ship_to_address": [f"CA, Birch Lane {i}" for i in range(n)],
            "lon": -120.0,
            "lat": 37.0,
            "state": "CA",
            "city": "FRESNO",
        }
    )
    customers.loc[0, "customer_name"] = HOSTILE
    write_table(root, "silver", "customers", customers)
    return ReportLake(root, tmp_path / "mlflow.db", features, customers, profiles)
