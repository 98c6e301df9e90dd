"""The segment-structure check: customers against uniform clouds of the same spread."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from custseg.segment.structure import MIN_SILHOUETTE_GAIN, check_structure, reference_cloud

_rng = np.random.default_rng(0)
CONTINUA = {
    "uniform": _rng.uniform(size=(2_000, 5)),
    "gaussian": _rng.normal(size=(2_000, 9)),
    "log_normal": StandardScaler().fit_transform(np.log1p(_rng.lognormal(size=(2_000, 9)))),
    "one_factor": _rng.normal(size=(2_000, 1)) @ _rng.normal(size=(1, 6))
    + 0.3 * _rng.normal(size=(2_000, 6)),
}


@pytest.mark.parametrize("name", CONTINUA)
def test_a_continuum_has_no_segment_structure(name):
    check = check_structure(CONTINUA[name], 4, seed=1)
    assert check.verdict == "none"
    assert check.silhouette - check.reference_silhouette < MIN_SILHOUETTE_GAIN
    assert check.summary().startswith("segment structure: none found (k-means at k=4 scores")


@pytest.mark.parametrize("std", [1.0, 3.0])
def test_separated_groups_are_clear(std):
    X, _ = make_blobs(n_samples=2_000, centers=4, n_features=9, cluster_std=std, random_state=0)
    check = check_structure(X, 4, seed=1)
    assert check.verdict == "clear" and check.summary().startswith("segment structure: clear")


def test_the_silhouette_is_scikit_learns_on_the_customers():
    X, _ = make_blobs(n_samples=1_500, centers=3, n_features=4, random_state=2)
    check = check_structure(X, 3, seed=5)
    labels = KMeans(n_clusters=3, n_init=4, random_state=5).fit_predict(X)
    assert check.silhouette == pytest.approx(silhouette_score(X, labels))
    assert 0.0 < check.reference_silhouette < check.silhouette


def test_the_reference_fills_the_box_of_the_principal_axes():
    X = _rng.normal(size=(4_000, 3)) * [5.0, 1.0, 0.2] @ np.linalg.qr(_rng.normal(size=(3, 3)))[0]
    cloud = reference_cloud(X, np.random.default_rng(3))
    centre = X.mean(axis=0)
    axes = np.linalg.svd(X - centre, full_matrices=False)[2]
    inside, outside = (cloud - centre) @ axes.T, (X - centre) @ axes.T
    assert cloud.shape == X.shape
    assert (inside.min(axis=0) >= outside.min(axis=0) - 1e-9).all()
    assert (inside.max(axis=0) <= outside.max(axis=0) + 1e-9).all()
    # Uniform along each axis: a quarter of the points in each quarter of the range.
    low, high = outside.min(axis=0), outside.max(axis=0)
    quarters = np.floor(4 * (inside - low) / (high - low)).clip(0, 3)
    for j in range(3):
        assert np.bincount(quarters[:, j].astype(int), minlength=4) / len(X) == pytest.approx(
            [0.25] * 4, abs=0.03
        )


def test_no_verdict_without_two_segments_or_enough_distinct_rows():
    assert check_structure(np.ones((50, 3)), 3, seed=0) is None
    assert check_structure(_rng.normal(size=(50, 3)), 1, seed=0) is None
