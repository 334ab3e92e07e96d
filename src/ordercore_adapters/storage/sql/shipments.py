"""Shipments and their push records in SQL: the shipments and shipment_pushes tables.

Every state change is one compare-and-set statement (``UPDATE ... WHERE state IN
(...)``), decided by the database: of a push worker and an interception racing, or two
workers running the same task, exactly one change wins and the rest see a row count of 0.
``add`` inserts the shipment with ``ON CONFLICT (id) DO NOTHING``: recording the same
parcel twice stores it once.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ordercore.domain.shipments import (
    PushState,
    Shipment,
    ShipmentPart,
    ShipmentPush,
    ShipmentState,
)
from ordercore_adapters.storage.sql.schema import shipment_pushes, shipments

if TYPE_CHECKING:
    from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlShipmentRepository"]

S = shipments
P = shipment_pushes
_PUSH_ORDER = (P.c.created_at, P.c.shipment_id, P.c.order_id)


class _Statements:
    """The statements that do not vary with their arguments, for one dialect."""

    def __init__(self, dialect: str) -> None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.add = insert(S).on_conflict_do_nothing(index_elements=[S.c.id]).returning(S.c.id)
        self.add_pushes = P.insert()
        self.get = select(*S.c).where(S.c.id == bindparam("p_id"))
        self.for_order = (
            select(*S.c)
            .join(P, P.c.shipment_id == S.c.id)
            .where(P.c.order_id == bindparam("p_order"))
            .order_by(S.c.created_at, S.c.id)
        )
        self.get_push = select(*P.c).where(
            P.c.shipment_id == bindparam("p_shipment"), P.c.order_id == bindparam("p_order")
        )
        self.counts = select(P.c.state, func.count()).group_by(P.c.state)


@cache
def _statements(dialect: str) -> _Statements:
    return _Statements(dialect)


def _shipment(row: Row[Any]) -> Shipment:
    return Shipment.model_construct(
        None,
        id=row.id,
        courier=row.courier,
        tracking_number=row.tracking_number,
        parts=tuple(
            ShipmentPart.model_construct(
                None,
                order_id=part["order_id"],
                package_id=part["package_id"],
                sub_orders=tuple(part["sub_orders"]),
            )
            for part in row.parts
        ),
        warehouse=row.warehouse,
        state=ShipmentState(row.state),
        created_at=row.created_at,
        updated_at=row.updated_at,
        shipped_at=row.shipped_at,
    )


def _push(row: Row[Any]) -> ShipmentPush:
    return ShipmentPush.model_construct(
        None,
        shipment_id=row.shipment_id,
        order_id=row.order_id,
        package_id=row.package_id,
        channel=row.channel,
        external_order_id=row.external_order_id,
        sub_orders=tuple(row.sub_orders),
        state=PushState(row.state),
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        pushed_at=row.pushed_at,
    )


class SqlShipmentRepository:
    """Shipments in SQL; each method is one worker-thread hop in the unit's transaction."""

    def __init__(self, uow: SqlUnitOfWork, dialect: str) -> None:
        self._uow = uow
        self._sql = _statements(dialect)

    async def add(self, shipment: Shipment, pushes: Sequence[ShipmentPush]) -> bool:
        """Store a new shipment and its pushes; False (nothing written) if the id exists."""
        row = {
            "id": shipment.id,
            "state": shipment.state.value,
            "courier": shipment.courier,
            "tracking_number": shipment.tracking_number,
            "warehouse": shipment.warehouse,
            "parts": [part.model_dump(mode="json") for part in shipment.parts],
            "created_at": shipment.created_at,
            "updated_at": shipment.updated_at,
            "shipped_at": shipment.shipped_at,
        }
        push_rows = [
            {
                "shipment_id": push.shipment_id,
                "order_id": push.order_id,
                "package_id": push.package_id,
                "channel": push.channel,
                "external_order_id": push.external_order_id,
                "sub_orders": list(push.sub_orders),
                "state": push.state.value,
                "attempts": push.attempts,
                "last_error": push.last_error,
                "created_at": push.created_at,
                "updated_at": push.updated_at,
                "pushed_at": push.pushed_at,
            }
            for push in pushes
        ]
        sql = self._sql

        def work(conn: Connection) -> bool:
            if conn.execute(sql.add, row).first() is None:
                return False
            if push_rows:
                conn.execute(sql.add_pushes, push_rows)
            return True

        return await self._uow.run(work, atomic=True)

    async def get(self, shipment_id: str) -> Shipment | None:
        """One shipment."""
        statement = self._sql.get

        def work(conn: Connection) -> Shipment | None:
            row = conn.execute(statement, {"p_id": shipment_id}).first()
            return None if row is None else _shipment(row)

        return await self._uow.run(work)

    async def for_order(self, order_id: str) -> builtins.list[Shipment]:
        """The shipments holding a part of the order, oldest first."""
        statement = self._sql.for_order

        def work(conn: Connection) -> builtins.list[Shipment]:
            return [_shipment(row) for row in conn.execute(statement, {"p_order": order_id})]

        return await self._uow.run(work)

    async def move(
        self,
        shipment_id: str,
        target: ShipmentState,
        from_states: Sequence[ShipmentState],
        now: datetime,
    ) -> bool:
        """Compare-and-set the shipment's state."""
        if not from_states:
            return False
        values: dict[str, Any] = {"state": target.value, "updated_at": now}
        if target is ShipmentState.SHIPPED:
            values["shipped_at"] = now
        statement = (
            update(S)
            .where(S.c.id == shipment_id, S.c.state.in_([state.value for state in from_states]))
            .values(**values)
        )

        def work(conn: Connection) -> bool:
            return conn.execute(statement).rowcount == 1

        return await self._uow.run(work)

    async def move_pushes(
        self,
        shipment_id: str,
        target: PushState,
        from_states: Sequence[PushState],
        now: datetime,
        *,
        order_id: str | None = None,
    ) -> int:
        """Compare-and-set the state of a shipment's pushes (or one order's)."""
        if not from_states:
            return 0
        conditions = [
            P.c.shipment_id == shipment_id,
            P.c.state.in_([state.value for state in from_states]),
        ]
        if order_id is not None:
            conditions.append(P.c.order_id == order_id)
        statement = update(P).where(*conditions).values(state=target.value, updated_at=now)

        def work(conn: Connection) -> int:
            return int(conn.execute(statement).rowcount)

        return await self._uow.run(work)

    async def save_push(self, push: ShipmentPush, from_states: Sequence[PushState]) -> bool:
        """Write the push's state, attempts, error and times if the stored state allows."""
        if not from_states:
            return False
        statement = (
            update(P)
            .where(
                P.c.shipment_id == push.shipment_id,
                P.c.order_id == push.order_id,
                P.c.state.in_([state.value for state in from_states]),
            )
            .values(
                state=push.state.value,
                attempts=push.attempts,
                last_error=push.last_error,
                updated_at=push.updated_at,
                pushed_at=push.pushed_at,
            )
        )

        def work(conn: Connection) -> bool:
            return conn.execute(statement).rowcount == 1

        return await self._uow.run(work)

    async def get_push(self, shipment_id: str, order_id: str) -> ShipmentPush | None:
        """One push record."""
        statement = self._sql.get_push
        params = {"p_shipment": shipment_id, "p_order": order_id}

        def work(conn: Connection) -> ShipmentPush | None:
            row = conn.execute(statement, params).first()
            return None if row is None else _push(row)

        return await self._uow.run(work)

    async def pushes(
        self,
        *,
        order_id: str | None = None,
        shipment_id: str | None = None,
        states: Sequence[PushState] = (),
        limit: int = 1000,
    ) -> builtins.list[ShipmentPush]:
        """Push records, oldest first, filtered."""
        statement = select(*P.c).order_by(*_PUSH_ORDER).limit(limit)
        if order_id is not None:
            statement = statement.where(P.c.order_id == order_id)
        if shipment_id is not None:
            statement = statement.where(P.c.shipment_id == shipment_id)
        if states:
            statement = statement.where(P.c.state.in_([state.value for state in states]))

        def work(conn: Connection) -> builtins.list[ShipmentPush]:
            return [_push(row) for row in conn.execute(statement)]

        return await self._uow.run(work)

    async def push_counts(self) -> dict[PushState, int]:
        """Push records per state."""
        statement = self._sql.counts

        def work(conn: Connection) -> dict[PushState, int]:
            counts = dict.fromkeys(PushState, 0)
            for state, count in conn.execute(statement):
                counts[PushState(state)] = count
            return counts

        return await self._uow.run(work)
