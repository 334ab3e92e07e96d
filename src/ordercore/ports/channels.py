"""The channel port: what a sales platform adapter implements.

A channel adapter is one object per shop. Every adapter implements
:class:`ChannelPort` (credentials, incremental pull, webhook verification, mapping);
adapters whose platform supports more also implement the optional ports below, and the
core asks ``isinstance(adapter, StockPushPort)`` before using one. Nothing here knows
HTTP: adapters translate their transport's errors into ``ordercore.errors``
(ChannelAuthExpired, ChannelUnavailable, SignatureInvalid, InvalidOrder) at the edge.

Adapters register under the ``ordercore.channels`` entry-point group; the name maps to
a factory ``(name: str, config: Mapping[str, object]) -> ChannelPort``. Secrets live in
that config and must never appear in a repr, a log line, an error or the sync ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from ordercore.domain.after_sales import AfterSale
from ordercore.domain.channels import (
    ChannelLimits,
    ChannelTokens,
    CredentialStatus,
    MappedOrder,
    Page,
    RawRecord,
    TimeWindow,
    WebhookDelivery,
)

__all__ = [
    "AfterSalesPort",
    "ChannelFactory",
    "ChannelPort",
    "ListingPort",
    "OrderLookupPort",
    "ShipmentPushPort",
    "StockPushPort",
    "TokenCarrier",
]


@runtime_checkable
class ChannelPort(Protocol):
    """Pull orders from one shop on one platform, and take its webhooks."""

    name: str
    """This shop's channel name, unique in the core (``taobao-flagship``)."""
    kind: str
    """The adapter's registered name (``taobao``)."""
    limits: ChannelLimits
    """What the platform's incremental API allows; the window planner obeys it."""

    async def credential_status(self) -> CredentialStatus:
        """When each token or scope expires, and whether it can be refreshed."""
        ...

    async def refresh_credentials(self) -> CredentialStatus:
        """Refresh tokens where the platform allows; ChannelAuthExpired where it does not."""
        ...

    async def platform_time(self) -> datetime:
        """The platform's clock in UTC (windows end ``limits.lag`` behind it)."""
        ...

    async def fetch_orders(self, window: TimeWindow, page: str | None) -> Page:
        """One page of orders modified in ``window``; ``page`` is the previous page's token.

        Pages carry the platform's total for the window (the completeness check) and
        records with times already in UTC. Transient failures raise ChannelUnavailable
        after the adapter's own retries; expired credentials raise ChannelAuthExpired.
        """
        ...

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookDelivery:
        """Check a push's signature (in constant time) and freshness; parse its records.

        Raises SignatureInvalid for a forged, tampered, stale or replayed delivery.
        """
        ...

    def map_order(self, record: RawRecord) -> MappedOrder:
        """Map a raw platform order to the canonical Order (InvalidOrder names the field)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class StockPushPort(Protocol):
    """Publish sellable quantities to the shop (the platform sells against them)."""

    async def push_stock(self, quantities: Mapping[str, int]) -> Mapping[str, str | None]:
        """Set each SKU's listed quantity; per SKU None on success or the platform's error.

        Keys are the shop's listing ids for our SKUs (``StockPushPolicy`` maps SKU to
        listing id; the SKU itself where the platform lists by merchant SKU). Quantities
        are absolute (a full set, not a delta). Transport failures raise
        ChannelUnavailable (the push task is retried); per-listing refusals are answered.
        """
        ...


@runtime_checkable
class ListingPort(Protocol):
    """Take listings down and put them back up (下架 / 上架), for delist-at-zero rules."""

    async def set_listed(self, listings: Mapping[str, bool]) -> Mapping[str, str | None]:
        """List (True) or delist (False) each listing id; per id None or the platform's error."""
        ...


@runtime_checkable
class ShipmentPushPort(Protocol):
    """Tell the platform an order shipped (发货回传)."""

    async def push_shipment(
        self, external_order_id: str, courier: str, tracking_number: str, lines: Sequence[str]
    ) -> None:
        """Record a package of an order (``lines``: the platform's sub-order ids, or all).

        ``courier`` is our courier code (``zto``, ``sf``...); the adapter maps it to the
        platform's company code (``ordercore_adapters.channels._platform.courier_codes``,
        overridable per shop). Called at least once per package: a repeat of what the
        platform holds must succeed without a second record. Raises ShipmentPushRefused
        for a refusal a retry will not fix (the push ends ``failed``, a ticket opens),
        ChannelUnavailable for transport failures (retried by the outbox).
        """
        ...


@runtime_checkable
class AfterSalesPort(Protocol):
    """Pull refunds, returns, exchanges and resends like orders (``core.after_sales.sync``).

    The feed has its own cursor and limits: a platform's after-sales API often allows
    other windows than its order API (Pinduoduo: 30 minutes for both, JD: hours).
    """

    after_sales_limits: ChannelLimits
    """What the platform's after-sales list allows; the window planner obeys it."""

    async def fetch_after_sales(self, window: TimeWindow, page: str | None) -> Page:
        """One page of after-sale records modified in ``window`` (``RecordKind.AFTER_SALE``).

        As :meth:`ChannelPort.fetch_orders`: the platform's total for the window, times in
        UTC, ChannelUnavailable after retries, ChannelAuthExpired for expired credentials.
        """
        ...

    def map_after_sale(self, record: RawRecord) -> AfterSale:
        """Map a raw after-sale record (InvalidInput names the field).

        The id is :func:`ordercore.domain.after_sales.after_sale_id`; ``order_id`` is left
        None (the core links it to the stored order).
        """
        ...


@runtime_checkable
class TokenCarrier(Protocol):
    """An adapter whose tokens change at run time (a refresh) and can be saved and restored.

    :class:`ordercore.services.credentials.CredentialService` saves what
    :meth:`export_tokens` returns after every refresh and hands it back to a new adapter
    object (a restart, another process) through :meth:`restore_tokens`: a refresh token
    is often single-use, so the one the platform issued last is the only one that works.
    """

    def export_tokens(self) -> ChannelTokens:
        """The tokens this adapter holds now, their expiries and their origin."""
        ...

    def restore_tokens(self, tokens: ChannelTokens) -> bool:
        """Use saved tokens if they are newer and descend from the configured ones.

        Returns False (and changes nothing) when they are older than the adapter's own or
        began from another configured token (the seller authorised the app again).
        """
        ...


@runtime_checkable
class OrderLookupPort(Protocol):
    """Fetch one order by its platform id (a push that names ids resolves them here)."""

    async def fetch_order(self, external_id: str) -> RawRecord | None:
        """The order's newest version, or None when the platform returns no such order."""
        ...


class ChannelFactory(Protocol):
    """What the ``ordercore.channels`` entry point names."""

    def __call__(self, name: str, config: Mapping[str, object]) -> ChannelPort: ...
