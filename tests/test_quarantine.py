"""Every bad-record kind the generator injects is quarantined exactly, with its reason; nothing is
lost."""

import json

import pytest

from custseg.config import load_config
from custseg.data.generate import BAD_RECORD_KINDS, generate
from custseg.stages import chain
from custseg.storage import Lakehouse

TABLE_OF_KIND = {kind: "sales_orders" for kind in BAD_RECORD_KINDS} | {
    "csv_field_count": "customers"
}
INJECTED = {
    kind: count
    for kind, count in zip(sorted(BAD_RECORD_KINDS), (2, 3, 4, 5, 6, 7, 8, 9), strict=False)
}


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    summary = generate(spark, root / "raw", customers=300, seed=3, bad_records=INJECTED)
    config = load_config(
        overrides={"input.path": str(root / "raw"), "storage.root": str(root / "lakehouse")}
    )
    report = chain.run(spark, config, ["ingest"], progress=lambda _m: None)[0]
    return root, summary, report, Lakehouse(spark, config.storage)


def test_quarantine_counts_equal_injected_counts(ingested):
    root, summary, report, _lake = ingested
    recorded = json.loads((root / "raw" / "_injected.json").read_text())
    assert recorded == {kind: INJECTED.get(kind, 0) for kind in BAD_RECORD_KINDS}
    expected = {(TABLE_OF_KIND[k], k): n for k, n in INJECTED.items() if n}
    assert report.quarantined == expected


def test_rows_in_equal_kept_plus_quarantined(ingested):
    _root, summary, report, lake = ingested
    rows = report.extra["rows"]
    for table, counts in rows.items():
        assert counts["rows_in"] == counts["rows_kept"] + counts["rows_quarantined"], table
    stored = {r["table"]: r.asDict() for r in lake.read("bronze", "ingest_summary").collect()}
    assert stored["sales_orders"]["rows_quarantined"] == sum(
        n for k, n in INJECTED.items() if TABLE_OF_KIND[k] == "sales_orders"
    )
    assert stored["sales_orders"]["rows_kept"] == summary.orders


def test_quarantine_keeps_the_record_and_its_file(ingested):
    _root, _summary, _report, lake = ingested
    rows = lake.read("bronze", "quarantine").collect()
    assert all(r["record"] and r["source_file"] for r in rows)
    malformed = [r for r in rows if r["reason"] == "malformed_json"]
    assert malformed and all(r["source_file"].endswith(".json") for r in malformed)


def test_gzip_orders_ingest_exactly_like_plain_ones(spark, tmp_path, ingested):
    """`generate --compress-orders` writes .json.gz files; ingest reads them as they are, with
    the same rows kept, the same quarantine and the compressed file named as the source."""
    _root, summary, report, _lake = ingested
    raw = tmp_path / "raw"
    zipped = generate(spark, raw, customers=300, seed=3, bad_records=INJECTED, compress_orders=True)
    files = sorted(p.name for p in (raw / "sales_orders").iterdir())
    assert files and all(name.endswith(".json.gz") for name in files)
    assert zipped.orders == summary.orders and zipped.order_records == summary.order_records
    config = load_config(
        overrides={"input.path": str(raw), "storage.root": str(tmp_path / "lakehouse")}
    )
    again = chain.run(spark, config, ["ingest"], progress=lambda _m: None)[0]
    assert again.quarantined == report.quarantined
    assert again.extra["rows"] == report.extra["rows"]
    rows = Lakehouse(spark, config.storage).read("bronze", "quarantine").collect()
    malformed = [r for r in rows if r["reason"] == "malformed_json"]
    assert malformed and all(r["source_file"].endswith(".json.gz") for r in malformed)
