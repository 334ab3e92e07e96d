"""Channel intake of orders: stored exactly once per (channel, external_id), newest winning.

One conditional upsert per round writes a whole batch::

    INSERT INTO orders ... VALUES (...), (...)
    ON CONFLICT (channel, external_id) DO UPDATE SET ..., version = orders.version + 1
    WHERE excluded.source_modified_at IS NOT NULL
      AND (orders.source_modified_at IS NULL
           OR orders.source_modified_at < excluded.source_modified_at)
    RETURNING channel, external_id [, xmax = 0]

RETURNING yields the rows it inserted or replaced; a row it skipped is UNCHANGED (the
stored version is the same) or STALE (the stored one is newer), told apart by reading
the stored ``source_modified_at`` of the skipped keys afterwards. A key that appears
several times in one call is written in rounds, k-th occurrences in round k, so the
versions apply in the given order and no statement touches a row twice (PostgreSQL
refuses that). Rows go in sorted (channel, external_id) order: the fixed lock order.

Why it holds under concurrency (two units upserting the same order at once):

* PostgreSQL (READ COMMITTED): the conflict check and the WHERE are evaluated on the
  newest committed row after waiting for any transaction that holds it, and the row is
  then locked by this transaction whether or not the WHERE passed. So the comparison is
  part of the write (no lost update, no regression), created vs updated comes from the
  row itself (``xmax = 0`` only for a row this statement inserted), and the read that
  classifies the skipped keys sees exactly the version that beat ours, which nobody can
  change before we commit. Sorted rows keep two batches from deadlocking each other
  (later calls in one unit take locks in their own order; PostgreSQL then aborts one
  unit with a transient StorageUnavailable, and nothing of it is kept). One race is
  PostgreSQL's own: two units inserting the same *new* key can both pass the conflict
  check, and the second then fails on the other unique index (the id) once the first
  commits. The repository rolls back to its savepoint and retries; the key is stored
  by then, so the retry takes the conflict branch (see :func:`duplicate_of`).
* SQLite: each unit's transaction begins with BEGIN IMMEDIATE, i.e. it holds the
  database's single write lock from its first statement to commit. The read of the keys
  already stored, taken first in the same transaction, therefore cannot go stale before
  the upsert: a returned key that was stored is UPDATED, one that was not is CREATED.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ordercore.domain.intake import UpsertOutcome
from ordercore.domain.orders import Order
from ordercore.errors import DuplicateOrder
from ordercore_adapters.storage.sql.statements import Statements

__all__ = ["IdTaken", "duplicate_of", "read_many", "row_of", "upsert_many"]

Key = tuple[str, str]

_CHUNK = 5_000
"""Most keys bound to one read (SQLite allows 32,766 parameters per statement)."""

_CREATED = UpsertOutcome.CREATED
_UPDATED = UpsertOutcome.UPDATED
_UNCHANGED = UpsertOutcome.UNCHANGED
_STALE = UpsertOutcome.STALE


class IdTaken(Exception):
    """A new key's order id is already another order's; raised after the rollback."""


def row_of(order: Order) -> dict[str, Any]:
    """The ``orders`` row of an order: indexed copies of its fields and the document."""
    return {
        "id": order.id,
        "channel": order.channel,
        "external_id": order.external_id,
        "status": order.status.value,
        "buyer_id": order.buyer_id,
        "version": order.version,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "source_modified_at": order.source_modified_at,
        "document": order.model_dump_json(),
    }


def read_many(
    conn: Connection, sql: Statements, channel: str, external_ids: Sequence[str]
) -> dict[str, Order]:
    """The stored orders of one channel among ``external_ids`` (one query per 5,000)."""
    found: dict[str, Order] = {}
    for chunk in _chunks(sorted(set(external_ids))):
        params = {"p_channel": channel, "p_externals": chunk}
        for document in conn.execute(sql.orders_by_external, params).scalars():
            order = Order.model_validate_json(document)
            found[order.external_id] = order
    return found


def upsert_many(
    conn: Connection, sql: Statements, orders: Sequence[Order], *, postgres: bool
) -> list[UpsertOutcome]:
    """Write ``orders`` (see module docs); an outcome per order, aligned with the input.

    Raises IdTaken when an insert hit the primary key (the caller's savepoint or rollback
    undoes whatever this call wrote; :func:`duplicate_of` then tells a taken id from a
    race with a concurrent insert of the same key).
    """
    outcomes = [_UNCHANGED] * len(orders)
    keys = [(order.channel, order.external_id) for order in orders]
    rounds = _rounds(keys)
    stored_before = set() if postgres or not rounds else set(_versions(conn, sql, rounds[0], keys))
    for depth, indices in enumerate(rounds):
        indices.sort(key=keys.__getitem__)
        rows = [row_of(orders[i]) for i in indices]
        try:
            result = conn.execute(sql.upsert_orders, _columns(rows) if postgres else rows)
        except IntegrityError as exc:
            raise IdTaken from exc
        written: dict[Key, bool | None] = {(row[0], row[1]): row[2] for row in result}
        skipped = [i for i in indices if keys[i] not in written]
        current = _versions(conn, sql, skipped, keys) if skipped else {}
        for i in indices:
            key = keys[i]
            if key in written:
                inserted = written[key] if postgres else depth == 0 and key not in stored_before
                outcomes[i] = _CREATED if inserted else _UPDATED
            else:
                outcomes[i] = _UNCHANGED if current[key] == _utc(orders[i]) else _STALE
    return outcomes


def duplicate_of(
    conn: Connection, sql: Statements, orders: Sequence[Order]
) -> DuplicateOrder | None:
    """The error for an upsert that hit the primary key, or None when it was a race.

    A new key whose id another stored key holds (or two new keys with one id) is the
    caller's mistake. Otherwise PostgreSQL reported the id of a concurrent unit's insert
    of the same new key: ON CONFLICT arbitrates on (channel, external_id) only, so a
    clash on the other unique index (the id) surfaces as an error, after the other unit
    committed. Retrying then finds the key stored and takes the conflict branch.
    """
    keys = [(order.channel, order.external_id) for order in orders]
    stored_keys = _versions(conn, sql, range(len(orders)), keys)
    owners: dict[str, Key] = {}
    for chunk in _chunks(sorted({order.id for order in orders})):
        for order_id, channel, external_id in conn.execute(sql.order_keys_of_ids, {"p_ids": chunk}):
            owners[order_id] = (channel, external_id)
    claimed: dict[str, Key] = {}
    for order, key in zip(orders, keys, strict=True):
        if key in stored_keys:
            continue
        owner = owners.get(order.id) or claimed.setdefault(order.id, key)
        if owner != key:
            return DuplicateOrder(f"id {order.id!r} (held by {owner[0]}/{owner[1]})")
    return None


def _columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows as PostgreSQL's statement takes them: an array per column, documents as one JSON.

    Each document is a JSON object already; joined with commas they are a JSON array.
    """
    params: dict[str, Any] = {
        f"p_{name}": [row[name] for row in rows] for name in rows[0] if name != "document"
    }
    params["p_documents"] = "[" + ",".join(row["document"] for row in rows) + "]"
    return params


