"""Contract tests for saved channel tokens (``uow.intake.save_channel_tokens`` / ``load``).

A refresh token is often single-use: after a refresh only the newest tokens work, so the
storage must keep exactly those, across restarts and against other processes that
refresh the same channel. These drive the storage port directly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from ordercore.core import OrderCore
from ordercore.domain.channels import ChannelTokens
from ordercore.testing.storage_base import StorageContractBase

__all__ = ["TokenContract", "channel_tokens"]

T0 = datetime(2026, 11, 11, 8, 0, tzinfo=UTC)


class _Boom(Exception):
    pass


def channel_tokens(
    channel: str = "jd-flagship", *, minute: int = 0, origin: str = "origin-a"
) -> ChannelTokens:
    """Tokens refreshed ``minute`` minutes after T0 (their values name the minute)."""
    refreshed = T0 + timedelta(minutes=minute)
    return ChannelTokens(
        channel=channel,
        origin=origin,
        tokens={"access_token": f"access-{minute}", "refresh_token": f"refresh-{minute}"},
        expires_at={
            "access_token": refreshed + timedelta(days=1),
            "refresh_token": refreshed + timedelta(days=14),
            "r2": refreshed + timedelta(hours=6),
        },
        refreshed_at=refreshed,
    )


async def _save(core: OrderCore, tokens: ChannelTokens) -> bool:
    async with core.storage.unit_of_work() as uow:
        saved = await uow.intake.save_channel_tokens(tokens)
        await uow.commit()
    return saved


async def _load(core: OrderCore, channel: str = "jd-flagship") -> ChannelTokens | None:
    async with core.storage.unit_of_work() as uow:
        return await uow.intake.load_channel_tokens(channel)


async def _access_token(core: OrderCore) -> str | None:
    stored = await _load(core)
    return None if stored is None else stored.secret("access_token")


class TokenContract(StorageContractBase):
    """Saved channel tokens: round trip, newest wins, re-authorisation, rollback, races."""

    @pytest.mark.anyio
    async def test_saved_tokens_load_back_equal(self, core: OrderCore) -> None:
        """Values, expiries (aware UTC), origin and refresh time come back as saved."""
        tokens = channel_tokens(minute=5)
        assert await _save(core, tokens)
        loaded = await _load(core)
        assert loaded is not None
        assert loaded.secret("access_token") == "access-5"
        assert loaded.secret("refresh_token") == "refresh-5"
        assert loaded.expires_at == tokens.expires_at
        assert (loaded.origin, loaded.refreshed_at) == ("origin-a", tokens.refreshed_at)
        assert await _load(core, "another-channel") is None

    @pytest.mark.anyio
    async def test_older_tokens_of_the_same_origin_do_not_replace_newer(
        self, core: OrderCore
    ) -> None:
        """A save older than (or as old as) the stored one is refused; a newer one wins."""
        assert await _save(core, channel_tokens(minute=10))
        assert not await _save(core, channel_tokens(minute=3))
        assert not await _save(core, channel_tokens(minute=10))
        assert await _access_token(core) == "access-10"
        assert await _save(core, channel_tokens(minute=11))
        assert await _access_token(core) == "access-11"

    @pytest.mark.anyio
    async def test_tokens_of_another_origin_replace_whatever_is_stored(
        self, core: OrderCore
    ) -> None:
        """After a re-authorisation (new origin) the new chain replaces even newer old tokens."""
        assert await _save(core, channel_tokens(minute=30))
        assert await _save(core, channel_tokens(minute=1, origin="origin-b"))
        stored = await _load(core)
        assert stored is not None
        assert (stored.origin, stored.secret("access_token")) == ("origin-b", "access-1")

    @pytest.mark.anyio
    async def test_a_rolled_back_save_is_forgotten(self, core: OrderCore) -> None:
        """Tokens saved in a unit that rolls back are not kept; the earlier ones stay."""
        assert await _save(core, channel_tokens(minute=1))
        with pytest.raises(_Boom):  # noqa: PT012 - the raise must happen inside the unit
            async with core.storage.unit_of_work() as uow:
                assert await uow.intake.save_channel_tokens(channel_tokens(minute=2))
                raise _Boom
        assert await _access_token(core) == "access-1"

    @pytest.mark.anyio
    async def test_concurrent_saves_keep_the_newest(self, core: OrderCore) -> None:
        """Units saving different refreshes of one channel at once: the newest is kept."""
        minutes = [7, 2, 9, 4, 1, 8, 3, 6, 5, 0]
        async with anyio.create_task_group() as group:
            for minute in minutes:
                group.start_soon(_save, core, channel_tokens(minute=minute))
        stored = await _load(core)
        assert stored is not None
        assert stored.secret("access_token") == "access-9"
        assert stored.refreshed_at == T0 + timedelta(minutes=9)
