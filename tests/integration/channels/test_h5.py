"""The own-H5-store adapter over real HTTP against a fake store on 127.0.0.1."""

from __future__ import annotations

import base64
import logging
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import stamina

from fakes.webhook_shop_server import H5_SECRET, H5_TOKEN, FakeH5Store, h5_order
from ordercore import OrderCore, Settings
from ordercore.domain.channels import RawRecord, TimeWindow
from ordercore.domain.intake import RunStatus
from ordercore.domain.orders import OrderStatus
from ordercore.errors import (
    ChannelAuthExpired,
    ChannelUnavailable,
    InvalidInput,
    InvalidOrder,
    SignatureInvalid,
)
from ordercore.ports.clock import ManualClock
from ordercore.testing.channel_contract import ChannelContract, ChannelUnderTest, fetch_window
from ordercore_adapters.channels.h5 import H5Channel, RateLimited, h5_time, map_h5_order

ATTEMPTS = 3
NEW_SECRET = "whsec_" + base64.b64encode(b"h5-rotated-secret-GARPLY-32bytes").decode()


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    """stamina retries up to ATTEMPTS times, without sleeping between them."""
    with stamina.set_testing(True, attempts=ATTEMPTS, cap=True):
        yield


def config(store: FakeH5Store, **overrides: object) -> dict[str, object]:
    """A channel config pointing at the fake store."""
    base: dict[str, object] = {
        "base_url": store.url,
        "api_token": H5_TOKEN,
        "webhook_secrets": [H5_SECRET],
        "page_size": 20,
        "timeout": 2.0,
    }
    base.update(overrides)
    return base


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def store(clock: ManualClock) -> Iterator[FakeH5Store]:
    with FakeH5Store(clock=clock.now) as fake:
        yield fake


@pytest.fixture
async def channel(store: FakeH5Store) -> AsyncIterator[H5Channel]:
    async with H5Channel("h5-store", config(store)) as opened:
        yield opened


@pytest.fixture
async def core(clock: ManualClock) -> AsyncIterator[OrderCore]:
    async with OrderCore.open("memory://", clock=clock, settings=Settings()) as opened:
        await opened.inventory.receive("TEE-BLK-M", 1_000)
        yield opened


def past_window(store: FakeH5Store, length: timedelta = timedelta(hours=1)) -> TimeWindow:
    """A whole-second window ending ten minutes behind the store's clock."""
    end = store.now().replace(microsecond=0) - timedelta(minutes=10)
    return TimeWindow(start=end - length, end=end)


class TestH5Contract(ChannelContract):
    """H5Channel against the ChannelPort contract suite, over HTTP."""

    @pytest.fixture
    async def channel_under_test(self) -> AsyncIterator[ChannelUnderTest]:
        with FakeH5Store() as fake:
            async with H5Channel("h5-store", config(fake)) as opened:
                yield opened, fake


# -- webhooks through the intake ---------------------------------------------------------


@pytest.mark.anyio
async def test_a_webhook_is_stored_once_and_its_replay_is_reported(
    core: OrderCore, store: FakeH5Store, channel: H5Channel
) -> None:
    """A signed order.created is stored; the same delivery again is ``replayed``."""
    store.add_order("H5-1", store.now() - timedelta(minutes=1))
    headers, body = store.webhook("H5-1", "order.created")
    first = await core.intake.ingest_webhook(channel, headers, body)
    again = await core.intake.ingest_webhook(channel, headers, body)
    assert (first.replayed, first.stored.created) == (False, 1)
    assert (again.replayed, again.stored.created) == (True, 0)
    (order,) = await core.orders.list(limit=10)
    assert (order.external_id, order.status) == ("H5-1", OrderStatus.PAID)
    assert (await core.inventory.stock("TEE-BLK-M")).reserved == 2


@pytest.mark.anyio
async def test_a_tampered_body_is_refused_and_nothing_is_stored(
    core: OrderCore, store: FakeH5Store, channel: H5Channel
) -> None:
    """One changed byte of a signed body: SignatureInvalid, no order stored."""
    store.add_order("H5-2", store.now() - timedelta(minutes=1))
    headers, body = store.webhook("H5-2")
    with pytest.raises(SignatureInvalid, match="mismatch"):
        await core.intake.ingest_webhook(channel, headers, body.replace(b"59.00", b"0.01"))
    assert await core.orders.list(limit=10) == []


