"""The reservation primitives (synchronous; each runs whole in one worker-thread hop).

The shape is the one in DESIGN.md ("The reservation primitive"): the header's unique
order id is the idempotency key; stock is taken with one conditional UPDATE per line in
sorted (sku, warehouse) order; release, commit and expiry flip the status out of
``active`` first and adjust counters only when that flip hit a row. A primitive that
raises leaves its changes in the transaction: the unit of work rolls them back (see
unit_of_work.SqlUnitOfWork.run).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ordercore.domain.inventory import Reservation, ReservationLine, ReservationStatus
from ordercore.errors import InsufficientStock, StorageError, UnknownSku
from ordercore_adapters.storage.sql import flash
from ordercore_adapters.storage.sql.statements import Statements
from ordercore_adapters.storage.sql.stock import level_of, record_movements

__all__ = [
    "begin_payment",
    "expire_due",
    "load",
    "load_many",
    "mark_paid",
    "reactivate",
    "reserve",
    "take_stock",
    "transition",
]

_Line = tuple[str, str, int, str | None]
"""(sku, warehouse, quantity, sale_id) of a stored line."""


def reserve(conn: Connection, sql: Statements, draft: Reservation) -> tuple[Reservation, bool]:
    """Insert the header (a conflict means the order has one: take nothing), then the stock."""
    inserted = conn.execute(
        sql.insert_reservation,
        {
            "id": draft.id,
            "order_id": draft.order_id,
            "buyer_id": draft.buyer_id,
            "status": ReservationStatus.ACTIVE.value,
            "created_at": draft.created_at,
            "updated_at": draft.updated_at,
            "expires_at": draft.expires_at,
            "payment_deadline": draft.payment_deadline,
            "paid": draft.paid,
        },
    ).first()
    if inserted is None:
        existing = load(conn, sql, draft.order_id)
        if existing is None:  # pragma: no cover - the conflicting row cannot vanish
            raise StorageError(f"reservation of order {draft.order_id!r} conflicted but is gone")
        return existing, False
    marks = take_stock(conn, sql, draft.lines, draft.buyer_id)
    conn.execute(
        sql.insert_lines,
        [
            {
                "reservation_id": draft.id,
                "sku": line.sku,
                "warehouse": line.warehouse,
                "quantity": line.quantity,
                "sale_id": marks.get(line.sku),
            }
            for line in draft.lines
        ],
    )
    return draft, True


def take_stock(
    conn: Connection, sql: Statements, lines: Sequence[ReservationLine], buyer_id: str
) -> dict[str, str]:
    """Take every line's stock, then count sale SKUs against their sales; return sku -> sale id.

    Flash-sale lookup: the stock UPDATE's RETURNING carries the SKU's running sale id
    from an indexed scalar subquery on ``flash_sales`` (NULL when none), so an order
    without sale SKUs costs exactly one statement per line. Concurrency: the subquery
    sees sales committed before the statement began. A sale that starts later is, for
    this reservation, a sale that started after it (units reserved before a sale are
    not counted, by definition), and the reservation commits with unmarked lines, which
    is consistent for ``verify()``. A sale seen here that ends before we reach it makes
    ``take_sale`` hit no row, and the lines stay unmarked. Nothing is cached across
    transactions, so a sale can never be missed for longer than one statement.
    """
    on_sale: dict[str, int] = {}
    for line in lines:
        row = conn.execute(
            sql.take_stock,
            {"p_sku": line.sku, "p_warehouse": line.warehouse, "p_q": line.quantity},
        ).first()
        if row is None:
            raise _stock_refused(conn, sql, line)
        if row[0] is not None:
            on_sale[line.sku] = 0
    if not on_sale:
        return {}
    for line in lines:
        if line.sku in on_sale:
            on_sale[line.sku] += line.quantity
    marks: dict[str, str] = {}
    for sku in sorted(on_sale):
        sale_id = flash.take(conn, sql, sku, on_sale[sku], buyer_id)
        if sale_id is not None:
            marks[sku] = sale_id
    return marks


def load(conn: Connection, sql: Statements, order_id: str) -> Reservation | None:
    """The reservation of an order (header and lines in one query), whatever its status."""
    rows = conn.execute(sql.reservation, {"p_order": order_id}).all()
    if not rows:
        return None
    lines = sorted(ReservationLine(row[9], row[10], row[11]) for row in rows if row[9] is not None)
    return _reservation(rows[0], tuple(lines))


def load_many(
    conn: Connection, sql: Statements, order_ids: Sequence[str]
) -> dict[str, Reservation]:
    """The reservations of several orders (those that have one), in one query."""
    if not order_ids:
        return {}
    found: dict[str, Reservation] = {}
    rows = conn.execute(sql.reservations_of_orders, {"p_orders": sorted(set(order_ids))}).all()
    start = 0
    for index in range(1, len(rows) + 1):
        if index == len(rows) or rows[index][1] != rows[start][1]:
            group = rows[start:index]
            lines = tuple(
                sorted(ReservationLine(row[9], row[10], row[11]) for row in group if row[9])
            )
            found[group[0][1]] = _reservation(group[0], lines)
            start = index
    return found


def load_held(
    conn: Connection, sql: Statements, order_ids: Sequence[str]
) -> dict[str, Reservation]:
    """Like :func:`load_many`, probing the order-id index first and loading only the hits.

    Most lookups of a hot-SKU batch find nothing (new orders); the probe is an index-only
    scan whose statement text does not change with the number of ids on PostgreSQL.
    """
    if not order_ids:
        return {}
    probe = conn.execute(sql.orders_with_reservations, {"p_orders": list(order_ids)})
    held = [row[0] for row in probe]
    return load_many(conn, sql, held) if held else {}


def transition(
    conn: Connection, sql: Statements, order_id: str, target: ReservationStatus, now: datetime
) -> tuple[Reservation, bool] | None:
    """Flip an active reservation to ``target``; adjust counters only when the flip hit."""
    params: dict[str, Any] = {"p_order": order_id, "p_now": now}
    if target is ReservationStatus.COMMITTED:
        row = conn.execute(sql.flip_committed, params).first()
    elif target in (ReservationStatus.RELEASED, ReservationStatus.EXPIRED):
        row = conn.execute(sql.flip_out, {**params, "p_status": target.value}).first()
    else:
        raise ValueError(f"a reservation cannot transition to {target}")
    if row is None:
        existing = load(conn, sql, order_id)
        return None if existing is None else (existing, False)
    lines = _lines(conn, sql, row[0])
    if target is ReservationStatus.COMMITTED:
        conn.execute(
            sql.ship_stock,
            [{"p_sku": s, "p_warehouse": w, "p_q": q, "p_now": now} for s, w, q, _ in lines],
        )
        record_movements(
            conn,
            sql,
            [
                {
                    "sku": s,
                    "warehouse": w,
                    "delta": -q,
                    "reason": "shipment",
                    "reference": order_id,
                    "at": now,
                }
                for s, w, q, _ in lines
            ],
        )
    else:
        _give_back(conn, sql, [(row[2], lines)])
    return _reservation(row, tuple(ReservationLine(s, w, q) for s, w, q, _ in lines)), True


def expire_due(conn: Connection, sql: Statements, now: datetime, limit: int) -> list[Reservation]:
    """Claim, flip and give back up to ``limit`` due reservations in one transaction."""
    rows = conn.execute(sql.expire_due, {"p_now": now, "p_limit": limit}).all()
    if not rows:
        return []
    by_id: dict[str, list[_Line]] = defaultdict(list)
    for reservation_id, sku, warehouse, quantity, sale_id in conn.execute(
        sql.lines_of_many, {"p_ids": [row[0] for row in rows]}
    ):
        by_id[reservation_id].append((sku, warehouse, quantity, sale_id))
    _give_back(conn, sql, [(row[2], by_id[row[0]]) for row in rows])
    expired = [
        _reservation(row, tuple(sorted(ReservationLine(s, w, q) for s, w, q, _ in by_id[row[0]])))
        for row in rows
    ]
    expired.sort(key=lambda reservation: (reservation.expires_at, reservation.order_id))
    return expired


def reactivate(
    conn: Connection,
    sql: Statements,
    order_id: str,
    now: datetime,
    expires_at: datetime | None,
    paid: bool,
) -> Reservation | None:
    """Flip an expired reservation back to active, then take its stock as reserve does."""
    row = conn.execute(
        sql.flip_reactivated,
        {"p_order": order_id, "p_now": now, "p_expires": expires_at, "p_paid": paid},
    ).first()
    if row is None:
        return None
    lines = _lines(conn, sql, row[0])
    marks = take_stock(conn, sql, [ReservationLine(s, w, q) for s, w, q, _ in lines], row[2])
    changed = {sku: marks.get(sku) for sku, _, _, sale_id in lines if marks.get(sku) != sale_id}
    if changed:
        conn.execute(
            sql.set_line_sale,
            [
                {"p_reservation": row[0], "p_sku": sku, "p_sale": sale_id}
                for sku, sale_id in sorted(changed.items())
            ],
        )
    return _reservation(row, tuple(ReservationLine(s, w, q) for s, w, q, _ in lines))


def begin_payment(
    conn: Connection, sql: Statements, order_id: str, deadline: datetime, now: datetime
) -> bool:
    """Set the payment deadline of an active reservation; False when it is not active."""
    params = {"p_order": order_id, "p_deadline": deadline, "p_now": now}
    return bool(conn.execute(sql.begin_payment, params).rowcount)


def mark_paid(conn: Connection, sql: Statements, order_id: str, now: datetime) -> bool:
    """Mark an active reservation paid (it stops expiring); False when it is not active."""
    return bool(conn.execute(sql.mark_paid, {"p_order": order_id, "p_now": now}).rowcount)


def _give_back(
    conn: Connection, sql: Statements, reservations: Iterable[tuple[str, Sequence[_Line]]]
) -> None:
    """Return the stock (and sale counts) of released reservations: (buyer_id, lines) each.

    Decrements are summed per key first and applied in sorted order: one UPDATE per
    (sku, warehouse), then per sale, then per buyer (the fixed lock order).
    """
    stock: dict[tuple[str, str], int] = defaultdict(int)
    sold: dict[tuple[str, str], int] = defaultdict(int)
    bought: dict[tuple[str, str, str], int] = defaultdict(int)
    for buyer_id, lines in reservations:
        for sku, warehouse, quantity, sale_id in lines:
            stock[sku, warehouse] += quantity
            if sale_id is not None:
                sold[sku, sale_id] += quantity
                bought[sku, sale_id, buyer_id] += quantity
    if stock:
        conn.execute(
            sql.give_back_stock,
            [
                {"p_sku": sku, "p_warehouse": warehouse, "p_q": quantity}
                for (sku, warehouse), quantity in sorted(stock.items())
            ],
        )
    if sold:
        flash.give_back(conn, sql, sold, bought)


def _lines(conn: Connection, sql: Statements, reservation_id: str) -> list[_Line]:
    rows = conn.execute(sql.lines, {"p_reservation": reservation_id})
    return sorted((sku, warehouse, quantity, sale_id) for sku, warehouse, quantity, sale_id in rows)


def _reservation(row: Sequence[Any], lines: tuple[ReservationLine, ...]) -> Reservation:
    reservation_id, order_id, buyer_id, status, created, updated, expires, deadline, paid = row[:9]
    return Reservation(
        id=reservation_id,
        order_id=order_id,
        lines=lines,
        status=ReservationStatus(status),
        created_at=created,
        updated_at=updated,
        expires_at=expires,
        buyer_id=buyer_id,
        paid=bool(paid),
        payment_deadline=deadline,
    )


def _stock_refused(conn: Connection, sql: Statements, line: ReservationLine) -> Exception:
    row = conn.execute(sql.level, {"p_sku": line.sku, "p_warehouse": line.warehouse}).first()
    if row is None:
        return UnknownSku(line.sku, line.warehouse)
    return InsufficientStock(line.sku, line.warehouse, line.quantity, level_of(row).sellable)
