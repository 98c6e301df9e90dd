"""The data generator: the retail-org layout exactly, determinism, the seed preset, bad records.

Raw files are read back with plain Python (csv, json), never Spark, so these
tests check the bytes a user or an ingestion stage would see.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from custseg.data import generate as gen
from custseg.data import schemas
from custseg.data.generate import plan as gen_plan  # the block layout constants live here
from custseg.errors import ConfigError

pytestmark = pytest.mark.spark

CUSTOMERS = 300
BAD = {kind: i + 1 for i, kind in enumerate(gen.BAD_RECORD_KINDS)}  # 1, 2, ... 8 of each kind


# -- helpers -------------------------------------------------------------------------


def read_customers(raw: Path) -> tuple[list[str], list[list[str]]]:
    rows: list[list[str]] = []
    header: list[str] = []
    for path in sorted((raw / schemas.CUSTOMERS_DIR).glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            rows.extend(reader)
    return header, rows


def order_texts(raw: Path) -> list[str]:
    lines: list[str] = []
    for path in sorted((raw / schemas.SALES_ORDERS_DIR).glob("*.json")):
        lines.extend(path.read_text(encoding="utf-8").splitlines())
    return lines


def parse_orders(raw: Path) -> list[dict]:
    return [json.loads(line) for line in order_texts(raw)]


def read_truth(raw: Path) -> dict[str, str]:
    with open(raw / "truth" / "customer_archetypes.csv", newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["customer_id", "archetype"]
        return dict(reader)


def all_files(raw: Path) -> dict[str, bytes]:
    return {str(p.relative_to(raw)): p.read_bytes() for p in sorted(raw.rglob("*")) if p.is_file()}


def current_rows(rows: list[list[str]]) -> dict[str, list[str]]:
    valid_to = schemas.CUSTOMER_COLUMNS.index("valid_to")
    return {r[0]: r for r in rows if len(r) == len(schemas.CUSTOMER_COLUMNS) and r[valid_to] == ""}


# -- datasets, generated once per module ------------------------------------------------


@pytest.fixture(scope="module")
def datasets(spark, tmp_path_factory) -> dict[str, tuple[Path, gen.GenerateSummary]]:
    root = tmp_path_factory.mktemp("generate")
    runs = {
        "clean": dict(seed=7),
        "again": dict(seed=7),
        "other_seed": dict(seed=8),
        "dirty": dict(seed=7, bad_records=BAD),
    }
    out = {}
    for name, kwargs in runs.items():
        raw = root / name
        out[name] = (raw, gen.generate(spark, raw, customers=CUSTOMERS, **kwargs))
    return out


@pytest.fixture(scope="module")
def clean(datasets) -> Path:
    return datasets["clean"][0]


@pytest.fixture(scope="module")
def dirty(datasets) -> Path:
    return datasets["dirty"][0]


@pytest.fixture(scope="module")
def seed_preset(spark, tmp_path_factory) -> tuple[Path, gen.GenerateSummary]:
    raw = tmp_path_factory.mktemp("seed_preset")
    # customers is ignored by the seed preset
    return raw, gen.generate(spark, raw, customers=5, seed=3, preset="seed")


# -- layout -------------------------------------------------------------------------


def test_exactly_the_retail_org_files(clean: Path) -> None:
    names = sorted(all_files(clean))
    assert names == [
        "_injected.json",
        "customers/customers.csv",
        "loyalty_segments/loyalty_segment.csv",
        "products/products.csv",
        "sales_orders/part-00000.json",
        "truth/customer_archetypes.csv",
    ]
    # no Spark leftovers (_SUCCESS, .crc) and no staging folder
    assert not [
        p for p in clean.rglob("*") if p.name.startswith(("_SUCCESS", ".")) or p.suffix == ".crc"
    ]


def test_customers_csv_columns_and_history(clean: Path) -> None:
    header, rows = read_customers(clean)
    assert header == schemas.CUSTOMER_COLUMNS
    assert all(len(r) == len(header) for r in rows)
    col = {c: i for i, c in enumerate(header)}
    by_customer: dict[str, list[list[str]]] = {}
    for r in rows:
        by_customer.setdefault(r[col["customer_id"]], []).append(r)
    assert len(by_customer) == CUSTOMERS
    sizes = Counter(len(v) for v in by_customer.values())
    assert set(sizes) <= {1, 2, 3} and sizes[2] > 0 and sizes[3] > 0
    for history in by_customer.values():
        current = [r for r in history if r[col["valid_to"]] == ""]
        assert len(current) == 1
        for r in history:
            assert r[col["valid_from"]].isdigit()
            if r[col["valid_to"]]:
                assert r[col["valid_to"]].isdigit() and int(r[col["valid_to"]]) >= int(
                    r[col["valid_from"]]
                )
            assert r[col["loyalty_segment"]] in {"0", "1", "2", "3"}
            assert r[col["units_purchased"]].isdigit()
            assert -180 <= float(r[col["lon"]]) <= 180 and -90 <= float(r[col["lat"]]) <= 90
            assert ", " in r[col["ship_to_address"]] and "," in r[col["customer_name"]]
    text = (clean / "customers" / "customers.csv").read_text(encoding="utf-8")
    assert text.count('"') == 4 * len(rows)  # name and address quoted on every row


def test_products_are_semicolon_delimited(clean: Path) -> None:
    lines = (clean / "products" / "products.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == ";".join(schemas.PRODUCT_COLUMNS)
    rows = [line.split(";") for line in lines[1:]]
    assert all(len(r) == len(schemas.PRODUCT_COLUMNS) for r in rows)
    assert 200 <= len(rows) <= 600
    assert len({r[0] for r in rows}) == len(rows)
    categories = {r[1] for r in rows}
    assert (
        8 <= len(categories) <= 12
        and {"Rony", "Ramsung", "Zamaha", "Opple", "Reagate"} <= categories
    )
    assert all(float(r[3]) > 0 and len(r[4]) == 13 for r in rows)


def test_loyalty_segments(clean: Path) -> None:
    with open(
        clean / "loyalty_segments" / "loyalty_segment.csv", newline="", encoding="utf-8"
    ) as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == schemas.LOYALTY_COLUMNS
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3"]
    assert [r[1] for r in rows[1:]] == ["level_0", "level_1", "level_2", "level_3"]
    thresholds = [int(r[2]) for r in rows[1:]]
    assert thresholds == sorted(set(thresholds))


def test_sales_orders_json_lines(clean: Path) -> None:
    _, rows = read_customers(clean)
    current = current_rows(rows)
    with open(clean / "products" / "products.csv", encoding="utf-8") as handle:
        products = {line.split(";")[0] for line in handle}
    orders = parse_orders(clean)
    assert len(orders) > CUSTOMERS
    times = []
    for o in orders:
        assert list(o) == sorted(schemas.ORDER_COLUMNS)
        assert isinstance(o["customer_id"], str) and o["customer_id"] in current
        assert isinstance(o["order_datetime"], str) and o["order_datetime"].isdigit()
        assert isinstance(o["order_number"], int)
        assert o["number_of_line_items"] == str(len(o["ordered_products"])) != "0"
        assert all(
            isinstance(c, list) and all(isinstance(x, str) for x in c) for c in o["clicked_items"]
        )
        assert o["promo_info"] is None or all(isinstance(p, dict) for p in o["promo_info"])
        for line in o["ordered_products"]:
            assert set(line) == set(schemas.ORDERED_PRODUCT_FIELDS)
            assert line["id"] in products
            assert isinstance(line["price"], int) and line["price"] > 0
            assert isinstance(line["qty"], int) and line["qty"] > 0
            assert line["promotion_info"] is None or isinstance(line["promotion_info"], dict)
        times.append(int(o["order_datetime"]))
    assert len({o["order_number"] for o in orders}) == len(orders)
    assert min(times) >= gen.WINDOW_START and max(times) == gen.WINDOW_END


def test_units_match_orders_and_loyalty_is_a_near_function(clean: Path) -> None:
    _, rows = read_customers(clean)
    col = {c: i for i, c in enumerate(schemas.CUSTOMER_COLUMNS)}
    current = current_rows(rows)
    units = Counter()
    for o in parse_orders(clean):
        units[o["customer_id"]] += sum(line["qty"] for line in o["ordered_products"])
    for cid, total in units.items():
        assert int(current[cid][col["units_purchased"]]) == total
    with open(clean / "loyalty_segments" / "loyalty_segment.csv", encoding="utf-8") as handle:
        thresholds = [int(line.split(",")[2]) for line in list(handle)[1:]]
    level = lambda u: sum(u >= t for t in thresholds) - 1  # noqa: E731
    agree = [
        int(r[col["loyalty_segment"]]) == level(int(r[col["units_purchased"]]))
        for r in current.values()
    ]
    assert sum(agree) / len(agree) >= 0.85


def test_truth_lists_every_customer_with_orders(clean: Path) -> None:
    truth = read_truth(clean)
    assert set(truth) == {o["customer_id"] for o in parse_orders(clean)}
    sizes = Counter(truth.values())
    known = {a.name for a in gen.REALISTIC}
    assert set(sizes) <= known - {gen.NO_ORDERS}
    assert sizes.most_common(1)[0][0] == "steady_engaged"
    assert len(sizes) >= 6


def test_summary_counts_what_was_written(datasets) -> None:
    raw, summary = datasets["clean"]
    _, rows = read_customers(raw)
    assert summary.out == str(raw) and summary.preset == "realistic" and summary.seed == 7
    assert summary.customers == CUSTOMERS
    assert summary.customer_rows == len(rows)
    assert summary.customers_with_orders == len(read_truth(raw))
    assert summary.orders == summary.order_records == len(order_texts(raw))
    assert summary.products == len((raw / "products" / "products.csv").read_text().splitlines()) - 1
    assert summary.bad_records == dict.fromkeys(gen.BAD_RECORD_KINDS, 0)


# -- determinism ----------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_data(datasets) -> None:
    clean = all_files(datasets["clean"][0])
    assert clean == all_files(datasets["again"][0])
    other = all_files(datasets["other_seed"][0])
    for name in (
        "customers/customers.csv",
        "sales_orders/part-00000.json",
        "products/products.csv",
    ):
        assert other[name] != clean[name]


def test_content_does_not_depend_on_spark_partitions(spark, tmp_path, monkeypatch) -> None:
    """Small blocks spread over 1 or 4 partitions: identical bytes (single-file mode)."""
    monkeypatch.setattr(gen_plan, "BLOCK_CUSTOMERS", 40)
    results = {}
    for blocks_per_file in (100, 2):
        monkeypatch.setattr(gen_plan, "BLOCKS_PER_FILE", blocks_per_file)
        raw = tmp_path / f"bpf{blocks_per_file}"
        gen.generate(
            spark, raw, customers=CUSTOMERS // 2, seed=5, bad_records={"duplicate_order": 3}
        )
        files = all_files(raw)
        orders = b"".join(
            files.pop(name) for name in sorted(files) if name.startswith("sales_orders/")
        )
        results[blocks_per_file] = (files, orders)
    assert results[100] == results[2]


def test_large_datasets_write_customer_part_files_with_headers(
    spark, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(gen_plan, "BLOCK_CUSTOMERS", 40)
    monkeypatch.setattr(gen_plan, "BLOCKS_PER_FILE", 2)
    monkeypatch.setattr(gen_plan, "SINGLE_FILE_MAX", 100)
    summary = gen.generate(spark, tmp_path, customers=200, seed=5)
    parts = sorted((tmp_path / "customers").iterdir())
    assert [p.name for p in parts] == ["part-00000.csv", "part-00001.csv", "part-00002.csv"]
    for part in parts:
        assert part.read_text(encoding="utf-8").splitlines()[0] == ",".join(
            schemas.CUSTOMER_COLUMNS
        )
    header, rows = read_customers(tmp_path)
    assert header == schemas.CUSTOMER_COLUMNS and len(rows) == summary.customer_rows
    assert len({r[0] for r in rows}) == 200


# -- the seed preset ----------------------------------------------------------------


def test_seed_preset_groups(seed_preset) -> None:
    raw, summary = seed_preset
    truth = read_truth(raw)
    assert Counter(truth.values()) == {
        "steady_engaged": 16,
        "high_value_loyal": 7,
        "one_time_bulk_buyer": 1,
        "single_very_high_value": 1,
    }
    assert summary.customers_with_orders == 25 and summary.customers == 35
    _, rows = read_customers(raw)
    assert len({r[0] for r in rows}) == 35

    col = {c: i for i, c in enumerate(schemas.CUSTOMER_COLUMNS)}
    current = current_rows(rows)
    orders = Counter()
    spend = Counter()
    for o in parse_orders(raw):
        orders[o["customer_id"]] += 1
        spend[o["customer_id"]] += sum(
            line["price"] * line["qty"] for line in o["ordered_products"]
        )

    def group(name: str) -> list[str]:
        return [c for c, a in truth.items() if a == name]

    def units(c: str) -> int:
        return int(current[c][col["units_purchased"]])

    (bulk,) = group("one_time_bulk_buyer")
    (vip,) = group("single_very_high_value")
    steady, loyal = group("steady_engaged"), group("high_value_loyal")
    assert orders[bulk] == 1 and current[bulk][col["loyalty_segment"]] == "0"
    assert orders[vip] == 1 and current[vip][col["loyalty_segment"]] == "3"
    assert units(bulk) > 5 * max(units(c) for c in steady + loyal)
    assert spend[vip] > 3 * max(spend[c] for c in steady + loyal + [bulk])
    assert max(units(c) for c in loyal) < min(units(c) for c in steady)
    assert min(spend[c] for c in loyal) > 2 * max(spend[c] for c in steady)


# -- bad records -----------------------------------------------------------------------


def detect_bad_records(raw: Path) -> Counter:
    """Each kind found with plain Python, the way an ingestion would count them."""
    found: Counter = Counter()
    _, rows = read_customers(raw)
    found["csv_field_count"] = sum(len(r) != len(schemas.CUSTOMER_COLUMNS) for r in rows)
    customers = set(current_rows(rows))
    valid_orders: list[str] = []
    for line in order_texts(raw):
        try:
            o = json.loads(line)
        except ValueError:
            found["malformed_json"] += 1
            continue
        products = o["ordered_products"]
        if not o["order_datetime"].isdigit():
            found["wrong_type"] += 1
        elif any(p["qty"] < 0 for p in products):
            found["negative_quantity"] += 1
        elif any(p["price"] < 0 for p in products):
            found["negative_price"] += 1
        elif int(o["order_datetime"]) >= 4102444800:  # 2100-01-01
            found["future_timestamp"] += 1
        elif o["customer_id"] not in customers:
            found["unknown_customer"] += 1
        else:
            valid_orders.append(line)
    numbers = Counter(json.loads(line)["order_number"] for line in valid_orders)
    found["duplicate_order"] = sum(n - 1 for n in numbers.values())
    copies = Counter(valid_orders)
    assert sum(n - 1 for n in copies.values()) == found["duplicate_order"]  # exact copies
    return found


def test_injected_counts_are_exact_and_recorded(datasets) -> None:
    raw, summary = datasets["dirty"]
    assert json.loads((raw / "_injected.json").read_text()) == BAD
    assert summary.bad_records == BAD
    assert detect_bad_records(raw) == Counter(BAD)
    clean_raw = datasets["clean"][0]
    assert detect_bad_records(clean_raw) == Counter()
    assert json.loads((clean_raw / "_injected.json").read_text()) == dict.fromkeys(
        gen.BAD_RECORD_KINDS, 0
    )


def test_bad_records_are_added_not_replacing_good_ones(datasets) -> None:
    clean, dirty = datasets["clean"][0], datasets["dirty"][0]
    assert read_truth(clean) == read_truth(dirty)
    for read in (lambda raw: read_customers(raw)[1], order_texts):
        good, mixed = read(clean), iter(read(dirty))
        assert all(
            item in mixed for item in good
        )  # the clean rows, in order, inside the dirty file
    _, summary = datasets["dirty"]
    _, clean_summary = datasets["clean"]
    assert summary.orders == clean_summary.orders
    assert (
        summary.order_records == clean_summary.orders + sum(BAD.values()) - BAD["csv_field_count"]
    )
    assert summary.customer_rows == clean_summary.customer_rows + BAD["csv_field_count"]


# -- parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customers": 0}, "customers must be >= 1, got 0"),
        ({"customers": -5}, "customers must be >= 1, got -5"),
        ({"customers": 2.5}, "customers must be an integer, got 2.5"),
        ({"seed": -1}, "seed must be between 0 and 4294967295, got -1"),
        ({"preset": "tiny"}, "preset must be one of realistic, seed, got 'tiny'"),
        ({"orders_per_customer": 0.5}, "orders_per_customer must be between 1 and 100, got 0.5"),
        (
            {"bad_records": {"oops": 1}},
            "unknown bad record kind 'oops'; accepted kinds: malformed_json, ",
        ),
        (
            {"bad_records": {"wrong_type": -1}},
            "bad record count for 'wrong_type' must be >= 0, got -1",
        ),
        (
            {"bad_records": {"wrong_type": "3"}},
            "bad record count for 'wrong_type' must be an integer, got '3'",
        ),
    ],
)
def test_bad_parameters_are_refused_before_any_work(tmp_path, kwargs, message) -> None:
    with pytest.raises(ConfigError) as info:
        gen.generate(None, tmp_path / "out", **kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_orders_per_customer_sets_the_mean(spark, tmp_path) -> None:
    summary = gen.generate(spark, tmp_path, customers=400, seed=1, orders_per_customer=10)
    assert 8.5 <= summary.orders / summary.customers <= 11.5
