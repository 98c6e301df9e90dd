"""The comparison rule and the DBSCAN diagnostics, on hand-made results."""

import numpy as np
import pytest

from custseg.segment.comparison import comparison_markdown, comparison_table, recommend, usability
from custseg.segment.diagnostics import diagnose_dbscan
from custseg.segment.evaluation import cluster_metrics, stability
from custseg.segment.tuning import MethodResult, score


def _result(method, n_clusters, noise, largest, sil, stab=0.9, error=None):
    metrics = {"n_clusters": n_clusters, "noise_share": noise, "largest_share": largest, "silhouette": sil, "stability": stab}
    return MethodResult(method, {}, None, np.zeros(1), metrics, [], "", error=error)


def test_score_discounts_noise():
    assert score({"silhouette": 0.8, "noise_share": 0.5, "n_clusters": 3}) == pytest.approx(0.4)
    assert score({"silhouette": 0.8, "noise_share": 0.0, "n_clusters": 1}) == float("-inf")


def test_recommend_prefers_usable_high_score():
    results = [
        _result("dbscan", 3, 0.6, 0.3, 0.95),  # great silhouette, but 60% noise: not usable
        _result("hierarchical", 4, 0.0, 0.6, 0.70),
        _result("kmeans", 4, 0.0, 0.6, 0.72, stab=0.3),  # unstable
        _result("hdbscan", 0, 1.0, 0.0, float("nan"), error=None),
    ]
    assert recommend(results) == "hierarchical"
    assert usability(results[0]) == (False, "60% noise")
    assert "unstable" in usability(results[2])[1]


def test_ties_go_to_the_more_interpretable_method():
    results = [_result("kmeans", 3, 0.0, 0.5, 0.7), _result("hierarchical", 3, 0.0, 0.5, 0.7)]
    assert recommend(results) == "hierarchical"


def test_no_usable_method_still_recommends_the_best_score():
    results = [_result("dbscan", 2, 0.5, 0.4, 0.9), _result("kmeans", 2, 0.0, 0.95, 0.3)]
    assert recommend(results) == "dbscan"  # 0.45 > 0.30
    table = comparison_table(results, "dbscan")
    assert list(table["recommended"]) == [True, False]
    assert "| dbscan | 2 | 0.50 |" in comparison_markdown(table)


def test_failed_method_is_reported_not_raised():
    results = [_result("dbscan", 0, 0, 0, 0, error="min_samples (18) exceeds the number of customers (5)"), _result("kmeans", 2, 0.0, 0.6, 0.5)]
    assert recommend(results) == "kmeans"
    table = comparison_table(results, "kmeans")
    assert table.loc[0, "note"].startswith("could not run: min_samples (18)")


def test_diagnostics_explain_all_noise_and_density_spread():
    kd = np.concatenate([np.full(50, 0.1), np.full(50, 1.0)])
    d = diagnose_dbscan(kd, np.full(100, -1), eps=0.05, knee_eps=0.05, min_samples=18)
    assert d.verdict == "weak"
    assert any("every customer is noise" in r for r in d.reasons)
    assert d.density_ratio == pytest.approx(10.0)
    assert "HDBSCAN" in d.summary()


def test_diagnostics_giant_cluster():
    labels = np.array([0] * 95 + [1] * 5)
    d = diagnose_dbscan(np.ones(100), labels, eps=1.0, knee_eps=1.0, min_samples=5)
    assert d.verdict == "weak" and "one giant cluster holds 95%" in d.reasons[0]


def test_diagnostics_ok():
    labels = np.array([0] * 50 + [1] * 50)
    d = diagnose_dbscan(np.ones(100), labels, eps=1.0, knee_eps=1.0, min_samples=5)
    assert d.verdict == "ok" and d.reasons == []


def test_metrics_and_stability_on_blobs():
    from sklearn.datasets import make_blobs

    from custseg.cluster import KMeans

    X, y = make_blobs(n_samples=300, centers=3, cluster_std=0.3, random_state=0)
    labels = KMeans(k=3, random_state=0).fit(X).labels_
    m = cluster_metrics(X, labels, truth=y)
    assert m["n_clusters"] == 3 and m["noise_share"] == 0 and m["ari_truth"] == pytest.approx(1.0)
    assert m["silhouette"] > 0.8
    s = stability(lambda Xs, b: KMeans(k=3, random_state=b + 1).fit(Xs).labels_, X, labels, 3, seed=0)
    assert s == pytest.approx(1.0)
