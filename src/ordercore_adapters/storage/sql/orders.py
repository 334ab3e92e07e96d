"""The order repository: orders stored whole as their JSON document, versioned.

The indexed columns (channel, external_id, status, buyer_id, version, created_at,
updated_at, source_modified_at) are copies of the document's fields for lookups,
listing and the intake's newest-version check; the document is the record.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ordercore.domain.intake import UpsertOutcome
from ordercore.domain.orders import Order, OrderStatus
from ordercore.errors import (
    ConcurrencyConflict,
    DuplicateOrder,
    OrderNotFound,
    StorageUnavailable,
)
from ordercore_adapters.storage.sql.statements import Statements
from ordercore_adapters.storage.sql.upsert import (
    IdTaken,
    duplicate_of,
    read_many,
    row_of,
    upsert_many,
)

if TYPE_CHECKING:
    from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlOrderRepository"]

_RACE_RETRIES = 5
"""Attempts of an upsert that lost PostgreSQL's race on the id of a new key (see upsert.py)."""


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

    async def get_many_by_external(
        self, channel: str, external_ids: Sequence[str]
    ) -> dict[str, Order]:
        """The stored orders of one channel among ``external_ids``, by external id; one read."""
        if not external_ids:
            return {}
        return await self._uow.run(lambda conn: read_many(conn, self._sql, channel, external_ids))

    async def upsert_many(self, orders: Sequence[Order]) -> builtins.list[UpsertOutcome]:
        """Store channel orders exactly once per (channel, external_id), newest version winning.

        See :mod:`ordercore_adapters.storage.sql.upsert` for the statement and why it is
        safe under concurrency. An update keeps the stored order's id (an intake never
        renames an order). A new key whose id another order already holds raises
        DuplicateOrder, and nothing of this call is kept. When a concurrent unit inserted
        the same new key first, PostgreSQL may report its id as a duplicate: the call is
        then retried (within its savepoint) and finds the key stored.
        """
        if not orders:
            return []
        postgres = self._uow.dialect == "postgresql"
        for _ in range(_RACE_RETRIES):
            try:
                return await self._uow.run(
                    lambda conn: upsert_many(conn, self._sql, orders, postgres=postgres),
                    atomic=True,
                )
            except IdTaken:
                duplicate = await self._uow.run(lambda conn: duplicate_of(conn, self._sql, orders))
                if duplicate is not None:
                    raise duplicate from None
        raise StorageUnavailable(
            f"{self._uow.dialect} storage: concurrent intakes of the same new orders kept "
            "colliding; retry the unit of work"
        )


def _add(conn: Connection, sql: Statements, order: Order) -> None:
    row = row_of(order)
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
            "p_modified": saved.source_modified_at,
        },
    ).rowcount
