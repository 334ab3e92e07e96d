"""The flash-sale scenario as a library function, on the in-memory storage."""

from __future__ import annotations

import gc
import json

import pytest

from ordercore.config import Settings
from ordercore.errors import InvalidInput, UnknownAdapter
from ordercore.loadtest import (
    FlashSaleConfig,
    _ChildResult,
    _jobs,
    redact,
    run_flash_sale,
    url_scheme,
)

REQUIRED_KEYS = {
    "buyers",
    "stock",
    "successes",
    "rejected",
    "oversold",
    "final_sellable",
    "reservations_per_s",
    "p50_ms",
    "p99_ms",
    "errors",
    "drift",
    "exact",
    "db",
    "peak_rss_mb",
    "elapsed_s",
    "requests_per_s",
    "processes",
    "coalesce",
    "coalesced",
    "batch_size",
    "process_successes",
}


@pytest.mark.anyio
async def test_flash_sale_sells_exactly_the_stock_and_no_more() -> None:
    """2,000 buyers racing for 300 units get exactly 300 reservations and 1,700 rejections."""
    report = await run_flash_sale(FlashSaleConfig("memory://", buyers=2_000, stock=300))

    assert report.successes == 300
    assert report.rejected == 1_700
    assert report.errors == 0
    assert report.oversold == 0
    assert report.reserved == 300
    assert report.final_sellable == 0
    assert report.drift == ()
    assert report.exact
    assert report.passed
    assert report.concurrency == 2_000
    assert 0 < report.p50_ms <= report.p99_ms
    assert report.reservations_per_s > 0
    assert report.requests_per_s >= report.reservations_per_s


@pytest.mark.anyio
async def test_bounded_concurrency_is_exact_too() -> None:
    """With --concurrency 8 the workers share the buyers and the outcome is still exact."""
    report = await run_flash_sale(
        FlashSaleConfig("memory://", buyers=500, stock=120, concurrency=8)
    )

    assert report.concurrency == 8
    assert (report.successes, report.rejected, report.oversold) == (120, 380, 0)
    assert report.exact


@pytest.mark.anyio
async def test_more_stock_than_buyers_leaves_the_rest_sellable() -> None:
    """Fewer buyers than units: every buyer succeeds and the remainder stays sellable."""
    report = await run_flash_sale(FlashSaleConfig("memory://", buyers=50, stock=80))

    assert (report.successes, report.rejected, report.final_sellable) == (50, 0, 30)
    assert report.exact


@pytest.mark.anyio
async def test_zero_stock_rejects_every_buyer() -> None:
    """With no stock every buyer is rejected (not an error) and the run is exact."""
    report = await run_flash_sale(FlashSaleConfig("memory://", buyers=20, stock=0))

    assert (report.successes, report.rejected, report.errors) == (0, 20, 0)
    assert report.exact


@pytest.mark.anyio
async def test_progress_reaches_the_total() -> None:
    """The progress callback counts up and ends at (buyers, buyers)."""
    seen: list[tuple[int, int]] = []
    await run_flash_sale(
        FlashSaleConfig("memory://", buyers=1_000, stock=10),
        on_progress=lambda done, total: seen.append((done, total)),
    )

    assert seen[-1] == (1_000, 1_000)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"buyers": 0}, "buyers"),
        ({"buyers": -5}, "buyers"),
        ({"stock": -1}, "stock"),
        ({"concurrency": 0}, "concurrency"),
        ({"sku": " "}, "sku"),
        ({"processes": 0}, "processes"),
        ({"processes": -2}, "processes"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -1}, "batch_size"),
        ({"batch_size": 10_001}, "batch_size"),
        ({"coalesce": "sometimes"}, "coalesce"),
    ],
)
async def test_bad_parameters_raise_invalid_input(changes: dict[str, object], field: str) -> None:
    """Bad buyers, stock, concurrency, SKU, processes, batch size or mode raise InvalidInput."""
    config = FlashSaleConfig("memory://", **changes)  # type: ignore[arg-type]

    with pytest.raises(InvalidInput) as caught:
        await run_flash_sale(config)

    assert [error.field for error in caught.value.errors] == [field]


@pytest.mark.anyio
async def test_unknown_scheme_raises_unknown_adapter_listing_known_ones() -> None:
    """A URL with an unknown scheme raises UnknownAdapter naming the known schemes."""
    with pytest.raises(UnknownAdapter, match="memory"):
        await run_flash_sale(FlashSaleConfig("nosuch://x", buyers=1, stock=1))


@pytest.mark.anyio
async def test_report_dict_is_json_with_the_required_keys() -> None:
    """to_dict() holds every key --json promises and survives a JSON round trip."""
    report = await run_flash_sale(FlashSaleConfig("memory://", buyers=10, stock=5))

    data = json.loads(json.dumps(report.to_dict()))

    assert not REQUIRED_KEYS - data.keys()
    assert data["db"] == "memory"


def test_url_scheme_and_redact_never_reveal_a_password() -> None:
    """Only the scheme of a URL is shown, and a password inside any message is masked."""
    url = "postgresql+psycopg://shop:s3cret@db.example:5432/shop"

    assert url_scheme(url) == "postgresql+psycopg"
    masked = redact(f"cannot reach {url}; auth s3cret failed", url)
    assert "s3cret" not in masked
    assert "db.example" not in masked


