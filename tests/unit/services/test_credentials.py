"""CredentialService: refresh and save in one step, restore after a restart, refresh ahead."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from ordercore import OrderCore
from ordercore.domain.channels import (
    AS_CONFIGURED,
    ChannelTokens,
    CredentialState,
    CredentialStatus,
    WebhookDelivery,
)
from ordercore.errors import ChannelAuthExpired
from ordercore.ports.channels import TokenCarrier
from ordercore.ports.clock import ManualClock
from ordercore.services.credentials import CredentialService
from ordercore.services.push_hints import resolve_push_hints
from ordercore.testing.channels import FakeChannel, FakePlatform

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 11, 8, 0, tzinfo=UTC)


class CarrierChannel(FakeChannel):
    """A FakeChannel whose refreshes issue numbered, single-use tokens it can export."""

    def __init__(
        self,
        platform: FakePlatform,
        *,
        expires_at: datetime,
        refresh_expires_at: datetime | None = None,
        origin: str = "configured",
    ) -> None:
        super().__init__("shop", platform)
        self.expires_at = expires_at
        self.refresh_expires_at = refresh_expires_at
        self.origin = origin
        self.token = "configured-token"
        self.refreshed_at = AS_CONFIGURED
        self.refreshes = 0

    async def credential_status(self) -> CredentialStatus:
        now = self.platform.clock.now()
        live = self.refresh_expires_at is None or self.refresh_expires_at > now
        return CredentialStatus(
            channel=self.name,
            expires_at={"access_token": self.expires_at},
            refreshable=live,
            refresh_expires_at=self.refresh_expires_at,
        )

    async def refresh_credentials(self) -> CredentialStatus:
        now = self.platform.clock.now()
        if self.refresh_expires_at is not None and self.refresh_expires_at <= now:
            raise ChannelAuthExpired("the refresh token expired")
        self.refreshes += 1
        self.token = f"token-{self.refreshes}"
        self.expires_at = now + timedelta(days=1)
        self.refreshed_at = now
        return await self.credential_status()

    def export_tokens(self) -> ChannelTokens:
        return ChannelTokens(
            channel=self.name,
            origin=self.origin,
            tokens={"access_token": SecretStr(self.token)},
            expires_at={"access_token": self.expires_at},
            refreshed_at=self.refreshed_at,
        )

    def restore_tokens(self, tokens: ChannelTokens) -> bool:
        if tokens.origin != self.origin or tokens.refreshed_at <= self.refreshed_at:
            return False
        self.token = tokens.secret("access_token") or ""
        self.expires_at = tokens.expires_at["access_token"]
        self.refreshed_at = tokens.refreshed_at
        return True


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def platform(clock: ManualClock) -> FakePlatform:
    return FakePlatform(clock=clock)


@pytest.fixture
async def core(clock: ManualClock) -> AsyncIterator[OrderCore]:
    async with OrderCore.open("memory://", clock=clock) as opened:
        yield opened


async def saved_token(core: OrderCore) -> str | None:
    async with core.storage.unit_of_work() as uow:
        saved = await uow.intake.load_channel_tokens("shop")
    return None if saved is None else saved.secret("access_token")


def expired(
    platform: FakePlatform, *, refresh_expires_at: datetime | None = None
) -> CarrierChannel:
    """A carrier whose configured access token expired a minute ago."""
    return CarrierChannel(
        platform, expires_at=T0 - timedelta(minutes=1), refresh_expires_at=refresh_expires_at
    )


async def test_a_refresh_is_saved_and_a_restarted_adapter_restores_it(
    core: OrderCore, platform: FakePlatform, clock: ManualClock
) -> None:
    """The check refreshes an expired channel and saves; a new adapter restores, no refresh."""
    service = CredentialService(core.storage, clock)
    first = expired(platform)
    assert isinstance(first, TokenCarrier)
    assert await service.check(first, timedelta(days=3)) is CredentialState.EXPIRING
    assert await saved_token(core) == "token-1"
    restarted = expired(platform)
    assert await service.check(restarted, timedelta(hours=1)) is CredentialState.VALID
    assert (restarted.refreshes, restarted.token) == (0, "token-1")


async def test_tokens_refreshed_outside_the_service_are_saved_by_the_next_check(
    core: OrderCore, platform: FakePlatform, clock: ManualClock
) -> None:
    """A refresh whose save never happened is saved at the next check (self-healing)."""
    channel = expired(platform)
    await channel.refresh_credentials()
    assert await saved_token(core) is None
    await CredentialService(core.storage, clock).check(channel, timedelta(hours=1))
    assert await saved_token(core) == "token-1"
    assert channel.refreshes == 1


async def test_refresh_if_due_refreshes_only_within_the_margin(
    core: OrderCore, platform: FakePlatform, clock: ManualClock
) -> None:
    """Two hours left: not due with a one-hour margin, refreshed and saved with three."""
    service = CredentialService(core.storage, clock)
    channel = CarrierChannel(platform, expires_at=T0 + timedelta(hours=2))
    await service.refresh_if_due(channel, timedelta(hours=1))
    assert (channel.refreshes, await saved_token(core)) == (0, None)
    status = await service.refresh_if_due(channel, timedelta(hours=3))
    assert (channel.refreshes, await saved_token(core)) == (1, "token-1")
    assert status.expires_at["access_token"] == T0 + timedelta(days=1)


async def test_an_expired_refresh_token_pauses_naming_it(
    core: OrderCore, platform: FakePlatform, clock: ManualClock
) -> None:
    """Token and refresh token expired: ChannelAuthExpired naming the refresh token's expiry."""
    channel = expired(platform, refresh_expires_at=T0 - timedelta(hours=2))
    with pytest.raises(ChannelAuthExpired, match=r"refresh token .*re-authorise to resume"):
        await CredentialService(core.storage, clock).check(channel, timedelta(hours=1))
    assert channel.refreshes == 0


