"""Settings: every tunable of the core, from code or ``ORDERCORE_*`` environment variables."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ordercore.domain.health import HealthPolicy
from ordercore.domain.rules.config import RulesConfig
from ordercore.domain.tickets import TicketPolicy
from ordercore.resilience.policy import ServicePolicy

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

    routing_policy: Annotated[str, Field(min_length=1)] = "nearest"
    """The warehouse routing policy ``core.routing.route`` uses when given none
    (``nearest``, ``priority``, ``fewest_splits``, ``nearest_no_split`` or a registered one)."""

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

    "auto" turns it on for storages that declare ``prefers_batching``: SQLite and
    PostgreSQL (one round trip and one row lock per batch instead of per buyer) and the
    memory storage (one lock turn and one wake-up per batch); a third-party storage that
    does not declare it gets one unit of work per request.
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

    defective_warehouse: Annotated[str, Field(min_length=1)] = "DEFECTIVE"
    """Where inspected returns graded defective are kept: counted on hand there, with
    100 % safety stock so they are never sold (docs/after-sales.md)."""

    health_policy: HealthPolicy = HealthPolicy()
    """Weights and the review threshold of the order health score (docs/intake.md)."""

    tickets: TicketPolicy = TicketPolicy()
    """Exception tickets: teams, routes, SLAs, SOPs, outcome codes, follow-up (docs/tickets.md)."""

    outbox_lease: timedelta = timedelta(seconds=30)
    """How long a worker's claim on an outbox task lasts; renewed every third of it while the
    handler runs. A crashed worker's task is claimed again this long after its last renewal."""

    outbox_concurrency: Annotated[int, Field(gt=0, le=1_000)] = 8
    """Handlers one outbox worker runs at once."""

    outbox_max_attempts: Annotated[int, Field(gt=0, le=1_000)] = 10
    """Attempts before a task is dead (a handler's registration may say otherwise)."""

    outbox_backoff_initial: timedelta = timedelta(seconds=1)
    """The first retry's delay; each further retry doubles it (plus jitter)."""

    outbox_backoff_max: timedelta = timedelta(minutes=10)
    """The longest delay between two attempts of a task."""

    outbox_poll_interval: timedelta = timedelta(seconds=1)
    """How long an idle worker waits before looking for due tasks again."""

    outbox_drain_timeout: timedelta = timedelta(seconds=30)
    """How long a stopping worker lets running handlers finish before cancelling them."""

    exception_rules: RulesConfig = RulesConfig()
    """Thresholds, word lists, blacklists and per-rule overrides of the exception rules
    (docs/exceptions.md); ``RulesConfig`` loads them from TOML."""

    screening_salt: SecretStr | None = None
    """Key of the hashes the fraud window stores instead of phones and addresses. Set it
    (the same in every process) when processes share a screening store; without it each
    process draws a random one."""

    resilience: dict[str, ServicePolicy] = Field(default_factory=dict)
    """Timeout, retry, breaker, rate limit and bulkhead per outside service (a courier, the
    SMS gateway, a platform's API), by service name (docs/resilience.md)."""

    resilience_default: ServicePolicy = ServicePolicy()
    """The policy of a service that ``resilience`` does not list."""

    def resilience_for(self, service: str) -> ServicePolicy:
        """The resilience policy of ``service``: its own, else ``resilience_default``."""
        return self.resilience.get(service, self.resilience_default)
