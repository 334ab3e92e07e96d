"""Settings: every tunable of the core, from code or ``ORDERCORE_*`` environment variables."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ordercore.domain.health import HealthPolicy

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Core settings. ``Settings(reservation_ttl=timedelta(minutes=15))`` or env vars.

    Environment variables use the prefix ``ORDERCORE_``, e.g. ``ORDERCORE_RESERVATION_TTL=PT15M``.
    """

    model_config = SettingsConfigDict(env_prefix="ORDERCORE_", frozen=True, extra="forbid")

    reservation_ttl: timedelta = timedelta(minutes=30)
    """How long an unpaid reservation holds stock before the expiry sweep releases it."""

    payment_grace: timedelta = timedelta(minutes=15)
    """How long a payment in flight keeps its reservation from expiring."""

    default_warehouse: Annotated[str, Field(min_length=1)] = "main"
    """Warehouse used when a caller names none (a shop with a single warehouse)."""

    expiry_batch_size: Annotated[int, Field(gt=0, le=10_000)] = 200
    """How many due reservations one sweep transaction expires (small: short locks)."""

    clock_resync_interval: timedelta = timedelta(seconds=60)
    """How often the core re-measures its offset to the storage server's clock."""

    migrate_on_open: bool = True
    """Bring the schema to the newest migration when a storage is opened."""

    sql_pool_size: Annotated[int, Field(gt=0, le=512)] = 16
    """Connections per process for SQL storages (PostgreSQL); SQLite serialises writers."""

    sqlite_busy_timeout: timedelta = timedelta(seconds=30)
    """How long a SQLite writer waits for another process's write lock."""

    coalesce_reservations: Literal["auto", "on", "off"] = "auto"
    """Group concurrent one-line reservations of one location into one transaction.

    "auto" turns it on for storages that declare ``prefers_batching`` (SQLite and
    PostgreSQL: one round trip and one row lock per batch instead of per buyer) and off
    for the memory storage, where a single reservation is already a few microseconds.
    """

    coalesce_batch_size: Annotated[int, Field(gt=0, le=10_000)] = 500
    """Most requests one grouped transaction decides."""

    coalesce_window: timedelta = timedelta(0)
    """How long a batch leader waits for more requests before writing (0: take what waits).

    Batches form on their own under load (requests queue while the previous batch is in
    the database); a window only trades latency for bigger batches at low concurrency.
    """

    sold_out_ttl: timedelta = timedelta(seconds=1)
    """How long this process trusts that a location is sold out (0 turns the fast path off).

    Changes made through this process clear the mark at once; stock that arrives through
    another process is seen after at most this long.
    """

    remaining_staleness: timedelta = timedelta(milliseconds=500)
    """How old the flash-sale display counter (``inventory.remaining``) may be."""

    credential_warning: timedelta = timedelta(days=3)
    """How long before a channel credential expires the operators are warned."""

    window_rescans: Annotated[int, Field(ge=0, le=10)] = 2
    """How often a sync re-scans a window that came back short before failing closed."""

    intake_batch_size: Annotated[int, Field(gt=0, le=10_000)] = 500
    """Orders one intake transaction upserts."""

    health_policy: HealthPolicy = HealthPolicy()
    """Weights and the review threshold of the order health score (docs/intake.md)."""
