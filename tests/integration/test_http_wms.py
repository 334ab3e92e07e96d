"""The HTTP WMS stock feed over real HTTP against a local fake WMS, applied to real storages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import stamina

from fakes.wms_server import FakeWms
from ordercore import ManualClock, OrderCore, registry
from ordercore.errors import SignatureInvalid, WarehouseFeedError
from ordercore.ports.warehouses import WarehousePort
from ordercore_adapters.warehouses import HttpWmsFeed

ATTEMPTS = 3


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=ATTEMPTS, cap=True):
        yield


@pytest.fixture
def wms() -> Iterator[FakeWms]:
    with FakeWms() as fake:
        fake.add_page("b1", [{"sku": "A", "warehouse": "SH", "on_hand": 10}])
        fake.add_page(
            "b2",
            [
                {"sku": "A", "warehouse": "SH", "delta": -3},
                {"sku": "B", "warehouse": "GZ", "on_hand": 4},
            ],
        )
        yield fake


def _feed(wms: FakeWms, *, secret: str | None = None, timeout: float = 2.0) -> HttpWmsFeed:
    return HttpWmsFeed(
        "wms-east",
        wms.base_url,
        key_id=wms.key_id,
        secret=secret or wms.secret,
        timeout=timeout,
    )


@pytest.fixture(params=["memory", "sqlite"])
async def core(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[OrderCore]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/wms.db"
    async with OrderCore.open(url, clock=ManualClock()) as opened:
        yield opened


@pytest.mark.anyio
async def test_sync_pages_through_the_feed_and_applies_each_page(
    wms: FakeWms, core: OrderCore
) -> None:
    """sync_feed reads every page by cursor, sets and adjusts on_hand, and keeps the cursor."""
    async with _feed(wms) as feed:
        assert isinstance(feed, WarehousePort)
        report = await core.warehouses.sync_feed(feed)
    assert [b.batch_id for b in report.batches] == ["b1", "b2"]
    assert (await core.inventory.stock("A", "SH")).on_hand == 7
    assert (await core.inventory.stock("B", "GZ")).on_hand == 4
    assert await core.warehouses.feed_cursor("wms-east") == "p2"
    assert [r.get("cursor") for r in wms.requests] == [None, "p1"]


@pytest.mark.anyio
async def test_a_second_sync_starts_at_the_stored_cursor(wms: FakeWms, core: OrderCore) -> None:
    """Only pages added since the last sync are read and applied."""
    async with _feed(wms) as feed:
        await core.warehouses.sync_feed(feed)
        wms.add_page("b3", [{"sku": "A", "warehouse": "SH", "delta": 5}])
        report = await core.warehouses.sync_feed(feed)
    assert [b.batch_id for b in report.batches] == ["b3"]
    assert (await core.inventory.stock("A", "SH")).on_hand == 12


@pytest.mark.anyio
async def test_transient_5xx_answers_are_retried(wms: FakeWms) -> None:
    """Two 503s then a page: the page is applied, three requests were made for it."""
    wms.fail_next(ATTEMPTS - 1, "5xx")
    async with _feed(wms) as feed:
        batch = await feed.fetch_stock(None)
    assert batch.batch_id == "b1"
    assert len(wms.requests) == ATTEMPTS


@pytest.mark.anyio
async def test_5xx_past_the_retries_is_a_transient_feed_error(wms: FakeWms) -> None:
    """A WMS down through every attempt raises WarehouseFeedError marked transient."""
    wms.fail_next(ATTEMPTS, "5xx")
    async with _feed(wms) as feed:
        with pytest.raises(WarehouseFeedError) as caught:
            await feed.fetch_stock(None)
    assert caught.value.transient
    assert caught.value.warehouse == "wms-east"


@pytest.mark.anyio
async def test_a_hanging_wms_times_out_as_a_transient_error(wms: FakeWms) -> None:
    """No answer within the timeout, on every attempt: a transient WarehouseFeedError."""
    wms.fail_next(ATTEMPTS, "hang")
    async with _feed(wms, timeout=0.2) as feed:
        with pytest.raises(WarehouseFeedError) as caught:
            await feed.fetch_stock(None)
    assert caught.value.transient


@pytest.mark.anyio
async def test_an_answer_with_a_bad_signature_is_refused(wms: FakeWms, core: OrderCore) -> None:
    """A page signed with another secret raises SignatureInvalid and nothing is applied."""
    wms.fail_next(1, "bad_signature")
    async with _feed(wms) as feed:
        with pytest.raises(SignatureInvalid):
            await core.warehouses.sync_feed(feed)
    assert await core.inventory.levels() == []
    assert await core.warehouses.feed_cursor("wms-east") is None


@pytest.mark.anyio
async def test_an_unsigned_answer_is_refused(wms: FakeWms) -> None:
    """A page without a signature is not used."""
    wms.fail_next(1, "unsigned")
    async with _feed(wms) as feed:
        with pytest.raises(SignatureInvalid):
            await feed.fetch_stock(None)


@pytest.mark.anyio
async def test_requests_signed_with_a_wrong_secret_are_refused_by_the_wms(wms: FakeWms) -> None:
    """The WMS answers 401 to a bad request signature: a permanent error, not retried."""
    async with _feed(wms, secret="wrong") as feed:
        with pytest.raises(WarehouseFeedError) as caught:
            await feed.fetch_stock(None)
    assert not caught.value.transient
    assert wms.refused == 1
    assert "wrong" not in str(caught.value)


@pytest.mark.anyio
async def test_a_page_changed_between_reads_is_refused(wms: FakeWms, core: OrderCore) -> None:
    """The same batch read again with other entries raises; the first application stands."""
    async with _feed(wms) as feed:
        first = await feed.fetch_stock(None)
        await core.warehouses.apply_feed(feed.name, first)
        wms.change_page(0, [{"sku": "A", "warehouse": "SH", "on_hand": 99}])
        changed = await feed.fetch_stock(None)
    assert changed.batch_id == first.batch_id
    with pytest.raises(WarehouseFeedError) as caught:
        await core.warehouses.apply_feed(feed.name, changed)
    assert not caught.value.transient
    assert (await core.inventory.stock("A", "SH")).on_hand == 10


@pytest.mark.anyio
async def test_a_page_read_twice_unchanged_is_applied_once(wms: FakeWms, core: OrderCore) -> None:
    """Re-reading a cursor (a retry, a second process) applies its deltas once."""
    async with _feed(wms) as feed:
        await core.warehouses.sync_feed(feed)
        again = await feed.fetch_stock("p1")
    result = await core.warehouses.apply_feed("wms-east", again)
    assert result.duplicate
    assert (await core.inventory.stock("A", "SH")).on_hand == 7


def test_the_adapter_is_registered_under_the_warehouses_entry_point() -> None:
    """registry.load('ordercore.warehouses', 'http_wms') finds the HTTP feed."""
    assert registry.load("ordercore.warehouses", "http_wms") is HttpWmsFeed
