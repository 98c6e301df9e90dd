"""One block's content, ready to be written: the good draws with the bad records inserted.

A pass over the customers file needs the names and history rows; a pass over
the orders needs the names and orders. Each builds only what it writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from custseg.data.generate.bad_records import with_bad_customers, with_bad_orders
from custseg.data.generate.draws import (
    Base,
    Orders,
    draw_base,
    draw_basket,
    draw_customer_names,
    draw_customer_rows,
    draw_orders,
)
from custseg.data.generate.plan import Plan


@dataclass
class Block:
    """Everything one pass needs to write a block's lines."""

    base: Base
    names: dict[str, np.ndarray]  # good customers, then injected ones
    rows: dict[str, np.ndarray] | None = None  # customers.csv rows in output order
    orders: Orders | None = None  # sales_orders records in output order


def customers_block(plan: Plan, block_id: int) -> Block:
    """The block's customers.csv rows, csv_field_count rows included."""
    base = draw_base(plan, block_id)
    names = draw_customer_names(plan, base)
    rows = draw_customer_rows(plan, base, draw_basket(plan, base))
    names, rows = with_bad_customers(plan, base, names, rows)
    return Block(base, names, rows=rows)


def orders_block(plan: Plan, block_id: int) -> Block:
    """The block's sales_orders records, the bad order records included."""
    base = draw_base(plan, block_id)
    names = draw_customer_names(plan, base)
    orders = draw_orders(plan, base, draw_basket(plan, base))
    names, orders = with_bad_orders(plan, base, names, orders)
    return Block(base, names, orders=orders)
