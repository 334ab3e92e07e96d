"""Benchmark fixtures: an open core per storage, driven through one blocking portal.

The core is async. Each benchmark opens one core inside one anyio blocking portal (an
event-loop thread) for its whole run and calls into it once per round, so a measured
round is the core's work plus one hop into that thread, never an event-loop start.

PostgreSQL runs in a throwaway database (``ordercore_bench_<random>``) created on the
server named by ``ORDERCORE_BENCH_POSTGRES_URL`` (else ``ORDERCORE_TEST_POSTGRES_URL``,
else ``postgresql+psycopg://127.0.0.1:5432/test``) and dropped afterwards; the row
is skipped, with the reason, when that server cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ordercore import OrderCore

T = TypeVar("T")

DEFAULT_POSTGRES_URL = "postgresql+psycopg://127.0.0.1:5432/test"
STORAGES = ["memory", "sqlite", "postgresql"]


@dataclass
class Bench:
    """An open core and the portal that runs it."""

    core: OrderCore
    portal: BlockingPortal
    storage: str

    def run(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run one coroutine function on the core's event loop and wait for it."""
        return self.portal.call(func, *args)


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
    """One core open on the storage for the whole benchmark, in one blocking portal."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(OrderCore.open(storage_url)) as core,
    ):
        yield Bench(core, portal, storage_url.split(":", 1)[0])
