"""The text of the raw files: customers.csv rows, sales_orders JSON lines and the truth file.

Arrow compute kernels build whole columns of lines at once from a block's
draws, so no Python loop runs per customer or per order. Names and addresses
come from the word lists in ``vocabulary``; product ids and names from the
catalog.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from custseg.data.generate.blocks import Block
from custseg.data.generate.catalog import Catalog
from custseg.data.generate.draws import Base, offsets
from custseg.data.generate.plan import Plan
from custseg.data.generate.vocabulary import (
    CITIES,
    FIRST_NAMES,
    INDUSTRIES,
    LAST_NAMES,
    PROMO_CODES,
    PROMO_DISCS,
    STREETS,
    SUFFIXES,
)


def _cat(*parts: Any) -> pa.Array:
    """Row by row concatenation of string arrays and string scalars."""
    return pc.binary_join_element_wise(*parts, "")


def _text(values: np.ndarray) -> pa.Array:
    """Numbers as Arrow prints them (the same digits Spark would write)."""
    return pc.cast(pa.array(values), pa.string())


def _lookup(table: list[str] | tuple[str, ...], idx: np.ndarray) -> pa.Array:
    """``table[i]`` for every index in ``idx``."""
    return pa.array(table, pa.string()).take(pa.array(idx))


def _quoted(values: pa.Array | str) -> pa.Array:
    """A JSON string: the word lists and ids hold nothing that needs escaping."""
    return _cat('"', values, '"')


def _json_object(*fields: tuple[str, pa.Array | str]) -> pa.Array:
    """'{"key":value,...}' per row; each value is JSON text already."""
    parts: list[pa.Array | str] = []
    for i, (key, value) in enumerate(fields):
        parts += [("{" if i == 0 else ",") + f'"{key}":', value]
    return _cat(*parts, "}")


def _name_text(names: dict[str, np.ndarray]) -> pa.Array:
    """A person's 'LAST,  FIRST' or a business's 'LAST INDUSTRY, SUFFIX'."""
    last = _lookup(LAST_NAMES, names["last"])
    person = _cat(last, ",  ", _lookup(FIRST_NAMES, names["first"]))
    business = _cat(
        last,
        " ",
        _lookup(INDUSTRIES, names["industry"]),
        ", ",
        _lookup(SUFFIXES, names["suffix"]),
    )
    return pc.if_else(pa.array(names["business"]), business, person)


def customer_lines(block: Block) -> pa.Array:
    """customers.csv rows; the name and the address are quoted (they hold commas)."""
    rows = block.rows
    assert rows is not None
    cust = rows["cust"]
    names = _name_text(block.names).take(pa.array(cust))
    business = block.names["business"][cust]
    city = rows["city"]
    col = list(zip(*CITIES, strict=True))
    state = _lookup(col[0], city)
    postcode = _cat(_text(np.array(col[6])[city] + rows["zip"]), ".0")
    street = _lookup(STREETS, rows["street"])
    number = _text(rows["number"])
    unit = pc.if_else(pa.array(rows["unit"] > 0), _cat("APT ", _text(rows["unit"])), "")
    lon = pc.cast(pc.round(pa.array(np.array(col[5])[city] + rows["dlon"]), 5), pa.string())
    lat = pc.cast(pc.round(pa.array(np.array(col[4])[city] + rows["dlat"]), 5), pa.string())
    address = _cat(state, ", ", postcode, ", ", street, ", ", number)
    quoted_name = pc.if_else(pa.array(rows["bad"]), names, _cat('"', names, '"'))
    return pc.binary_join_element_wise(
        _text(block.names["id"][cust]),
        pc.if_else(pa.array(business), _text(block.names["tax"][cust]), ""),
        pc.if_else(pa.array(business), "EIN", ""),
        quoted_name,
        state,
        _lookup(col[1], city),
        postcode,
        street,
        number,
        unit,
        _lookup(col[2], city),
        _lookup(col[3], city),
        lon,
        lat,
        _cat('"', address, '"'),
        _text(rows["valid_from"]),
        pc.if_else(pa.array(rows["valid_to"] < 0), "", _text(rows["valid_to"])),
        _text(rows["units"]),
        _text(rows["loyalty"]),
        ",",
    )


def _json_lists(items: pa.Array, counts: np.ndarray) -> pa.Array:
    """'[a,b,...]' per group of ``counts`` consecutive items."""
    list_offsets = pa.array(offsets(counts).astype(np.int32))
    return _cat("[", pc.binary_join(pa.ListArray.from_arrays(list_offsets, items), ","), "]")


def order_lines(block: Block, catalog: Catalog) -> pa.Array:
    """sales_orders JSON lines, keys in the order Spark writes them (alphabetical)."""
    orders = block.orders
    assert orders is not None
    o, ln, ck = orders.o, orders.lines, orders.clicks
    ids = pa.array(catalog.ids, pa.string())
    product_names = pa.array(catalog.names, pa.string())
    discs = pa.array(PROMO_DISCS, pa.string())

    product = pa.array(ln["product"])
    line_promo = _json_object(
        ("promo_disc", discs.take(pa.array(ln["promo_disc"]))),
        ("promo_id", _text(ln["promo_id"])),
        ("promo_item", _quoted(ids.take(product))),
        ("promo_qty", "1"),
    )
    products = _json_object(
        ("curr", '"USD"'),
        ("id", _quoted(ids.take(product))),
        ("name", _quoted(product_names.take(product))),
        ("price", _text(ln["price"])),
        ("promotion_info", pc.if_else(pa.array(ln["promo"]), line_promo, "null")),
        ("qty", _text(ln["qty"])),
        ("unit", '"pcs"'),
    )
    clicks = _cat('["', ids.take(pa.array(ck["product"])), '","', _text(ck["count"]), '"]')
    promo = _json_object(
        ("promo_code", _quoted(_lookup(PROMO_CODES, o["promo_code"]))),
        ("promo_disc", discs.take(pa.array(o["promo_disc"]))),
        ("promo_id", _text(o["promo_id"])),
        ("promo_item", _quoted(ids.take(pa.array(o["promo_item"])))),
        ("promo_qty", _text(o["promo_qty"])),
    )
    when = pc.if_else(pa.array(o["time_kind"] == 1), "yesterday", _text(o["time"]))
    cust = pa.array(o["cust"])
    text = _json_object(
        ("clicked_items", _json_lists(clicks, orders.n_clicks)),
        ("customer_id", _quoted(_text(block.names["id"]).take(cust))),
        ("customer_name", _quoted(_name_text(block.names).take(cust))),
        ("number_of_line_items", _quoted(_text(orders.n_lines))),
        ("order_datetime", _quoted(when)),
        ("order_number", _text(o["number"])),
        ("ordered_products", _json_lists(products, orders.n_lines)),
        ("promo_info", pc.if_else(pa.array(o["promo"]), _cat("[", promo, "]"), "null")),
    )
    # malformed_json: the closing brace is cut off
    return pc.if_else(pa.array(o["malformed"]), pc.utf8_slice_codeunits(text, 0, -1), text)


def truth_lines(base: Base, plan: Plan) -> pa.Array:
    """customer_id,archetype for every customer with orders."""
    keep = base.n_orders > 0
    names = pa.array([s.name for s in plan.specs], pa.string())
    return _cat(_text(base.cust_id[keep]), ",", names.take(pa.array(base.arch[keep])))
