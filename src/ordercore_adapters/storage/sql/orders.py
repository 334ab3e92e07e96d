"""The order repository: orders stored whole as their JSON document, versioned.

The indexed columns (channel, external_id, status, buyer_id, created_at, version) are
copies of the document's fields for lookups and listing; the document is the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ordercore.domain.orders import Order, OrderStatus
from ordercore.errors import ConcurrencyConflict, DuplicateOrder, OrderNotFound
from ordercore_adapters.storage.sql.statements import Statements

if TYPE_CHECKING:
    from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlOrderRepository"]


class SqlOrderRepository:
    """Orders in SQL. Each method is one worker-thread hop in the unit's transaction."""

    def __init__(self, uow: SqlUnitOfWork, sql: Statements) -> None:
        self._uow = uow
        self._sql = sql

    async def add(self, order: Order) -> None:
        """Store a new order; DuplicateOrder if its id or (channel, external_id) exists."""
        await self._uow.run(lambda conn: _add(conn, self._sql, order))

    async def get(self, order_id: str) -> Order | None:
        """The order with this id."""
        document = await self._uow.run(
            lambda conn: conn.execute(self._sql.order, {"p_id": order_id}).scalar()
        )
        return None if document is None else Order.model_validate_json(document)

    async def get_by_external(self, channel: str, external_id: str) -> Order | None:
        """The order a channel knows by ``external_id``."""
        params = {"p_channel": channel, "p_external": external_id}
        document = await self._uow.run(
            lambda conn: conn.execute(self._sql.order_by_external, params).scalar()
        )
        return None if document is None else Order.model_validate_json(document)

    async def save(self, order: Order) -> Order:
        """Store a changed order if its version is still the stored one; return it bumped."""
        return await self._uow.run(lambda conn: _save(conn, self._sql, order), atomic=True)

    async def list(self, *, status: OrderStatus | None = None, limit: int = 100) -> Sequence[Order]:
        """Orders, newest first, optionally of one status."""
        params: dict[str, Any] = {"p_limit": limit}
        if status is None:
            query = self._sql.list_orders
        else:
            query = self._sql.list_orders_by_status
            params["p_status"] = OrderStatus(status).value
        documents = await self._uow.run(lambda conn: conn.execute(query, params).scalars().all())
        return [Order.model_validate_json(document) for document in documents]


def _add(conn: Connection, sql: Statements, order: Order) -> None:
    row = _row(order)
    if conn.execute(sql.insert_order, row).first() is not None:
        return
    if conn.execute(sql.order_exists, {"p_id": order.id}).first() is not None:
        raise DuplicateOrder(f"id {order.id!r}")
    raise DuplicateOrder(f"{order.channel}/{order.external_id}")


def _save(conn: Connection, sql: Statements, order: Order) -> Order:
    saved = order.model_copy(update={"version": order.version + 1})
    try:
        hit = _update(conn, sql, order, saved)
    except IntegrityError as exc:  # (channel, external_id) changed onto another order's
        raise DuplicateOrder(f"{order.channel}/{order.external_id}") from exc
    if hit:
        return saved
    if conn.execute(sql.order_exists, {"p_id": order.id}).first() is None:
        raise OrderNotFound(order.id)
    raise ConcurrencyConflict(f"order {order.id!r}", order.version)


def _update(conn: Connection, sql: Statements, order: Order, saved: Order) -> int:
    return conn.execute(
        sql.save_order,
        {
            "p_id": order.id,
            "p_version": order.version,
            "p_channel": saved.channel,
            "p_external": saved.external_id,
            "p_status": saved.status.value,
            "p_buyer": saved.buyer_id,
            "p_now": saved.updated_at,
            "p_document": saved.model_dump_json(),
        },
    ).rowcount


def _row(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "channel": order.channel,
        "external_id": order.external_id,
        "status": order.status.value,
        "buyer_id": order.buyer_id,
        "version": order.version,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "document": order.model_dump_json(),
    }
