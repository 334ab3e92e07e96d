"""Channel credentials: refresh where the platform allows, and keep what a refresh returns.

A refresh token is often single-use: once a refresh succeeded, only the tokens it
returned work, so they must outlive the process. :class:`CredentialService` refreshes
and saves in one step, hands saved tokens to a new adapter object (a restart, another
process) and, when two processes refresh one channel at once and the platform refuses
the loser's spent refresh token, lets the loser adopt the winner's tokens instead of
pausing the channel. Adapters take part by implementing
:class:`ordercore.ports.channels.TokenCarrier`; others are refreshed without saving.

The intake calls :meth:`CredentialService.check` at the start of every sync run; a
scheduler calls :meth:`CredentialService.refresh_if_due` to refresh ahead of expiry, and
:meth:`CredentialService.restore` when it attaches a channel.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from ordercore.domain.channels import (
    AS_CONFIGURED,
    ChannelTokens,
    CredentialState,
    CredentialStatus,
)
from ordercore.errors import ChannelAuthExpired
from ordercore.ports.channels import ChannelPort, TokenCarrier
from ordercore.ports.clock import Clock
from ordercore.ports.storage import Storage

__all__ = ["CredentialService"]

_log = logging.getLogger("ordercore.credentials")


class CredentialService:
    """Refresh a channel's credentials and keep the refreshed tokens in the storage."""

    def __init__(self, storage: Storage, clock: Clock) -> None:
        self._storage = storage
        self._clock = clock

    async def restore(self, channel: ChannelPort) -> bool:
        """Give the channel its saved tokens if they are newer than its own; True if used.

        A channel that holds newer tokens than the saved ones (a refresh whose save
        failed) has them saved now instead.
        """
        if not isinstance(channel, TokenCarrier):
            return False
        saved = await self._load(channel.name)
        if saved is not None and channel.restore_tokens(saved):
            _log.info(
                "channel tokens restored",
                extra={"channel": channel.name, "refreshed_at": saved.refreshed_at.isoformat()},
            )
            return True
        held = channel.export_tokens()
        if held.refreshed_at > AS_CONFIGURED and (
            saved is None or saved.origin != held.origin or saved.refreshed_at < held.refreshed_at
        ):
            await self._save(held)
        return False

    async def refresh(self, channel: ChannelPort) -> CredentialStatus:
        """Refresh now and save the new tokens before returning (ChannelAuthExpired if not).

        When the platform refuses (a refresh token another process spent first), tokens
        that process saved meanwhile are adopted instead of failing.
        """
        carrier = channel if isinstance(channel, TokenCarrier) else None
        before = carrier.export_tokens().refreshed_at if carrier is not None else None
        try:
            status = await channel.refresh_credentials()
        except ChannelAuthExpired:
            if carrier is None or not await self.restore(channel):
                raise
            _log.info("channel tokens refreshed elsewhere adopted", extra={"channel": channel.name})
            return await channel.credential_status()
        if carrier is not None:
            held = carrier.export_tokens()
            if before is None or held.refreshed_at > before:
                await self._save(held)
        _log.info("channel credentials refreshed", extra={"channel": channel.name})
        return status

    async def refresh_if_due(self, channel: ChannelPort, before: timedelta) -> CredentialStatus:
        """For a scheduler: pick up saved tokens, then refresh if a token expires within
        ``before`` and the channel can refresh. Returns the status as it then stands."""
        await self.restore(channel)
        status = await channel.credential_status()
        if status.refresh_due(self._clock.now(), before):
            status = await self.refresh(channel)
        return status

    async def check(self, channel: ChannelPort, warn_before: timedelta) -> CredentialState:
        """The intake's check before a sync run: saved tokens first, a refresh if expired.

        Raises ChannelAuthExpired (the channel pauses) when the credentials expired and
        cannot be refreshed, naming what the seller must do.
        """
        await self.restore(channel)
        status = await channel.credential_status()
        state = status.state(self._clock.now(), warn_before)
        if state is CredentialState.EXPIRED:
            if not status.refreshable:
                raise ChannelAuthExpired(_expired_message(channel.name, status))
            status = await self.refresh(channel)
            state = status.state(self._clock.now(), warn_before)
        return state

    async def _load(self, channel: str) -> ChannelTokens | None:
        async with self._storage.unit_of_work() as uow:
            return await uow.intake.load_channel_tokens(channel)

    async def _save(self, tokens: ChannelTokens) -> None:
        async with self._storage.unit_of_work() as uow:
            await uow.intake.save_channel_tokens(tokens)
            await uow.commit()


def _expired_message(name: str, status: CredentialStatus) -> str:
    refresh = status.refresh_expires_at
    if refresh is not None:
        return (
            f"channel {name!r}: credentials expired and so did the refresh token (at "
            f"{refresh.isoformat()}); re-authorise to resume (the seller authorises the "
            f"app again and the new tokens go in the channel config)"
        )
    return f"channel {name!r}: credentials expired; re-authorise to resume"
