"""The screening store over SQL (SQLite and PostgreSQL): a fraud window shared by processes.

::

    async with OrderCore.open("sqlite:///shop.db") as core:  # picks this store itself
        await core.exceptions.screen(order)

``record`` is one transaction: upsert this order's hashed keys, then read the entries
since the window's start that share any key with it. Every process sees the others'
orders once they are committed; a re-screen replaces the order's row, so it never
counts twice. Processes hash keys with ``Settings.screening_salt`` when set, otherwise
with a random salt this database keeps (``shared_salt``), so their keys match.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ordercore.domain.exceptions import ScreeningResult
from ordercore.domain.rules.history import HistoryEntry
from ordercore.errors import StorageError
from ordercore.ports.screening import DEFAULT_LIMIT
from ordercore_adapters.storage.sql.schema import (
    screening_history,
    screening_results,
    screening_salt,
)
from ordercore_adapters.storage.sql.storage import SqlStorage
from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlScreeningStore"]

T = TypeVar("T")

_KEYS = ("phone_key", "address_key", "device_key", "buyer_key")


class SqlScreeningStore:
    """Implements :class:`ordercore.ports.screening.ScreeningStore` on a SqlStorage."""

    def __init__(self, storage: SqlStorage) -> None:
        self._storage = storage

    async def record(
        self, entry: HistoryEntry, since: datetime, *, limit: int = DEFAULT_LIMIT
    ) -> list[HistoryEntry]:
        """Store ``entry``; return up to ``limit`` newest others per shared key since ``since``."""
        [found] = await self.record_many([entry], [since], limit=limit)
        return found

    async def record_many(
        self,
        entries: Sequence[HistoryEntry],
        since: Sequence[datetime],
        *,
        limit: int = DEFAULT_LIMIT,
    ) -> list[list[HistoryEntry]]:
        """``record`` each entry in order, in one transaction (a window costs one commit)."""
        steps = [
            _recording(entry, start, limit) for entry, start in zip(entries, since, strict=True)
        ]

        def work(conn: Connection, dialect: str) -> list[list[HistoryEntry]]:
            return [step(conn, dialect) for step in steps]

        return await self._write(work)

    async def save_results(self, results: Sequence[ScreeningResult], *, replace_only: bool) -> None:
        """Keep these results in one transaction; ``replace_only``: only where one exists."""
        rows = [_result_row(result) for result in results]
        if not rows:
            return

        def work(conn: Connection, dialect: str) -> None:
            chosen = rows
            if replace_only:
                ids = [row["order_id"] for row in rows]
                known = set(
                    conn.execute(
                        select(screening_results.c.order_id).where(
                            screening_results.c.order_id.in_(ids)
                        )
                    ).scalars()
                )
                chosen = [row for row in rows if row["order_id"] in known]
            for row in chosen:
                _upsert(conn, dialect, screening_results, "order_id", row)

        await self._write(work)

    async def save_result(self, result: ScreeningResult) -> None:
        """Keep the latest result of an order."""
        row = _result_row(result)
        await self._write(
            lambda conn, dialect: _upsert(conn, dialect, screening_results, "order_id", row)
        )

    async def result(self, order_id: str) -> ScreeningResult | None:
        """The latest result of an order."""
        query = select(screening_results.c.result).where(screening_results.c.order_id == order_id)
        async with self._storage.unit_of_work() as uow:
            found = await _sql(uow).run(lambda conn: conn.execute(query).scalar_one_or_none())
        return None if found is None else ScreeningResult.model_validate(found)

    async def flagged(self, *, limit: int = 100) -> Sequence[ScreeningResult]:
        """Latest results with findings, newest first."""
        query = (
            select(screening_results.c.result)
            .where(screening_results.c.flagged.is_(True))
            .order_by(screening_results.c.screened_at.desc(), screening_results.c.order_id)
            .limit(limit)
        )
        async with self._storage.unit_of_work() as uow:
            rows = await _sql(uow).run(lambda conn: conn.execute(query).scalars().all())
        return [ScreeningResult.model_validate(row) for row in rows]

    async def prune(self, before: datetime) -> int:
        """Forget entries older than ``before``."""
        statement = delete(screening_history).where(screening_history.c.at < before)
        return await self._write(lambda conn, dialect: int(conn.execute(statement).rowcount))

    async def shared_salt(self) -> bytes:
        """This database's hashing salt, made once (random) by whichever process asks first."""
        candidate = secrets.token_hex(32)

        def work(conn: Connection, dialect: str) -> str:
            insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
            conn.execute(
                insert(screening_salt)
                .values(id=1, salt=candidate)
                .on_conflict_do_nothing(index_elements=["id"])
            )
            return str(conn.execute(select(screening_salt.c.salt)).scalar_one())

        return bytes.fromhex(await self._write(work))

    async def _write(self, work: Callable[[Connection, str], T]) -> T:
        async with self._storage.unit_of_work() as uow:
            sql = _sql(uow)
            done = await sql.run(lambda conn: work(conn, sql.dialect), atomic=True)
            await uow.commit()
        return done


def _result_row(result: ScreeningResult) -> dict[str, Any]:
    return {
        "order_id": result.order_id,
        "screened_at": result.screened_at,
        "flagged": bool(result.findings),
        "result": result.model_dump(mode="json"),
    }


def _recording(
    entry: HistoryEntry, since: datetime, limit: int
) -> Callable[[Connection, str], list[HistoryEntry]]:
    """The statements that record one entry and read its window, run on a connection."""
    row = {
        "order_id": entry.order_id,
        "at": entry.at,
        **{key: getattr(entry, key) for key in _KEYS},
    }
    # One indexed range read per key (key, at DESC), each capped: a hot key costs no
    # more than any other.
    queries = [
        select(screening_history)
        .where(
            screening_history.c[key] == getattr(entry, key),
            screening_history.c.at >= since,
            screening_history.c.order_id != entry.order_id,
        )
        .order_by(screening_history.c.at.desc())
        .limit(limit)
        for key in _KEYS
        if getattr(entry, key)
    ]

    def work(conn: Connection, dialect: str) -> list[HistoryEntry]:
        _upsert(conn, dialect, screening_history, "order_id", row)
        found: dict[str, HistoryEntry] = {}
        for query in queries:
            for hit in conn.execute(query):
                found[hit.order_id] = HistoryEntry(**dict(hit._mapping))
        return list(found.values())

    return work


def _sql(uow: object) -> SqlUnitOfWork:
    if not isinstance(uow, SqlUnitOfWork):  # pragma: no cover - SqlStorage makes these
        raise StorageError("SqlScreeningStore needs a SqlStorage")
    return uow


def _upsert(conn: Connection, dialect: str, table: Any, key: str, row: dict[str, Any]) -> None:
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).values(row)
    update = {name: statement.excluded[name] for name in row if name != key}
    conn.execute(statement.on_conflict_do_update(index_elements=[key], set_=update))
