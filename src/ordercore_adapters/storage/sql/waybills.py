"""The waybill records in SQL: the waybills table, keyed by (order_id, package_id).

Each guarantee is one statement, decided by the database:

* ``begin``: ``INSERT ... ON CONFLICT (order_id, package_id) DO UPDATE SET attempts =
  attempts + 1 WHERE state = 'requested' RETURNING``. Two runs racing on one package
  both end on the same row; a ``created`` row is not touched (no row returned, so it is
  read back as it stands).
* ``complete``: ``UPDATE ... WHERE order_id = :o AND package_id = :p AND state =
  'requested'``, a compare-and-set: only the first run to finish fills the row in.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ordercore.domain.couriers import Waybill, WaybillRecord, WaybillState
from ordercore_adapters.storage.sql.schema import waybills
from ordercore_adapters.storage.sql.types import UtcDateTime

if TYPE_CHECKING:
    from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlWaybillRepository"]

W = waybills
_REQUESTED = WaybillState.REQUESTED.value
_COLUMNS = tuple(W.c)
_KEY = (W.c.order_id == bindparam("p_order"), W.c.package_id == bindparam("p_package"))


class _Statements:
    """The waybill statements for one dialect, built once."""

    def __init__(self, dialect: str) -> None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        fresh = insert(W).values(
            order_id=bindparam("p_order"),
            package_id=bindparam("p_package"),
            state=_REQUESTED,
            attempts=1,
            created_at=bindparam("p_now", type_=UtcDateTime()),
            updated_at=bindparam("p_now", type_=UtcDateTime()),
        )
        self.begin = fresh.on_conflict_do_update(
            index_elements=[W.c.order_id, W.c.package_id],
            set_={"attempts": W.c.attempts + 1, "updated_at": fresh.excluded.updated_at},
            where=W.c.state == _REQUESTED,
        ).returning(*_COLUMNS)
        self.complete = (
            update(W)
            .where(*_KEY, W.c.state == _REQUESTED)
            .values(
                state=WaybillState.CREATED.value,
                courier=bindparam("p_courier"),
                tracking_number=bindparam("p_tracking"),
                label_ref=bindparam("p_label"),
                updated_at=bindparam("p_now", type_=UtcDateTime()),
            )
        )
        self.get = select(*_COLUMNS).where(*_KEY)
        self.for_order = (
            select(*_COLUMNS).where(W.c.order_id == bindparam("p_order")).order_by(W.c.package_id)
        )
        self.counts = select(W.c.state, func.count()).group_by(W.c.state)


@cache
def _statements(dialect: str) -> _Statements:
    return _Statements(dialect)


def _record(row: Row[Any]) -> WaybillRecord:
    return WaybillRecord.model_construct(
        None,
        order_id=row.order_id,
        package_id=row.package_id,
        state=WaybillState(row.state),
        attempts=row.attempts,
        courier=row.courier,
        tracking_number=row.tracking_number,
        label_ref=row.label_ref,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlWaybillRepository:
    """Waybill records in SQL; each method is one worker-thread hop in the unit's transaction."""

    def __init__(self, uow: SqlUnitOfWork, dialect: str) -> None:
        self._uow = uow
        self._sql = _statements(dialect)

    async def begin(self, order_id: str, package_id: str, now: datetime) -> WaybillRecord:
        """Insert a requested record, or count one more attempt on a requested one."""
        params = {"p_order": order_id, "p_package": package_id, "p_now": now}
        sql = self._sql

        def work(conn: Connection) -> WaybillRecord:
            row = conn.execute(sql.begin, params).first()
            if row is None:  # created already: left as it is
                row = conn.execute(sql.get, params).one()
            return _record(row)

        return await self._uow.run(work, atomic=True)

    async def complete(
        self, order_id: str, package_id: str, waybill: Waybill, now: datetime
    ) -> bool:
        """Fill in the waybill when the record is still requested."""
        params = {
            "p_order": order_id,
            "p_package": package_id,
            "p_courier": waybill.courier,
            "p_tracking": waybill.tracking_number,
            "p_label": waybill.label_ref,
            "p_now": now,
        }
        statement = self._sql.complete

        def work(conn: Connection) -> bool:
            return conn.execute(statement, params).rowcount == 1

        return await self._uow.run(work)

    async def get(self, order_id: str, package_id: str) -> WaybillRecord | None:
        """One package's record."""
        params = {"p_order": order_id, "p_package": package_id}
        statement = self._sql.get

        def work(conn: Connection) -> WaybillRecord | None:
            row = conn.execute(statement, params).first()
            return None if row is None else _record(row)

        return await self._uow.run(work)

    async def for_order(self, order_id: str) -> builtins.list[WaybillRecord]:
        """Every package record of the order, by package id."""
        statement = self._sql.for_order

        def work(conn: Connection) -> builtins.list[WaybillRecord]:
            return [_record(row) for row in conn.execute(statement, {"p_order": order_id})]

        return await self._uow.run(work)

    async def counts(self) -> dict[WaybillState, int]:
        """Records per state."""
        statement = self._sql.counts

        def work(conn: Connection) -> dict[WaybillState, int]:
            counts = dict.fromkeys(WaybillState, 0)
            for state, count in conn.execute(statement):
                counts[WaybillState(state)] = count
            return counts

        return await self._uow.run(work)
