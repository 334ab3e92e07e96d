"""Settings: every tunable of the core, from code or ``ORDERCORE_*`` environment variables."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
