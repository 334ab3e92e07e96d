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

``coalesce`` and ``batch_size`` set the core's hot-SKU coalescer for the run
(``Settings.coalesce_reservations`` and ``coalesce_batch_size``); the report says
whether the core actually used it.

With ``processes=K`` (K > 1) the buyers are split evenly over K OS processes started
with the ``spawn`` method, each opening its own core on the same database: this process
prepares the database and checks it afterwards, the children wait at a barrier until
every one of them is ready, then compete for the stock together. Their counts are
summed, throughput is measured from the earliest child's start to the latest child's
end, and the latency percentiles cover every child's samples. A ``memory://`` storage
lives inside one process, so it takes ``processes=1`` only.

Reruns on one database stay exact: order ids carry a fresh run id, and when the SKU
already has stock levels there, the run uses ``<sku>-<run id>`` instead and says so in
``note``.

This module is a library (the ``ordercore loadtest`` and ``demo`` commands render its
report); it knows nothing about the command line.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import queue
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias
from urllib.parse import urlsplit

import anyio
import anyio.to_thread

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.errors import FieldError, InsufficientStock, InvalidInput, StorageError

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

__all__ = [
    "DEFAULT_SKU",
    "CoalesceMode",
    "FlashSaleConfig",
    "FlashSaleReport",
    "ProgressCallback",
    "redact",
    "run_flash_sale",
    "url_scheme",
]

DEFAULT_SKU = "FLASH-1"

CoalesceMode: TypeAlias = Literal["auto", "on", "off"]
"""``Settings.coalesce_reservations``: "auto" (where the storage prefers batching), "on", "off"."""

ProgressCallback: TypeAlias = Callable[[int, int], None]
"""Called as ``(done, total)``: once with 0 as the buyers start, then about 200 times."""

