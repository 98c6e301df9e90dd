"""Segmentation above ``segment.max_driver_customers``: choose on a sample, fit on everyone.

The methods are tuned and compared on a seeded random sample of
``max_driver_customers`` customers (numeric features only reach the driver). The
recommended method is then refitted on *all* customers with its Spark estimator,
whose distributed path runs above that size, with its parameters carried over
from the sample so that they mean the same thing on n customers (each method's
rule is data in its record, ``custseg.methods``):

- DBSCAN keeps ``eps`` and scales ``min_samples`` by n / sample: the same density
  threshold (points per volume), since the full data is n / sample times denser;
- HDBSCAN scales ``min_cluster_size`` (a number of customers) the same way and keeps
  ``min_samples`` (the smoothing of the density estimate) at its sample value;
- hierarchical and k-means keep the number of segments chosen on the sample.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from custseg.cluster._common.engine import describe
from custseg.methods import METHODS
from custseg.segment.tuning import MethodResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from custseg.segment.scaling import FeatureScaler

SCALED_COL = "scaled_features"


def full_scale_params(result: MethodResult, ratio: float) -> dict[str, Any]:
    """The parameters for all customers, from those chosen on a sample ``ratio`` times smaller."""
    return METHODS[result.method].full_scale_params(result.params, ratio, result.estimator)


def refit_on_all(
    result: MethodResult,
    features: DataFrame,
    scaler: FeatureScaler,
    n_customers: int,
    X_sample: np.ndarray,
    max_driver_rows: int | None,
) -> MethodResult:
    """``result`` (tuned on ``X_sample``) refitted on every customer with the Spark estimator.

    ``max_driver_rows`` is its driver limit: None estimates it (the exact single-node fit up
    to it, the distributed path above), 0 forces the distributed path.
    """
    ratio = n_customers / len(X_sample)
    params = full_scale_params(result, ratio)
    estimator = METHODS[result.method].spark_estimator()(
        **params, featuresCol=SCALED_COL, maxDriverRows=max_driver_rows
    )
    model = estimator.fit(scaler.transform(features.select(*scaler.kept), SCALED_COL))
    fitted = model.clusterer
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    where = (
        f"refitted on all {n_customers:,} customers"
        if len(X_sample) == n_customers
        else f"chosen on a sample of {len(X_sample):,}, refitted on all {n_customers:,} customers"
    )
    return replace(
        result,
        params=params,
        estimator=fitted,
        # The sample's labels under the full model: for centroids, numbering and figures.
        labels=fitted.predict(X_sample),
        choice=f"{result.choice}; {where} ({shown})",
        engine=describe(fitted.fit_report_),
    )
