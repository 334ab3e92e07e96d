"""The stock-push records in SQL: the stock_pushes table, keyed by (shop, sku).

``save_pushes`` is one ``INSERT ... ON CONFLICT (shop, sku) DO UPDATE ... WHERE
stock_pushes.attempted_at <= excluded.attempted_at``: a record from an older attempt
(a slow worker finishing late) never overwrites a newer one.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from ordercore.domain.stock_push import PushRecord
from ordercore_adapters.storage.sql.schema import stock_pushes

if TYPE_CHECKING:
    from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlStockPushRepository"]

P = stock_pushes
_COLUMNS = tuple(P.c)
_FIELDS = ("listing", "quantity", "listed", "pushed_at", "attempted_at", "error", "pending")


class _Statements:
    def __init__(self, dialect: str) -> None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        fresh = insert(P)
        self.save = fresh.on_conflict_do_update(
            index_elements=[P.c.shop, P.c.sku],
            set_={name: fresh.excluded[name] for name in _FIELDS},
            where=P.c.attempted_at <= fresh.excluded.attempted_at,
        ).returning(P.c.shop)
        self.all = select(*_COLUMNS).order_by(P.c.shop, P.c.sku)


@cache
def _statements(dialect: str) -> _Statements:
    return _Statements(dialect)


def _record(row: Row[Any]) -> PushRecord:
    return PushRecord(
        shop=row.shop,
        sku=row.sku,
        listing=row.listing,
        quantity=row.quantity,
        listed=row.listed,
        pushed_at=row.pushed_at,
        attempted_at=row.attempted_at,
        error=row.error,
        pending=row.pending,
    )


class SqlStockPushRepository:
    """Stock-push records in SQL; each method is one worker-thread hop."""

    def __init__(self, uow: SqlUnitOfWork, dialect: str) -> None:
        self._uow = uow
        self._dialect = dialect
        self._sql = _statements(dialect)

    async def save_pushes(self, records: Sequence[PushRecord]) -> int:
        """Keep each record unless a newer attempt is stored; return how many were kept."""
        if not records:
            return 0
        rows = [record.model_dump() for record in records]
        statement = self._sql.save

        def work(conn: Connection) -> int:
            return sum(len(conn.execute(statement, row).all()) for row in rows)

        return await self._uow.run(work, atomic=True)

    async def pushes(
        self,
        *,
        shop: str | None = None,
        skus: Sequence[str] | None = None,
        for_update: bool = False,
    ) -> builtins.list[PushRecord]:
        """The records of one shop and/or some SKUs (all: both None), by (shop, sku)."""
        statement = self._sql.all
        if for_update and self._dialect == "postgresql":
            statement = statement.with_for_update()
        if shop is not None:
            statement = statement.where(P.c.shop == bindparam("p_shop"))
        if skus is not None:
            statement = statement.where(P.c.sku.in_(bindparam("p_skus", expanding=True)))
        params = {"p_shop": shop, "p_skus": list(skus or ())}

        def work(conn: Connection) -> builtins.list[PushRecord]:
            return [_record(row) for row in conn.execute(statement, params)]

        return await self._uow.run(work)
