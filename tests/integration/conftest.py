"""Integration-test fixtures: real SQLite files and a real PostgreSQL.

``tests/`` goes on sys.path so that ``support`` (tests/support) imports; the contract
tests' conftest can do the same.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.postgres import fresh_postgres_database


@pytest.fixture
def anyio_backend() -> str:
    """The anyio pytest plugin runs async tests on asyncio."""
    return "asyncio"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database (skips when no server is reachable)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a new SQLite database file."""
    return f"sqlite:///{tmp_path / 'ordercore.db'}"
