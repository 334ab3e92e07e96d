"""After-sales in SQL: the after_sales and after_sale_inspections tables.

Each guarantee is one statement, decided by the database:

* ``upsert_many``, per request: ``UPDATE ... WHERE channel = :c AND external_id = :e AND
  source_modified_at < :m`` (a newer version replaces the stored one; the link to our
  order survives through ``COALESCE(order_id, :order_id)``), else ``INSERT ... ON
  CONFLICT (channel, external_id) DO NOTHING`` (a new key), else the stored version is
  read to tell an equal version (unchanged) from an older one (stale). Two intakes racing
  on one request therefore never regress it.
* ``link``: ``UPDATE ... WHERE order_id IS NULL``: each request is linked once.
* ``claim_handover``: ``UPDATE ... WHERE handed_over_at IS NULL``: one caller wins.
* ``add_inspection``: ``INSERT ... ON CONFLICT (after_sale_id) DO NOTHING``: one
  inspection per request; the loser reads the winner's.

The columns are authoritative for our id, the link, the version and ``created_at``; the
document carries the rest of the request as the platform last described it.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ordercore.domain.after_sales import AfterSale, AfterSaleStatus, Inspection
from ordercore.domain.intake import UpsertOutcome
from ordercore_adapters.storage.sql.schema import after_sale_inspections, after_sales
from ordercore_adapters.storage.sql.types import UtcDateTime

if TYPE_CHECKING:
    from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlAfterSaleRepository"]

A = after_sales
N = after_sale_inspections
_COLUMNS = tuple(A.c)
_TIME = UtcDateTime()


class _Statements:
    """The after-sale statements for one dialect, built once."""

    def __init__(self, dialect: str) -> None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.replace = (
            update(A)
            .where(
                A.c.channel == bindparam("p_channel"),
                A.c.external_id == bindparam("p_external_id"),
                A.c.source_modified_at < bindparam("p_modified", type_=_TIME),
            )
            .values(
                order_external_id=bindparam("p_order_external_id"),
                order_id=func.coalesce(A.c.order_id, bindparam("p_order_id")),
                kind=bindparam("p_kind"),
                status=bindparam("p_status"),
                version=A.c.version + 1,
                updated_at=bindparam("p_updated", type_=_TIME),
                source_modified_at=bindparam("p_modified", type_=_TIME),
                document=bindparam("p_document", type_=A.c.document.type),
            )
        )
        self.insert = (
            insert(A)
            .values(
                id=bindparam("p_id"),
                channel=bindparam("p_channel"),
                external_id=bindparam("p_external_id"),
                order_external_id=bindparam("p_order_external_id"),
                order_id=bindparam("p_order_id"),
                kind=bindparam("p_kind"),
                status=bindparam("p_status"),
                version=1,
                created_at=bindparam("p_created", type_=_TIME),
                updated_at=bindparam("p_updated", type_=_TIME),
                source_modified_at=bindparam("p_modified", type_=_TIME),
                document=bindparam("p_document", type_=A.c.document.type),
            )
            .on_conflict_do_nothing(index_elements=[A.c.channel, A.c.external_id])
            .returning(A.c.id)
        )
        self.version_of = select(A.c.source_modified_at).where(
            A.c.channel == bindparam("p_channel"), A.c.external_id == bindparam("p_external_id")
        )
        self.get = select(*_COLUMNS).where(A.c.id == bindparam("p_id"))
        self.by_external = select(*_COLUMNS).where(
            A.c.channel == bindparam("p_channel"),
            A.c.external_id.in_(bindparam("p_external_ids", expanding=True)),
        )
        self.listing = select(*_COLUMNS).order_by(A.c.source_modified_at.desc(), A.c.id)
        self.link = (
            update(A)
            .where(
                A.c.channel == bindparam("p_channel"),
                A.c.order_external_id == bindparam("p_order_external_id"),
                A.c.order_id.is_(None),
            )
            .values(order_id=bindparam("p_order_id"))
        )
        self.handover = (
            update(A)
            .where(A.c.id == bindparam("p_id"), A.c.handed_over_at.is_(None))
            .values(handed_over_at=bindparam("p_now", type_=_TIME))
        )
        self.add_inspection = (
            insert(N)
            .values(
                after_sale_id=bindparam("p_id"),
                inspected_by=bindparam("p_by"),
                inspected_at=bindparam("p_at", type_=_TIME),
                document=bindparam("p_document", type_=N.c.document.type),
            )
            .on_conflict_do_nothing(index_elements=[N.c.after_sale_id])
            .returning(N.c.after_sale_id)
        )
        self.inspection = select(N.c.document).where(N.c.after_sale_id == bindparam("p_id"))


@cache
def _statements(dialect: str) -> _Statements:
    return _Statements(dialect)


def _params(row: AfterSale) -> dict[str, Any]:
    return {
        "p_id": row.id,
        "p_channel": row.channel,
        "p_external_id": row.external_id,
        "p_order_external_id": row.order_external_id,
        "p_order_id": row.order_id,
        "p_kind": row.kind.value,
        "p_status": row.status.value,
        "p_created": row.created_at,
        "p_updated": row.updated_at,
        "p_modified": row.source_modified_at,
        "p_document": row.model_dump(mode="json"),
    }


def _after_sale(row: Row[Any]) -> AfterSale:
    document = dict(row.document)
    document.update(
        id=row.id,
        order_id=row.order_id,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        source_modified_at=row.source_modified_at,
        handed_over_at=row.handed_over_at,
    )
    return AfterSale.model_validate(document)


class SqlAfterSaleRepository:
    """After-sales in SQL; each method is one worker-thread hop in the unit's transaction."""

    def __init__(self, uow: SqlUnitOfWork, dialect: str) -> None:
        self._uow = uow
        self._sql = _statements(dialect)

    async def get(self, after_sale_id: str) -> AfterSale | None:
        """The after-sale with this id."""
        statement = self._sql.get

        def work(conn: Connection) -> AfterSale | None:
            row = conn.execute(statement, {"p_id": after_sale_id}).first()
            return None if row is None else _after_sale(row)

        return await self._uow.run(work)

    async def get_many_by_external(
        self, channel: str, external_ids: Sequence[str]
    ) -> dict[str, AfterSale]:
        """The stored after-sales of one channel among ``external_ids``; one read."""
        if not external_ids:
            return {}
        statement = self._sql.by_external
        params = {"p_channel": channel, "p_external_ids": list(external_ids)}

        def work(conn: Connection) -> dict[str, AfterSale]:
            return {row.external_id: _after_sale(row) for row in conn.execute(statement, params)}

        return await self._uow.run(work)

    async def upsert_many(self, after_sales: Sequence[AfterSale]) -> builtins.list[UpsertOutcome]:
        """Insert new keys, replace older versions, leave equal and newer ones alone."""
        if not after_sales:
            return []
        rows = [_params(row) for row in after_sales]
        sql = self._sql

        def work(conn: Connection) -> builtins.list[UpsertOutcome]:
            outcomes: list[UpsertOutcome] = []
            for params in rows:
                if conn.execute(sql.replace, params).rowcount == 1:
                    outcomes.append(UpsertOutcome.UPDATED)
                elif conn.execute(sql.insert, params).first() is not None:
                    outcomes.append(UpsertOutcome.CREATED)
                else:
                    stored = conn.execute(sql.version_of, params).scalar_one()
                    outcomes.append(
                        UpsertOutcome.UNCHANGED
                        if stored == params["p_modified"]
                        else UpsertOutcome.STALE
                    )
            return outcomes

        return await self._uow.run(work, atomic=True)

    async def list(
        self,
        *,
        channel: str | None = None,
        order_id: str | None = None,
        status: AfterSaleStatus | None = None,
        unlinked_only: bool = False,
        limit: int = 100,
    ) -> builtins.list[AfterSale]:
        """After-sales, most recently changed on the platform first, then by id."""
        statement = self._sql.listing
        if channel is not None:
            statement = statement.where(A.c.channel == bindparam("p_channel"))
        if order_id is not None:
            statement = statement.where(A.c.order_id == bindparam("p_order_id"))
        if status is not None:
            statement = statement.where(A.c.status == bindparam("p_status"))
        if unlinked_only:
            statement = statement.where(A.c.order_id.is_(None))
        statement = statement.limit(bindparam("p_limit"))
        params = {
            "p_channel": channel,
            "p_order_id": order_id,
            "p_status": status.value if status is not None else None,
            "p_limit": limit,
        }

        def work(conn: Connection) -> builtins.list[AfterSale]:
            return [_after_sale(row) for row in conn.execute(statement, params)]

        return await self._uow.run(work)

    async def link(self, channel: str, order_external_id: str, order_id: str) -> int:
        """Link the channel's unlinked after-sales of that platform order."""
        statement = self._sql.link
        params = {
            "p_channel": channel,
            "p_order_external_id": order_external_id,
            "p_order_id": order_id,
        }

        def work(conn: Connection) -> int:
            return int(conn.execute(statement, params).rowcount)

        return await self._uow.run(work)

    async def claim_handover(self, after_sale_id: str, now: datetime) -> bool:
        """Mark the after-sale handed over, once."""
        statement = self._sql.handover

        def work(conn: Connection) -> bool:
            return conn.execute(statement, {"p_id": after_sale_id, "p_now": now}).rowcount == 1

        return await self._uow.run(work)

    async def add_inspection(self, inspection: Inspection) -> tuple[Inspection, bool]:
        """Keep the inspection unless the after-sale has one."""
        sql = self._sql
        params = {
            "p_id": inspection.after_sale_id,
            "p_by": inspection.inspected_by,
            "p_at": inspection.inspected_at,
            "p_document": inspection.model_dump(mode="json"),
        }

        def work(conn: Connection) -> tuple[Inspection, bool]:
            if conn.execute(sql.add_inspection, params).first() is not None:
                return inspection, True
            document = conn.execute(sql.inspection, params).scalar_one()
            return Inspection.model_validate(document), False

        return await self._uow.run(work, atomic=True)

    async def inspection(self, after_sale_id: str) -> Inspection | None:
        """The after-sale's inspection, if any."""
        statement = self._sql.inspection

        def work(conn: Connection) -> Inspection | None:
            document = conn.execute(statement, {"p_id": after_sale_id}).scalar_one_or_none()
            return None if document is None else Inspection.model_validate(document)

        return await self._uow.run(work)
