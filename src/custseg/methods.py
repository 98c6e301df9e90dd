"""The clustering methods custseg knows: one record per method, everything else reads it.

A record says what the rest of the code needs to know about a method: its
name and display label, its single-node and Spark estimator classes, its
tuner, its config section (the parameter grid and its defaults), how its
parameters carry from a sample to all customers when it scales out, and
its rank when two methods score the same. ``METHODS`` holds them in the
order ``segment.methods`` lists them by default.

Adding a method is one new package plus one record: the package
(``custseg/cluster/<method>/``, exported from ``custseg.cluster``) holds the
estimators and may hold the tuner; the record below names them and holds
the config section. Config validation, tuning, the comparison, scale-out and
the saved segmenter then take the method with no other edit
(tests/cluster/test_registry.py adds one to check); defaults.yaml, which
users read, should show the new section too (a test checks the two agree).

This module sits at the bottom of the import order (``custseg.config`` reads
it), so it imports nothing heavy: classes and tuners are named by
``"module:attribute"`` strings and imported only when asked for. It lives
beside ``config.py`` rather than in ``custseg/cluster/`` because importing a
module there runs ``custseg/cluster/__init__.py``, which loads the single-node
estimators (scipy, scikit-learn) that config has no need of.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class MethodSettings(BaseModel):
    """A method's section of ``segment`` in the config: strict, like every config section."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DBSCANConfig(MethodSettings):
    min_samples: int | None = Field(None, ge=1)  # None: 2 x the number of features
    eps: float | None = Field(None, gt=0)  # None: the knee of the k-distance curve
    sweep: list[float] = Field(default_factory=lambda: [0.5, 0.75, 1.0, 1.5, 2.0])


class HierarchicalConfig(MethodSettings):
    linkage: Literal["ward", "complete", "average", "single"] = "ward"
    k_min: int = Field(2, ge=2)
    k_max: int | None = Field(None, ge=2)  # None: grows with the data (segment/tuning.py)


class HDBSCANConfig(MethodSettings):
    min_cluster_sizes: list[int] = Field(default_factory=lambda: [5, 10, 25, 50, 100])
    # Counts the customer itself (scikit-learn's convention), so 2 is the smallest.
    min_samples: int | None = Field(None, ge=2)


class KMeansConfig(MethodSettings):
    k_min: int = Field(2, ge=2)
    k_max: int | None = Field(None, ge=2)


def _load(path: str) -> Any:
    """The attribute a ``"package.module:attribute"`` string names, imported now."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Method:
    """Everything custseg needs to know about one clustering method."""

    name: str  # as in segment.methods, the gold tables and MLflow
    label: str  # as people read it in the dashboard and the report
    estimator_path: str  # the single-node, scikit-learn style class
    spark_estimator_path: str  # the pyspark.ml Estimator
    tuner_path: str  # (X, SegmentConfig, truth) -> MethodResult
    settings: type[MethodSettings]  # its section of the config: grid and defaults
    # Ties between equal scores go to the lower rank: the more interpretable method.
    preference: int
    # Scaling out, parameters are chosen on a sample and the estimator refits all customers.
    # These counts of customers grow with n / sample, so that they mean the same density.
    scaled_with_customers: tuple[str, ...] = ()
    # Unset parameters pinned to another parameter's sample value before scaling, so that
    # scaling the other one does not move them.
    pinned_when_unset: dict[str, str] = field(default_factory=dict)
    # The estimator parameter holding the number of segments, which carries over as found
    # on the sample (KMeans calls it k, Hierarchical n_clusters); None: not a parameter.
    k_param: str | None = None

    def estimator(self) -> type:
        return _load(self.estimator_path)

    def spark_estimator(self) -> type:
        return _load(self.spark_estimator_path)

    def tuner(self) -> Any:
        return _load(self.tuner_path)

    def full_scale_params(
        self, params: dict[str, Any], ratio: float, fitted: Any
    ) -> dict[str, Any]:
        """The parameters for all customers, from ``params`` chosen on a sample ``ratio`` times
        smaller by the estimator ``fitted`` there."""
        carried = dict(params)
        for name, source in self.pinned_when_unset.items():
            carried[name] = carried.get(name) or params[source]
        for name in self.scaled_with_customers:
            carried[name] = math.ceil(params[name] * ratio)
        if self.k_param is not None:
            carried[self.k_param] = int(fitted.n_clusters_)
        return carried


_TUNING = "custseg.segment.tuning"

METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method(
            name="dbscan",
            label="DBSCAN",
            estimator_path="custseg.cluster:DBSCAN",
            spark_estimator_path="custseg.cluster:SparkDBSCAN",
            tuner_path=f"{_TUNING}:tune_dbscan",
            settings=DBSCANConfig,
            preference=3,
            # eps stays: the full data is n / sample times denser, so the same density
            # threshold (points per volume) needs that many more neighbours.
            scaled_with_customers=("min_samples",),
        ),
        Method(
            name="hierarchical",
            label="Hierarchical",
            estimator_path="custseg.cluster:Hierarchical",
            spark_estimator_path="custseg.cluster:SparkHierarchical",
            tuner_path=f"{_TUNING}:tune_hierarchical",
            settings=HierarchicalConfig,
            preference=0,
            k_param="n_clusters",
        ),
        Method(
            name="hdbscan",
            label="HDBSCAN",
            estimator_path="custseg.cluster:HDBSCAN",
            spark_estimator_path="custseg.cluster:SparkHDBSCAN",
            tuner_path=f"{_TUNING}:tune_hdbscan",
            settings=HDBSCANConfig,
            preference=2,
            # min_cluster_size is a number of customers; min_samples (the smoothing of the
            # density estimate) keeps its sample value, hdbscan's default pinned when unset.
            scaled_with_customers=("min_cluster_size",),
            pinned_when_unset={"min_samples": "min_cluster_size"},
        ),
        Method(
            name="kmeans",
            label="k-means",
            estimator_path="custseg.cluster:KMeans",
            spark_estimator_path="custseg.cluster:SparkKMeans",
            tuner_path=f"{_TUNING}:tune_kmeans",
            settings=KMeansConfig,
            preference=1,
            k_param="k",
        ),
    )
}

#: Method names from the most interpretable down: how ties between equal scores are broken.
PREFERENCE: list[str] = sorted(METHODS, key=lambda name: METHODS[name].preference)
