"""ordercore itself, through its public API only, on each built-in storage.

``OrderCore.open(url, settings=...)``, ``core.inventory.receive(SKU, M)``, then either

- one anyio task per buyer, all released together, each awaiting
  ``core.inventory.reserve(f"o{i}", {SKU: 1}, buyer_id=f"b{i}")`` (InsufficientStock is a
  refusal, anything else an error): per request (``coalesce_reservations="off"``; the
  default, "auto", coalesces on SQL storages), and with ``coalesce_reservations="on"``;
  every other setting is the default (the sold-out fast path is on in both); or
- the bulk path, ``core.inventory.reserve_many([ReserveRequest(...), ...])`` in calls of
  :data:`BULK` requests, whose answers are aligned with the requests (a Reservation or
  an OrderCoreError each).

The clock runs from releasing the buyers to the last answer; the requests' inputs are
built inside it. The heap is frozen (``gc.freeze()``) once the core is open and stocked,
as a server does after start-up; the garbage collector keeps Python's default settings.
Afterwards the storage is read back and ``verify()``-ed. Features
still being built (the coalescer's setting, ``reserve_many``) make their rows
"pending", with the reason, instead of failing.
"""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeAlias

import anyio
from pydantic import ValidationError

from _scenarios.common import SKU, Measured, Params, Pending, Scenario, Tally, clock
from _scenarios.postgres import fresh_database
from ordercore import OrderCore, Reservation, Settings
from ordercore.errors import InsufficientStock, OrderCoreError
from ordercore.services.reservations import InventoryService

__all__ = ["BULK", "SCENARIOS", "Around", "LibrarySale", "run_library"]

BULK = 500
"""Requests per reserve_many() call."""

Around: TypeAlias = Callable[[], AbstractContextManager[object]]
"""Entered around the reserve phase only (the profiler uses it); nullcontext otherwise."""


@dataclass(frozen=True, slots=True)
class LibrarySale:
    """Which storage, and which path through the library."""

    storage: str
    """memory, sqlite or postgresql."""
    coalesce: bool = False
    bulk: bool = False


def _settings(sale: LibrarySale) -> Settings:
    """Coalescing on or off as the row says (the default, "auto", is on for SQL storages)."""
    mode = "on" if sale.coalesce else "off"
    try:
        return Settings(coalesce_reservations=mode)
    except ValidationError as exc:
        if not sale.coalesce:  # a core without the setting reserves per request anyway
            return Settings()
        first = exc.errors()[0]
        raise Pending(
            f"Settings(coalesce_reservations='on') is refused ({first['msg'].lower()})"
        ) from exc


def _check_bulk() -> None:
    if not hasattr(InventoryService, "reserve_many"):
        raise Pending("core.inventory.reserve_many() does not exist yet")
    try:
        from ordercore.services.reservations import ReserveRequest  # noqa: F401
    except ImportError as exc:
        raise Pending("ordercore.services.reservations.ReserveRequest does not exist yet") from exc


def run_library(sale: LibrarySale, params: Params, around: Around = nullcontext) -> Measured:
    """Run the flash sale through the library on a fresh storage of the sale's kind."""
    settings = _settings(sale)
    if sale.bulk:
        _check_bulk()
    if sale.storage == "memory":
        return anyio.run(partial(_sale, "memory://", settings, params, sale, around))
    if sale.storage == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ordercore-cmp-") as directory:
            url = f"sqlite:///{Path(directory) / 'flash.db'}"
            return anyio.run(partial(_sale, url, settings, params, sale, around))
    with fresh_database(params.postgres_url, prefix="ordercore_cmp_lib") as db:
        return anyio.run(partial(_sale, db.url, settings, params, sale, around))


