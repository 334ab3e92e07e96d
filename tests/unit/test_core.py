"""Opening a core: URL dispatch, typed errors, the sync facade."""

from __future__ import annotations

import pytest

from ordercore import OrderCore, SyncOrderCore
from ordercore.errors import InsufficientStock, UnknownAdapter
from ordercore.registry import known_names, storage_name_for_url


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("memory://", "memory"),
        ("sqlite:///tmp/x.db", "sqlite"),
        ("postgresql+psycopg://u:secret@db/x", "postgresql"),
        ("POSTGRESQL://db/x", "postgresql"),
    ],
)
def test_url_scheme_selects_the_adapter(url: str, name: str) -> None:
    """The scheme (before any +driver) names the storage adapter."""
    assert storage_name_for_url(url) == name


@pytest.mark.anyio
async def test_unknown_scheme_lists_the_known_ones() -> None:
    """An unknown scheme raises UnknownAdapter naming memory, sqlite and postgresql."""
    with pytest.raises(UnknownAdapter, match=r"known: .*memory.*postgresql.*sqlite") as caught:
        async with OrderCore.open("mongodb://u:secret@host/db"):
            pass  # pragma: no cover
    assert "secret" not in str(caught.value)
    assert {"memory", "sqlite", "postgresql"} <= set(known_names("ordercore.storage"))


def test_a_url_without_scheme_does_not_echo_itself() -> None:
    """A malformed URL is refused without repeating it (it may hold a password)."""
    with pytest.raises(UnknownAdapter) as caught:
        storage_name_for_url("user:secret@host")
    assert "secret" not in str(caught.value)


def test_sync_facade_mirrors_the_async_core() -> None:
    """SyncOrderCore reserves, refuses and releases without await."""
    with SyncOrderCore.open("memory://") as core:
        core.inventory.receive("A", 2)
        reservation = core.inventory.reserve("o1", {"A": 2})
        with pytest.raises(InsufficientStock):
            core.inventory.reserve("o2", {"A": 1})
        core.inventory.release("o1")
        assert core.inventory.sellable("A") == 2
        assert core.inventory.reservation("o1").id == reservation.id
        assert core.inventory.verify() == []
