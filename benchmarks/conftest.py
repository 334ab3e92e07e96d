"""Benchmark fixtures: an open core per storage, driven by one event loop per benchmark.

The core is async. Each benchmark creates one asyncio event loop (``asyncio.Runner``),
opens one core in it for its whole run and runs one coroutine on it per round, on the
benchmark's own thread: a measured round is the core's work plus about 0.04 ms to
schedule one task, never an event-loop start. (A blocking portal, as SyncOrderCore
uses, adds a thread hop per call; ``sync_core`` measures that path separately.)

PostgreSQL runs in a throwaway database (``ordercore_bench_<random>``) created on the
server named by ``ORDERCORE_BENCH_POSTGRES_URL`` (else ``ORDERCORE_TEST_POSTGRES_URL``,
else ``postgresql+psycopg://127.0.0.1:5432/test``) and dropped afterwards; the row
is skipped, with the reason, when that server cannot be reached.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from ordercore import OrderCore, SyncOrderCore

T = TypeVar("T")

DEFAULT_POSTGRES_URL = "postgresql+psycopg://127.0.0.1:5432/test"
STORAGES = ["memory", "sqlite", "postgresql"]


@dataclass
class Bench:
    """An open core and the event loop that runs it."""

    core: OrderCore
    runner: asyncio.Runner
    storage: str

    def run(self, func: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run one coroutine function on the core's event loop and wait for it."""
        return self.runner.run(func(*args))


def _postgres_server_url() -> str:
    return (
        os.environ.get("ORDERCORE_BENCH_POSTGRES_URL")
        or os.environ.get("ORDERCORE_TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES_URL
    )


def _libpq(url: str) -> str:
    """The same URL as libpq takes it: ``postgresql+psycopg://`` -> ``postgresql://``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+", 1)[0]))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL database that is dropped afterwards."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed: pip install 'ordercore[postgres]'")
    server = _postgres_server_url()
    try:
        admin = psycopg.connect(_libpq(server), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {server} is not reachable: {exc}".strip())
    name = f"ordercore_bench_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=STORAGES)
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty storage of each kind."""
    kind: str = request.param
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'bench.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def bench(storage_url: str) -> Iterator[Bench]:
    """One core open on the storage for the whole benchmark, on one event loop."""
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        core = runner.run(stack.enter_async_context(OrderCore.open(storage_url)))
        try:
            yield Bench(core, runner, storage_url.split(":", 1)[0])
        finally:
            runner.run(stack.aclose())


@pytest.fixture
def sync_core(storage_url: str) -> Iterator[SyncOrderCore]:
    """The blocking facade, as a Django view or a script would hold it, open on the storage."""
    with SyncOrderCore.open(storage_url) as core:
        yield core
