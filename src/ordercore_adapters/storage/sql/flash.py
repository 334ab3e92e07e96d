"""Flash sales: the cap and per-buyer counters (synchronous; run in a worker thread).

``sold`` and ``buyer_purchases`` count units of active and committed reservation lines
marked with the running sale's ``sale_id``. A buyer's units are counted whenever the
order names a buyer (not only while a per-buyer limit is set), so a limit added during a
sale sees what each buyer already holds. Ending a sale drops both; a new sale gets a new
``sale_id`` and starts from zero.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from ordercore.domain.inventory import FlashSale
from ordercore.errors import (
    BuyerLimitExceeded,
    FieldError,
    InvalidInput,
    InvalidReservation,
    SaleCapReached,
)
from ordercore_adapters.storage.sql.statements import Statements

__all__ = ["end_sale", "get_sale", "give_back", "set_sale", "take"]


def take(conn: Connection, sql: Statements, sku: str, quantity: int, buyer_id: str) -> str | None:
    """Count ``quantity`` units of ``sku`` against its running sale; return the sale id.

    None when no sale runs (it may have ended since the caller saw it). Raises
    SaleCapReached, BuyerLimitExceeded or InvalidReservation (a limited SKU without a
    buyer); the caller's transaction is then rolled back.
    """
    row = conn.execute(sql.take_sale, {"p_sku": sku, "p_q": quantity}).first()
    if row is None:
        sale = get_sale(conn, sql, sku)
        if sale is None:
            return None
        raise SaleCapReached(sku, quantity, sale.remaining_under_cap or 0)
    sale_id, limit = row
    if not buyer_id:
        if limit is not None:
            raise InvalidReservation(
                [FieldError("buyer_id", f"required: SKU {sku!r} has a per-buyer limit", "")]
            )
        return str(sale_id)
    if limit is not None and quantity > limit:
        raise BuyerLimitExceeded(sku, buyer_id, quantity, limit)
    params: dict[str, Any] = {"p_sku": sku, "p_buyer": buyer_id, "p_q": quantity}
    if limit is None:
        conn.execute(sql.add_purchase, params)
    elif conn.execute(sql.add_purchase_within_limit, {**params, "p_limit": limit}).first() is None:
        raise BuyerLimitExceeded(sku, buyer_id, quantity, limit)
    return str(sale_id)


def give_back(
    conn: Connection,
    sql: Statements,
    sold: Mapping[tuple[str, str], int],
    bought: Mapping[tuple[str, str, str], int],
) -> None:
    """Return units to the sales they were counted under, if those sales still run.

    ``sold`` maps (sku, sale_id) to units; ``bought`` maps (sku, sale_id, buyer_id) to
    units. Applied in sorted order (the fixed lock order).
    """
    running: set[tuple[str, str]] = set()
    for (sku, sale_id), quantity in sorted(sold.items()):
        params = {"p_sku": sku, "p_sale": sale_id, "p_q": quantity}
        if conn.execute(sql.give_back_sale, params).first() is not None:
            running.add((sku, sale_id))
    purchases = [
        {"p_sku": sku, "p_buyer": buyer_id, "p_q": quantity}
        for (sku, sale_id, buyer_id), quantity in sorted(bought.items())
        if (sku, sale_id) in running and buyer_id
    ]
    if purchases:
        conn.execute(sql.give_back_purchase, purchases)


def set_sale(
    conn: Connection, sql: Statements, sku: str, cap: int | None, per_buyer_limit: int | None
) -> FlashSale:
    """Start a sale (new sale id, counters at zero) or change the limits of the running one."""
    params = {
        "p_sku": sku,
        "p_sale": uuid.uuid4().hex,
        "p_cap": cap,
        "p_limit": per_buyer_limit,
    }
    row = conn.execute(sql.upsert_sale, params).first()
    if row is None:
        current = get_sale(conn, sql, sku)
        sold = current.sold if current else 0
        raise InvalidInput(
            "flash sale",
            [FieldError("cap", f"must be >= the {sold} units already sold under this sale", cap)],
        )
    return _sale_of(row)


def get_sale(conn: Connection, sql: Statements, sku: str) -> FlashSale | None:
    """The running sale of a SKU, if any."""
    row = conn.execute(sql.sale, {"p_sku": sku}).first()
    return None if row is None else _sale_of(row)


def end_sale(conn: Connection, sql: Statements, sku: str) -> None:
    """End the sale of a SKU and drop its counters."""
    conn.execute(sql.delete_sale, {"p_sku": sku})
    conn.execute(sql.delete_purchases, {"p_sku": sku})


def _sale_of(row: Sequence[Any]) -> FlashSale:
    sku, sale_id, cap, per_buyer_limit, sold = row
    return FlashSale(sku, sale_id, cap, per_buyer_limit, sold)
