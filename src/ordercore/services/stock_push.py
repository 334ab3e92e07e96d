"""Stock push: keep every shop's listed quantity following our sellable stock.

``core.stock_push`` computes what each shop should list (:mod:`ordercore.domain.stock_push`:
rules, precedence and the oversell budget), and pushes it through each adapter's
:class:`~ordercore.ports.channels.StockPushPort` as durable outbox tasks::

    core.stock_push.configure(policy, channels)      # shops by channel name
    registry = HandlerRegistry()
    core.stock_push.register(registry)               # the "stock.push" handler
    async with anyio.create_task_group() as tg:
        tg.start_soon(core.stock_push.run)          # detect, debounce, enqueue, schedule
        tg.start_soon(core.outbox.worker(registry).run)

* **Change detection.** The inventory service has no change hook yet, so :meth:`run`
  compares every SKU's sellable per warehouse with what it saw last, every
  ``policy.poll_seconds`` (:meth:`detect_changes`); callers that know better call
  :meth:`mark_dirty`. Changed SKUs are collected for ``policy.debounce_seconds``, then
  one task per (shop, batch of ``policy.batch_size`` SKUs) is enqueued.
* **Scheduled full push.** Every ``policy.full_push_seconds`` every mapped SKU is
  pushed to every shop; its idempotency key names the time slot, so many processes
  running the scheduler enqueue it once.
* **The task.** Its payload names the shop and the SKUs, not quantities: the handler
  computes them when it runs, so a retried or delayed task never publishes stale
  numbers. Tasks of one shop share an ordering key (they run in order). The handler
  records, per (shop, SKU), the quantity the platform accepted, when, and the last
  error; :meth:`drift` compares that with what the shop should show now.
* **Delist and relist.** Where a rule delists at zero and the adapter implements
  :class:`~ordercore.ports.channels.ListingPort`, the listing is taken down after its
  quantity was set to 0 and put back after its quantity was set again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import anyio
from opentelemetry import trace

from ordercore.domain.outbox import OutboxTask, scrub_error
from ordercore.domain.stock_push import (
    PushRecord,
    ShopQuantity,
    SkuPlan,
    StockDrift,
    StockPushPolicy,
    headroom,
    plan_sku,
)
from ordercore.errors import FieldError, InvalidInput, UnknownAdapter
from ordercore.ports.channels import ChannelPort, ListingPort, StockPushPort
from ordercore.ports.clock import Clock
from ordercore.ports.storage import Storage
from ordercore.services.outbox import HandlerRegistry, enqueue
from ordercore.services.reservations import InventoryService

__all__ = ["PUSH_KIND", "StockPushService"]

PUSH_KIND = "stock.push"
"""The outbox task kind of one push (one shop, a batch of SKUs)."""

logger = logging.getLogger("ordercore.stock_push")
tracer = trace.get_tracer("ordercore")

_Fingerprint = tuple[tuple[str, int], ...]


def _ordering_key(shop: str) -> str:
    return f"{PUSH_KIND}:{shop}"


def _batches(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class StockPushService:
    """``core.stock_push``: plan, enqueue and run stock pushes; report drift."""

    def __init__(self, storage: Storage, clock: Clock, inventory: InventoryService) -> None:
        self._storage = storage
        self._clock = clock
        self._inventory = inventory
        self.policy = StockPushPolicy()
        self._channels: dict[str, ChannelPort] = {}
        self._seen: dict[str, _Fingerprint] = {}
        self._dirty: set[str] = set()
        self._wake = anyio.Event()

    def configure(self, policy: StockPushPolicy, channels: Mapping[str, ChannelPort]) -> None:
        """Use ``policy`` and these adapters (by channel name) from now on.

        InvalidInput when a shop of the policy has no adapter or its adapter cannot push
        stock (no ``push_stock``).
        """
        errors = []
        for shop in policy.shops:
            channel = channels.get(shop)
            if channel is None:
                errors.append(FieldError(f"shops.{shop}", "names no configured channel", shop))
            elif not isinstance(channel, StockPushPort):
                errors.append(
                    FieldError(
                        f"shops.{shop}",
                        f"its {channel.kind} adapter cannot push stock (no push_stock)",
                        shop,
                    )
                )
        if errors:
            raise InvalidInput("stock push policy", errors)
        self.policy = policy
        self._channels = {shop: channels[shop] for shop in policy.shops}

    # -- planning ----------------------------------------------------------------------------

    async def _sellable(self, skus: Sequence[str] | None) -> dict[str, dict[str, int]]:
        if skus is not None and len(skus) <= 8:
            levels = [level for sku in skus for level in await self._inventory.levels(sku)]
        else:
            levels = await self._inventory.levels()
        by_sku: dict[str, dict[str, int]] = {}
        for level in levels:
            by_sku.setdefault(level.sku, {})[level.warehouse] = level.sellable
        return by_sku

    async def plan(self, skus: Sequence[str] | None = None) -> list[SkuPlan]:
        """What every shop should list now for ``skus`` (default: every mapped SKU)."""
        wanted = sorted(set(skus)) if skus is not None else self.policy.mapped_skus()
        levels = await self._sellable(wanted)
        return [plan_sku(self.policy, sku, levels.get(sku, {})) for sku in wanted]

    # -- change detection and enqueueing -----------------------------------------------------

    def mark_dirty(self, skus: Iterable[str]) -> None:
        """These SKUs' stock changed: push them after the debounce."""
        mapped = set(self.policy.mapped_skus())
        fresh = {sku for sku in skus if sku in mapped}
        if fresh:
            self._dirty.update(fresh)
            self._wake.set()

    async def detect_changes(self) -> set[str]:
        """Mapped SKUs whose sellable per warehouse changed since the last look (all, at first)."""
        levels = await self._sellable(None)
        changed = set()
        for sku in self.policy.mapped_skus():
            seen = tuple(sorted(levels.get(sku, {}).items()))
            if self._seen.get(sku) != seen:
                self._seen[sku] = seen
                changed.add(sku)
        self.mark_dirty(changed)
        return changed

    async def enqueue(self, skus: Iterable[str], *, slot: str | None = None) -> int:
        """Enqueue push tasks for ``skus`` to every shop listing them; returns how many.

        ``slot`` (a scheduled round's name) makes the keys idempotent across processes;
        without it each call's tasks are new.
        """
        chosen = sorted(set(skus))
        round_id = slot or uuid.uuid4().hex
        now = self._clock.now()
        stored = 0
        async with self._storage.unit_of_work() as uow:
            for shop, config in sorted(self.policy.shops.items()):
                listed = [sku for sku in chosen if sku in config.listings]
                for batch in _batches(listed, self.policy.batch_size):
                    digest = hashlib.sha256("\n".join(batch).encode()).hexdigest()[:16]
                    stored += await enqueue(
                        uow,
                        PUSH_KIND,
                        {"shop": shop, "skus": list(batch)},
                        key=f"{PUSH_KIND}:{shop}:{round_id}:{digest}",
                        now=now,
                        ordering_key=_ordering_key(shop),
                    )
            await uow.commit()
        return stored

    async def enqueue_full(self, now: datetime | None = None) -> int:
        """Enqueue the scheduled full push of the current time slot (once per slot)."""
        moment = now or self._clock.now()
        period = self.policy.full_push_seconds
        slot = f"full-{math.floor(moment.timestamp() / period)}"
        return await self.enqueue(self.policy.mapped_skus(), slot=slot)

    async def flush(self) -> int:
        """Enqueue the SKUs marked dirty so far (no debounce); returns the tasks stored."""
        dirty, self._dirty = self._dirty, set()
        self._wake = anyio.Event()
        return await self.enqueue(dirty) if dirty else 0

    async def run(self) -> None:
        """Detect changes, debounce, enqueue, and run the full-push schedule, until cancelled."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._poll_loop)
            group.start_soon(self._flush_loop)
            group.start_soon(self._full_loop)

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self.detect_changes()
            except Exception:  # a storage hiccup must not stop the loop
                logger.exception("stock push: change detection failed")
            await anyio.sleep(self.policy.poll_seconds)

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            await anyio.sleep(self.policy.debounce_seconds)
            try:
                await self.flush()
            except Exception:
                logger.exception("stock push: enqueueing failed")

    async def _full_loop(self) -> None:
        while True:
            await anyio.sleep(self.policy.full_push_seconds)
            try:
                await self.enqueue_full()
            except Exception:
                logger.exception("stock push: the scheduled full push failed to enqueue")

    # -- the task handler --------------------------------------------------------------------

    def register(self, registry: HandlerRegistry, *, max_attempts: int | None = None) -> None:
        """Register the ``stock.push`` handler in ``registry``."""
        registry.register(PUSH_KIND, self.handle, max_attempts=max_attempts)

    async def handle(self, task: OutboxTask) -> None:
        """Push one shop's batch: compute now, claim headroom, push, record.

        Raises (so the outbox retries) when the platform could not be reached; refusals
        of single listings are recorded and show in :meth:`drift`.
        """
        shop = str(task.payload.get("shop", ""))
        raw_skus = task.payload.get("skus")
        skus = [str(sku) for sku in raw_skus] if isinstance(raw_skus, list) else []
        channel = self._channels.get(shop)
        if channel is None or shop not in self.policy.shops:
            raise UnknownAdapter("stock push shop", shop, sorted(self._channels))
        with tracer.start_as_current_span(
            "ordercore.stock_push.push",
            attributes={"ordercore.channel": shop, "ordercore.sku.count": len(skus)},
        ):
            plans = await self.plan(skus)
            items, previous = await self._claim(shop, plans)
            if items:
                await self._push(shop, channel, items, previous)

    async def _claim(
        self, shop: str, plans: Sequence[SkuPlan]
    ) -> tuple[list[ShopQuantity], dict[str, PushRecord]]:
        """Cut each quantity to the headroom the other shops leave and record it as pending.

        One unit of work: the other shops' records are read locked, so two shops' pushes
        of one SKU cannot both take the same room.
        """
        now = self._clock.now()
        items: list[ShopQuantity] = []
        intents: list[PushRecord] = []
        async with self._storage.unit_of_work() as uow:
            records = await uow.stock_push.pushes(
                skus=[plan.sku for plan in plans], for_update=True
            )
            previous = {record.sku: record for record in records if record.shop == shop}
            for plan in plans:
                item = plan.for_shop(shop)
                if item is None:
                    continue
                others = [r for r in records if r.sku == plan.sku and r.shop != shop]
                allowed = headroom(plan, shop, others)
                if allowed < item.quantity:
                    logger.info(
                        "stock push to %r: %s held at %d of %d until other shops' pushes land",
                        shop,
                        plan.sku,
                        allowed,
                        item.quantity,
                    )
                    self._dirty.add(plan.sku)
                    self._wake.set()
                items.append(replace(item, quantity=allowed))
                base = previous.get(plan.sku) or PushRecord(
                    shop=shop, sku=plan.sku, listing=item.listing, attempted_at=now
                )
                intents.append(
                    base.model_copy(
                        update={"listing": item.listing, "pending": allowed, "attempted_at": now}
                    )
                )
            await uow.stock_push.save_pushes(intents)
            await uow.commit()
        return items, previous

    async def _push(
        self,
        shop: str,
        channel: ChannelPort,
        items: Sequence[ShopQuantity],
        previous: Mapping[str, PushRecord],
    ) -> None:
        assert isinstance(channel, StockPushPort)
        errors: dict[str, str | None] = {}
        try:
            errors.update(await channel.push_stock({i.listing: i.quantity for i in items}))
            toggles = {
                item.listing: item.listed
                for item in items
                if errors.get(item.listing) is None
                and (previous[item.sku].listed if item.sku in previous else True) != item.listed
            }
            if toggles and isinstance(channel, ListingPort):
                answers = await channel.set_listed(toggles)
                errors.update({k: v for k, v in answers.items() if v is not None})
        except Exception as exc:
            await self._record(shop, items, previous, failed=scrub_error(str(exc)))
            raise
        await self._record(shop, items, previous, errors=errors)
        refused = sorted(listing for listing, error in errors.items() if error is not None)
        if refused:
            logger.warning("stock push to %r: the platform refused %s", shop, ", ".join(refused))

    async def _record(
        self,
        shop: str,
        items: Iterable[ShopQuantity],
        previous: Mapping[str, PushRecord],
        *,
        errors: Mapping[str, str | None] | None = None,
        failed: str | None = None,
    ) -> None:
        """Record each outcome. A push that failed without an answer keeps its quantity
        pending (the platform may have applied it); a refusal or a success clears it."""
        now = self._clock.now()
        records = []
        for item in items:
            base = previous.get(item.sku) or PushRecord(
                shop=shop, sku=item.sku, listing=item.listing, attempted_at=now
            )
            base = base.model_copy(update={"listing": item.listing})
            if failed is not None:
                update: dict[str, object] = {
                    "attempted_at": now,
                    "error": failed,
                    "pending": max(item.quantity, base.pending or 0),
                }
                records.append(base.model_copy(update=update))
            elif (error := (errors or {}).get(item.listing)) is not None:
                update = {"attempted_at": now, "error": scrub_error(error), "pending": None}
                records.append(base.model_copy(update=update))
            else:
                records.append(base.after_success(item.quantity, item.listed, now))
        with anyio.CancelScope(shield=True):
            async with self._storage.unit_of_work() as uow:
                await uow.stock_push.save_pushes(records)
                await uow.commit()

    # -- reports ----------------------------------------------------------------------------

    async def pushes(self, shop: str | None = None) -> list[PushRecord]:
        """The last push of every (shop, SKU), or of one shop's SKUs."""
        async with self._storage.unit_of_work() as uow:
            return await uow.stock_push.pushes(shop=shop)

    async def drift(self) -> list[StockDrift]:
        """Every (shop, SKU) whose last accepted push differs from what it should show now."""
        plans = await self.plan()
        records = {(r.shop, r.sku): r for r in await self.pushes()}
        found = []
        for plan in plans:
            for item in plan.shops:
                record = records.get((item.shop, plan.sku))
                if record is None:
                    found.append(
                        StockDrift(
                            item.shop, plan.sku, item.quantity, item.listed, None, None, None, None
                        )
                    )
                elif (record.quantity, record.listed, record.error) != (
                    item.quantity,
                    item.listed,
                    None,
                ):
                    found.append(
                        StockDrift(
                            shop=item.shop,
                            sku=plan.sku,
                            wanted=item.quantity,
                            wanted_listed=item.listed,
                            pushed=record.quantity,
                            pushed_listed=record.listed,
                            pushed_at=record.pushed_at,
                            error=record.error,
                        )
                    )
        return found