_ERROR_SAMPLES = 5
_COALESCE_MODES: tuple[CoalesceMode, ...] = ("auto", "on", "off")
_MAX_BATCH_SIZE = 10_000  # Settings.coalesce_batch_size's upper bound
_IN_PROCESS_STORAGES = frozenset({"memory"})
"""Storages whose data lives inside one process: several processes would not share it."""
_LATENCY_SAMPLES_PER_PROCESS = 100_000
"""A child sends at most this many latency samples (evenly spread over its sorted list)."""
_READY_TIMEOUT_S = 300.0
"""How long the processes may take to start and open their cores before the run fails."""
_POLL_S = 0.25


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
    """At most this many reservations in flight (over all processes); None: every buyer."""
    sku: str = DEFAULT_SKU
    """SKU on sale; replaced by ``<sku>-<run_id>`` when the database already stocks it."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    """Prefix of this run's order ids (``<run_id>-<i>``), unique per run."""
    settings: Settings | None = None
    """Core settings for the run (default: ``Settings()``, which migrates on open)."""
    coalesce: CoalesceMode | None = None
    """Overrides ``settings.coalesce_reservations`` ("auto", "on", "off"); None keeps it."""
    batch_size: int | None = None
    """Overrides ``settings.coalesce_batch_size`` (1..10,000); None keeps it."""
    processes: int = 1
    """OS processes sharing the buyers (1..buyers); more than 1 needs a shared database."""

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
        if self.coalesce is not None and self.coalesce not in _COALESCE_MODES:
            errors.append(FieldError("coalesce", "must be auto, on or off", self.coalesce))
        if self.batch_size is not None and (
            not _is_int(self.batch_size) or not 1 <= self.batch_size <= _MAX_BATCH_SIZE
        ):
            errors.append(
                FieldError("batch_size", f"must be within 1..{_MAX_BATCH_SIZE}", self.batch_size)
            )
        errors.extend(self._process_errors())
        if errors:
            raise InvalidInput("flash-sale load test", errors)

    def _process_errors(self) -> list[FieldError]:
        if not _is_int(self.processes) or self.processes < 1:
            return [FieldError("processes", "must be >= 1", self.processes)]
        if self.processes == 1:
            return []
        if _is_int(self.buyers) and self.processes > self.buyers:
            return [FieldError("processes", "must be <= buyers (each needs one)", self.processes)]
        url = self.url if isinstance(self.url, str) else ""
        storage = url.partition("://")[0].split("+", 1)[0].lower()
        if storage in _IN_PROCESS_STORAGES:
            return [
                FieldError(
                    "processes",
                    f"must be 1 with the {storage} storage (its data lives in one process; "
                    "several processes need a shared database: SQLite or PostgreSQL)",
                    self.processes,
                )
            ]
        return []

    def effective_settings(self) -> Settings:
        """``settings`` (or ``Settings()``) with ``coalesce`` and ``batch_size`` applied."""
        base = self.settings if self.settings is not None else Settings()
        changes: dict[str, object] = {}
        if self.coalesce is not None:
            changes["coalesce_reservations"] = self.coalesce
        if self.batch_size is not None:
            changes["coalesce_batch_size"] = self.batch_size
        return base.model_copy(update=changes) if changes else base


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
    """Reservations allowed in flight over all processes (= buyers when all start at once)."""
    processes: int
    """OS processes that ran the buyers."""
    coalesce: CoalesceMode
    """The coalescing setting of the run: "auto", "on" or "off"."""
    coalesced: bool
    """Whether the core actually grouped reservations (``core.inventory.coalescer``)."""
    batch_size: int
    """The coalescer's largest batch (``Settings.coalesce_batch_size``)."""
    successes: int
    process_successes: tuple[int, ...]
    """Successes per process, in process order (one entry when one process ran the buyers)."""
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
    """The reserve phase: from the first process's start to the last one's end."""
    elapsed_s: float
    """The whole run: open (and migrate), receive, start processes, reserve, verify."""
    peak_rss_mb: float
    """Peak resident memory of the process that ran the buyers (the largest, if several)."""
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
            "processes": self.processes,
            "coalesce": self.coalesce,
            "coalesced": self.coalesced,
            "batch_size": self.batch_size,
            "successes": self.successes,
            "process_successes": list(self.process_successes),
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
    With several processes, a process that fails outside its buyers raises StorageError.
    """
    config.validate()
    settings = config.effective_settings()
    started = time.perf_counter()
    async with OrderCore.open(config.url, settings=settings) as core:
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

        if config.processes == 1:
            tally = await _reserve_phase(
                core,
                config.run_id,
                sku,
                range(config.buyers),
                min(config.concurrency or config.buyers, config.buyers),
                on_progress,
            )
            phase = _ChildResult.of(tally, coalesced=core.inventory.coalescer is not None)
        else:
            phase = await _reserve_in_processes(config, settings, sku, on_progress)

        levels = await core.inventory.levels(sku)
        reserved = sum(level.reserved for level in levels)
        on_hand = sum(level.on_hand for level in levels)
        final_sellable = await core.inventory.sellable(sku)
        drift = tuple(redact(str(item), config.url) for item in await core.inventory.verify())

    oversold = max(0, reserved - config.stock, reserved - on_hand, phase.successes - config.stock)
    exact = phase.successes == min(config.buyers, config.stock) and oversold == 0 and not drift
    wall = phase.wall
    return FlashSaleReport(
        db=url_scheme(config.url),
        sku=sku,
        run_id=config.run_id,
        buyers=config.buyers,
        stock=config.stock,
        concurrency=phase.workers,
        processes=config.processes,
        coalesce=settings.coalesce_reservations,
        coalesced=phase.coalesced,
        batch_size=settings.coalesce_batch_size,
        successes=phase.successes,
        process_successes=phase.by_process,
        rejected=phase.rejected,
        errors=phase.errors,
        oversold=oversold,
        reserved=reserved,
        final_sellable=final_sellable,
        drift=drift,
        exact=exact,
        reservations_per_s=round(phase.successes / wall, 1) if wall > 0 else 0.0,
        requests_per_s=round(config.buyers / wall, 1) if wall > 0 else 0.0,
        p50_ms=round(_percentile(phase.latencies, 50) * 1000, 3),
        p99_ms=round(_percentile(phase.latencies, 99) * 1000, 3),
        reserve_wall_s=round(wall, 3),
        elapsed_s=round(time.perf_counter() - started, 3),
        peak_rss_mb=phase.peak_rss_mb if config.processes > 1 else _peak_rss_mb(),
        note=note,
        error_samples=tuple(redact(sample, config.url) for sample in phase.samples),
    )


# -- the reserve phase in this process ------------------------------------------------------


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
    started_at: float = 0.0
    """time.time() when the gate opened (comparable across processes)."""
    wall: float = 0.0
    samples: list[str] = field(default_factory=list)


async def _reserve_phase(
    core: OrderCore,
    run_id: str,
    sku: str,
    buyers: range,
    workers: int,
    on_progress: ProgressCallback | None,
    before_start: Callable[[], Awaitable[None]] | None = None,
) -> _Tally:
    """Start every worker, await ``before_start``, open the gate at once, time each call."""
    total = len(buyers)
    first = buyers.start
    tally = _Tally(latencies=[0.0] * total, workers=workers)
    indexes = iter(buyers)  # shared: each buyer index is taken by exactly one worker
    all_ready = anyio.Event()
    gate = anyio.Event()
    reserve = core.inventory.reserve
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
            tally.latencies[i - first] = clock() - begun
            tally.done += 1
            if on_progress is not None and (tally.done % step == 0 or tally.done == total):
                on_progress(tally.done, total)

    with _heap_frozen():
        async with anyio.create_task_group() as group:
            for _ in range(workers):
                group.start_soon(worker)
            await all_ready.wait()
            if before_start is not None:
                await before_start()
            if on_progress is not None:
                on_progress(0, total)
            tally.started_at = time.time()
            opened = clock()
            gate.set()
        tally.wall = clock() - opened
    return tally


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """Freeze what exists before the sale (the open core, its stock), as a server does
    after start-up, so the collector walks only what the sale makes (docs/performance.md).

    Left alone when the process already froze its heap: unfreezing is process-wide.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# -- the reserve phase in several processes --------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ChildJob:
    """One process's share of the buyers (pickled to a spawned process)."""

    child: int
    url: str
    settings: Settings
    sku: str
    run_id: str
    first: int
    stop: int
    workers: int