@pytest.mark.anyio
async def test_several_processes_on_memory_raise_invalid_input_naming_processes() -> None:
    """processes=2 on memory:// raises InvalidInput on `processes`: each process has its own."""
    with pytest.raises(InvalidInput, match="memory storage") as caught:
        await run_flash_sale(FlashSaleConfig("memory://", buyers=10, stock=5, processes=2))

    assert [error.field for error in caught.value.errors] == ["processes"]


@pytest.mark.anyio
async def test_more_processes_than_buyers_raise_invalid_input() -> None:
    """processes > buyers is refused on `processes`: every process needs a buyer."""
    config = FlashSaleConfig("sqlite:///unused.db", buyers=2, stock=1, processes=3)

    with pytest.raises(InvalidInput) as caught:
        await run_flash_sale(config)

    assert [error.field for error in caught.value.errors] == ["processes"]


@pytest.mark.anyio
async def test_memory_defaults_to_auto_with_the_coalescer() -> None:
    """By default the mode is "auto", and memory (which prefers batching) is coalesced."""
    report = await run_flash_sale(FlashSaleConfig("memory://", buyers=50, stock=10))

    assert (report.coalesce, report.coalesced, report.processes) == ("auto", True, 1)
    assert report.process_successes == (10,)
    assert report.to_dict()["coalesced"] is True


@pytest.mark.anyio
async def test_coalesce_off_reserves_one_request_at_a_time() -> None:
    """coalesce="off" runs without the coalescer, still exact."""
    report = await run_flash_sale(FlashSaleConfig("memory://", buyers=50, stock=10, coalesce="off"))

    assert (report.coalesce, report.coalesced) == ("off", False)
    assert report.process_successes == (10,)


@pytest.mark.anyio
async def test_coalesce_on_uses_the_coalescer_and_stays_exact() -> None:
    """coalesce="on" with batch_size=16 makes the core group reservations, still exact."""
    report = await run_flash_sale(
        FlashSaleConfig("memory://", buyers=1_000, stock=100, coalesce="on", batch_size=16)
    )

    assert (report.coalesce, report.coalesced, report.batch_size) == ("on", True, 16)
    assert (report.successes, report.rejected, report.oversold) == (100, 900, 0)
    assert report.exact


def test_coalesce_and_batch_size_override_the_given_settings() -> None:
    """effective_settings() keeps the caller's settings and applies coalesce and batch_size."""
    base = Settings(default_warehouse="north", coalesce_reservations="on")
    config = FlashSaleConfig("memory://", settings=base, coalesce="off", batch_size=64)

    effective = config.effective_settings()

    assert effective.coalesce_reservations == "off"
    assert effective.coalesce_batch_size == 64
    assert effective.default_warehouse == "north"
    assert FlashSaleConfig("memory://", settings=base).effective_settings() is base


def test_buyers_are_split_evenly_over_processes_once_each() -> None:
    """10 buyers over 3 processes: shares of 3, 3 and 4 covering every index exactly once."""
    config = FlashSaleConfig("sqlite:///x.db", buyers=10, processes=3, concurrency=5)

    jobs = _jobs(config, Settings(), "SKU")

    covered = [i for job in jobs for i in range(job.first, job.stop)]
    assert covered == list(range(10))
    assert [job.stop - job.first for job in jobs] == [3, 3, 4]
    assert sum(job.workers for job in jobs) == 5


def test_merged_processes_span_earliest_start_to_latest_end() -> None:
    """Merging sums counts, spans first start to last end and pools the latency samples."""

    def part(
        successes: int, started_at: float, wall: float, latencies: list[float]
    ) -> _ChildResult:
        return _ChildResult(
            successes=successes,
            rejected=10 - successes,
            errors=0,
            workers=4,
            started_at=started_at,
            wall=wall,
            latencies=latencies,
            samples=[],
            peak_rss_mb=50.0,
            coalesced=True,
            by_process=(successes,),
        )

    merged = _ChildResult.merge([part(6, 100.0, 2.0, [0.1, 0.3]), part(4, 100.5, 2.5, [0.2])])

    assert (merged.successes, merged.rejected, merged.workers) == (10, 10, 8)
    assert merged.wall == pytest.approx(3.0)
    assert merged.latencies == [0.1, 0.2, 0.3]
    assert merged.by_process == (6, 4)


@pytest.mark.anyio
async def test_the_sale_runs_on_a_frozen_heap_and_thaws_it_after() -> None:
    """The reserve phase freezes the start-up heap (GC walks only the sale) and undoes it."""
    frozen_during: list[int] = []
    assert gc.get_freeze_count() == 0
    await run_flash_sale(
        FlashSaleConfig("memory://", buyers=200, stock=10),
        on_progress=lambda done, total: frozen_during.append(gc.get_freeze_count()),
    )
    assert frozen_during
    assert min(frozen_during) > 0
    assert gc.get_freeze_count() == 0


@pytest.mark.anyio
async def test_a_heap_the_caller_froze_stays_frozen() -> None:
    """A process that froze its own heap keeps it frozen after a sale."""
    gc.freeze()
    try:
        await run_flash_sale(FlashSaleConfig("memory://", buyers=20, stock=5))
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
