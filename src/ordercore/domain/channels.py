"""What channels hand us: raw records, pages, time windows, limits and credentials.

All times here are timezone-aware UTC. A channel adapter converts the platform's own
zone (Taobao, JD, Pinduoduo and Douyin speak Asia/Shanghai wall-clock time) at its edge,
so nothing past the adapter ever sees local time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ordercore.domain.orders import Order

__all__ = [
    "AS_CONFIGURED",
    "ChannelLimits",
    "ChannelTokens",
    "CredentialState",
    "CredentialStatus",
    "MappedOrder",
    "Page",
    "PagingDirection",
    "RawRecord",
    "RecordKind",
    "TimeWindow",
    "WebhookDelivery",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _require_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


class TimeWindow(BaseModel):
    """A half-open span of platform modification time: ``start <= t < end``, in UTC."""

    model_config = _FROZEN

    start: datetime
    end: datetime

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, moment: datetime, info: ValidationInfo) -> datetime:
        return _require_utc(moment, str(info.field_name))

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"a window must end after it starts ({self.start} .. {self.end})")
        return self

    @property
    def length(self) -> timedelta:
        """How much time the window spans."""
        return self.end - self.start

    def contains(self, moment: datetime) -> bool:
        """True when ``moment`` falls in the window (start included, end excluded)."""
        return self.start <= moment < self.end


class PagingDirection(StrEnum):
    """Which end of a window a platform's page 1 starts from."""

    FORWARD = "forward"
    """Oldest first: page 1 holds the earliest changes."""
    BACKWARD = "backward"
    """Newest first (Taobao's increment API): new changes shift later pages while paging."""


class ChannelLimits(BaseModel):
    """What a platform's incremental order API allows; the window planner obeys it."""

    model_config = _FROZEN

    max_window: Annotated[timedelta, Field(gt=timedelta(0))]
    """Longest span one query may cover (Taobao: 1 day; Pinduoduo: 30 minutes)."""
    lag: Annotated[timedelta, Field(ge=timedelta(0))] = timedelta(0)
    """How far behind the platform's clock a window must end (changes still settling)."""
    history_depth: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(days=90)
    """How far back the API can be asked at all."""
    page_size: Annotated[int, Field(gt=0)] = 100
    """Records per page the adapter asks for."""
    paging: PagingDirection = PagingDirection.FORWARD
    """The order the platform pages in."""
    lookback: Annotated[timedelta, Field(ge=timedelta(0))] = timedelta(minutes=10)
    """Overlap with the previous run, so changes indexed late by the platform are seen."""
    requests_per_second: Annotated[float, Field(gt=0)] | None = None
    """The platform's rate limit for this shop, if it has one."""


class RecordKind(StrEnum):
    """What a raw record describes."""

    ORDER = "order"
    AFTER_SALE = "after_sale"
    PUSH_HINT = "push_hint"
    """An order id a push named that the platform did not return (kept for the record)."""


class RawRecord(BaseModel):
    """One platform record as fetched: its key, its change time and the untouched payload."""

    model_config = _FROZEN

    channel: Annotated[str, Field(min_length=1)]
    external_id: Annotated[str, Field(min_length=1)]
    modified_at: datetime
    payload: dict[str, Any]
    kind: RecordKind = RecordKind.ORDER

    @field_validator("modified_at")
    @classmethod
    def _utc(cls, moment: datetime) -> datetime:
        return _require_utc(moment, "modified_at")

    @property
    def version_key(self) -> tuple[str, datetime]:
        """(external id, modified time): two fetches of one version dedup on this."""
        return (self.external_id, self.modified_at)


class Page(BaseModel):
    """One page of a window. ``total`` is the platform's count for the whole window."""

    model_config = _FROZEN

    records: tuple[RawRecord, ...]
    total: Annotated[int, Field(ge=0)] | None = None
    next_page: str | None = None
    """Opaque token for the next page, or None on the last page."""


