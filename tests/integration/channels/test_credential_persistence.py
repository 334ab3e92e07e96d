"""Credential lifecycle through the core: refresh, persistence across restarts, pausing.

Real HTTP against the fake JOS and Pinduoduo gateways, the core on real SQLite files and
a real PostgreSQL: refreshed tokens are saved and restored by a new core and a new
adapter object (a restart), an expired refresh token pauses its channel while another
syncs on, and no token ever reaches the ledger or the logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import stamina

from fakes.jos_server import ACCESS_TOKEN as JD_TOKEN
from fakes.jos_server import APP_KEY, APP_SECRET, FakeJosServer
from fakes.jos_server import REFRESH_TOKEN as JD_REFRESH
from fakes.pdd_server import ACCESS_TOKEN as PDD_TOKEN
from fakes.pdd_server import CLIENT_ID, CLIENT_SECRET, FakePddServer
from ordercore import OrderCore, Settings
from ordercore.domain.intake import RunStatus
from ordercore.errors import ChannelAuthExpired
from ordercore.ports.clock import ManualClock
from ordercore.services.credentials import CredentialService
from ordercore_adapters.channels.jd import JdChannel
from ordercore_adapters.channels.pinduoduo import PinduoduoChannel
from support.postgres import fresh_postgres_database

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3, cap=True):
        yield


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def jos(clock: ManualClock) -> Iterator[FakeJosServer]:
    with FakeJosServer(clock=clock.now) as fake:
        yield fake


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on each SQL backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
    else:
        with fresh_postgres_database() as fresh:
            yield fresh


def jd_config(server: FakeJosServer, clock: ManualClock, **overrides: object) -> dict[str, object]:
    """A JD config whose access token has expired and whose refresh token still works."""
    base: dict[str, object] = {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "access_token": JD_TOKEN,
        "access_token_expires_at": (clock.now() - timedelta(minutes=1)).isoformat(),
        "refresh_token": JD_REFRESH,
        "refresh_token_expires_at": (clock.now() + timedelta(days=30)).isoformat(),
        "oauth_url": server.oauth_url,
        "gateway_url": server.url,
        "requests_per_second": 1000,
        "timeout": 2.0,
    }
    base.update(overrides)
    return base


async def _sync_jd(url: str, jos: FakeJosServer, clock: ManualClock, start: datetime) -> RunStatus:
    async with (
        OrderCore.open(url, clock=clock, settings=Settings()) as core,
        JdChannel("jd-flagship", jd_config(jos, clock), clock=clock) as channel,
    ):
        await core.inventory.receive("TEE-2026-BLK-M", 100)
        run = await core.intake.sync(channel, first_sync_from=start)
    return run.status


async def test_refreshed_tokens_survive_a_restart(
    url: str, jos: FakeJosServer, clock: ManualClock
) -> None:
    """A new core and adapter on the same database use the saved tokens: no second refresh."""
    start = clock.now() - timedelta(hours=2)
    jos.add_order("7000001", start + timedelta(minutes=5))
    assert await _sync_jd(url, jos, clock, start) is RunStatus.SUCCEEDED
    assert jos.refreshes == 1  # the configured refresh token is spent now
    clock.advance(timedelta(minutes=10))
    jos.add_order("7000002", clock.now() - timedelta(minutes=5))
    assert await _sync_jd(url, jos, clock, start) is RunStatus.SUCCEEDED  # "restarted"
    assert jos.refreshes == 1
    assert jos.requests[-1]["access_token"] == jos.access_token
    async with OrderCore.open(url, clock=clock, settings=Settings()) as core:
        stored = sorted(order.external_id for order in await core.orders.list(limit=10))
    assert stored == ["7000001", "7000002"]


async def test_an_expired_refresh_token_pauses_one_channel_while_another_syncs(
    jos: FakeJosServer, clock: ManualClock, tmp_path: Path
) -> None:
    """JD's refresh token expired: its run is PAUSED (ChannelAuthExpired); Pinduoduo syncs on."""
    start = clock.now() - timedelta(hours=1)
    expired = jd_config(
        jos, clock, refresh_token_expires_at=(clock.now() - timedelta(hours=1)).isoformat()
    )
    with FakePddServer(clock=clock.now) as pdd:
        pdd.add_order("240101-000000001", start + timedelta(minutes=10))
        pdd_config: dict[str, object] = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "access_token": PDD_TOKEN,
            "access_token_expires_at": (clock.now() + timedelta(days=5)).isoformat(),
            "gateway_url": pdd.url,
            "requests_per_second": 1000,
            "timeout": 2.0,
        }
        async with (
            OrderCore.open(f"sqlite:///{tmp_path / 'shop.db'}", clock=clock) as core,
            JdChannel("jd-flagship", expired, clock=clock) as jd,
            PinduoduoChannel("pdd-flagship", pdd_config, clock=clock) as shop,
        ):
            await core.inventory.receive("TEE-2026-BLK-L", 100)
            with pytest.raises(ChannelAuthExpired, match="refresh token") as paused:
                await core.intake.sync(jd, first_sync_from=start)
            other = await core.intake.sync(shop, first_sync_from=start)
            (jd_run,) = await core.intake.runs("jd-flagship")
    assert "re-authorise" in str(paused.value)
    assert jd_run.status is RunStatus.PAUSED
    assert (other.status, other.created) == (RunStatus.SUCCEEDED, 1)
    assert jos.refreshes == 0


