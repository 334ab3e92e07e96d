"""The flash-sale load test: N buyers race for M units of one SKU, and nothing oversells.

::

    report = await run_flash_sale(FlashSaleConfig("sqlite:///shop.db", buyers=10_000, stock=1_000))
    assert report.exact

The scenario opens a core on the URL, receives ``stock`` units of one SKU into the
default warehouse, starts ``buyers`` anyio tasks together (or ``concurrency`` workers
that share them) and has each reserve one unit under its own order id. Afterwards it
reads the storage back: ``reserved`` against received stock, the sellable quantity, and
``core.inventory.verify()``. The run is ``exact`` when exactly ``min(buyers, stock)``
reservations succeeded, nothing oversold and no counter drifted.

Reruns on one database stay exact: order ids carry a fresh run id, and when the SKU
already has stock levels there, the run uses ``<sku>-<run id>`` instead and says so in
``note``.

This module is a library (the ``ordercore loadtest`` and ``demo`` commands render its
report); it knows nothing about the command line.
"""

from __future__ import annotations

import math
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias
from urllib.parse import urlsplit

import anyio

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.errors import FieldError, InsufficientStock, InvalidInput

__all__ = [
    "DEFAULT_SKU",
    "FlashSaleConfig",
    "FlashSaleReport",
    "ProgressCallback",
    "redact",
    "run_flash_sale",
    "url_scheme",
]

DEFAULT_SKU = "FLASH-1"

ProgressCallback: TypeAlias = Callable[[int, int], None]
"""Called as ``(done, total)``: once with 0 as the buyers start, then about 200 times."""

_ERROR_SAMPLES = 5


def url_scheme(url: str) -> str:
    """The scheme of a storage URL (``postgresql+psycopg``), safe to print: no host, no password."""
    scheme, separator, _ = url.partition(":")
    return scheme if separator and scheme else "<no scheme>"


def redact(text: str, url: str) -> str:
    """``text`` with the URL and its password (if any) masked, for messages and reports."""
    if url and url in text:
        text = text.replace(url, f"{url_scheme(url)}://***")
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***")
    return text


@dataclass(frozen=True, slots=True)
class FlashSaleConfig:
    """What one flash-sale run does. Validated by :func:`run_flash_sale` (InvalidInput)."""

    url: str
    """Storage URL: ``memory://``, ``sqlite:///path.db``, ``postgresql+psycopg://host/db``."""
    buyers: int = 10_000
    """Buyers, each reserving one unit under its own order id (> 0)."""
    stock: int = 1_000
    """Units received before the sale (>= 0)."""
    concurrency: int | None = None
    """At most this many reservations in flight; None starts every buyer at once."""
    sku: str = DEFAULT_SKU
    """SKU on sale; replaced by ``<sku>-<run_id>`` when the database already stocks it."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    """Prefix of this run's order ids (``<run_id>-<i>``), unique per run."""
    settings: Settings | None = None
    """Core settings for the run (default: ``Settings()``, which migrates on open)."""

    def validate(self) -> None:
        """Raise InvalidInput naming every bad parameter."""
        errors: list[FieldError] = []
        if not _is_int(self.buyers) or self.buyers <= 0:
            errors.append(FieldError("buyers", "must be > 0", self.buyers))
        if not _is_int(self.stock) or self.stock < 0:
            errors.append(FieldError("stock", "must be >= 0", self.stock))
        if self.concurrency is not None and (
            not _is_int(self.concurrency) or self.concurrency <= 0
        ):
            errors.append(FieldError("concurrency", "must be > 0 (or None: all)", self.concurrency))
        if not isinstance(self.sku, str) or not self.sku.strip():
            errors.append(FieldError("sku", "must not be empty", self.sku))
        if not isinstance(self.run_id, str) or not self.run_id.strip():
            errors.append(FieldError("run_id", "must not be empty", self.run_id))
        if not isinstance(self.url, str) or not self.url:
            errors.append(FieldError("url", "must not be empty", "<empty>"))
        if errors:
            raise InvalidInput("flash-sale load test", errors)