class WebhookDelivery(BaseModel):
    """A verified push: its id (for dedup), when it was sent, and the records it names."""

    model_config = _FROZEN

    message_id: Annotated[str, Field(min_length=1)]
    sent_at: datetime | None = None
    topic: str = ""
    records: tuple[RawRecord, ...] = ()
    hints: tuple[str, ...] = ()
    """Order ids the push names without their data (a hint): the intake fetches each one
    through the channel's :class:`~ordercore.ports.channels.OrderLookupPort`."""


class CredentialState(StrEnum):
    """How a channel's credentials stand."""

    VALID = "valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"


class CredentialStatus(BaseModel):
    """Expiry per token or scope, and whether the platform lets us refresh."""

    model_config = _FROZEN

    channel: str
    expires_at: dict[str, datetime]
    """Scope (or token name) -> when it expires."""
    refreshable: bool = False
    refresh_expires_at: datetime | None = None
    """When the refresh token stops working (None: no refresh token, or not known); it is
    tracked apart from ``expires_at`` because the access token may be refreshed up to then."""

    def reauthorise_by(self) -> datetime | None:
        """When the seller must have authorised the app again: the refresh token's expiry
        when refreshable (None if unknown), else the soonest token or scope expiry."""
        if self.refreshable:
            return self.refresh_expires_at
        return min(self.expires_at.values(), default=None)

    def refresh_due(self, now: datetime, before: timedelta) -> bool:
        """True when refreshable and a token or scope expires within ``before`` of ``now``."""
        soonest = min(self.expires_at.values(), default=None)
        return self.refreshable and soonest is not None and soonest - now <= before

    def state(self, now: datetime, warn_before: timedelta) -> CredentialState:
        """EXPIRED if any scope has expired, EXPIRING if one will within ``warn_before``."""
        soonest = min(self.expires_at.values(), default=None)
        if soonest is None:
            return CredentialState.VALID
        if soonest <= now:
            return CredentialState.EXPIRED
        if soonest - now <= warn_before:
            return CredentialState.EXPIRING
        return CredentialState.VALID


class MappedOrder(BaseModel):
    """A raw record mapped to the canonical order, with what the mapping had to guess."""

    model_config = _FROZEN

    order: Order
    warnings: tuple[str, ...] = ()


AS_CONFIGURED = datetime.min.replace(tzinfo=UTC)
"""``ChannelTokens.refreshed_at`` of tokens still as the channel config gave them."""


class ChannelTokens(BaseModel):
    """A channel's tokens after a refresh, as stored so that they survive a restart.

    Token values are SecretStr: a repr, a log line or an error shows ``**********``.
    ``origin`` fingerprints the configured token this chain of refreshes began from, so
    tokens saved before the seller authorised the app again (a new token in the config)
    are recognised as stale and not restored over the new ones.
    """

    model_config = _FROZEN

    channel: Annotated[str, Field(min_length=1)]
    origin: Annotated[str, Field(min_length=1)]
    tokens: dict[str, SecretStr]
    """Token name (``access_token``, ``refresh_token``, ``session``) -> value."""
    expires_at: dict[str, datetime]
    """Token or scope name -> when it expires (``refresh_token`` included where known)."""
    refreshed_at: datetime
    """When the platform issued these tokens; the newest save wins."""

    @field_validator("refreshed_at")
    @classmethod
    def _utc(cls, moment: datetime) -> datetime:
        return _require_utc(moment, "refreshed_at")

    @field_validator("expires_at")
    @classmethod
    def _utc_expiries(cls, value: dict[str, datetime]) -> dict[str, datetime]:
        return {name: _require_utc(moment, f"expires_at[{name}]") for name, moment in value.items()}

    def secret(self, name: str) -> str | None:
        """The plain value of token ``name``, or None."""
        token = self.tokens.get(name)
        return token.get_secret_value() if token is not None else None
