"""Behaviours every gateway channel (Taobao TOP, JD JOS, Pinduoduo) shares, checked once.

A platform's test module subclasses :class:`GatewayChannelSuite` (and, for an adapter over
one access token, :class:`TokenChannelSuite`) as ``Test<Platform>Gateway``, supplies the
hooks (:meth:`~GatewayChannelSuite.open_channel`, :meth:`~GatewayChannelSuite.window`)
and the ``server`` and ``channel`` fixtures; every test below then runs for that platform.
Assertions that differ per platform stay in the platform's module.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

import pytest

from ordercore import OrderCore, Settings
from ordercore.domain.channels import CredentialStatus, Page, TimeWindow
from ordercore.domain.intake import RunStatus
from ordercore.errors import ChannelAuthExpired, ChannelUnavailable, InvalidInput
from ordercore.ports.clock import ManualClock

ATTEMPTS = 3
"""How many times stamina tries (each platform's module sets it with ``set_testing``)."""


class GatewayFake(Protocol):
    """What the suite needs of a fake gateway (``fakes._http.FakeGateway`` subclasses)."""

    requests: list[dict[str, str]]

    def add_order(self, external_id: str, modified_at_utc: datetime) -> None: ...

    def fail_next(self, n: int, kind: str = ...) -> None: ...

    def expire_credentials(self) -> None: ...


class GatewayChannel(Protocol):
    """What the suite needs of a channel adapter."""

    async def fetch_orders(self, window: TimeWindow, page: str | None) -> Page: ...

    async def credential_status(self) -> CredentialStatus: ...

    async def refresh_credentials(self) -> CredentialStatus: ...


class GatewayChannelSuite:
    """Transport faults, retries and refusals every gateway adapter handles alike."""

    transient_order_id: ClassVar[str] = "6000001"

    def open_channel(
        self, server: Any, **overrides: object
    ) -> AbstractAsyncContextManager[GatewayChannel]:
        """A channel named ``shop`` on ``server``, its config changed by ``overrides``."""
        raise NotImplementedError

    def window(self, server: Any, length: timedelta | None = None) -> TimeWindow:
        """A past window the platform accepts (``length`` or the module's default)."""
        raise NotImplementedError

    @pytest.mark.anyio
    @pytest.mark.parametrize("kind", ["5xx", "malformed"])
    async def test_transient_failures_are_retried(
        self, server: GatewayFake, channel: GatewayChannel, kind: str
    ) -> None:
        """Two 5xx / malformed-JSON answers, then success on the third attempt."""
        window = self.window(server)
        server.add_order(self.transient_order_id, window.start)
        server.fail_next(2, kind)
        page = await channel.fetch_orders(window, None)
        assert [r.external_id for r in page.records] == [self.transient_order_id]
        assert len(server.requests) == 3

    @pytest.mark.anyio
    async def test_persistent_malformed_json_ends_in_channel_unavailable(
        self, server: GatewayFake, channel: GatewayChannel
    ) -> None:
        """Malformed JSON on every attempt: ChannelUnavailable naming it, after ATTEMPTS tries."""
        server.fail_next(10, "malformed")
        with pytest.raises(ChannelUnavailable, match="malformed JSON"):
            await channel.fetch_orders(self.window(server), None)
        assert len(server.requests) == ATTEMPTS

    @pytest.mark.anyio
    async def test_a_hanging_gateway_times_out_then_gives_up(self, server: GatewayFake) -> None:
        """Every request hangs: each times out, is retried, and the call ends ChannelUnavailable."""
        server.fail_next(10, "hang")
        async with self.open_channel(server, timeout=0.3) as channel:
            began = time.monotonic()
            with pytest.raises(ChannelUnavailable, match=r"no answer within 0\.3 s"):
                await channel.fetch_orders(self.window(server), None)
        assert 0.9 <= time.monotonic() - began < 5
        assert len(server.requests) == ATTEMPTS

    @pytest.mark.anyio
    async def test_expired_credentials_are_not_retried(
        self, server: GatewayFake, channel: GatewayChannel
    ) -> None:
        """The platform's expired-credential answer raises ChannelAuthExpired after one request."""
        server.expire_credentials()
        with pytest.raises(ChannelAuthExpired, match="re-authorise"):
            await channel.fetch_orders(self.window(server), None)
        assert len(server.requests) == 1


class TokenFake(GatewayFake, Protocol):
    """A fake gateway that can answer the platform's rate-limit code."""

    def rate_limit_next(self, n: int) -> None: ...

    def modify_during_paging(
        self, order_id: str, *, after_pages: int, to: datetime | None = None
    ) -> None: ...


class TokenChannelSuite(GatewayChannelSuite):
    """An adapter over one access token, with a fixed ``rate_limit_wait`` of 0.2 s."""

    rate_limited: ClassVar[type[ChannelUnavailable]]
    """The platform's error for bans that outlast ``max_ban_wait``."""
    rate_limit_order_id: ClassVar[str] = "5000001"

    @pytest.mark.anyio
    async def test_rate_limit_answers_are_waited_out(
        self, server: TokenFake, channel: GatewayChannel
    ) -> None:
        """Two rate-limit answers: the client waits rate_limit_wait each time, then succeeds."""
        window = self.window(server)
        server.add_order(self.rate_limit_order_id, window.start)
        server.rate_limit_next(2)
        began = time.monotonic()
        page = await channel.fetch_orders(window, None)
        assert time.monotonic() - began >= 0.38
        assert [r.external_id for r in page.records] == [self.rate_limit_order_id]
        assert len(server.requests) == 3

    @pytest.mark.anyio
    async def test_rate_limiting_past_max_ban_wait_raises_the_platforms_rate_limited(
        self, server: TokenFake
    ) -> None:
        """Still limited after max_ban_wait: the platform's RateLimited (a ChannelUnavailable)."""
        server.rate_limit_next(100)
        async with self.open_channel(server, max_ban_wait=0.5) as channel:
            with pytest.raises(self.rate_limited, match="rate limited"):
                await channel.fetch_orders(self.window(server), None)
        assert len(server.requests) == 3  # 0.2 + 0.2 waited; a third wait would pass 0.5
        assert issubclass(self.rate_limited, ChannelUnavailable)

    api_error: ClassVar[type[Exception]]
    """What the platform's refusal (a window it will not take) raises."""
    refused_length: ClassVar[timedelta]
    """A window length the platform refuses."""
    secrets: ClassVar[tuple[str, ...]]
    echoed: ClassVar[str]
    """The platform's text around a secret it echoes in an error (scrubbed to ``<redacted>``)."""

    def echoing_server(self) -> AbstractContextManager[TokenFake]:
        """A fresh fake gateway that echoes the secrets in its errors."""
        raise NotImplementedError

    def bad_secret_config(self) -> None:
        """Open a channel whose config has secrets of the wrong type (InvalidInput)."""
        raise NotImplementedError

    @pytest.mark.anyio
    async def test_secrets_never_appear_in_reprs_logs_or_errors(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The app's secret and the access token stay out of reprs, log records and errors."""
        with self.echoing_server() as server:
            async with self.open_channel(server, timeout=0.2, max_ban_wait=0.3) as channel:

                def reset() -> None:
                    server.fail_next(0)
                    server.rate_limit_next(0)

                names, texts = await leaked_texts(
                    channel,
                    server,
                    refused=self.api_error,
                    refused_window=self.window(server, self.refused_length),
                    window=self.window(server),
                    arrangements=[
                        lambda: server.fail_next(10, "5xx"),
                        lambda: server.fail_next(10, "hang"),
                        lambda: server.rate_limit_next(10),
                        server.expire_credentials,
                    ],
                    reset=reset,
                    bad_config=self.bad_secret_config,
                    caplog=caplog,
                )
        assert names == [
            self.api_error.__name__,
            "ChannelUnavailable",
            "ChannelUnavailable",
            self.rate_limited.__name__,
            "ChannelAuthExpired",
            "InvalidInput",
        ]
        assert any(f"{self.echoed} (<redacted>)" in text for text in texts)  # echoed, scrubbed
        for secret in self.secrets:
            assert not [text for text in texts if secret in text], secret

    sync_sku: ClassVar[str]
    """A SKU the filled orders use (stocked before the sync)."""
    sync_step: ClassVar[timedelta]
    """How far the clock moves between the two syncs."""

    def server_on(self, clock: ManualClock) -> AbstractContextManager[TokenFake]:
        """A fresh fake gateway on ``clock``."""
        raise NotImplementedError

    def flagship(self, server: Any, clock: ManualClock) -> AbstractAsyncContextManager[Any]:
        """The module's flagship channel on ``server`` and ``clock``."""
        raise NotImplementedError

    def fill(self, server: Any, window: TimeWindow, count: int) -> list[str]:
        """``count`` orders inside ``window``; their ids (the module's ``fill``)."""
        raise NotImplementedError

    def changed_at(self, server: Any, order_id: str) -> datetime:
        """When the fake last changed ``order_id``."""
        raise NotImplementedError

    @pytest.mark.anyio
    async def test_sync_stores_every_order_once_when_one_changes_while_paging(self) -> None:
        """Through core.intake.sync on memory://: every order stored once, at its newest version."""
        clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        with self.server_on(clock) as server:
            window = self.window(server)
            ids = self.fill(server, window, 45)
            server.modify_during_paging(ids[0], after_pages=1)
            async with (
                OrderCore.open("memory://", clock=clock, settings=Settings()) as core,
                self.flagship(server, clock) as channel,
            ):
                await core.inventory.receive(self.sync_sku, 1_000)
                first = await core.intake.sync(channel, first_sync_from=window.start)
                clock.advance(self.sync_step)
                second = await core.intake.sync(channel)
                orders = await core.orders.list(limit=1_000)
        assert (first.status, second.status) == (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED)
        assert first.created + second.created == 45
        assert first.pages > 3  # the totals moved while paging: the window was re-scanned
        assert sorted(order.external_id for order in orders) == sorted(ids)
        moved = next(order for order in orders if order.external_id == ids[0])
        assert moved.source_modified_at == self.changed_at(server, ids[0])

    @pytest.mark.anyio
    async def test_refresh_asks_for_reauthorisation(self, channel: GatewayChannel) -> None:
        """Tokens are not refreshed by these adapters: ChannelAuthExpired saying so."""
        assert not (await channel.credential_status()).refreshable
        with pytest.raises(ChannelAuthExpired, match="authorise the app again"):
            await channel.refresh_credentials()


async def leaked_texts(
    channel: Any,
    server: Any,
    *,
    refused: type[BaseException],
    refused_window: TimeWindow,
    window: TimeWindow,
    arrangements: Sequence[Callable[[], None]],
    reset: Callable[[], None],
    bad_config: Callable[[], object],
    caplog: pytest.LogCaptureFixture,
) -> tuple[list[str], list[str]]:
    """Everything a channel shows while it fails every way: (error type names, texts).

    ``refused_window`` is refused by the platform (``refused`` raised); each arrangement
    (after ``reset``) makes a fetch of ``window`` fail; ``bad_config`` raises InvalidInput.
    The texts are the reprs, the formatted errors and every log record (message and vars).
    """
    caplog.set_level(logging.DEBUG)
    shown = [repr(channel), repr(channel.client)]
    raised: list[BaseException] = []
    with pytest.raises(refused) as first:
        await channel.fetch_orders(refused_window, None)
    raised.append(first.value)
    for arrange in arrangements:
        reset()
        arrange()
        with pytest.raises((ChannelUnavailable, ChannelAuthExpired)) as caught:
            await channel.fetch_orders(window, None)
        raised.append(caught.value)
    with pytest.raises(InvalidInput) as invalid:
        bad_config()
    raised.append(invalid.value)
    texts = shown + ["".join(traceback.format_exception(error)) + repr(error) for error in raised]
    texts += [record.getMessage() + repr(vars(record)) for record in caplog.records]
    return [type(error).__name__ for error in raised], texts


class RefreshingFake(Protocol):
    """A fake platform that issues single-use refresh tokens (JOS, Pinduoduo, 抖店)."""

    access_token: str
    refresh_token: str
    refreshes: int

    def expire_refresh_token(self) -> None: ...

    def expire_credentials(self) -> None: ...


class RefreshingChannelSuite:
    """Token refresh, refresh-token expiry, export/restore and scrubbing of new tokens.

    A platform module subclasses it as ``Test<Platform>Refresh`` with a ``server``
    fixture and the hooks below.
    """

    def open_refreshing(self, server: Any, **overrides: object) -> AbstractAsyncContextManager[Any]:
        """A channel named ``shop`` on ``server`` with the fake's refresh token configured."""
        raise NotImplementedError

    def window(self, server: Any, length: timedelta | None = None) -> TimeWindow:
        """A past window the platform accepts."""
        raise NotImplementedError

    def sent_token(self, server: Any) -> str:
        """The access token the fake's last request carried."""
        raise NotImplementedError

    def echo_secrets(self, server: Any) -> None:
        """From now on the fake echoes the tokens it refuses in its error text."""
        raise NotImplementedError

    @pytest.mark.anyio
    async def test_refresh_renews_the_token_and_the_next_fetch_uses_it(
        self, server: RefreshingFake
    ) -> None:
        """A refresh gets new tokens (the old ones stop working); the next fetch sends the new."""
        old = server.access_token
        async with self.open_refreshing(server) as channel:
            status = await channel.refresh_credentials()
            await channel.fetch_orders(self.window(server), None)
        assert server.refreshes == 1
        assert server.access_token != old
        assert self.sent_token(server) == server.access_token
        assert status.refreshable
        assert status.refresh_expires_at is not None
        assert min(status.expires_at.values()) > datetime.now(UTC)

    @pytest.mark.anyio
    async def test_a_refused_refresh_token_raises_channel_auth_expired(
        self, server: RefreshingFake
    ) -> None:
        """A spent or revoked refresh token: ChannelAuthExpired telling the seller what to do."""
        server.expire_refresh_token()
        async with self.open_refreshing(server) as channel:
            with pytest.raises(ChannelAuthExpired, match="authorise the app again"):
                await channel.refresh_credentials()
        assert server.refreshes == 0

    @pytest.mark.anyio
    async def test_an_expired_refresh_token_is_tracked_apart_and_not_sent(
        self, server: RefreshingFake
    ) -> None:
        """Past its own expiry the refresh token is not sent: ChannelAuthExpired naming when."""
        expired = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        async with self.open_refreshing(
            server, refresh_token_expires_at=expired.isoformat()
        ) as channel:
            status = await channel.credential_status()
            with pytest.raises(ChannelAuthExpired, match="refresh token expired at"):
                await channel.refresh_credentials()
        assert not status.refreshable
        assert status.refresh_expires_at == expired
        assert status.reauthorise_by() == min(status.expires_at.values())
        assert server.refreshes == 0

    @pytest.mark.anyio
    async def test_exported_tokens_restore_into_a_new_adapter_only_when_newer(
        self, server: RefreshingFake
    ) -> None:
        """A new adapter restores refreshed tokens and uses them; stale or foreign ones: refused."""
        async with self.open_refreshing(server) as first:
            await first.refresh_credentials()
            saved = first.export_tokens()
        assert server.access_token not in repr(saved)
        assert saved.secret("access_token") == server.access_token
        async with self.open_refreshing(server) as second:
            assert second.restore_tokens(saved)
            assert not second.restore_tokens(saved)  # not newer than what it holds
            await second.fetch_orders(self.window(server), None)
        assert self.sent_token(server) == server.access_token
        async with self.open_refreshing(server, access_token="re-authorised-token") as other:
            assert not other.restore_tokens(saved)  # another origin: the config is newer

    @pytest.mark.anyio
    async def test_a_refreshed_token_is_scrubbed_from_errors_and_logs(
        self, server: RefreshingFake, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The platform echoing the refreshed token in an error: redacted in the error and logs."""
        caplog.set_level(logging.DEBUG)
        async with self.open_refreshing(server) as channel:
            await channel.refresh_credentials()
            fresh = server.access_token
            self.echo_secrets(server)
            server.expire_credentials()
            with pytest.raises(ChannelAuthExpired) as caught:
                await channel.fetch_orders(self.window(server), None)
            shown = [repr(channel), repr(channel.export_tokens())]
        texts = [*shown, "".join(traceback.format_exception(caught.value))]
        texts += [record.getMessage() + repr(vars(record)) for record in caplog.records]
        assert "<redacted>" in texts[2]
        for secret in (fresh, server.refresh_token):
            assert not [text for text in texts if secret in text]