async def _sale(
    url: str,
    settings: Settings,
    params: Params,
    sale: LibrarySale,
    around: Around,
) -> Measured:
    async with OrderCore.open(url, settings=settings) as core:
        await core.inventory.receive(SKU, params.stock)
        # What a server does once it has started (docs/performance.md, "Garbage
        # collection"): the open core and its connections move to the permanent
        # generation, so the collector walks only objects the sale itself makes.
        gc.freeze()
        if sale.bulk:
            tally = await _reserve_in_bulk(core, params.buyers, around)
        else:
            tally = await _reserve_one_task_each(core, params.buyers, around)
        levels = await core.inventory.levels(SKU)
        drift = [str(item) for item in await core.inventory.verify()]
    return Measured(
        tally,
        reserved=sum(level.reserved for level in levels),
        on_hand=sum(level.on_hand for level in levels),
        drift=drift,
    )


async def _reserve_one_task_each(core: OrderCore, buyers: int, around: Around) -> Tally:
    """Start a task per buyer, wait until all of them wait at the gate, then open it."""
    tally = Tally(latencies=[0.0] * buyers)
    latencies = tally.latencies
    assert latencies is not None
    reserve = core.inventory.reserve
    all_waiting = anyio.Event()
    gate = anyio.Event()
    waiting = 0

    async def buyer(i: int) -> None:
        nonlocal waiting
        waiting += 1
        if waiting == buyers:
            all_waiting.set()
        await gate.wait()
        begun = clock()
        try:
            await reserve(f"o{i}", {SKU: 1}, buyer_id=f"b{i}")
        except InsufficientStock:
            tally.rejected += 1
        except Exception as exc:  # a failed buyer is a finding, not a crash of the run
            tally.error(exc)
        else:
            tally.successes += 1
        latencies[i] = clock() - begun

    with ExitStack() as window:
        async with anyio.create_task_group() as group:
            for i in range(buyers):
                group.start_soon(buyer, i)
            await all_waiting.wait()
            window.enter_context(around())
            opened = clock()
            gate.set()
        tally.wall = clock() - opened
    return tally


async def _reserve_in_bulk(core: OrderCore, buyers: int, around: Around) -> Tally:
    """reserve_many() over the buyers in arrival order, BULK requests per call."""
    from ordercore.services.reservations import ReserveRequest

    tally = Tally()
    reserve_many = core.inventory.reserve_many
    with around():
        opened = clock()
        for first in range(0, buyers, BULK):
            requests = [
                ReserveRequest(f"o{i}", {SKU: 1}, buyer_id=f"b{i}")
                for i in range(first, min(first + BULK, buyers))
            ]
            try:
                answers = await reserve_many(requests)
            except Exception as exc:
                tally.error(exc)
                continue
            if len(answers) != len(requests):
                tally.error(ValueError(f"{len(answers)} answers to {len(requests)} requests"))
            for answer in answers:
                if isinstance(answer, Reservation):
                    tally.successes += 1
                elif isinstance(answer, InsufficientStock):
                    tally.rejected += 1
                elif isinstance(answer, OrderCoreError):
                    tally.error(answer)
                else:
                    tally.error(TypeError(f"not a Reservation or an OrderCoreError: {answer!r}"))
        tally.wall = clock() - opened
    return tally


def _scenario(
    name: str, label: str, family: str, sale: LibrarySale, *, all_granted: bool = False
) -> Scenario:
    return Scenario(
        name, label, family, partial(run_library, sale), library=True, all_granted=all_granted
    )


SALES: dict[str, LibrarySale] = {
    "lib-pg": LibrarySale("postgresql"),
    "lib-pg-coalesced": LibrarySale("postgresql", coalesce=True),
    "lib-sqlite": LibrarySale("sqlite"),
    "lib-sqlite-coalesced": LibrarySale("sqlite", coalesce=True),
    "lib-memory": LibrarySale("memory"),
    "lib-memory-coalesced": LibrarySale("memory", coalesce=True),
    "lib-pg-bulk": LibrarySale("postgresql", bulk=True),
    "lib-pg-bulk-granted": LibrarySale("postgresql", bulk=True),
    "lib-sqlite-bulk": LibrarySale("sqlite", bulk=True),
    "lib-memory-bulk": LibrarySale("memory", bulk=True),
    "lib-memory-bulk-granted": LibrarySale("memory", bulk=True),
    "lib-pg-coalesced-granted": LibrarySale("postgresql", coalesce=True),
    "lib-sqlite-coalesced-granted": LibrarySale("sqlite", coalesce=True),
    "lib-sqlite-bulk-granted": LibrarySale("sqlite", bulk=True),
    "lib-memory-coalesced-granted": LibrarySale("memory", coalesce=True),
}