@pytest.mark.anyio
async def test_a_delivery_older_than_five_minutes_is_refused(
    core: OrderCore, store: FakeH5Store, channel: H5Channel, clock: ManualClock
) -> None:
    """A genuine delivery replayed 5 min 1 s later fails the timestamp tolerance."""
    store.add_order("H5-3", store.now() - timedelta(minutes=1))
    headers, body = store.webhook("H5-3")
    clock.advance(timedelta(minutes=5, seconds=1))
    with pytest.raises(SignatureInvalid, match="outside the tolerance of 300s"):
        await core.intake.ingest_webhook(channel, headers, body)
    assert await core.orders.list(limit=10) == []


@pytest.mark.anyio
async def test_secret_rotation_accepts_either_key_while_both_sign(
    store: FakeH5Store, clock: ManualClock
) -> None:
    """The store signs with old and new keys: a channel knowing only one of them accepts."""
    store.add_order("H5-4", store.now())
    store.secrets = [H5_SECRET, NEW_SECRET]
    headers, body = store.webhook("H5-4")
    assert len(headers["webhook-signature"].split()) == 2
    for secrets in ([H5_SECRET], [NEW_SECRET], [NEW_SECRET, H5_SECRET]):
        async with H5Channel("h5-store", config(store, webhook_secrets=secrets)) as channel:
            delivery = channel.verify_webhook(headers, body, clock.now())
        assert [record.external_id for record in delivery.records] == ["H5-4"]
    store.secrets = [NEW_SECRET]
    headers, body = store.webhook("H5-4")
    async with H5Channel("h5-store", config(store)) as old_only:
        with pytest.raises(SignatureInvalid):
            old_only.verify_webhook(headers, body, clock.now())


@pytest.mark.anyio
async def test_the_safety_poll_finds_an_order_whose_webhook_was_lost(
    core: OrderCore, store: FakeH5Store, channel: H5Channel, clock: ManualClock
) -> None:
    """Two orders, one webhook lost: the poll stores the missing one, the other unchanged."""
    start = clock.now() - timedelta(hours=1)
    store.add_order("H5-10", start + timedelta(minutes=5))
    store.add_order("H5-11", start + timedelta(minutes=6))
    await core.intake.ingest_webhook(channel, *store.webhook("H5-10", "order.created"))
    run = await core.intake.sync(channel, first_sync_from=start)
    assert run.status is RunStatus.SUCCEEDED
    assert (run.fetched, run.created, run.unchanged) == (2, 1, 1)
    orders = await core.orders.list(limit=10)
    assert sorted(order.external_id for order in orders) == ["H5-10", "H5-11"]


@pytest.mark.anyio
async def test_a_cancellation_webhook_releases_the_reservation(
    core: OrderCore, store: FakeH5Store, channel: H5Channel, clock: ManualClock
) -> None:
    """order.created then order.cancelled: one order, cancelled, nothing reserved."""
    store.add_order("H5-20", clock.now() - timedelta(minutes=2))
    await core.intake.ingest_webhook(channel, *store.webhook("H5-20", "order.created"))
    store.put(h5_order("H5-20", clock.now() - timedelta(minutes=1), status="cancelled"))
    await core.intake.ingest_webhook(channel, *store.webhook("H5-20", "order.cancelled"))
    (order,) = await core.orders.list(limit=10)
    assert order.status is OrderStatus.CANCELLED
    assert (await core.inventory.stock("TEE-BLK-M")).reserved == 0


@pytest.mark.anyio
async def test_other_event_types_verify_and_carry_no_record(
    store: FakeH5Store, channel: H5Channel
) -> None:
    """A signed ``customer.updated`` event passes verification with no records."""
    store.add_order("H5-30", store.now())
    headers, body = store.webhook("H5-30", "customer.updated")
    delivery = channel.verify_webhook(headers, body, store.now())
    assert (delivery.topic, delivery.records) == ("customer.updated", ())


