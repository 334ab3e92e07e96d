"""The lifecycle of an adapter: its client's, and one fixed access token's (JD, Pinduoduo).

The token's expiry comes from the config; the adapter cannot refresh it, so a refresh
asks the seller to authorise the app again. The mixin also closes the client.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Generic, Self, TypeVar

from ordercore.domain.channels import CredentialStatus
from ordercore.errors import ChannelAuthExpired

from .gateway import GatewayClient

__all__ = ["ClientOwner", "FixedTokenChannel"]


C = TypeVar("C", bound=GatewayClient)


class ClientOwner(Generic[C]):
    """Mixin of an adapter that owns its gateway client: ``async with`` and ``aclose``."""

    _client: C

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()


class FixedTokenChannel(ClientOwner[C]):
    """Mixin: :class:`ClientOwner`, ``credential_status`` and ``refresh_credentials``."""

    kind: str
    refresh_subject: ClassVar[str] = "access tokens"
    """What a refusal to refresh calls the token (``JD access tokens``)."""
    name: str
    _expires_at: datetime

    async def credential_status(self) -> CredentialStatus:
        """The access token's expiry (from the config); not refreshable here."""
        return CredentialStatus(
            channel=self.name, expires_at={"access_token": self._expires_at}, refreshable=False
        )

    async def refresh_credentials(self) -> CredentialStatus:
        """Not done by this adapter: the seller re-authorises (ChannelAuthExpired)."""
        raise ChannelAuthExpired(
            f"{self.kind} channel {self.name!r}: this adapter does not refresh "
            f"{self.refresh_subject}; the seller must authorise the app again"
        )
