"""The fitted segmenter: what scoring a new customer needs, and nothing personal.

scaler (log + standardise) -> the method's assignment rule (DBSCAN: nearest
core point within eps; hierarchical and k-means: nearest centroid; HDBSCAN:
approximate prediction; a training row gets its training label) -> the
stable segment number. Saved as ``segmenter.json`` plus ``clusterer.npz``
(numeric arrays only), so it loads without the training data or Spark.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from custseg.errors import ModelError
from custseg.methods import METHODS
from custseg.segment.scaling import FeatureScaler

if TYPE_CHECKING:
    import pandas as pd

STATE_FILE = "segmenter.json"
ARRAYS_FILE = "clusterer.npz"
NOISE = -1
PROJECTION_KEY = "__custseg_projection"


@dataclass
class Segmenter:
    method: str
    scaler: FeatureScaler
    clusterer: Any  # fitted custseg.cluster single-node estimator
    segment_map: dict[int, int]  # clusterer label -> stable segment number (noise stays -1)
    segment_names: dict[int, str] = field(default_factory=dict)
    # Per segment, the mean customer in feature units: how the next model's segments are matched to
    # these.
    centroids: dict[int, list[float]] = field(default_factory=dict)
    # 2-D principal-component projection of the scaled features (2 x kept), for charts.
    projection: np.ndarray | None = None

    @property
    def features(self) -> list[str]:
        return list(self.scaler.features)

    def assign(self, labels: np.ndarray) -> np.ndarray:
        """Clusterer labels -> stable segment numbers."""
        lookup = np.vectorize(
            lambda label: self.segment_map.get(int(label), NOISE), otypes=[np.int64]
        )
        return lookup(labels) if labels.size else labels.astype(np.int64)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Segment numbers for customers given as a frame of raw feature columns."""
        X = self.scaler.transform_pandas(features)
        if not np.isfinite(X).all():
            bad = int((~np.isfinite(X).all(axis=1)).sum())
            raise ModelError(
                f"{bad} customer(s) have missing or infinite feature values; fix them before "
                "scoring"
            )
        return self.assign(self.clusterer.predict(X))

    def project(self, features: pd.DataFrame) -> np.ndarray:
        """(n, 2) coordinates on the model's 2-D principal-component plane."""
        X = self.scaler.transform_pandas(features)
        if self.projection is None:
            return np.zeros((X.shape[0], 2))
        return X @ self.projection.T

    # -- persistence ---------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = self.clusterer.to_dict()
        arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
        meta = {
            "method": self.method,
            "scaler": self.scaler.to_dict(),
            "clusterer": {k: v for k, v in state.items() if k not in arrays},
            "segment_map": {str(k): int(v) for k, v in self.segment_map.items()},
            "segment_names": {str(k): v for k, v in self.segment_names.items()},
            "centroids": {str(k): [float(x) for x in v] for k, v in self.centroids.items()},
        }
        (folder / STATE_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if self.projection is not None:
            arrays = {**arrays, PROJECTION_KEY: self.projection}
        np.savez_compressed(folder / ARRAYS_FILE, **arrays)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Segmenter:
        folder = Path(folder)
        try:
            meta = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
            with np.load(folder / ARRAYS_FILE, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load a custseg segmenter from {folder}: {exc}") from exc
        method = meta["method"]
        if method not in METHODS:
            raise ModelError(f"unknown segmenter method {method!r} in {folder}")
        projection = arrays.pop(PROJECTION_KEY, None)
        clusterer = METHODS[method].estimator().from_dict({**meta["clusterer"], **arrays})
        return cls(
            method=method,
            scaler=FeatureScaler.from_dict(meta["scaler"]),
            clusterer=clusterer,
            segment_map={int(k): int(v) for k, v in meta["segment_map"].items()},
            segment_names={int(k): v for k, v in meta["segment_names"].items()},
            centroids={int(k): list(v) for k, v in meta["centroids"].items()},
            projection=projection,
        )