@pytest.mark.anyio
async def test_a_signed_order_event_without_an_order_is_refused(
    store: FakeH5Store, channel: H5Channel
) -> None:
    """A validly signed order.updated whose data has no valid updated_at: SignatureInvalid."""
    store.add_order("H5-31", store.now())
    store.orders["H5-31"]["updated_at"] = "yesterday"
    headers, body = store.webhook("H5-31")
    with pytest.raises(SignatureInvalid, match="signed but its data is not an order"):
        channel.verify_webhook(headers, body, store.now())


# -- the poll ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_window_bounds_are_sent_as_utc_half_open(
    store: FakeH5Store, channel: H5Channel
) -> None:
    """The window goes out as-is in UTC; an order at its end belongs to the next window."""
    window = past_window(store)
    store.add_order("H5-40", window.end)
    page = await channel.fetch_orders(window, None)
    _, _, query = store.requests[-1]
    assert query["updated_since"] == window.start.isoformat()
    assert query["updated_before"] == window.end.isoformat()
    assert query["updated_before"].endswith("+00:00")
    assert (page.records, page.total) == ((), 0)
    assert h5_time(datetime(2026, 11, 11, 8, 0, tzinfo=UTC)) == "2026-11-11T08:00:00+00:00"


@pytest.mark.anyio
async def test_a_429_is_waited_out_for_its_retry_after(
    store: FakeH5Store, channel: H5Channel
) -> None:
    """429 with Retry-After: 1 -> the client waits about a second, then succeeds."""
    window = past_window(store)
    store.add_order("H5-50", window.start)
    store.fail_next(1, "429")
    began = time.monotonic()
    page = await channel.fetch_orders(window, None)
    assert time.monotonic() - began >= 0.95
    assert [record.external_id for record in page.records] == ["H5-50"]
    assert len(store.requests) == 2


@pytest.mark.anyio
async def test_a_retry_after_past_max_wait_fails_at_once(store: FakeH5Store) -> None:
    """Retry-After longer than max_wait: RateLimited (a ChannelUnavailable), one request."""
    store.retry_after = "30"
    store.fail_next(1, "429")
    async with H5Channel("h5-store", config(store, max_wait=5)) as channel:
        with pytest.raises(RateLimited, match="past the 5 s"):
            await channel.fetch_orders(past_window(store), None)
    assert len(store.requests) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["5xx", "malformed"])
async def test_transient_failures_are_retried(
    store: FakeH5Store, channel: H5Channel, kind: str
) -> None:
    """Two 5xx / malformed answers, then the page on the third attempt."""
    window = past_window(store)
    store.add_order("H5-60", window.start)
    store.fail_next(2, kind)
    page = await channel.fetch_orders(window, None)
    assert [record.external_id for record in page.records] == ["H5-60"]
    assert len(store.requests) == ATTEMPTS


@pytest.mark.anyio
async def test_an_expired_token_is_not_retried(store: FakeH5Store, channel: H5Channel) -> None:
    """401: ChannelAuthExpired after one request; refreshing is not possible."""
    store.expire_credentials()
    with pytest.raises(ChannelAuthExpired, match="authorise again"):
        await channel.fetch_orders(past_window(store), None)
    assert len(store.requests) == 1
    with pytest.raises(ChannelAuthExpired, match="issuing a new one"):
        await channel.refresh_credentials()


# -- mapping -----------------------------------------------------------------------------


def as_record(payload: dict[str, object]) -> RawRecord:
    return RawRecord(
        channel="h5-store",
        external_id=str(payload["id"]),
        modified_at=datetime(2026, 11, 11, 0, 1, 10, tzinfo=UTC),
        payload=payload,
    )


def test_times_with_offsets_convert_to_exact_utc() -> None:
    """+08:00 wall clock 08:01:10.250 is 00:01:10.250 UTC; amounts stay exact."""
    payload = h5_order("H5-70", datetime(2026, 11, 11, 0, 1, 10, 250_000, tzinfo=UTC))
    assert payload["updated_at"] == "2026-11-11T08:01:10.250000+08:00"
    order = map_h5_order(as_record(payload)).order
    assert order.source_modified_at == datetime(2026, 11, 11, 0, 1, 10, 250_000, tzinfo=UTC)
    assert order.created_at == datetime(2026, 11, 10, 23, 56, 10, 250_000, tzinfo=UTC)
    assert order.shipping_fee.amount == Decimal("10.00")
    assert [(line.sku, line.quantity, line.unit_price.amount) for line in order.lines] == [
        ("TEE-BLK-M", 2, Decimal("59.00"))
    ]