def _rounds(keys: Sequence[Key]) -> list[list[int]]:
    """Indices grouped so that round k holds the k-th occurrence of each key."""
    rounds: list[list[int]] = []
    seen: dict[Key, int] = {}
    for index, key in enumerate(keys):
        depth = seen.get(key, 0)
        seen[key] = depth + 1
        if depth == len(rounds):
            rounds.append([])
        rounds[depth].append(index)
    return rounds


def _versions(
    conn: Connection, sql: Statements, indices: Sequence[int] | range, keys: Sequence[Key]
) -> dict[Key, datetime | None]:
    """The stored ``source_modified_at`` of the stored ones among these keys, per channel."""
    by_channel: dict[str, set[str]] = {}
    for index in indices:
        channel, external_id = keys[index]
        by_channel.setdefault(channel, set()).add(external_id)
    found: dict[Key, datetime | None] = {}
    for channel, external_ids in sorted(by_channel.items()):
        for chunk in _chunks(sorted(external_ids)):
            params = {"p_channel": channel, "p_externals": chunk}
            for external_id, modified in conn.execute(sql.order_versions, params):
                found[channel, external_id] = modified
    return found


def _utc(order: Order) -> datetime | None:
    """The order's platform modification time, aware (naive is taken as UTC)."""
    moment = order.source_modified_at
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
