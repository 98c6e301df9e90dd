"""Feature scaling, part of every fitted model.

Heavy-tailed money and count features are log-transformed with a signed
log1p (sign(x) * log1p(|x|): the usual log1p for the non-negative values, and
a net spend below zero, a customer whose returns exceed their purchases in the
data, keeps its sign and order), then every feature is standardised with the
population mean and standard deviation. A feature with no variance cannot be
scaled: it is reported and left out of clustering, never silently divided by
one. A feature with no values at all (product diversity when the input has no
product ids) is not available: it is left out of clustering and profiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from custseg.errors import InputDataError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

FEATURES_COL = "features"
# Relative to the mean's magnitude: below this a feature is constant for clustering purposes.
ZERO_VARIANCE = 1e-12


@dataclass
class FeatureScaler:
    """log1p on ``log_features``, then (x - mean) / std on the ``kept`` features."""

    features: list[str]
    log_features: list[str]
    kept: list[str] = field(default_factory=list)
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    zero_variance: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    # -- fit ---------------------------------------------------------------
    @classmethod
    def fit(cls, df: DataFrame, features: list[str], log_features: list[str]) -> FeatureScaler:
        """Fit on a Spark DataFrame in one aggregation pass."""
        # lazy: pyspark stays out of the served scoring model (Segmenter imports this module)
        import pyspark.sql.functions as F

        unknown = sorted(set(log_features) - set(features))
        if unknown:
            raise InputDataError(
                f"segment.log_features names unknown feature(s): {', '.join(unknown)}"
            )
        scaler = cls(list(features), list(log_features))
        exprs = []
        for name in features:
            col = scaler._column_expr(name)
            exprs += [F.mean(col).alias(f"{name}__mean"), F.stddev_pop(col).alias(f"{name}__std")]
        row = df.agg(*exprs).collect()[0].asDict()
        scaler._set_moments({n: (row[f"{n}__mean"], row[f"{n}__std"]) for n in features})
        return scaler

    @classmethod
    def fit_pandas(
        cls, pdf: pd.DataFrame, features: list[str], log_features: list[str]
    ) -> FeatureScaler:
        scaler = cls(list(features), list(log_features))
        moments = {}
        for name in features:
            values = scaler._transform_column(name, pdf[name].to_numpy(dtype=np.float64))
            values = values[~np.isnan(values)]
            moments[name] = (
                (float(values.mean()), float(values.std())) if values.size else (None, None)
            )
        scaler._set_moments(moments)
        return scaler

    def _set_moments(self, moments: dict[str, tuple[float | None, float | None]]) -> None:
        self.kept, self.means, self.stds, self.zero_variance, self.unavailable = [], [], [], [], []
        for name in self.features:
            mean, std = moments[name]
            if mean is None:
                self.unavailable.append(name)
                continue
            if std is None or not np.isfinite(std) or std <= ZERO_VARIANCE * max(1.0, abs(mean)):
                self.zero_variance.append(name)
                continue
            self.kept.append(name)
            self.means.append(float(mean))
            self.stds.append(float(std))
        if not self.kept and not self.zero_variance:
            raise InputDataError("no feature has values: the feature table is empty")
        if not self.kept:
            raise InputDataError(
                f"every feature has zero variance ({', '.join(self.zero_variance)}): "
                "all customers look the same, so there is nothing to segment"
            )

    # -- transform ------------------------------------------------------------
    def _column_expr(self, name: str):
        # lazy: pyspark stays out of the served scoring model (Segmenter imports this module)
        import pyspark.sql.functions as F

        col = F.col(name).cast("double")
        return F.signum(col) * F.log1p(F.abs(col)) if name in self.log_features else col

    def _transform_column(self, name: str, values: np.ndarray) -> np.ndarray:
        return np.sign(values) * np.log1p(np.abs(values)) if name in self.log_features else values

    def transform_pandas(self, pdf: pd.DataFrame) -> np.ndarray:
        """The scaled matrix (rows x kept features) for a pandas frame with the feature columns."""
        missing = [n for n in self.kept if n not in pdf.columns]
        if missing:
            raise InputDataError(f"input lacks feature column(s) {', '.join(missing)}")
        columns = [
            (self._transform_column(n, pdf[n].to_numpy(dtype=np.float64)) - m) / s
            for n, m, s in zip(self.kept, self.means, self.stds, strict=True)
        ]
        return np.column_stack(columns) if columns else np.empty((len(pdf), 0))

    def transform(self, df: DataFrame, output_col: str = FEATURES_COL) -> DataFrame:
        """Adds ``output_col`` (array<double>) to a Spark DataFrame."""
        # lazy: pyspark stays out of the served scoring model (Segmenter imports this module)
        import pyspark.sql.functions as F

        scaled = [
            ((self._column_expr(n) - F.lit(m)) / F.lit(s))
            for n, m, s in zip(self.kept, self.means, self.stds, strict=True)
        ]
        return df.withColumn(output_col, F.array(*scaled))

    def inverse_transform(self, X: np.ndarray) -> pd.DataFrame:
        """Scaled rows back to feature units (for centroids), log features back through expm1."""

        out = {}
        for j, (n, m, s) in enumerate(zip(self.kept, self.means, self.stds, strict=True)):
            values = X[:, j] * s + m
            out[n] = (
                np.sign(values) * np.expm1(np.abs(values)) if n in self.log_features else values
            )
        return pd.DataFrame(out)

    # -- persistence ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "log_features": self.log_features,
            "kept": self.kept,
            "means": self.means,
            "stds": self.stds,
            "zero_variance": self.zero_variance,
            "unavailable": self.unavailable,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureScaler:
        return cls(**{k: list(v) for k, v in data.items()})
