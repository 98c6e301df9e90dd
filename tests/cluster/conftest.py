"""Each distributed clustering path fitted once on a ``local-cluster`` application and once
through a Spark Connect server, all fits batched into one application per engine (starting
one is the expensive part). The tests compare the results with the exact single-node answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from engine_harness import LOCAL_CLUSTER, fit_all_on_engine


def engine_jobs() -> dict[str, tuple[str, dict[str, Any], np.ndarray]]:
    """{name: (estimator, params, X)}: each test module's engine fit (its data and params)."""
    import test_dbscan_distributed as dbscan
    import test_hdbscan_distributed as hdb
    import test_hierarchical_distributed as ward

    return {
        "dbscan": ("SparkDBSCAN", dbscan.ENGINE_PARAMS, dbscan.ENGINE_X),
        "hdbscan": ("SparkHDBSCAN", hdb.ENGINE_PARAMS, hdb.engine_data()),
        "hierarchical": ("SparkHierarchical", ward.ENGINE_PARAMS, ward.blob_data()[0]),
    }


@pytest.fixture(scope="session")
def local_cluster_fits(tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    return fit_all_on_engine(LOCAL_CLUSTER, engine_jobs(), tmp_path_factory.mktemp("local-cluster"))


@pytest.fixture(scope="session")
def connect_fits(connect_server: str, tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    return fit_all_on_engine(connect_server, engine_jobs(), tmp_path_factory.mktemp("connect"))
