"""The transactions adapter on exports shaped like real ones, checked against a pandas
computation."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from custseg.config import load_config
from custseg.errors import ConfigError, InputDataError
from custseg.stages import chain
from custseg.storage import Lakehouse
from transactions_reference import reference_features

FIXTURE = Path(__file__).parent / "fixtures" / "online_retail_mini"
COMPARED = [
    "num_orders",
    "units_purchased",
    "total_spend",
    "gross_spend",
    "returned_value",
    "tenure_days",
    "recency_days",
    "avg_order_value",
    "product_diversity",
    "category_diversity",
]
QUIET = {"progress": lambda _m: None}


def _run(
    spark, root, config_file=None, stages=("ingest", "features"), transactions=None, **overrides
):
    """Run the stages; ``transactions`` is written to a config file (dotted overrides cannot set
    null)."""
    if transactions is not None:
        root.mkdir(parents=True, exist_ok=True)
        config_file = root / "custseg.yml"
        config_file.write_text(yaml.safe_dump({"input": {"transactions": transactions}}))
    config = load_config(
        config_file,
        {"storage.root": str(root / "lake"), "input.layout": "transactions", **overrides},
    )
    reports = chain.run(spark, config, list(stages), **QUIET)
    return config, reports


def _features(spark, config) -> pd.DataFrame:
    frame = Lakehouse(spark, config.storage).read("gold", "customer_features").toPandas()
    return frame.set_index("customer_id").sort_index()


def _assert_matches(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.index) == list(want.index)
    for column in COMPARED:
        np.testing.assert_allclose(
            got[column].astype(float),
            want[column].astype(float),
            rtol=1e-9,
            atol=1e-9,
            err_msg=column,
        )
    for column in ("first_purchase", "last_purchase"):
        assert list(pd.to_datetime(got[column])) == list(want[column]), column


def _uci_lines() -> pd.DataFrame:
    raw = pd.read_csv(FIXTURE / "online_retail.csv", dtype=str)
    raw = raw[pd.to_numeric(raw["Quantity"], errors="coerce").notna()]
    return pd.DataFrame(
        {
            "customer_id": raw["CustomerID"].str.replace(".0", "", regex=False),
            "order_id": raw["InvoiceNo"],
            "ts": pd.to_datetime(raw["InvoiceDate"], format="%m/%d/%Y %H:%M"),
            "product_id": raw["StockCode"],
            "quantity": raw["Quantity"].astype(float),
            "unit_price": raw["UnitPrice"].astype(float),
        }
    )


def test_uci_export_nets_returns_and_counts_each_invoice_once(spark, tmp_path):
    config, reports = _run(
        spark,
        tmp_path,
        FIXTURE / "custseg.yml",
        **{"input.path": str(FIXTURE / "online_retail.csv")},
    )
    ingest = reports[0]
    assert ingest.extra["rows"]["transactions"] == {
        "rows_in": 9,
        "rows_kept": 7,
        "rows_quarantined": 2,
    }
    assert ingest.quarantined == {
        ("transactions", "missing_customer_id"): 1,
        ("transactions", "wrong_type"): 1,
    }
    quarantine = Lakehouse(spark, config.storage).read("bronze", "quarantine").toPandas()
    assert dict(zip(quarantine["reason"], quarantine["field"], strict=True)) == {
        "missing_customer_id": "customer_id",
        "wrong_type": "quantity",
    }
    notes = "\n".join(ingest.notes)
    assert "column 'CustomerID': written as whole-valued floats" in notes
    assert "returns: 2 lines, value 34.28 netted" in notes  # 2 x 3.39 + 27.50
    assert "guest checkouts (no customer id): 1 lines, value 0.00" in notes
    assert "exact duplicate lines: 1 kept" in notes

    got = _features(spark, config)
    # 14527 only returned (a discount line): netted, but with no purchase, not a customer to
    # segment.
    want = reference_features(_uci_lines(), prefix="C").drop(index="14527")
    _assert_matches(got, want)
    assert (
        got.loc["17850", "num_orders"] == 2
    )  # 536365's lines are stamped 8:26 and 8:27: one order
    assert got.loc["17850", "product_diversity"] == 3
    assert got["category_diversity"].isna().all()  # no category column: not available, never 0


def test_whitespace_file_without_header_ids_or_products(spark, tmp_path):
    # The CDNOW layout: customer, yyyyMMdd date, units, amount; runs of spaces; no header.
    text = (
        "00001 19970101 1 11.77\n00002  19970112 1 12.00\n00002 19970112 5 77.00\n\n"
        "00003 19970102 2 20.76\n00003 19970330   2 20.76\n00003 19970402 -1 -9.99\n"
    )
    path = tmp_path / "cdnow.txt"
    path.write_text(text)
    names = ["customer_id", "date", "units", "amount"]
    mapping = {
        "customer_id": "customer_id",
        "order_id": None,
        "timestamp": "date",
        "product_id": None,
        "category": None,
        "quantity": "units",
        "unit_price": None,
        "amount": "amount",
    }
    tx = {"delimiter": "whitespace", "header": False, "column_names": names, "columns": mapping}
    config, reports = _run(spark, tmp_path, transactions=tx, **{"input.path": str(path)})
    assert any("inferred from column 'date': 'yyyyMMdd'" in n for n in reports[0].notes)
    got = _features(spark, config)
    lines = pd.read_csv(path, sep=r"\s+", header=None, names=names, dtype=str)
    want = reference_features(
        pd.DataFrame(
            {
                "customer_id": lines["customer_id"],
                "ts": pd.to_datetime(lines["date"], format="%Y%m%d"),
                "quantity": lines["units"].astype(float),
                "amount": lines["amount"].astype(float),
            }
        )
    )
    _assert_matches(got, want)
    assert list(got.index) == ["00001", "00002", "00003"]  # ids kept as given
    assert got.loc["00002", "num_orders"] == 1  # two lines on one day: one order
    assert got["product_diversity"].isna().all() and got["loyalty_segment"].isna().all()
    assert pd.to_datetime(got["last_purchase"]).max() == pd.Timestamp("1997-03-30")


def test_stated_format_is_the_one_used(spark, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "customer_id,order_id,timestamp,product_id,category,quantity,unit_price\n1,a,19970101,p,c,1,2\n1,b,19970201,p,c,1,2\n"
    )
    config, reports = _run(
        spark,
        tmp_path,
        **{"input.path": str(path), "input.transactions.timestamp_format": "yyyyMMdd"},
    )
    assert "as-of date: 1997-02-01" in "\n".join(reports[1].notes)
    epoch = {"input.path": str(path), "input.transactions.timestamp_format": "epoch_seconds"}
    _, reports = _run(spark, tmp_path / "epoch", **epoch)
    assert "as-of date: 1970-08-20" in "\n".join(reports[1].notes)  # only because it was stated


def test_ambiguous_dates_are_refused_with_the_column_and_two_values(spark, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "customer_id,order_id,when,product_id,category,quantity,unit_price\n1,a,01/02/2011,p,c,1,2\n1,b,03/04/2011,p,c,1,2\n"
    )
    with pytest.raises(
        InputDataError,
        match=r"timestamp column 'when' is ambiguous: values such as '0[13]/0[24]/2011', "
        r"'0[13]/0[24]/2011'",
    ):
        _run(
            spark,
            tmp_path,
            **{"input.path": str(path), "input.transactions.columns.timestamp": "when"},
        )


def test_a_wrong_format_stops_ingest_and_keeps_the_previous_tables(spark, tmp_path):
    path = tmp_path / "t.csv"
    rows = "".join(
        f"{i % 3},o{i},2010-12-0{1 + i % 9} 08:{i % 60:02d}:00,p{i % 4},c,1,2.5\n"
        for i in range(30)
    )
    path.write_text(
        "customer_id,order_id,timestamp,product_id,category,quantity,unit_price\n" + rows
    )
    config, _ = _run(spark, tmp_path, stages=["ingest"], **{"input.path": str(path)})
    before = Lakehouse(spark, config.storage).read("silver", "order_lines").count()
    with pytest.raises(
        InputDataError,
        match=r"ingest stopped: 30 of 30 transactions rows \(100%\) quarantined, kept 0; "
        r"mostly wrong_type in field "
        r"timestamp \(e\.g\. '2010-12-0\d 08:\d\d:00', '2010-12-0\d 08:\d\d:00'\), "
        r"expected a timestamp in the format 'M/d/yyyy H:mm'",
    ):
        _run(
            spark,
            tmp_path,
            stages=["ingest"],
            **{"input.path": str(path), "input.transactions.timestamp_format": "M/d/yyyy H:mm"},
        )
    assert Lakehouse(spark, config.storage).read("silver", "order_lines").count() == before == 30


def test_conflicting_orders_duplicates_and_returns_without_purchase(spark, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "customer_id,order_id,timestamp,product_id,category,quantity,unit_price\n"
        "a,1,2011-01-01 10:00,p1,x,2,5\n"
        "a,1,2011-01-01 10:00,p1,x,2,5\n"  # an exact duplicate
        "a,2,2011-01-03 10:00,p9,y,-1,7\n"  # a return whose purchase is not in the data
        "b,3,2011-01-02 10:00,p2,x,1,4\n"
        "c,3,2011-01-02 11:00,p2,x,1,4\n"  # order 3 used by two customers
        "d,4,2011-01-04 10:00,p3,z,1,1\n"
        "d,5,2011-01-05 10:00,p4,z,1,1\n"
        "d,6,2011-01-06 10:00,p5,z,1,1\n"
    )
    config, reports = _run(
        spark,
        tmp_path,
        **{
            "input.path": str(path),
            "input.transactions.duplicate_lines": "drop",
            "input.max_quarantine_share": 0.5,
        },
    )
    assert reports[0].quarantined == {
        ("transactions", "conflicting_order"): 2,
        ("transactions", "duplicate_line"): 1,
    }
    got = _features(spark, config)
    assert list(got.index) == ["a", "d"]
    assert (
        got.loc["a", "total_spend"] == pytest.approx(10 - 7)
        and got.loc["a", "units_purchased"] == 1
    )
    assert got.loc["a", "returned_value"] == pytest.approx(7) and got.loc[
        "a", "returned_share"
    ] == pytest.approx(0.7)
    assert got.loc["a", "num_orders"] == 1 and got.loc["a", "product_diversity"] == 1


def test_float_ids_in_parquet_gzip_and_many_files(spark, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    header = "customer_id;order_id;timestamp;product_id;category;quantity;unit_price\n"
    for part, body in enumerate(
        ["1;o1;2011-01-01T10:00:00;p;c;1;2\n", "2;o2;2011-01-02T10:00:00;p;c;3;2\n"]
    ):
        with gzip.open(folder / f"part{part}.csv.gz", "wt") as handle:
            handle.write(header + body)
    config, _ = _run(
        spark, tmp_path, **{"input.path": str(folder), "input.transactions.delimiter": ";"}
    )
    got = _features(spark, config)
    assert list(got.index) == ["1", "2"] and list(got["units_purchased"]) == [1.0, 3.0]

    parquet = tmp_path / "tx.parquet"
    pd.DataFrame(
        {
            "customer_id": [12923.0, 12923.0, 17850.0],
            "order_id": ["a", "b", "c"],
            "timestamp": ["2011-01-01"] * 3,
            "product_id": ["p", "q", "p"],
            "category": ["c"] * 3,
            "quantity": [1.0, 2.0, 3.0],
            "unit_price": [1.0] * 3,
        }
    ).to_parquet(parquet)
    config, reports = _run(
        spark,
        tmp_path / "pq",
        **{"input.path": str(parquet), "input.transactions.format": "parquet"},
    )
    assert list(_features(spark, config).index) == ["12923", "17850"]
    assert any("column 'customer_id': stored as floats" in n for n in reports[0].notes)


def _random_lines(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 600
    customers = rng.integers(0, 40, n).astype(str)
    customers[rng.random(n) < 0.05] = ""  # guests
    orders = np.array([f"{c}-{k}" for c, k in zip(customers, rng.integers(0, 6, n), strict=True)])
    cancel = rng.random(n) < 0.08
    orders = np.where(cancel, np.char.add("C", orders), orders)
    start = pd.Timestamp("2011-01-01") + pd.to_timedelta(rng.integers(0, 300, 40), unit="D")
    # Each order on its own day; its lines minutes apart (a multi-stamp invoice).
    day = pd.to_timedelta([sum(map(ord, o)) % 9 for o in orders], unit="D")
    ts = pd.Series(start[[int(c) if c else 0 for c in customers]] + day) + pd.to_timedelta(
        rng.integers(0, 3, n), unit="min"
    )
    quantity = rng.integers(1, 20, n).astype(float)
    quantity = np.where(cancel | (rng.random(n) < 0.05), -quantity, quantity)
    frame = pd.DataFrame(
        {
            "customer_id": customers,
            "order_id": orders,
            "ts": ts.dt.floor("min"),
            "product_id": rng.choice([f"P{i}" for i in range(25)], n),
            "category": rng.choice(["home", "toys", "garden", ""], n),
            "quantity": quantity,
            "unit_price": rng.choice([0.0, 0.5, 1.25, 3.0, 19.99], n),
        }
    )
    duplicates = frame.sample(20, random_state=seed)
    return pd.concat([frame, duplicates], ignore_index=True).sample(frac=1.0, random_state=seed)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_transaction_tables_match_pandas_for_every_customer(spark, tmp_path, seed):
    lines = _random_lines(seed)
    # Order ids stay with one customer here; conflicting orders have their own test.
    path = tmp_path / "t.csv"
    out = lines.assign(timestamp=lines["ts"].dt.strftime("%d.%m.%Y %H:%M"))
    out.drop(columns=["ts"]).to_csv(path, index=False)
    config, reports = _run(
        spark,
        tmp_path,
        **{
            "input.path": str(path),
            "input.transactions.cancellation_prefix": "C",
            "input.transactions.timestamp_format": "dd.MM.yyyy HH:mm",
        },
    )
    want = reference_features(lines.replace({"category": {"": None}}), prefix="C")
    want = want[want["num_orders"] > 0]
    _assert_matches(_features(spark, config), want)


def test_unit_price_or_amount_exactly_one():
    with pytest.raises(ConfigError, match="set exactly one"):
        load_config(overrides={"input.transactions.columns.amount": "total"})


def test_missing_mapped_column_is_named(spark, tmp_path):
    with pytest.raises(InputDataError, match=r"lacks the mapped column\(s\) quantity='Qty'"):
        _run(
            spark,
            tmp_path,
            FIXTURE / "custseg.yml",
            stages=["ingest"],
            **{
                "input.path": str(FIXTURE / "online_retail.csv"),
                "input.transactions.columns.quantity": "Qty",
            },
        )