@dataclass(frozen=True, slots=True)
class _ChildResult:
    """What one process's reserve phase measured (or all of them, merged)."""

    successes: int
    rejected: int
    errors: int
    workers: int
    started_at: float
    """time.time() when its buyers were released."""
    wall: float
    latencies: list[float]
    """Sorted seconds; at most _LATENCY_SAMPLES_PER_PROCESS from one child."""
    samples: list[str]
    peak_rss_mb: float
    coalesced: bool
    by_process: tuple[int, ...]
    """Successes of each process merged into this one (its own alone for one process)."""

    @classmethod
    def of(cls, tally: _Tally, *, coalesced: bool, cap: int | None = None) -> _ChildResult:
        return cls(
            successes=tally.successes,
            rejected=tally.rejected,
            errors=tally.errors,
            workers=tally.workers,
            started_at=tally.started_at,
            wall=tally.wall,
            latencies=_thin(sorted(tally.latencies), cap),
            samples=list(tally.samples),
            peak_rss_mb=_peak_rss_mb(),
            coalesced=coalesced,
            by_process=(tally.successes,),
        )

    @classmethod
    def merge(cls, parts: Sequence[_ChildResult]) -> _ChildResult:
        """Sum the counts; the wall time runs from the earliest start to the latest end."""
        begin = min(part.started_at for part in parts)
        end = max(part.started_at + part.wall for part in parts)
        samples: list[str] = []
        for part in parts:
            samples.extend(s for s in part.samples if s not in samples)
        return cls(
            successes=sum(part.successes for part in parts),
            rejected=sum(part.rejected for part in parts),
            errors=sum(part.errors for part in parts),
            workers=sum(part.workers for part in parts),
            started_at=begin,
            wall=end - begin,
            latencies=sorted(latency for part in parts for latency in part.latencies),
            samples=samples[:_ERROR_SAMPLES],
            peak_rss_mb=max(part.peak_rss_mb for part in parts),
            coalesced=all(part.coalesced for part in parts),
            by_process=tuple(count for part in parts for count in part.by_process),
        )


