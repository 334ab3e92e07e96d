"""Exception screening throughput with every built-in rule on (target: >= 5,000 orders/s).

Two figures, each as orders per second in ``extra_info`` and as a ratio to the target:

* **engine**: ``RulesEngine.evaluate`` over the labelled corpus (365 real-looking orders,
  about half of them with a problem: more findings than real traffic), contexts prebuilt.
* **service**: ``core.exceptions.screen`` (one by one) and ``screen_many`` (batches of
  500, as an intake window would) on memory storage: per order, a unit of work
  reading stock and the order's reservation, the fraud-window record and lookup,
  evaluation, and the actions (holds saved, alerts sent to a recording notifier).
  The orders are the corpus orders under fresh ids, 20 s apart (see ``_fresh``): about
  half have a problem and a third are held, a pessimistic mix. The "realistic" mix
  screens one order with a problem for every 19 clean ones.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from ordercore import ManualClock, OrderCore
from ordercore.domain.orders import Order, OrderStatus
from ordercore.domain.rules import RulesEngine
from ordercore.ports.notifiers import RecordingNotifier
from support.screening_corpus import (
    BASE_ADDRESS,
    BASE_BUYER,
    BASE_RECEIVER,
    NOW,
    corpus_config,
    load_cases,
)

TARGET = 5_000
SERVICE_ORDERS = 5_000


def _fresh(order: Order, index: int) -> Order:
    """The order under a new id, placed 20 s after the previous one (5,000 span 28 h).

    The corpus's base buyer and receiver (most cases share them) become a distinct
    person per order; a case's own phone keeps one buyer account per phone, as a
    person has. Phones that repeat (every 365 orders, about 2 h apart) then stay clear
    of the one-hour velocity window and of the buyer/receiver mismatch.
    """
    at = NOW - timedelta(seconds=20 * (SERVICE_ORDERS - index))
    update: dict[str, object] = {
        "id": f"B{index}",
        "external_id": f"B{index}",
        "created_at": at,
        "updated_at": at,
    }
    phone = order.receiver.phone
    if phone == BASE_RECEIVER["phone"]:
        phone = f"136{index + 1:08d}"
        update["receiver"] = order.receiver.model_copy(update={"phone": phone})
    if order.buyer_id == BASE_BUYER:
        update["buyer_id"] = f"buyer-{phone}"
    if order.address.detail == BASE_ADDRESS[4]:
        update["address"] = order.address.model_copy(update={"detail": f"478号{index}室"})
    return order.model_copy(update=update)


def test_engine_throughput(benchmark: pytest.FixtureRequest) -> None:
    """The pure rules engine over the corpus: figure in extra_info."""
    config = corpus_config()
    engine = RulesEngine(config)
    pairs = [(case.order, case.context) for case in load_cases(config)] * 4

    def run() -> None:
        for order, context in pairs:
            engine.evaluate(order, context)

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)  # type: ignore[attr-defined]
    rate = len(pairs) / benchmark.stats.stats.min  # type: ignore[attr-defined]
    benchmark.extra_info["orders_per_s"] = round(rate)  # type: ignore[attr-defined]
    benchmark.extra_info["ratio_to_target"] = round(rate / TARGET, 2)  # type: ignore[attr-defined]
    print(f"\nengine: {rate:,.0f} orders/s ({rate / TARGET:.1f}x the {TARGET:,}/s target)")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(
    ("mix", "batch"),
    [("corpus", 1), ("corpus", 500), ("realistic", 500)],
    ids=["corpus-one-by-one", "corpus-batches-of-500", "realistic-batches-of-500"],
)
async def test_service_throughput_on_memory_storage(
    benchmark: pytest.FixtureRequest, mix: str, batch: int
) -> None:
    """core.exceptions.screen(_many) on memory storage, 5,000 stored orders: extra_info."""
    config = corpus_config()
    cases = load_cases(config)
    if mix == "realistic":  # 19 clean orders for each one with a problem
        clean = [case for case in cases if not case.labels]
        flagged = [case for case in cases if case.labels]
        cases = [
            flagged[index // 20 % len(flagged)] if index % 20 == 0 else clean[index % len(clean)]
            for index in range(len(clean) * 2)
        ]
    clock = ManualClock(NOW)
    async with OrderCore.open("memory://", clock=clock, notifier=RecordingNotifier()) as core:
        core.exceptions.engine = RulesEngine(config)
        orders = [_fresh(cases[index % len(cases)].order, index) for index in range(SERVICE_ORDERS)]
        for sku in sorted({line.sku for order in orders for line in order.lines}):
            await core.inventory.receive(sku, 1_000_000)
        for order in orders:
            await core.orders.add(order)
        began = time.perf_counter()
        if batch == 1:
            for order in orders:
                await core.exceptions.screen(order)
        else:
            for start in range(0, SERVICE_ORDERS, batch):
                await core.exceptions.screen_many(orders[start : start + batch])
        elapsed = time.perf_counter() - began
        held = len(await core.orders.list(status=OrderStatus.ON_HOLD, limit=SERVICE_ORDERS))
    rate = SERVICE_ORDERS / elapsed
    benchmark.extra_info["orders_per_s"] = round(rate)  # type: ignore[attr-defined]
    benchmark.extra_info["ratio_to_target"] = round(rate / TARGET, 2)  # type: ignore[attr-defined]
    benchmark.extra_info["held"] = held  # type: ignore[attr-defined]
    benchmark.pedantic(lambda: None, rounds=1)  # type: ignore[attr-defined]
    print(
        f"\nservice (memory, {mix} mix, batch {batch}): {rate:,.0f} orders/s "
        f"({rate / TARGET:.2f}x the target; {held} held)"
    )