async def test_a_refreshed_token_never_reaches_the_ledger_or_the_logs(
    jos: FakeJosServer, clock: ManualClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Refresh, then the platform echoes the new token while refusing it: redacted everywhere."""
    caplog.set_level(logging.DEBUG)
    start = clock.now() - timedelta(hours=1)
    jos.echo_secrets_in_errors = True
    async with (
        OrderCore.open(f"sqlite:///{tmp_path / 'shop.db'}", clock=clock) as core,
        JdChannel("jd-flagship", jd_config(jos, clock), clock=clock) as channel,
    ):
        first = await core.intake.sync(channel, first_sync_from=start)
        fresh = jos.access_token
        jos.expire_credentials()
        clock.advance(timedelta(minutes=10))
        with pytest.raises(ChannelAuthExpired) as refused:
            await core.intake.sync(channel)
        runs = await core.intake.runs("jd-flagship")
    assert first.status is RunStatus.SUCCEEDED
    assert jos.refreshes == 1
    texts = [str(refused.value), *(error for run in runs for error in run.errors)]
    texts += [record.getMessage() + repr(vars(record)) for record in caplog.records]
    assert any("<redacted>" in text for text in texts)
    for secret in (fresh, jos.refresh_token, JD_TOKEN, JD_REFRESH, APP_SECRET):
        assert not [text for text in texts if secret in text], secret


async def test_a_process_whose_refresh_lost_the_race_adopts_the_winners_tokens(
    jos: FakeJosServer, clock: ManualClock, tmp_path: Path
) -> None:
    """Two adapters of one channel: the loser's refresh token is spent; it adopts the saved ones."""
    async with (
        OrderCore.open(f"sqlite:///{tmp_path / 'shop.db'}", clock=clock) as core,
        JdChannel("jd-flagship", jd_config(jos, clock), clock=clock) as winner,
        JdChannel("jd-flagship", jd_config(jos, clock), clock=clock) as loser,
    ):
        credentials = CredentialService(core.storage, clock)
        await credentials.refresh(winner)
        status = await credentials.refresh(loser)
        adopted = loser.export_tokens()
    assert jos.refreshes == 1
    assert adopted.secret("access_token") == jos.access_token
    assert adopted.secret("refresh_token") == jos.refresh_token
    assert status.refreshable


async def test_a_reauthorised_channel_resumes_from_its_cursor_without_stale_saved_tokens(
    jos: FakeJosServer, clock: ManualClock, tmp_path: Path
) -> None:
    """Paused, then new tokens in the config: saved older tokens are not restored over them,
    and the sync backfills what changed during the pause from the cursor."""
    start = clock.now() - timedelta(hours=1)
    jos.add_order("7100001", start + timedelta(minutes=5))
    async with OrderCore.open(f"sqlite:///{tmp_path / 'shop.db'}", clock=clock) as core:
        async with JdChannel("jd-flagship", jd_config(jos, clock), clock=clock) as channel:
            first = await core.intake.sync(channel, first_sync_from=start)
            jos.expire_credentials()
            jos.expire_refresh_token()
            clock.advance(timedelta(minutes=30))
            jos.add_order("7100002", clock.now() - timedelta(minutes=20))
            with pytest.raises(ChannelAuthExpired):
                await core.intake.sync(channel)
        jos.access_token, jos.refresh_token = "reauth-access-QUUX", "reauth-refresh-QUUX"
        jos.token_valid = jos.refresh_valid = True
        clock.advance(timedelta(minutes=30))
        reauthorised = jd_config(
            jos,
            clock,
            access_token="reauth-access-QUUX",
            refresh_token="reauth-refresh-QUUX",
            access_token_expires_at=(clock.now() + timedelta(days=30)).isoformat(),
        )
        async with JdChannel("jd-flagship", reauthorised, clock=clock) as channel:
            resumed = await core.intake.sync(channel)
        stored = sorted(order.external_id for order in await core.orders.list(limit=10))
    assert first.status is RunStatus.SUCCEEDED
    assert (resumed.status, resumed.cursor_before) == (RunStatus.SUCCEEDED, first.cursor_after)
    assert resumed.created == 1
    assert stored == ["7100001", "7100002"]
    assert jos.requests[-1]["access_token"] == "reauth-access-QUUX"