_Message: TypeAlias = tuple[str, int, object]
"""From a child: ("progress", i, done), ("done", i, _ChildResult) or ("failed", i, text)."""


def _jobs(config: FlashSaleConfig, settings: Settings, sku: str) -> list[_ChildJob]:
    """Split the buyer indexes (and the concurrency, if bounded) evenly over the processes."""
    count = config.processes
    jobs = []
    for child in range(count):
        first = config.buyers * child // count
        stop = config.buyers * (child + 1) // count
        share = stop - first
        if config.concurrency is not None:
            bound = config.concurrency * (child + 1) // count - config.concurrency * child // count
            share = min(share, max(1, bound))
        jobs.append(_ChildJob(child, config.url, settings, sku, config.run_id, first, stop, share))
    return jobs


async def _reserve_in_processes(
    config: FlashSaleConfig, settings: Settings, sku: str, on_progress: ProgressCallback | None
) -> _ChildResult:
    """Run the buyers in ``config.processes`` spawned processes and merge what they measured."""
    context = multiprocessing.get_context("spawn")  # never fork a process running an event loop
    jobs = _jobs(config, settings, sku)
    barrier = context.Barrier(len(jobs) + 1)
    messages: Queue[_Message] = context.Queue()
    children = [
        context.Process(
            target=_child_main,
            args=(job, barrier, messages),
            name=f"ordercore-loadtest-{job.child}",
            daemon=True,
        )
        for job in jobs
    ]
    finished = False
    try:
        for process in children:
            process.start()
        if not await _all_ready(barrier, children):
            failures = await anyio.to_thread.run_sync(_failures, messages, children, jobs)
            raise StorageError(f"the load-test processes could not start: {failures}")
        if on_progress is not None:
            on_progress(0, config.buyers)
        results = await _collect(messages, children, jobs, config.buyers, on_progress)
        finished = True
    finally:
        with anyio.CancelScope(shield=True):  # never leave a child running behind us
            await anyio.to_thread.run_sync(_reap, children, finished)
        messages.close()
    return _ChildResult.merge([results[job.child] for job in jobs])


async def _all_ready(barrier: Barrier, children: Sequence[BaseProcess]) -> bool:
    """Wait with the children at the barrier; False when one failed or died before it."""
    ready = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while True:
                await anyio.sleep(0.1)
                if any(process.exitcode is not None for process in children):
                    barrier.abort()  # a child died before the barrier: release the others
                    return

        group.start_soon(watch)
        try:
            await anyio.to_thread.run_sync(barrier.wait, _READY_TIMEOUT_S, abandon_on_cancel=True)
            ready = True
        except threading.BrokenBarrierError:
            ready = False
        finally:
            group.cancel_scope.cancel()
    return ready


