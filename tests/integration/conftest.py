"""Integration-test fixtures: real SQLite files and a real PostgreSQL (see tests/support)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.postgres import fresh_postgres_database


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database (skips when no server is reachable)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a new SQLite database file."""
    return f"sqlite:///{tmp_path / 'ordercore.db'}"
