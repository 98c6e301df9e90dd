"""`custseg report`: one self-contained, escaped HTML file with no personal data."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from custseg.errors import InputDataError
from custseg.report import build_report, report_context

CHARTS = {"sizes", "shares", "zscores", "projection", "comparison", "k_distance", "dendrogram"}


def charts_in(html: str) -> set[str]:
    return set(re.findall(r'class="chart" data-chart="([a-z_]+)"', html))


def test_report_is_one_self_contained_file(report_lake, tmp_path):
    out = build_report(report_lake.config(), tmp_path / "nested" / "report.html")
    assert out == (tmp_path / "nested" / "report.html").absolute() and out.is_file()
    html = out.read_text(encoding="utf-8")
    assert charts_in(html) == CHARTS
    assert html.count('class="plotly-graph-div"') == len(
        CHARTS
    )  # a Plotly figure in every chart box
    from plotly.offline import get_plotlyjs

    assert html.count(get_plotlyjs()[:200]) == 1  # plotly.js inlined exactly once
    # Nothing is fetched: no external script, stylesheet, image, frame or font, and a CSP that
    # forbids it.
    assert not re.search(
        r"<(script|img|iframe|link|source|video|audio)\b[^>]*\s(src|href)\s*=", html, re.I
    )
    assert "@import" not in html
    assert "default-src 'none'" in html
    assert oct(out.stat().st_mode & 0o077) != "0o0"  # readable by others, like any shared file


def test_report_holds_no_personal_data(report_lake, tmp_path):
    from plotly.offline import get_plotlyjs

    html = build_report(report_lake.config(), tmp_path / "report.html").read_text(encoding="utf-8")
    html = html.replace(get_plotlyjs(), "")  # the library itself is not data
    people = report_lake.customers
    for column in (
        "customer_name",
        "tax_id",
        "street",
        "postcode",
        "ship_to_address",
        "customer_id",
    ):
        leaked = [v for v in people[column].astype(str) if v in html]
        assert not leaked, (column, leaked[:3])
    assert (
        report_lake.hostile not in html
    )  # the customer named like a script tag is not in the report at all


def test_every_text_is_escaped(report_lake, tmp_path):
    profiles = report_lake.profiles.copy()
    profiles["archetype_text"] = profiles["archetype_text"] + " " + report_lake.hostile
    profiles.loc[0, "action"] = report_lake.hostile
    profiles.loc[1, "archetype"] = "<b>bold</b> & co"
    report_lake.write(
        "gold", "segment_profiles", profiles.assign(method="hdbscan", run_id="run-1"), version=2
    )
    html = build_report(report_lake.config(), tmp_path / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html and "<b>bold</b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html
    # Plotly labels: HTML-escaped for Plotly's label markup, then JSON-escaped inside the script.
    assert "\\u003cb\\u003ebold" not in html


def test_summary_profile_and_comparison(report_lake):
    context = report_context(report_lake.source())
    tiles = {t["label"]: t["value"] for t in context["tiles"]}
    assert tiles["Customers segmented"] == f"{len(report_lake.features):,}"
    assert tiles["Segments"] == "3" and tiles["Recommended method"] == "hdbscan"
    assert tiles["Noise share"] == f"{100 * 3 / len(report_lake.features):.1f}%"
    assert context["profile_header"] == (
        "Cluster",
        "Units Purchased",
        "Loyalty Segment",
        "Num Orders",
        "Count",
    )
    assert [r["cluster"] for r in context["profile_rows"]] == ["noise", "1", "2", "3"]
    assert context["profile_markdown"].startswith("| Cluster | Units Purchased |")
    assert len(context["cards"]) == 4 and context["cards"][-1]["label"] == "noise (unassigned)"
    assert [r["recommended"] for r in context["comparison_rows"]] == [False, False, True, False]
    # What fitted each method, as the segment stage recorded it.
    assert context["comparison_header"][-1] == "Engine"
    assert context["comparison_rows"][-1]["cells"][-1]["text"].startswith("Spark, approximate (ARI")
    findings = " ".join(context["findings"])
    assert "62% of customers are labelled noise" in findings
    assert "Densities vary" in findings and findings.count("Use HDBSCAN") == 1  # said once
    assert "hdbscan is recommended" in findings and "dbscan is not usable here" in findings
    assert context["insights"]


def test_migration_section_appears_after_a_retrain(report_lake, tmp_path):
    moves = pd.DataFrame(
        {
            "previous": [1, 1, 2, 3],
            "current": [1, 2, 2, 3],
            "customers": [45, 5, 30, 15],
            "run_id": "run-1",
        }
    )
    report_lake.write("gold", "segment_migration", moves, version=1)
    html = build_report(report_lake.config(), tmp_path / "report.html").read_text(encoding="utf-8")
    assert "migration" in charts_in(html)
    assert "95 customers are in both of the last two models; 94.7% kept their segment." in html


def test_without_mlflow_the_report_still_builds_and_says_so(report_lake):
    context = report_context(report_lake.source())
    assert "No MLflow store" in context["tracking_note"]
    assert not report_lake.store.exists()


@pytest.mark.parametrize("make", ["nothing", "features_only"])
def test_no_run_is_a_clear_error(tmp_path, make, write_table_to):
    from custseg.config import load_config

    root = tmp_path / "lakehouse"
    if make == "features_only":
        write_table_to(
            root,
            "gold",
            "customer_features",
            pd.DataFrame({"customer_id": ["a"], "total_spend": [1.0]}),
        )
    config = load_config(overrides={"storage.root": str(root)})
    with pytest.raises(InputDataError, match="custseg (demo|segment)") as caught:
        build_report(config, tmp_path / "report.html")
    assert "`" not in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "report.html").exists()


def test_the_dashboard_explains_the_same_weak_dbscan(report_lake, monkeypatch):
    """The dashboard's Methods page on this Spark-free run: DBSCAN's findings and why HDBSCAN
    won."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    import custseg.dashboard

    for key, value in report_lake.source().to_env().items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(
        str(Path(custseg.dashboard.__file__).with_name("app.py")), default_timeout=90
    ).run()
    for page in (
        "views/methods.py",
        "views/segments.py",
        "views/explore.py",
        "views/customers.py",
        "views/runs.py",
    ):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
    at.switch_page("views/methods.py").run()
    text = " ".join(m.value for m in at.markdown)
    assert "62% of customers are labelled noise" in text and "Use HDBSCAN" in text
    assert {m.label: m.value for m in at.metric}["Verdict"] == "weak"
    assert len(at.get("plotly_chart")) == 3