@dataclass(frozen=True, slots=True)
class FlashSaleReport:
    """The outcome of one flash-sale run; :meth:`to_dict` is what ``--json`` prints."""

    db: str
    """The storage URL's scheme only (a full URL may carry a password)."""
    sku: str
    run_id: str
    buyers: int
    stock: int
    concurrency: int
    """Reservations allowed in flight (= buyers when all started at once)."""
    successes: int
    rejected: int
    """Buyers turned away with InsufficientStock."""
    errors: int
    """Buyers that failed with anything else; any makes the run fail."""
    oversold: int
    """Units held beyond received stock, by the storage's counters or by successes."""
    reserved: int
    """The storage's reserved counter for the SKU after the sale."""
    final_sellable: int
    drift: tuple[str, ...]
    """What ``core.inventory.verify()`` found; empty when every counter matches."""
    exact: bool
    """successes == min(buyers, stock), oversold == 0 and no drift."""
    reservations_per_s: float
    """Successful reservations per second of the reserve phase's wall time."""
    requests_per_s: float
    """Reserve calls (granted or not) per second of the reserve phase's wall time."""
    p50_ms: float
    p99_ms: float
    reserve_wall_s: float
    elapsed_s: float
    """The whole run: open (and migrate), receive, reserve, verify."""
    peak_rss_mb: float
    note: str = ""
    error_samples: tuple[str, ...] = ()
    """The first few distinct error messages, redacted."""

    @property
    def passed(self) -> bool:
        """Exact and without errors: the command exits 0 only then."""
        return self.exact and self.errors == 0

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready values, keys in field order."""
        return {
            "db": self.db,
            "sku": self.sku,
            "run_id": self.run_id,
            "buyers": self.buyers,
            "stock": self.stock,
            "concurrency": self.concurrency,
            "successes": self.successes,
            "rejected": self.rejected,
            "errors": self.errors,
            "oversold": self.oversold,
            "reserved": self.reserved,
            "final_sellable": self.final_sellable,
            "drift": list(self.drift),
            "exact": self.exact,
            "reservations_per_s": self.reservations_per_s,
            "requests_per_s": self.requests_per_s,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "reserve_wall_s": self.reserve_wall_s,
            "elapsed_s": self.elapsed_s,
            "peak_rss_mb": self.peak_rss_mb,
            "note": self.note,
            "error_samples": list(self.error_samples),
        }


async def run_flash_sale(
    config: FlashSaleConfig, *, on_progress: ProgressCallback | None = None
) -> FlashSaleReport:
    """Run the flash-sale scenario on ``config.url`` and report what the storage holds after.

    Raises InvalidInput for bad parameters and whatever ``OrderCore.open`` raises
    (UnknownAdapter, StorageUnavailable, ...); a buyer's failure is counted, not raised.
    """
    config.validate()
    started = time.perf_counter()
    async with OrderCore.open(config.url, settings=config.settings) as core:
        warehouse = core.settings.default_warehouse
        sku, note = config.sku, ""
        if await core.inventory.levels(config.sku):
            sku = f"{config.sku}-{config.run_id}"
            note = (
                f"SKU {config.sku!r} already has stock in this database; "
                f"this run uses {sku!r} so its figures stay exact"
            )
        if config.stock > 0:
            await core.inventory.receive(
                sku, config.stock, warehouse=warehouse, reference=f"loadtest {config.run_id}"
            )
        else:
            await core.inventory.count(
                sku, 0, warehouse=warehouse, reference=f"loadtest {config.run_id}"
            )

        tally = await _reserve_phase(core, config, sku, on_progress)

        levels = await core.inventory.levels(sku)
        reserved = sum(level.reserved for level in levels)
        on_hand = sum(level.on_hand for level in levels)
        final_sellable = await core.inventory.sellable(sku)
        drift = tuple(redact(str(item), config.url) for item in await core.inventory.verify())

    oversold = max(0, reserved - config.stock, reserved - on_hand, tally.successes - config.stock)
    exact = tally.successes == min(config.buyers, config.stock) and oversold == 0 and not drift
    wall = tally.wall
    latencies = sorted(tally.latencies)
    return FlashSaleReport(
        db=url_scheme(config.url),
        sku=sku,
        run_id=config.run_id,
        buyers=config.buyers,
        stock=config.stock,
        concurrency=tally.workers,
        successes=tally.successes,
        rejected=tally.rejected,
        errors=tally.errors,
        oversold=oversold,
        reserved=reserved,
        final_sellable=final_sellable,
        drift=drift,
        exact=exact,
        reservations_per_s=round(tally.successes / wall, 1) if wall > 0 else 0.0,
        requests_per_s=round(config.buyers / wall, 1) if wall > 0 else 0.0,
        p50_ms=round(_percentile(latencies, 50) * 1000, 3),
        p99_ms=round(_percentile(latencies, 99) * 1000, 3),
        reserve_wall_s=round(wall, 3),
        elapsed_s=round(time.perf_counter() - started, 3),
        peak_rss_mb=_peak_rss_mb(),
        note=note,
        error_samples=tuple(redact(sample, config.url) for sample in tally.samples),
    )


@dataclass(slots=True)
class _Tally:
    """Counters of the reserve phase (one event loop: no locks needed)."""

    latencies: list[float]
    workers: int
    successes: int = 0
    rejected: int = 0
    errors: int = 0
    done: int = 0
    ready: int = 0
    wall: float = 0.0
    samples: list[str] = field(default_factory=list)


async def _reserve_phase(
    core: OrderCore, config: FlashSaleConfig, sku: str, on_progress: ProgressCallback | None
) -> _Tally:
    """Start every worker, open the gate at once, and time each reserve call."""
    total = config.buyers
    workers = min(config.concurrency or total, total)
    tally = _Tally(latencies=[0.0] * total, workers=workers)
    indexes = iter(range(total))  # shared: each buyer index is taken by exactly one worker
    all_ready = anyio.Event()
    gate = anyio.Event()
    reserve = core.inventory.reserve
    run_id = config.run_id
    step = max(1, total // 200)
    clock = time.perf_counter

    async def worker() -> None:
        tally.ready += 1
        if tally.ready == workers:
            all_ready.set()
        await gate.wait()
        for i in indexes:
            begun = clock()
            try:
                await reserve(f"{run_id}-{i}", {sku: 1}, buyer_id=f"buyer-{i}")
            except InsufficientStock:
                tally.rejected += 1
            except Exception as exc:  # a failed buyer is a finding, not a crash of the run
                tally.errors += 1
                message = f"{type(exc).__name__}: {exc}"
                if len(tally.samples) < _ERROR_SAMPLES and message not in tally.samples:
                    tally.samples.append(message)
            else:
                tally.successes += 1
            tally.latencies[i] = clock() - begun
            tally.done += 1
            if on_progress is not None and (tally.done % step == 0 or tally.done == total):
                on_progress(tally.done, total)

    async with anyio.create_task_group() as group:
        for _ in range(workers):
            group.start_soon(worker)
        await all_ready.wait()
        if on_progress is not None:
            on_progress(0, total)
        opened = clock()
        gate.set()
    tally.wall = clock() - opened
    return tally


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _percentile(ordered: list[float], percent: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(len(ordered) * percent / 100))
    return ordered[min(rank, len(ordered)) - 1]


def _peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (0.0 where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    per_unit = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return round(peak * per_unit / 2**20, 1)
