"""The comparison rule and the DBSCAN diagnostics, on hand-made results."""

import numpy as np
import pytest

from custseg.segment.comparison import (
    advise_dbscan,
    comparison_markdown,
    comparison_table,
    recommend,
    usability,
)
from custseg.segment.diagnostics import diagnose_dbscan
from custseg.segment.evaluation import cluster_metrics, stability
from custseg.segment.tuning import MethodResult, score


def _result(method, n_clusters, noise, largest, sil, stab=0.9, error=None):
    metrics = {
        "n_clusters": n_clusters,
        "noise_share": noise,
        "largest_share": largest,
        "silhouette": sil,
        "stability": stab,
    }
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


def test_no_usable_method_uses_the_best_score_without_recommending_it():
    results = [_result("dbscan", 2, 0.5, 0.4, 0.9), _result("kmeans", 2, 0.0, 0.95, 0.3)]
    assert recommend(results) == "dbscan"  # 0.45 > 0.30: the segments come from it
    table = comparison_table(results, "dbscan")
    assert list(table["recommended"]) == [False, False]
    assert "not a recommendation" in table.loc[0, "note"]
    assert "| dbscan | 2 | 0.50 |" in comparison_markdown(table)


def test_failed_method_is_reported_not_raised():
    results = [
        _result("dbscan", 0, 0, 0, 0, error="min_samples (18) exceeds the number of customers (5)"),
        _result("kmeans", 2, 0.0, 0.6, 0.5),
    ]
    assert recommend(results) == "kmeans"
    table = comparison_table(results, "kmeans")
    assert table.loc[0, "note"].startswith("could not run: min_samples (18)")


def test_diagnostics_explain_all_noise_and_density_spread():
    kd = np.concatenate([np.full(50, 0.1), np.full(50, 1.0)])
    d = diagnose_dbscan(kd, np.full(100, -1), eps=0.05, knee_eps=0.05, min_samples=18)
    assert d.verdict == "weak"
    assert any("every customer is noise" in r for r in d.reasons)
    assert d.density_ratio == pytest.approx(10.0)
    assert "HDBSCAN" not in d.summary()  # advice comes from this run's results: advise_dbscan


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
    s = stability(
        lambda Xs, b: KMeans(k=3, random_state=b + 1).fit(Xs).labels_, X, labels, 3, seed=0
    )
    assert s == pytest.approx(1.0)


def _weak_dbscan():
    kd = np.concatenate([np.full(50, 0.1), np.full(50, 1.0)])
    r = _result("dbscan", 0, 1.0, 0.0, float("nan"))
    r.diagnostics = diagnose_dbscan(kd, np.full(100, -1), eps=0.05, knee_eps=0.05, min_samples=18)
    return r


def test_dbscan_advice_names_only_methods_usable_in_this_run():
    usable_kmeans = _result("kmeans", 3, 0.0, 0.5, 0.6)
    unusable_hier = _result("hierarchical", 3, 0.0, 0.97, 0.6)  # one segment holds 97%
    results = [_weak_dbscan(), usable_kmeans, unusable_hier]
    advise_dbscan(results)
    advice = results[0].diagnostics.recommendation
    assert "kmeans" in advice and "hierarchical" not in advice and "HDBSCAN" not in advice


def test_dbscan_advice_when_nothing_else_is_usable_says_so():
    results = [_weak_dbscan(), _result("hierarchical", 3, 0.0, 0.97, 0.6)]
    advise_dbscan(results)
    advice = results[0].diagnostics.recommendation
    assert advice.startswith("No other method in this run is usable either (hierarchical)")
    table = comparison_table(results, recommend(results))
    assert advice in table.loc[0, "note"] and table.loc[0, "note"].count(advice) == 1


@pytest.mark.parametrize(
    ("n", "configured", "expected"),
    [(100, None, 10), (22_500, None, 50), (90_000, None, 100), (10**6, None, 100), (10_000, 6, 6)],
)
def test_k_max_grows_with_the_customers_unless_configured(n, configured, expected):
    from custseg.segment.tuning import k_max_for

    assert k_max_for(n, configured) == expected


def test_k_choice_sentence_never_prints_a_score_it_did_not_compute():
    from custseg.segment.tuning import _k_choice

    text = _k_choice(4, {2: 0.31, 4: 0.42, 5: 0.40}, [8, 9, 10, 12], 2, 12, 50)
    assert text == (
        "k=4 by the highest silhouette (0.420) over k=2..12, ahead of k=5 (0.400); "
        "4 k (8-10, 12) not considered: more than 2 segments under 50 customers"
    )
    coarse = _k_choice(12, {2: 0.2, 12: 0.5, 14: 0.4}, [100], 2, 100, 50)
    assert coarse.startswith(
        "k=12 by the highest silhouette (0.500) over k=2..100 "
        "(4 of its 99 k scored, coarse to fine)"
    )
    nothing = _k_choice(2, {}, [2, 3], 2, 3, 50)
    assert "nan" not in nothing and nothing.startswith("k=2, the smallest tried: no k in 2..3")
