"""The lifecycle of an adapter: its client's, and its tokens' (expiry, refresh, export).

:class:`TokenState` holds one seller's tokens as they change at run time: the access
token and its expiry (and each scope's), the refresh token and its own expiry, when the
platform last issued them and the fingerprint of the configured token they descend from.
It registers every token it learns with the client's scrubber, so a refreshed token is
redacted from errors and logs like the configured one.

:class:`RefreshingTokenChannel` is the mixin of an adapter over such tokens (JD,
Pinduoduo; Douyin uses :class:`TokenLifecycle` over its own HTTP client): status,
refresh (the platform's grant is the adapter's :meth:`~TokenLifecycle._refresh_grant`),
and :class:`ordercore.ports.channels.TokenCarrier`'s export and restore. Without a
(live) refresh token a refresh raises ChannelAuthExpired naming what the seller must do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, Self, TypeVar

from ordercore.domain.channels import AS_CONFIGURED, ChannelTokens, CredentialStatus
from ordercore.errors import ChannelAuthExpired, ChannelUnavailable, FieldError
from ordercore.ports.clock import Clock

from .config import aware, shown
from .gateway import GatewayClient

__all__ = [
    "AS_CONFIGURED",
    "REFRESH_KEYS",
    "ClientOwner",
    "FixedTokenChannel",
    "RefreshingTokenChannel",
    "TokenGrant",
    "TokenLifecycle",
    "TokenState",
    "epoch_time",
    "fingerprint",
    "refresh_config_errors",
]


C = TypeVar("C", bound=GatewayClient)

REFRESH_KEYS = ("refresh_token", "refresh_token_expires_at")
"""The config keys of an optional refresh token."""


def fingerprint(token: str) -> str:
    """A one-way fingerprint of a configured token (tells a re-authorisation apart)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]


def epoch_time(raw: object, *, milliseconds: bool = False) -> datetime | None:
    """A platform's epoch number (seconds, or milliseconds) as aware UTC; None if absent."""
    if raw in (None, "") or isinstance(raw, bool):
        return None
    try:
        value = float(str(raw))
    except ValueError:
        return None
    return datetime.fromtimestamp(value / 1000 if milliseconds else value, UTC)


def refresh_config_errors(config: Mapping[str, object]) -> list[FieldError]:
    """Problems of the optional ``refresh_token`` / ``refresh_token_expires_at`` keys."""
    errors: list[FieldError] = []
    token = config.get("refresh_token")
    if token not in (None, "") and not isinstance(token, str):
        errors.append(
            FieldError(
                "refresh_token", "must be text", shown("refresh_token", token, {"refresh_token"})
            )
        )
    expiry = config.get("refresh_token_expires_at")
    if expiry not in (None, "") and aware(expiry) is None:
        errors.append(
            FieldError("refresh_token_expires_at", "must be a timezone-aware ISO 8601 time", expiry)
        )
    return errors


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a platform's refresh answered (times already UTC)."""

    access_token: str
    expires_at: datetime
    refresh_token: str | None = None
    refresh_expires_at: datetime | None = None
    scopes: Mapping[str, datetime] = field(default_factory=dict)