SCENARIOS = {
    "postgresql": [
        _scenario(
            "lib-pg",
            "ordercore PostgreSQL, per request, coalescing off (task per buyer)",
            "postgresql",
            SALES["lib-pg"],
        ),
        _scenario(
            "lib-pg-coalesced",
            "ordercore PostgreSQL, coalesced (task per buyer)",
            "postgresql",
            SALES["lib-pg-coalesced"],
        ),
        _scenario(
            "lib-pg-coalesced-granted",
            "ordercore PostgreSQL, coalesced (task per buyer), stock = buyers",
            "postgresql",
            SALES["lib-pg-coalesced-granted"],
            all_granted=True,
        ),
        _scenario(
            "lib-pg-bulk",
            f"ordercore PostgreSQL, bulk reserve_many ({BULK} per call)",
            "postgresql",
            SALES["lib-pg-bulk"],
        ),
        _scenario(
            "lib-pg-bulk-granted",
            f"ordercore PostgreSQL, bulk reserve_many ({BULK} per call), stock = buyers",
            "postgresql",
            SALES["lib-pg-bulk-granted"],
            all_granted=True,
        ),
    ],
    "sqlite": [
        _scenario(
            "lib-sqlite",
            "ordercore SQLite, per request, coalescing off (task per buyer)",
            "sqlite",
            SALES["lib-sqlite"],
        ),
        _scenario(
            "lib-sqlite-coalesced",
            "ordercore SQLite, coalesced (task per buyer)",
            "sqlite",
            SALES["lib-sqlite-coalesced"],
        ),
        _scenario(
            "lib-sqlite-coalesced-granted",
            "ordercore SQLite, coalesced (task per buyer), stock = buyers",
            "sqlite",
            SALES["lib-sqlite-coalesced-granted"],
            all_granted=True,
        ),
        _scenario(
            "lib-sqlite-bulk",
            f"ordercore SQLite, bulk reserve_many ({BULK} per call)",
            "sqlite",
            SALES["lib-sqlite-bulk"],
        ),
        _scenario(
            "lib-sqlite-bulk-granted",
            f"ordercore SQLite, bulk reserve_many ({BULK} per call), stock = buyers",
            "sqlite",
            SALES["lib-sqlite-bulk-granted"],
            all_granted=True,
        ),
    ],
    "memory": [
        _scenario(
            "lib-memory",
            "ordercore memory, per request, coalescing off (task per buyer)",
            "memory",
            SALES["lib-memory"],
        ),
        _scenario(
            "lib-memory-coalesced",
            "ordercore memory, coalesced (task per buyer)",
            "memory",
            SALES["lib-memory-coalesced"],
        ),
        _scenario(
            "lib-memory-coalesced-granted",
            "ordercore memory, coalesced (task per buyer), stock = buyers",
            "memory",
            SALES["lib-memory-coalesced-granted"],
            all_granted=True,
        ),
        _scenario(
            "lib-memory-bulk",
            f"ordercore memory, bulk reserve_many ({BULK} per call)",
            "memory",
            SALES["lib-memory-bulk"],
        ),
        _scenario(
            "lib-memory-bulk-granted",
            f"ordercore memory, bulk reserve_many ({BULK} per call), stock = buyers",
            "memory",
            SALES["lib-memory-bulk-granted"],
            all_granted=True,
        ),
    ],
}
