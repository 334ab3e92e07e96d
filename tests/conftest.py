"""Shared test configuration: async tests run on asyncio through the anyio plugin."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run every ``@pytest.mark.anyio`` test (and async fixture) on asyncio."""
    return "asyncio"
