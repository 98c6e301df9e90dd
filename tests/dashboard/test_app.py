"""Every dashboard page through Streamlit's AppTest: renders, filters change what is shown, empty
states."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from custseg.store import gold, runs

PAGES = {
    "overview": "views/overview.py",
    "segments": "views/segments.py",
    "methods": "views/methods.py",
    "explore": "views/explore.py",
    "customers": "views/customers.py",
    "runs": "views/runs.py",
}
# Charts each page draws on the session's run (two runs, so Runs has a metric chart and a
# migration).
CHARTS = {"overview": 2, "segments": 2, "methods": 3, "explore": 3, "customers": 0, "runs": 2}


def open_page(app, page: str):
    at = app().run()
    if page != "overview":
        at.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def points(spec: dict) -> int:
    """How many data points a figure draws (bars, markers or box samples)."""
    total = 0
    for trace in spec["data"]:
        for axis in ("x", "y"):
            values = trace.get(axis)
            if isinstance(values, list):
                total += len(values)
                break
            if isinstance(values, dict) and "bdata" in values:  # plotly's typed-array encoding
                total += (
                    len(base64.b64decode(values["bdata"])) // np.dtype(values["dtype"]).itemsize
                )
                break
    return total


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_with_its_charts(dash_env, app, page):
    at = open_page(app, page)
    assert len(at.get("plotly_chart")) == CHARTS[page]
    assert at.title[0].value


def test_overview_kpis_match_the_gold_tables(dash_env, app):
    at = open_page(app, "overview")
    tiles = metrics(at)
    assert tiles["Customers segmented"] == f"{len(dash_env.features):,}"
    assert tiles["Segments"] == "4"
    assert tiles["Noise share"] == "0.0%"
    assert tiles["Model @champion"] == "v2"
    assert tiles["Recommended method"] in {"dbscan", "hierarchical", "hdbscan", "kmeans"}
    finished = runs.tracking_info(dash_env.source).finished(
        gold.segments(dash_env.source)["run_id"].iloc[0]
    )
    assert tiles["Last run finished (UTC)"] == finished.strftime("%Y-%m-%d %H:%M")
    sizes = charts(at)[0]
    assert sorted(sizes["data"][0]["x"], reverse=True) == [120, 70, 40, 30]
    assert any("Segment" in m.value for m in at.markdown)  # the business insights


def test_segments_cards_heatmap_and_feature_choice(dash_env, app):
    at = open_page(app, "segments")
    assert len([s for s in at.subheader if "·" in s.value]) == 4  # one card per segment
    heatmap, box = charts(at)
    assert heatmap["data"][0]["type"] == "heatmap"
    assert "Total spend" in box["layout"]["title"]["text"]
    at.selectbox(key="segments_feature").set_value("num_orders").run()
    _, box = charts(at)
    assert "Orders" in box["layout"]["title"]["text"]
    assert any("Action" in m.value for m in at.markdown)


def test_methods_comparison_diagnostics_and_reason(dash_env, app):
    at = open_page(app, "methods")
    table = at.dataframe[0].value
    assert set(table["Method"]) == {"dbscan", "hierarchical", "hdbscan", "kmeans"}
    assert table["Recommended"].sum() == 1
    recommended = table.loc[table["Recommended"], "Method"].iloc[0]
    assert any(recommended in m.value and "recommended" in m.value for m in at.markdown)
    titles = [c["layout"]["title"]["text"] for c in charts(at)]
    assert any("k-distance" in t for t in titles) and any("dendrogram" in t for t in titles)
    assert {"Verdict", "Noise share", "Density variation", "Knee eps"} <= set(metrics(at))


def test_explore_filters_update_every_chart_and_table(dash_env, app):
    at = open_page(app, "explore")
    assert metrics(at)["Customers in selection"] == "260 of 260"
    before = charts(at)
    assert len(at.table[0].value) == 4

    at.multiselect(key="explore_segment").set_value([1]).run()
    after = charts(at)
    assert metrics(at)["Customers in selection"] == "120 of 260"
    assert len(at.table[0].value) == 1
    for old, new in zip(before, after, strict=True):  # every chart on the page follows the filter
        assert points(new) < points(old)

    at.multiselect(key="explore_segment").set_value([]).run()
    at.multiselect(key="explore_state").set_value(["CA"]).run()
    assert metrics(at)["Customers in selection"] == "65 of 260"

    at.multiselect(key="explore_state").set_value([]).run()
    low, high = at.slider(key="explore_spend").value
    at.slider(key="explore_spend").set_range(low, 1000.0).run()
    shown = int(metrics(at)["Customers in selection"].split(" of ")[0].replace(",", ""))
    assert shown == int((dash_env.features["total_spend"] <= 1000).sum())

    at.multiselect(key="explore_loyalty").set_value([0]).run()
    at.slider(key="explore_spend").set_range(low, low + 1).run()
    assert any("No customer matches" in i.value for i in at.info)


def test_customers_are_masked_unless_masking_is_off(dash_env, app):
    at = open_page(app, "customers")
    people = dash_env.customers
    shown = at.dataframe[0].value
    assert any(f"customers-found: {len(dash_env.features)}" in c.value for c in at.caption)
    assert len(shown) == 200  # one page
    assert not set(people["customer_name"]) & set(shown["customer_name"])
    assert not set(people["tax_id"]) & set(shown["tax_id"].dropna())
    assert set(shown["tax_id"].dropna()) == {"•••"}
    assert shown.loc[shown["customer_id"] == "c00001", "customer_name"].iloc[0] == "S. B."

    at.text_input(key="customers_search").input("SMITH001").run()  # names are not searchable masked
    assert len(at.dataframe[0].value) == 0

    at.toggle(key="customers_mask").set_value(False).run()
    unmasked = at.dataframe[0].value
    assert list(unmasked["customer_name"]) == ["SMITH001, BEN"]

    at.text_input(key="customers_search").input(dash_env.hostile_id).run()
    detail = at.table[0].value.set_index("field")["value"]
    assert detail["customer_name"] == dash_env.hostile_name  # plain data in a table: shown as text


def test_customers_segment_filter_and_export_button(dash_env, app):
    at = open_page(app, "customers")
    at.selectbox(key="customers_segment").set_value(4).run()
    assert set(at.dataframe[0].value["segment"]) == {4}
    at.selectbox(key="customers_export_segment").set_value(2).run()
    button = at.get("download_button")[0].proto
    assert button.label == "Download 70 customers (CSV)"


def test_runs_history_versions_champion_and_migration(dash_env, app):
    at = open_page(app, "runs")
    runs = at.dataframe[0].value
    assert len(runs) == 2 and set(runs["status"]) == {"FINISHED"}
    versions = at.dataframe[1].value
    assert list(versions["version"]) == ["2", "1"]
    assert list(versions["champion"]) == ["@champion", ""]
    assert metrics(at)["Kept their segment"] == "100.0%"
    migration = charts(at)[-1]
    assert migration["data"][0]["type"] == "heatmap"


@pytest.mark.parametrize("page", list(PAGES))
def test_empty_state_says_which_command_to_run(empty_env, app, page):
    at = open_page(app, page)
    messages = " ".join(i.value for i in at.info)
    assert "custseg run" in messages or "custseg demo" in messages
    assert not at.get("plotly_chart")
    assert not (Path(empty_env) / "mlflow.db").exists()  # looking must not create a store


def test_features_without_segments_asks_for_the_segment_stage(tmp_path, monkeypatch, app):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from custseg.store.source import Source

    folder = tmp_path / "lakehouse" / "gold" / "customer_features"
    (folder / "v00000001").mkdir(parents=True)
    pq.write_table(
        pa.table({"customer_id": ["a"], "total_spend": [1.0]}),
        folder / "v00000001" / "part-0.parquet",
    )
    (folder / "v00000001" / "_SUCCESS").touch()
    (folder / "_current").write_text("v00000001\n")
    for key, value in Source(lakehouse=tmp_path / "lakehouse").to_env().items():
        monkeypatch.setenv(key, value)
    at = open_page(app, "overview")
    assert "custseg segment" in at.info[0].value


def test_no_page_renders_html_from_data():
    root = Path(__file__).resolve().parents[2] / "src" / "custseg" / "dashboard"
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"unsafe_allow_html\s*=", text), path
        assert "st.html(" not in text and "components.html" not in text, path