async def _collect(
    messages: Queue[_Message],
    children: Sequence[BaseProcess],
    jobs: Sequence[_ChildJob],
    total: int,
    on_progress: ProgressCallback | None,
) -> dict[int, _ChildResult]:
    """Read progress and results until every child reported; a failed child raises."""
    results: dict[int, _ChildResult] = {}
    done = [0] * len(jobs)
    while len(results) < len(jobs):
        message = await anyio.to_thread.run_sync(_next, messages, abandon_on_cancel=True)
        if message is None:
            for job, process in zip(jobs, children, strict=True):
                if job.child not in results and process.exitcode not in (None, 0):
                    raise StorageError(
                        f"load-test process {job.child + 1} of {len(jobs)} died "
                        f"(exit code {process.exitcode}) before reporting"
                    )
            continue
        kind, child, payload = message
        if kind == "failed":
            raise StorageError(f"load-test process {child + 1} of {len(jobs)} failed: {payload}")
        if kind == "done" and isinstance(payload, _ChildResult):
            results[child] = payload
            done[child] = jobs[child].stop - jobs[child].first
        elif kind == "progress" and isinstance(payload, int):
            done[child] = payload
        if on_progress is not None:
            on_progress(sum(done), total)
    return results


def _next(messages: Queue[_Message]) -> _Message | None:
    try:
        return messages.get(timeout=_POLL_S)
    except queue.Empty:
        return None


def _failures(
    messages: Queue[_Message],
    children: Sequence[BaseProcess],
    jobs: Sequence[_ChildJob],
) -> str:
    """Why the children did not get ready: their reports, else their exit codes."""
    deadline = time.monotonic() + 10
    reports: dict[int, str] = {}
    while len(reports) < len(jobs) and time.monotonic() < deadline:
        message = _next(messages)
        if message is not None and message[0] == "failed":
            reports[message[1]] = str(message[2])
        elif message is None and all(process.exitcode is not None for process in children):
            break
    for job, process in zip(jobs, children, strict=True):
        if job.child not in reports and process.exitcode not in (None, 0):
            reports[job.child] = f"exited with code {process.exitcode}"
    # a child released by the broken barrier only says so; the cause comes first
    causes = sorted(reports.items(), key=lambda item: ("BrokenBarrierError" in item[1], item[0]))
    return "; ".join(f"process {child + 1}: {text}" for child, text in causes) or "no report"


def _reap(children: Sequence[BaseProcess], finished: bool) -> None:
    """Join the children (after a failure: stop the ones still running) and free them."""
    started = [process for process in children if process.pid is not None]
    if not finished:
        for process in started:
            if process.is_alive():
                process.terminate()
    for process in started:
        process.join(timeout=30 if finished else 5)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
        if not process.is_alive():
            process.close()


def _child_main(job: _ChildJob, barrier: Barrier, messages: Queue[_Message]) -> None:
    """One load-test process: open a core, wait at the barrier, run its buyers, report."""
    try:
        result = anyio.run(_child_sale, job, barrier, messages)
    except BaseException as exc:  # reported to the parent, which raises it as StorageError
        barrier.abort()
        messages.put(("failed", job.child, redact(f"{type(exc).__name__}: {exc}", job.url)))
    else:
        messages.put(("done", job.child, result))


async def _child_sale(job: _ChildJob, barrier: Barrier, messages: Queue[_Message]) -> _ChildResult:
    async with OrderCore.open(job.url, settings=job.settings) as core:

        async def released() -> None:
            await anyio.to_thread.run_sync(barrier.wait, _READY_TIMEOUT_S, abandon_on_cancel=True)

        def progress(done: int, total: int) -> None:
            if done:
                messages.put(("progress", job.child, done))

        tally = await _reserve_phase(
            core, job.run_id, job.sku, range(job.first, job.stop), job.workers, progress, released
        )
        coalesced = core.inventory.coalescer is not None
    return _ChildResult.of(tally, coalesced=coalesced, cap=_LATENCY_SAMPLES_PER_PROCESS)


# -- helpers ----------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _thin(ordered: list[float], cap: int | None) -> list[float]:
    """At most ``cap`` values evenly spread over an ascending list (its shape is kept)."""
    if cap is None or len(ordered) <= cap:
        return ordered
    step = len(ordered) / cap
    return [ordered[int(k * step)] for k in range(cap)]


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