class TokenState:
    """One seller's tokens as they change at run time (see the module docstring)."""

    def __init__(
        self,
        *,
        access_name: str,
        access_token: str,
        expires_at: datetime | None,
        refresh_token: str | None = None,
        refresh_expires_at: datetime | None = None,
        scopes: Mapping[str, datetime] | None = None,
        on_secret: Callable[[str], None],
    ) -> None:
        self.access_name = access_name
        self.access_token = access_token
        self.expires_at = expires_at
        self.refresh_token = refresh_token or None
        self.refresh_expires_at = refresh_expires_at
        self.scopes: dict[str, datetime] = dict(scopes or {})
        self.origin = fingerprint(access_token)
        self.refreshed_at = AS_CONFIGURED
        self._on_secret = on_secret
        on_secret(access_token)
        if self.refresh_token:
            on_secret(self.refresh_token)

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, object],
        *,
        expires_at: datetime | None,
        on_secret: Callable[[str], None],
    ) -> TokenState:
        """The configured ``access_token`` with the optional ``refresh_token`` and its
        ``refresh_token_expires_at`` (validated by :func:`refresh_config_errors`)."""
        refresh_expiry = config.get("refresh_token_expires_at") or ""
        return cls(
            access_name="access_token",
            access_token=str(config["access_token"]).strip(),
            expires_at=expires_at,
            refresh_token=str(config.get("refresh_token") or "").strip() or None,
            refresh_expires_at=aware(refresh_expiry) or None,
            on_secret=on_secret,
        )

    def __repr__(self) -> str:
        return f"TokenState(access_name={self.access_name!r}, refreshed_at={self.refreshed_at})"

    def refreshable(self, now: datetime) -> bool:
        """A refresh token is held and has not expired."""
        return bool(self.refresh_token) and (
            self.refresh_expires_at is None or self.refresh_expires_at > now
        )

    def status(self, channel: str, now: datetime) -> CredentialStatus:
        """Each token's and scope's expiry; the refresh token's apart."""
        expires = {self.access_name: self.expires_at} if self.expires_at is not None else {}
        return CredentialStatus(
            channel=channel,
            expires_at={**expires, **self.scopes},
            refreshable=self.refreshable(now),
            refresh_expires_at=self.refresh_expires_at if self.refresh_token else None,
        )

    def usable_refresh_token(self, what: str, reauthorise: str, now: datetime) -> str:
        """The refresh token, or ChannelAuthExpired saying why there is none and what to do."""
        if not self.refresh_token:
            raise ChannelAuthExpired(
                f"{what}: no refresh_token is configured, so the access token cannot be "
                f"refreshed; the seller must authorise the app again ({reauthorise})"
            )
        if self.refresh_expires_at is not None and self.refresh_expires_at <= now:
            raise ChannelAuthExpired(
                f"{what}: the refresh token expired at {self.refresh_expires_at.isoformat()}; "
                f"the seller must authorise the app again ({reauthorise})"
            )
        return self.refresh_token

    def apply(self, grant: TokenGrant, now: datetime) -> None:
        """Take the tokens a refresh returned (a refresh token not returned is kept)."""
        self._on_secret(grant.access_token)
        self.access_token = grant.access_token
        self.expires_at = grant.expires_at
        self.scopes.update(grant.scopes)
        if grant.refresh_token:
            self._on_secret(grant.refresh_token)
            self.refresh_token = grant.refresh_token
            self.refresh_expires_at = grant.refresh_expires_at
        elif grant.refresh_expires_at is not None:
            self.refresh_expires_at = grant.refresh_expires_at
        self.refreshed_at = now

    def export(self, channel: str) -> ChannelTokens:
        """The tokens as :class:`ChannelTokens` (SecretStr values)."""
        tokens: dict[str, Any] = {self.access_name: self.access_token}
        expires: dict[str, datetime] = dict(self.scopes)
        if self.expires_at is not None:
            expires[self.access_name] = self.expires_at
        if self.refresh_token:
            tokens["refresh_token"] = self.refresh_token
            if self.refresh_expires_at is not None:
                expires["refresh_token"] = self.refresh_expires_at
        return ChannelTokens(
            channel=channel,
            origin=self.origin,
            tokens=tokens,
            expires_at=expires,
            refreshed_at=self.refreshed_at,
        )

    def restore(self, saved: ChannelTokens) -> bool:
        """Adopt ``saved`` when it descends from the configured token and is newer."""
        access = saved.secret(self.access_name)
        if saved.origin != self.origin or saved.refreshed_at <= self.refreshed_at or not access:
            return False
        refresh = saved.secret("refresh_token")
        expires = dict(saved.expires_at)
        self._on_secret(access)
        self.access_token = access
        self.expires_at = expires.pop(self.access_name, None)
        self.refresh_expires_at = expires.pop("refresh_token", None)
        self.scopes = expires
        if refresh:
            self._on_secret(refresh)
        self.refresh_token = refresh
        self.refreshed_at = saved.refreshed_at
        return True


class TokenLifecycle:
    """Mixin: ``credential_status``, ``refresh_credentials``, ``export_tokens``, ``restore_tokens``.

    The adapter sets ``_tokens`` and ``_clock`` and implements :meth:`_refresh_grant` (the
    platform's call) and :meth:`_use_access_token` (hand the token to its client).
    """

    kind: str
    name: str
    reauthorise: ClassVar[str] = "and put the new tokens in the channel config"
    """What the seller does to authorise again (quoted in ChannelAuthExpired)."""
    _tokens: TokenState
    _clock: Clock

    async def credential_status(self) -> CredentialStatus:
        """The access token's (and each scope's) expiry; refreshable with a live refresh token."""
        return self._tokens.status(self.name, self._clock.now())

    async def refresh_credentials(self) -> CredentialStatus:
        """Renew the access token with the refresh token (ChannelAuthExpired without one)."""
        now = self._clock.now()
        what = f"{self.kind} channel {self.name!r}"
        refresh = self._tokens.usable_refresh_token(what, self.reauthorise, now)
        grant = await self._refresh_grant(refresh, now)
        self._tokens.apply(grant, now)
        self._use_access_token(grant.access_token)
        return await self.credential_status()

    def export_tokens(self) -> ChannelTokens:
        """The tokens held now (see :class:`ordercore.ports.channels.TokenCarrier`)."""
        return self._tokens.export(self.name)

    def restore_tokens(self, tokens: ChannelTokens) -> bool:
        """Use saved tokens when newer and of the configured origin; False otherwise."""
        if tokens.channel != self.name or not self._tokens.restore(tokens):
            return False
        self._use_access_token(self._tokens.access_token)
        return True

    async def _refresh_grant(self, refresh_token: str, now: datetime) -> TokenGrant:
        raise NotImplementedError

    def _use_access_token(self, token: str) -> None:
        raise NotImplementedError

    def _malformed(self, what: str, exc: Exception | None = None) -> ChannelUnavailable:
        """The error for a refresh answer that lacks what it must carry."""
        detail = f" ({type(exc).__name__})" if exc is not None else ""
        return ChannelUnavailable(
            f"{self.kind} channel {self.name!r}: the token refresh answer is malformed: "
            f"{what}{detail}"
        )

    def _expiry(self, now: datetime, absolute: datetime | None, seconds: object) -> datetime:
        """An expiry from an absolute time, else ``seconds`` from now (malformed: neither)."""
        if absolute is not None:
            return absolute
        if isinstance(seconds, int | float | str) and not isinstance(seconds, bool):
            try:
                return now + timedelta(seconds=float(seconds))
            except ValueError:
                pass
        raise self._malformed("no expiry")


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


class RefreshingTokenChannel(TokenLifecycle, ClientOwner[C]):
    """Mixin of a gateway adapter over refreshable tokens (JD, Pinduoduo)."""


class FixedTokenChannel(ClientOwner[C]):
    """Mixin: :class:`ClientOwner`, ``credential_status`` and ``refresh_credentials``.

    For an adapter whose platform offers no refresh: a refresh asks the seller to
    authorise the app again.
    """

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