def test_a_time_without_offset_is_refused() -> None:
    """A naive ``updated_at`` fails the mapping naming the field (no local-time guess)."""
    payload = {**h5_order("H5-71", datetime.now(UTC)), "created_at": "2026-11-11T08:00:00"}
    with pytest.raises(InvalidOrder, match="created_at"):
        map_h5_order(as_record(payload))


def test_masked_receiver_data_is_marked() -> None:
    """``138****5678`` marks receiver and address as masked, with warnings."""
    mapped = map_h5_order(as_record(h5_order("H5-72", datetime.now(UTC), masked=True)))
    assert mapped.order.receiver.masked
    assert mapped.order.address.masked
    assert "receiver data is masked by the platform" in mapped.warnings
    plain = map_h5_order(as_record(h5_order("H5-73", datetime.now(UTC))))
    assert not plain.order.receiver.masked
    assert plain.warnings == ()


@pytest.mark.parametrize("schema", ["h5.order.v2", None])
def test_an_unknown_schema_version_is_named(schema: str | None) -> None:
    """A payload of another schema fails naming ``schema`` and the value."""
    payload = {**h5_order("H5-74", datetime.now(UTC)), "schema": schema}
    with pytest.raises(InvalidOrder, match="schema"):
        map_h5_order(as_record(payload))


# -- secrets -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_secrets_never_appear_in_reprs_logs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The API token and webhook secrets stay out of reprs, log records and errors."""
    caplog.set_level(logging.DEBUG)
    raised: list[BaseException] = []
    with FakeH5Store() as store:
        async with H5Channel("h5-store", config(store, timeout=0.2, max_wait=0)) as channel:
            shown = [repr(channel), repr(channel._verifier), repr(channel._http)]
            for kind in ("5xx", "hang", "429"):
                store.fail_next(10, kind)
                with pytest.raises(ChannelUnavailable) as caught:
                    await channel.fetch_orders(past_window(store), None)
                raised.append(caught.value)
            store.fail_next(0)
            store.add_order("H5-80", store.now())
            headers, body = store.webhook("H5-80")
            with pytest.raises(SignatureInvalid) as forged:
                channel.verify_webhook(headers, body + b" ", store.now())
            raised.append(forged.value)
            store.expire_credentials()
            with pytest.raises(ChannelAuthExpired) as expired:
                await channel.fetch_orders(past_window(store), None)
            raised.append(expired.value)
    with pytest.raises(InvalidInput) as bad:
        H5Channel("h5-store", {"base_url": "ftp://x", "api_token": 5, "webhook_secrets": [3]})
    raised.append(bad.value)
    texts = shown + ["".join(traceback.format_exception(error)) + repr(error) for error in raised]
    texts += [record.getMessage() + repr(vars(record)) for record in caplog.records]
    for secret in (H5_TOKEN, H5_SECRET, H5_SECRET.removeprefix("whsec_")):
        assert not [text for text in texts if secret in text], secret


def test_config_problems_are_named_together() -> None:
    """Missing, malformed and unknown keys are reported in one InvalidInput."""
    with pytest.raises(InvalidInput) as caught:
        H5Channel("h5", {"base_url": "ftp://store", "page_size": 500, "api_tokn": "x"})
    fields = {error.field for error in caught.value.errors}
    assert fields == {"base_url", "api_token", "webhook_secrets", "page_size", "api_tokn"}


@pytest.mark.anyio
async def test_all_pages_of_a_window_are_read_in_order(
    store: FakeH5Store, channel: H5Channel
) -> None:
    """45 orders in pages of 20: pages 1, 2, 3, each with the total 45."""
    window = past_window(store)
    for index in range(45):
        store.add_order(f"H5-{100 + index}", window.start + timedelta(minutes=1, seconds=index))
    pages = await fetch_window(channel, window)
    assert [page.total for page in pages] == [45, 45, 45]
    assert [query["page"] for _, _, query in store.requests] == ["1", "2", "3"]
    assert len({r.external_id for page in pages for r in page.records}) == 45