async def test_a_loser_of_a_refresh_race_adopts_the_saved_tokens(
    core: OrderCore, platform: FakePlatform, clock: ManualClock
) -> None:
    """A refused refresh when newer tokens were saved meanwhile: those are adopted instead."""
    service = CredentialService(core.storage, clock)
    winner = expired(platform)
    await service.refresh(winner)
    loser = expired(platform, refresh_expires_at=T0 - timedelta(seconds=1))  # spent for it
    status = await service.refresh(loser)
    assert loser.token == "token-1"
    assert status.expires_at["access_token"] == T0 + timedelta(days=1)


async def test_a_channel_that_carries_no_tokens_is_refreshed_without_saving(
    core: OrderCore, platform: FakePlatform, clock: ManualClock
) -> None:
    """A plain ChannelPort: refreshed when expired, nothing saved."""
    platform.credentials_expire_at = T0 - timedelta(minutes=1)
    platform.refreshable = True
    channel = FakeChannel("shop", platform)
    state = await CredentialService(core.storage, clock).check(channel, timedelta(days=3))
    assert state is CredentialState.VALID
    assert platform.credentials_expire_at == T0 + timedelta(days=30)
    assert await saved_token(core) is None


async def test_push_hints_on_a_channel_without_lookup_are_reported_not_fetched(
    platform: FakePlatform, clock: ManualClock
) -> None:
    """Ids named by a push that the channel cannot look up: no records, an error says why."""
    delivery = WebhookDelivery(message_id="m-1", hints=("o-1", "o-2"))
    records, rejects, errors = await resolve_push_hints(
        FakeChannel("shop", platform), delivery, clock.now()
    )
    assert (records, rejects) == ([], [])
    assert errors == [
        "push m-1 names 2 order(s) but channel 'shop' cannot look orders up; "
        "the poll will store them"
    ]
