"""POS file import: idempotent by file hash, content-versioned orders, rejects, ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ordercore import OrderCore, Settings
from ordercore.domain.intake import RunStatus
from ordercore.errors import InvalidInput
from ordercore.ports.clock import ManualClock
from ordercore.services.imports import (
    ImportService,
    PosFileReader,
    PosMapping,
    content_fingerprint,
)
from ordercore_adapters.channels.pos_file import map_rows, read_pos_file

START = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)
HEADER = "order_no,store,created_at,sku,qty,unit_price\n"
GOOD = (
    "A1,main,2026-11-10 09:00,SKU-1,2,10.00\n"
    "A1,main,2026-11-10 09:00,SKU-2,1,5.00\n"
    "A2,main,2026-11-10 10:00,SKU-1,1,10.00\n"
)


def csv(*rows: str) -> bytes:
    return (HEADER + "".join(rows)).encode()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def core(clock: ManualClock) -> AsyncIterator[OrderCore]:
    async with OrderCore.open("memory://", clock=clock, settings=Settings()) as opened:
        await opened.inventory.receive("SKU-1", 100)
        await opened.inventory.receive("SKU-2", 100)
        yield opened


@pytest.mark.anyio
async def test_import_stores_orders_reserves_stock_and_records_the_run(core: OrderCore) -> None:
    """A good file creates its orders once, reserves their stock, and logs trigger import."""
    report = await core.imports.import_pos_file(csv(GOOD), "day1.csv")
    assert (report.orders, report.stored.created, report.already_imported) == (2, 2, False)
    assert (await core.inventory.stock("SKU-1")).reserved == 3
    [run] = await core.intake.runs("pos")
    assert (run.trigger, run.status, run.created, run.id) == (
        "import",
        RunStatus.SUCCEEDED,
        2,
        report.run_id,
    )


@pytest.mark.anyio
async def test_same_file_again_is_already_imported_and_changes_nothing(
    core: OrderCore, clock: ManualClock
) -> None:
    """The same bytes a second time report already_imported; no run, no stock moved."""
    await core.imports.import_pos_file(csv(GOOD), "day1.csv")
    clock.advance(timedelta(hours=1))
    again = await core.imports.import_pos_file(csv(GOOD), "renamed.csv")
    assert again.already_imported
    assert (again.stored.created, again.stored.updated, again.run_id) == (0, 0, None)
    assert len(await core.intake.runs("pos")) == 1
    assert (await core.inventory.stock("SKU-1")).reserved == 3


@pytest.mark.anyio
async def test_corrected_file_updates_changed_orders_and_keeps_the_rest_unchanged(
    core: OrderCore, clock: ManualClock
) -> None:
    """A corrected file: the changed order is UPDATED at import time, the other UNCHANGED."""
    await core.imports.import_pos_file(csv(GOOD), "day1.csv")
    first = await core.orders.get("pos:A2")
    clock.advance(timedelta(hours=1))
    corrected = GOOD.replace("A2,main,2026-11-10 10:00,SKU-1,1", "A2,main,2026-11-10 10:00,SKU-1,3")
    report = await core.imports.import_pos_file(csv(corrected), "day1-fixed.csv")
    assert (report.stored.created, report.stored.updated, report.stored.unchanged) == (0, 1, 1)
    a1, a2 = await core.orders.get("pos:A1"), await core.orders.get("pos:A2")
    assert a2 is not None
    assert a1 is not None
    assert first is not None
    assert a2.lines[0].quantity == 3
    assert a2.source_modified_at == clock.now()
    assert a1.source_modified_at == START


@pytest.mark.anyio
async def test_newest_import_wins_even_when_it_restores_older_content(
    core: OrderCore, clock: ManualClock
) -> None:
    """Import v1, v2, then v1 in a new file: the store ends at v1's content, newest import."""
    v2 = GOOD.replace("SKU-1,1,10.00", "SKU-1,4,10.00")
    await core.imports.import_pos_file(csv(GOOD), "v1.csv")
    await core.imports.import_pos_file(csv(v2), "v2.csv")
    restored = csv(GOOD, "A3,main,2026-11-10 11:00,SKU-2,1,5.00\n")
    report = await core.imports.import_pos_file(restored, "v3.csv")
    assert (report.stored.created, report.stored.updated, report.stored.unchanged) == (1, 1, 1)
    a2 = await core.orders.get("pos:A2")
    assert a2 is not None
    assert a2.lines[0].quantity == 1
    assert a2.source_modified_at is not None
    assert a2.source_modified_at > START


@pytest.mark.anyio
async def test_bad_rows_are_kept_as_rejects_with_line_numbers(core: OrderCore) -> None:
    """An order with a bad row is rejected whole, listed by line, and kept for replay."""
    data = csv(GOOD, "B1,main,2026-11-10 12:00,SKU-1,zero,10.00\n")
    report = await core.imports.import_pos_file(data, "day1.csv")
    assert report.stored.created == 2
    assert report.rejected_orders == 1
    assert [(r.line, r.order_no, r.column) for r in report.rejects] == [(5, "B1", "qty")]
    [kept] = await core.intake.rejects("pos")
    assert kept.external_id == "B1"
    assert kept.payload["lines"] == [5]
    [run] = await core.intake.runs("pos")
    assert run.rejected == 1


@pytest.mark.anyio
async def test_wholly_bad_file_raises_and_changes_nothing(core: OrderCore) -> None:
    """A file with no usable header raises InvalidInput; no orders, no run, no seen key."""
    with pytest.raises(InvalidInput, match="header"):
        await core.imports.import_pos_file(b"foo,bar\n1,2\n", "junk.csv")
    assert await core.orders.list() == []
    assert await core.intake.runs("pos") == []
    report = await core.imports.import_pos_file(csv(GOOD), "day1.csv")
    assert report.stored.created == 2


@pytest.mark.anyio
async def test_a_custom_reader_is_used_instead_of_pos_file(clock: ManualClock) -> None:
    """ImportService takes any PosFileReader; the core never needs the adapter itself."""
    calls: list[str] = []

    def reader(data: bytes, filename: str, *, channel: str) -> PosMapping:
        calls.append(filename)
        return map_rows(read_pos_file(data, filename), channel=channel)

    typed: PosFileReader = reader
    async with OrderCore.open("memory://", clock=clock) as core:
        imports = ImportService(core.storage, clock, core.intake, typed)
        await core.inventory.receive("SKU-1", 10)
        await core.inventory.receive("SKU-2", 10)
        report = await imports.import_pos_file(csv(GOOD), "x.csv", channel="shop-pos")
    assert calls == ["x.csv"]
    assert report.channel == "shop-pos"
    assert report.stored.created == 2


def test_content_fingerprint_ignores_identity_and_lifecycle() -> None:
    """Two versions that differ only in version and status history fingerprint alike."""
    mapped = map_rows(read_pos_file(csv(GOOD), "f.csv")).orders[0].order
    bumped = mapped.model_copy(update={"version": 7, "source_modified_at": START})
    assert content_fingerprint(mapped) == content_fingerprint(bumped)
    changed = mapped.model_copy(update={"remark": "fixed"})
    assert content_fingerprint(mapped) != content_fingerprint(changed)
