"""Contract tests for channel intake persistence: order upserts, cursors, ledger, rejects, dedup.

These drive the storage port directly (``uow.orders`` and ``uow.intake``), not the intake
service: they pin down what every adapter must guarantee on its own, whatever the
service on top does. The headline is the issue's must-show at storage level: the same
1,000 orders arriving as several versions, shuffled, duplicated and stale, from
concurrent units, end as exactly 1,000 stored orders, each at its newest version.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from ordercore.core import OrderCore
from ordercore.domain.channels import CredentialState, RecordKind
from ordercore.domain.health import ReviewEntry
from ordercore.domain.intake import (
    Cursor,
    Feed,
    RejectedRecord,
    RunStatus,
    SyncRun,
    UpsertOutcome,
)
from ordercore.domain.orders import Order, OrderStatus
from ordercore.errors import DuplicateOrder
from ordercore.ports.storage import Storage
from ordercore.testing.storage_base import RESERVING, StorageContractBase
from ordercore.testing.storage_orders import sample_order

__all__ = ["IntakeContract"]

T0 = datetime(2026, 11, 11, 8, 0, tzinfo=UTC)

CREATED = UpsertOutcome.CREATED
UPDATED = UpsertOutcome.UPDATED
UNCHANGED = UpsertOutcome.UNCHANGED
STALE = UpsertOutcome.STALE


def platform_version(order_id: str, version: int | None, *, new_id: str | None = None) -> Order:
    """``order_id`` as the platform sends it at ``version`` (minutes after T0; None: no time)."""
    modified = None if version is None else T0 + timedelta(minutes=version)
    order = sample_order(order_id, at=T0)
    return order.model_copy(
        update={
            "id": new_id or order_id,
            "remark": f"version {version}",
            "status": OrderStatus.PAID if version and version >= 2 else order.status,
            "updated_at": modified or T0,
            "source_modified_at": modified,
        }
    )


async def upsert(storage: Storage, orders: Sequence[Order]) -> list[UpsertOutcome]:
    """Upsert in a unit of its own and commit."""
    async with storage.unit_of_work() as uow:
        outcomes = await uow.orders.upsert_many(orders)
        await uow.commit()
    return outcomes


async def stored(storage: Storage, *order_ids: str, channel: str = "taobao") -> dict[str, Order]:
    """The stored orders of ``sample_order`` ids, by external id."""
    async with storage.unit_of_work() as uow:
        return await uow.orders.get_many_by_external(channel, [f"ext-{i}" for i in order_ids])


def review(
    order_id: str, score: int, minutes: int = 0, *, channel: str = "taobao", reason: str = "late"
) -> ReviewEntry:
    """A review entry of ``order_id`` entering ``minutes`` after T0."""
    return ReviewEntry(
        order_id=order_id,
        channel=channel,
        score=score,
        reasons=(reason, f"score {score}"),
        entered_at=T0 + timedelta(minutes=minutes),
    )


async def enqueue(storage: Storage, entries: Sequence[ReviewEntry]) -> None:
    """Enqueue reviews in a unit of their own and commit."""
    async with storage.unit_of_work() as uow:
        await uow.intake.enqueue_reviews(entries)
        await uow.commit()


async def queued(storage: Storage, channel: str | None = None) -> list[ReviewEntry]:
    """The unresolved review queue, read in a unit of its own."""
    async with storage.unit_of_work() as uow:
        return await uow.intake.review_queue(channel)


class _Boom(Exception):
    """Raised inside a unit of work to make it roll back."""


class IntakeContract(StorageContractBase):
    """Channel intake: exactly once per (channel, external id), newest version winning."""

    reservation_modes = RESERVING

    # -- orders --------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_thousand_orders_shuffled_with_repeats_are_stored_once_at_newest(
        self, core: OrderCore
    ) -> None:
        """1,000 orders as shuffled, repeated, stale versions from concurrent units: once each."""
        ids = [f"o{index:04d}" for index in range(1_000)]
        records = [platform_version(order_id, v) for order_id in ids for v in (1, 2, 3)]
        records += [platform_version(order_id, 3) for order_id in ids[::4]]  # poll + webhook
        records += [platform_version(order_id, 1) for order_id in ids[::5]]  # late and stale
        random.Random(4).shuffle(records)  # noqa: S311 - a reproducible shuffle
        batches = [records[start : start + 100] for start in range(0, len(records), 100)]
        results: list[tuple[Order, UpsertOutcome]] = []

        async def intake(worker: int) -> None:
            for batch in batches[worker::8]:
                outcomes = await upsert(core.storage, batch)
                results.extend(zip(batch, outcomes, strict=True))

        async with anyio.create_task_group() as group:
            for worker in range(8):
                group.start_soon(intake, worker)

        final = await stored(core.storage, *ids)
        assert len(final) == 1_000
        async with core.storage.unit_of_work() as uow:
            assert len(await uow.orders.list(limit=2_000)) == 1_000
        totals = Counter(outcome for _, outcome in results)
        assert len(results) == len(records)
        assert totals[CREATED] == 1_000
        assert totals[UPDATED] + totals[UNCHANGED] + totals[STALE] == len(records) - 1_000
        writes = Counter(
            (order.external_id, order.source_modified_at)
            for order, outcome in results
            if outcome in (CREATED, UPDATED)
        )
        updates = Counter(order.external_id for order, outcome in results if outcome is UPDATED)
        assert max(writes.values()) == 1  # no version written twice
        for order_id in ids:
            order = final[f"ext-{order_id}"]
            assert (order.id, order.remark) == (order_id, "version 3")
            assert order.source_modified_at == T0 + timedelta(minutes=3)
            assert order.status is OrderStatus.PAID
            assert order.version == updates[order.external_id]
            assert writes[order.external_id, order.source_modified_at] == 1

    @pytest.mark.anyio
    async def test_a_repeated_version_is_unchanged(self, core: OrderCore) -> None:
        """The same version again is UNCHANGED and writes nothing (version stays)."""
        assert await upsert(core.storage, [platform_version("o1", 1)]) == [CREATED]
        assert await upsert(core.storage, [platform_version("o1", 1)]) == [UNCHANGED]
        assert (await stored(core.storage, "o1"))["ext-o1"] == platform_version("o1", 1)

    @pytest.mark.anyio
    async def test_a_newer_version_replaces_the_document_and_bumps_version(
        self, core: OrderCore
    ) -> None:
        """A later modification time is UPDATED: the document replaced whole, version + 1."""
        await upsert(core.storage, [platform_version("o1", 1)])
        assert await upsert(core.storage, [platform_version("o1", 2)]) == [UPDATED]
        newer = platform_version("o1", 2).model_copy(update={"version": 1})
        assert (await stored(core.storage, "o1"))["ext-o1"] == newer
        async with core.storage.unit_of_work() as uow:
            assert await uow.orders.get("o1") == newer

    @pytest.mark.anyio
    async def test_an_older_version_is_stale_and_changes_nothing(self, core: OrderCore) -> None:
        """An older version, or one without a time, is STALE; the stored document stays as is."""
        await upsert(core.storage, [platform_version("o1", 1)])
        await upsert(core.storage, [platform_version("o1", 5)])
        before = (await stored(core.storage, "o1"))["ext-o1"]
        outcomes = await upsert(
            core.storage, [platform_version("o1", 3), platform_version("o1", None)]
        )
        assert outcomes == [STALE, STALE]
        assert (await stored(core.storage, "o1"))["ext-o1"] == before
        assert before.remark == "version 5"
        assert before.version == 1

    @pytest.mark.anyio
    async def test_a_version_without_time_is_oldest(self, core: OrderCore) -> None:
        """No modification time over none is UNCHANGED; any time over none is UPDATED."""
        assert await upsert(core.storage, [platform_version("o1", None)]) == [CREATED]
        assert await upsert(core.storage, [platform_version("o1", None)]) == [UNCHANGED]
        assert await upsert(core.storage, [platform_version("o1", 0)]) == [UPDATED]
        assert (await stored(core.storage, "o1"))["ext-o1"].source_modified_at == T0

    @pytest.mark.anyio
    async def test_two_versions_of_one_key_in_one_call_apply_in_order(
        self, core: OrderCore
    ) -> None:
        """Versions of one key in one call apply in order; the later wins only if newer."""
        outcomes = await upsert(
            core.storage,
            [
                platform_version("o1", 1),
                platform_version("o2", 3),
                platform_version("o1", 2),
                platform_version("o2", 2),
                platform_version("o3", 1),
                platform_version("o3", 1),
                platform_version("o1", 2),
            ],
        )
        assert outcomes == [CREATED, CREATED, UPDATED, STALE, CREATED, UNCHANGED, UNCHANGED]
        final = await stored(core.storage, "o1", "o2", "o3")
        assert {key: (o.remark, o.version) for key, o in final.items()} == {
            "ext-o1": ("version 2", 1),
            "ext-o2": ("version 3", 0),
            "ext-o3": ("version 1", 0),
        }

    @pytest.mark.anyio
    async def test_the_stored_id_wins(self, core: OrderCore) -> None:
        """A version carrying another id updates the stored order under its stored id."""
        await upsert(core.storage, [platform_version("o1", 1)])
        renamed = platform_version("o1", 2, new_id="other")
        assert await upsert(core.storage, [renamed]) == [UPDATED]
        async with core.storage.unit_of_work() as uow:
            assert await uow.orders.get("other") is None
            order = await uow.orders.get("o1")
        assert order == renamed.model_copy(update={"id": "o1", "version": 1})
        assert await upsert(core.storage, [platform_version("o1", 0, new_id="x")]) == [STALE]
        assert (await stored(core.storage, "o1"))["ext-o1"] == order

    @pytest.mark.anyio
    async def test_a_new_key_with_a_taken_id_is_refused_whole(self, core: OrderCore) -> None:
        """A new key whose id another order holds raises DuplicateOrder; the call keeps nothing."""
        async with core.storage.unit_of_work() as uow:
            assert await uow.orders.upsert_many([platform_version("o1", 1)]) == [CREATED]
            clash = platform_version("o3", 1, new_id="o1")
            with pytest.raises(DuplicateOrder, match="o1"):
                await uow.orders.upsert_many([platform_version("o2", 1), clash])
            await uow.commit()
        assert set(await stored(core.storage, "o1", "o2", "o3")) == {"ext-o1"}

    @pytest.mark.anyio
    async def test_get_many_by_external_reads_one_channel(self, core: OrderCore) -> None:
        """get_many_by_external returns the stored orders of one channel among the ids."""
        jd = sample_order("j1", at=T0, channel="jd").model_copy(update={"external_id": "ext-o1"})
        await upsert(core.storage, [platform_version("o1", 1), platform_version("o2", 1), jd])
        async with core.storage.unit_of_work() as uow:
            found = await uow.orders.get_many_by_external("taobao", ["ext-o1", "ext-o9", "ext-o1"])
            assert found == {"ext-o1": platform_version("o1", 1)}
            assert await uow.orders.get_many_by_external("jd", ["ext-o1"]) == {"ext-o1": jd}
            assert await uow.orders.get_many_by_external("taobao", []) == {}

    # -- cursors -------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_the_cursor_only_moves_forward(self, core: OrderCore) -> None:
        """advance_cursor moves to a later position only; each (channel, feed) has its own."""

        def at(hours: int, channel: str = "taobao", feed: Feed = Feed.ORDERS) -> Cursor:
            moment = T0 + timedelta(hours=hours)
            return Cursor(channel=channel, feed=feed, position=moment, updated_at=moment)

        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.cursor("taobao", Feed.ORDERS) is None
            assert await uow.intake.advance_cursor(at(2))
            assert not await uow.intake.advance_cursor(at(1))
            assert not await uow.intake.advance_cursor(at(2))
            assert await uow.intake.advance_cursor(at(3))
            assert await uow.intake.advance_cursor(at(1, feed=Feed.AFTER_SALES))
            assert await uow.intake.advance_cursor(at(0, channel="jd"))
            await uow.commit()
        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.cursor("taobao", Feed.ORDERS) == at(3)
            assert await uow.intake.cursor("taobao", Feed.AFTER_SALES) == at(
                1, feed=Feed.AFTER_SALES
            )
            assert await uow.intake.cursor("jd", Feed.ORDERS) == at(0, channel="jd")
            assert await uow.intake.cursor("jd", Feed.AFTER_SALES) is None

    @pytest.mark.anyio
    async def test_the_cursor_commits_and_rolls_back_with_its_orders(self, core: OrderCore) -> None:
        """Orders and the cursor covering them are kept together or not at all."""
        cursor = Cursor(channel="taobao", feed=Feed.ORDERS, position=T0, updated_at=T0)
        with pytest.raises(_Boom):  # noqa: PT012 - the raise must happen inside the unit
            async with core.storage.unit_of_work() as uow:
                await uow.orders.upsert_many([platform_version("o1", 1)])
                assert await uow.intake.advance_cursor(cursor)
                raise _Boom
        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.cursor("taobao", Feed.ORDERS) is None
            assert await uow.orders.get_many_by_external("taobao", ["ext-o1"]) == {}
            assert await uow.orders.upsert_many([platform_version("o1", 1)]) == [CREATED]
            assert await uow.intake.advance_cursor(cursor)
            await uow.commit()
        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.cursor("taobao", Feed.ORDERS) == cursor
            assert set(await uow.orders.get_many_by_external("taobao", ["ext-o1"])) == {"ext-o1"}

    # -- ledger --------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_the_ledger_keeps_runs_newest_first(self, core: OrderCore) -> None:
        """save_run inserts or replaces by id; runs() lists newest first, by channel if asked."""
        first = SyncRun(id="r1", channel="taobao", started_at=T0)
        second = SyncRun(id="r2", channel="jd", started_at=T0 + timedelta(minutes=1))
        third = SyncRun(id="r3", channel="taobao", started_at=T0 + timedelta(minutes=2))
        tie = SyncRun(id="r4", channel="taobao", started_at=T0 + timedelta(minutes=2))
        finished = first.model_copy(
            update={
                "status": RunStatus.PARTIAL,
                "trigger": "webhook",
                "finished_at": T0 + timedelta(seconds=30),
                "windows": 3,
                "pages": 7,
                "fetched": 650,
                "created": 600,
                "updated": 40,
                "unchanged": 5,
                "stale": 3,
                "rejected": 2,
                "cursor_before": T0 - timedelta(hours=1),
                "cursor_after": T0 - timedelta(minutes=20),
                "credential_state": CredentialState.EXPIRING,
                "errors": ("window 3: 淘宝 returned isv.service-unavailable", "138****8000"),
            }
        )
        async with core.storage.unit_of_work() as uow:
            for run in (first, second, third, tie):
                await uow.intake.save_run(run)
            await uow.intake.save_run(finished)
            await uow.commit()
        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.runs() == [tie, third, second, finished]
            assert await uow.intake.runs("taobao") == [tie, third, finished]
            assert await uow.intake.runs(limit=2) == [tie, third]
            assert await uow.intake.runs("douyin") == []

    # -- rejects -------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_rejects_keep_the_payload_whole_and_resolve_once(self, core: OrderCore) -> None:
        """Rejected payloads come back whole, oldest first; each resolves exactly once."""
        payload = {
            "tid": 4_100_000_123,
            "receiver": {"name": "张三", "address": {"province": "浙江省", "detail": "文三路90号"}},
            "orders": [{"outer_sku_id": "SKU-RED", "num": 2, "price": "19.90"}, {"num": None}],
            "paid": True,
            "discount": 0.5,
            "remark": "请尽快发货 🚚",
        }

        def reject(reject_id: str, minutes: int, channel: str = "taobao") -> RejectedRecord:
            return RejectedRecord(
                id=reject_id,
                channel=channel,
                kind=RecordKind.ORDER,
                external_id=f"tid-{reject_id}",
                modified_at=T0,
                payload=payload,
                reason="receiver_phone: '138' is not a phone number",
                run_id="r1",
                rejected_at=T0 + timedelta(minutes=minutes),
            )

        newer, older, other = reject("x1", 5), reject("x2", 1), reject("x3", 3, "jd")
        async with core.storage.unit_of_work() as uow:
            await uow.intake.add_rejects([newer, older, other])
            await uow.commit()
        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.rejects("taobao") == [older, newer]
            assert await uow.intake.rejects() == [older, other, newer]
            assert await uow.intake.rejects(limit=1) == [older]
            resolved_at = T0 + timedelta(hours=1)
            assert await uow.intake.resolve_reject("x1", resolved_at)
            assert not await uow.intake.resolve_reject("x1", resolved_at + timedelta(hours=1))
            assert not await uow.intake.resolve_reject("nope", resolved_at)
            await uow.commit()
        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.rejects("taobao") == [older]
            done = newer.model_copy(update={"resolved_at": resolved_at})
            assert await uow.intake.rejects("taobao", unresolved_only=False) == [older, done]
        assert done.payload["receiver"]["name"] == "张三"

    # -- webhook deliveries --------------------------------------------------------------

    @pytest.mark.anyio
    async def test_remember_deliveries_returns_only_new_ids(self, core: OrderCore) -> None:
        """Only message ids never seen on the channel are new; a rolled-back unit forgets."""
        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.remember_deliveries("douyin", ["m1", "m2", "m1"], T0) == {
                "m1",
                "m2",
            }
            assert await uow.intake.remember_deliveries("douyin", ["m2", "m3"], T0) == {"m3"}
            assert await uow.intake.remember_deliveries("shopify", ["m1"], T0) == {"m1"}
            assert await uow.intake.remember_deliveries("douyin", [], T0) == set()
            await uow.commit()
        with pytest.raises(_Boom):  # noqa: PT012 - the raise must happen inside the unit
            async with core.storage.unit_of_work() as uow:
                assert await uow.intake.remember_deliveries("douyin", ["m4"], T0) == {"m4"}
                raise _Boom
        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.remember_deliveries("douyin", ["m1", "m4"], T0) == {"m4"}

    @pytest.mark.anyio
    async def test_concurrent_deliveries_are_each_new_exactly_once(self, core: OrderCore) -> None:
        """Overlapping batches from concurrent units report each message id new exactly once."""
        message_ids = [f"msg-{index:03d}" for index in range(200)]
        reported: list[set[str]] = []

        async def deliver(worker: int) -> None:
            batch = message_ids[worker * 20 : worker * 20 + 60]
            random.Random(worker).shuffle(batch)  # noqa: S311 - a reproducible shuffle
            async with core.storage.unit_of_work() as uow:
                fresh = await uow.intake.remember_deliveries("shopify", batch, T0)
                await uow.commit()
            reported.append(fresh)

        async with anyio.create_task_group() as group:
            for worker in range(10):
                group.start_soon(deliver, worker)
        assert sum(len(fresh) for fresh in reported) == len(message_ids)
        assert set().union(*reported) == set(message_ids)

    # -- review queue --------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_review_queue_lists_lowest_score_first_then_oldest(self, core: OrderCore) -> None:
        """review_queue lists unresolved entries by score, ties oldest first, up to limit."""
        low, high = review("o1", 20, 9), review("o4", 70, 0)
        tie_new, tie_old = review("o2", 50, 5), review("o3", 50, 1)
        await enqueue(core.storage, [high, tie_new, low, tie_old])
        await enqueue(core.storage, [])
        assert await queued(core.storage) == [low, tie_old, tie_new, high]
        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.review_queue(limit=2) == [low, tie_old]
            assert await uow.intake.review_queue(limit=0) == []

    @pytest.mark.anyio
    async def test_review_requeue_refreshes_score_and_reasons_but_keeps_entered_at(
        self, core: OrderCore
    ) -> None:
        """Enqueuing a queued order again takes the new score and reasons, not its time."""
        await enqueue(core.storage, [review("o1", 60, 0), review("o2", 40, 1)])
        await enqueue(core.storage, [review("o1", 10, 30, reason="phone invalid")])
        refreshed = review("o1", 10, 0, reason="phone invalid")
        assert await queued(core.storage) == [refreshed, review("o2", 40, 1)]
        await enqueue(core.storage, [review("o3", 30, 2), review("o3", 90, 40)])
        assert (await queued(core.storage))[-1] == review("o3", 90, 2)

    @pytest.mark.anyio
    async def test_a_review_resolves_once(self, core: OrderCore) -> None:
        """resolve_review takes an order off the queue once; again, or unknown, is False."""
        await enqueue(core.storage, [review("o1", 30), review("o2", 40)])
        resolved_at = T0 + timedelta(hours=1)
        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.resolve_review("o1", resolved_at)
            assert not await uow.intake.resolve_review("o1", resolved_at + timedelta(hours=1))
            assert not await uow.intake.resolve_review("nope", resolved_at)
            await uow.commit()
        assert await queued(core.storage) == [review("o2", 40)]
        async with core.storage.unit_of_work() as uow:
            assert not await uow.intake.resolve_review("o1", resolved_at)

    @pytest.mark.anyio
    async def test_a_resolved_review_enqueued_again_reopens(self, core: OrderCore) -> None:
        """A resolved order enqueued again is back with its new score, reasons and time."""
        await enqueue(core.storage, [review("o1", 30, 0)])
        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.resolve_review("o1", T0 + timedelta(hours=1))
            await uow.commit()
        again = review("o1", 55, 120, reason="address is vague")
        await enqueue(core.storage, [again])
        assert await queued(core.storage) == [again]
        async with core.storage.unit_of_work() as uow:
            assert await uow.intake.resolve_review("o1", T0 + timedelta(hours=3))

    @pytest.mark.anyio
    async def test_review_queue_filters_by_channel(self, core: OrderCore) -> None:
        """review_queue(channel) lists only that channel's unresolved entries."""
        jd = review("j1", 10, channel="jd")
        taobao = [review("o1", 30), review("o2", 20, 1)]
        await enqueue(core.storage, [*taobao, jd])
        assert await queued(core.storage, "taobao") == [taobao[1], taobao[0]]
        assert await queued(core.storage, "jd") == [jd]
        assert await queued(core.storage, "douyin") == []

    @pytest.mark.anyio
    async def test_a_rolled_back_unit_leaves_the_review_queue_as_it_was(
        self, core: OrderCore
    ) -> None:
        """Enqueues, refreshes and resolves of a rolled-back unit leave no trace."""
        kept = [review("o1", 30), review("o2", 40, 1)]
        await enqueue(core.storage, kept)
        with pytest.raises(_Boom):  # noqa: PT012 - the raise must happen inside the unit
            async with core.storage.unit_of_work() as uow:
                await uow.intake.enqueue_reviews([review("o3", 10), review("o2", 5, 9)])
                assert await uow.intake.resolve_review("o1", T0 + timedelta(hours=1))
                assert len(await uow.intake.review_queue()) == 2
                raise _Boom
        assert await queued(core.storage) == kept

    @pytest.mark.anyio
    async def test_review_reasons_in_chinese_round_trip(self, core: OrderCore) -> None:
        """Reasons with Chinese text and emoji come back exactly as enqueued."""
        entry = review("o1", 35, reason="地址模糊（附近、旁边）🚚").model_copy(
            update={"reasons": ("地址模糊（附近、旁边）🚚", "收件人电话不是有效的手机号", "")}
        )
        await enqueue(core.storage, [entry])
        assert await queued(core.storage) == [entry]
