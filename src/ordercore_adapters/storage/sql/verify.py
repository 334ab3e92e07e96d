"""Drift detection: every counter recomputed from its records by GROUP BY queries."""

from __future__ import annotations

from sqlalchemy import Connection

from ordercore.domain.inventory import Drift
from ordercore_adapters.storage.sql.statements import Statements

__all__ = ["verify"]


def verify(conn: Connection, sql: Statements) -> list[Drift]:
    """Each disagreement between a counter and its records, as a Drift.

    Kinds and keys: ``reserved`` and ``on_hand`` per (sku, warehouse), ``flash_sold``
    per (sku,), ``buyer_purchases`` per (sku, buyer_id).
    """
    drift: list[Drift] = []
    for kind, query in (
        ("reserved", sql.drift_reserved),
        ("on_hand", sql.drift_on_hand),
        ("flash_sold", sql.drift_flash_sold),
        ("buyer_purchases", sql.drift_buyer_purchases),
    ):
        for row in conn.execute(query):
            *key, recorded, expected = row
            # SUM() of BIGINT is NUMERIC on PostgreSQL: back to int.
            drift.append(Drift(kind, tuple(key), int(recorded), int(expected)))
    return drift
