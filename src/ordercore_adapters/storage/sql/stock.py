"""Stock levels: receive, stocktake, safety stock, listing (synchronous; run in a worker thread).

Every change of on_hand writes a stock movement in the same transaction, so
``verify()`` can check on_hand against the sum of movements. Percentage safety stock is
recomputed inside the same UPDATE that changes on_hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ordercore.domain.inventory import StockLevel
from ordercore.errors import StockAdjustmentConflict, UnknownSku
from ordercore_adapters.storage.sql.schema import stock_levels
from ordercore_adapters.storage.sql.statements import LEVEL_COLUMNS, Statements

__all__ = ["count", "level_of", "levels", "receive", "record_movements", "set_safety"]


def level_of(row: Sequence[Any]) -> StockLevel:
    """A StockLevel from a row of LEVEL_COLUMNS."""
    sku, warehouse, on_hand, reserved, safety, safety_bp = row
    return StockLevel(sku, warehouse, on_hand, reserved, safety, safety_bp)


def record_movements(conn: Connection, sql: Statements, rows: list[dict[str, Any]]) -> None:
    """Insert movement rows (keys: sku, warehouse, delta, reason, reference, at)."""
    if rows:
        conn.execute(sql.insert_movement, rows)


def receive(
    conn: Connection,
    sql: Statements,
    sku: str,
    warehouse: str,
    delta: int,
    now: datetime,
    reason: str,
    reference: str,
) -> StockLevel:
    """Add ``delta`` to on_hand (creating the level for delta >= 0) and record a movement."""
    params = {"p_sku": sku, "p_warehouse": warehouse, "p_q": delta, "p_now": now}
    if delta >= 0:
        row = conn.execute(sql.receive_up, params).one()
    else:
        # Conditional: the level keeps on_hand >= reserved and >= 0, so the CHECK
        # constraints never fire and the transaction stays usable after a refusal.
        found = conn.execute(sql.receive_down, params).first()
        if found is None:
            raise _adjustment_refused(conn, sql, sku, warehouse, delta)
        row = found
    record_movements(conn, sql, [_movement(sku, warehouse, delta, reason, reference, now)])
    return level_of(row)


def count(
    conn: Connection,
    sql: Statements,
    sku: str,
    warehouse: str,
    on_hand: int,
    now: datetime,
    reference: str,
) -> StockLevel:
    """Set on_hand to a counted figure; the difference is a "stocktake" movement."""
    if on_hand < 0:
        raise StockAdjustmentConflict(sku, warehouse, f"a counted on_hand of {on_hand} is < 0")
    params = {"p_sku": sku, "p_warehouse": warehouse, "p_q": 0, "p_now": now}
    conn.execute(sql.ensure_level, params)
    # Lock the level (FOR UPDATE on PostgreSQL) so the recorded difference is against
    # the on_hand this UPDATE replaces, not one another writer changes meanwhile.
    before = conn.execute(sql.level_on_hand_for_update, params).scalar_one()
    row = conn.execute(sql.set_on_hand, {**params, "p_on_hand": on_hand}).first()
    if row is None:
        level = level_of(conn.execute(sql.level, params).one())
        raise StockAdjustmentConflict(
            sku,
            warehouse,
            f"counted on_hand {on_hand} is below reserved {level.reserved} "
            f"(on_hand is {level.on_hand}); release or ship reservations first",
        )
    record_movements(
        conn, sql, [_movement(sku, warehouse, on_hand - before, "stocktake", reference, now)]
    )
    return level_of(row)


def set_safety(
    conn: Connection,
    sql: Statements,
    sku: str,
    warehouse: str,
    units: int | None,
    basis_points: int | None,
) -> StockLevel:
    """Set safety stock to ``units``, or to ``basis_points`` of on_hand (rounded up)."""
    params: dict[str, Any] = {"p_sku": sku, "p_warehouse": warehouse}
    if basis_points is not None:
        row = conn.execute(sql.set_safety_bp, {**params, "p_bp": basis_points}).first()
    else:
        row = conn.execute(sql.set_safety_units, {**params, "p_units": units or 0}).first()
    if row is None:
        raise UnknownSku(sku, warehouse)
    return level_of(row)


def levels(conn: Connection, sku: str | None, warehouse: str | None) -> list[StockLevel]:
    """Stock levels filtered by SKU and/or warehouse, sorted by (sku, warehouse)."""
    query = select(*LEVEL_COLUMNS).order_by(stock_levels.c.sku, stock_levels.c.warehouse)
    if sku is not None:
        query = query.where(stock_levels.c.sku == sku)
    if warehouse is not None:
        query = query.where(stock_levels.c.warehouse == warehouse)
    return [level_of(row) for row in conn.execute(query)]


def _adjustment_refused(
    conn: Connection, sql: Statements, sku: str, warehouse: str, delta: int
) -> Exception:
    row = conn.execute(sql.level, {"p_sku": sku, "p_warehouse": warehouse}).first()
    if row is None:
        return UnknownSku(sku, warehouse)
    level = level_of(row)
    floor = "below reserved" if level.on_hand + delta >= 0 else "below zero"
    return StockAdjustmentConflict(
        sku,
        warehouse,
        f"on_hand {level.on_hand} with delta {delta} would be {level.on_hand + delta}, "
        f"{floor} (reserved {level.reserved})",
    )


def _movement(
    sku: str, warehouse: str, delta: int, reason: str, reference: str, at: datetime
) -> dict[str, Any]:
    return {
        "sku": sku,
        "warehouse": warehouse,
        "delta": delta,
        "reason": reason,
        "reference": reference,
        "at": at,
    }
