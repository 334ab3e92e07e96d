"""The statements behind ``save_channel_tokens`` / ``load_channel_tokens`` (channel_tokens).

Saving is one conditional upsert: ``INSERT ... ON CONFLICT (channel) DO UPDATE ... WHERE
stored.origin <> new.origin OR stored.refreshed_at < new.refreshed_at RETURNING channel``,
so of two processes that refreshed one channel, the newer tokens win whatever the order
of the writes, decided by the database. Token values are stored as given: the table
holds live credentials, like the channel config; restrict access to it accordingly.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, Select, bindparam, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from ordercore.domain.channels import ChannelTokens
from ordercore_adapters.storage.sql.schema import channel_tokens

__all__ = ["TokenStatements", "from_row", "to_row", "token_statements"]


class TokenStatements:
    """The channel-token statements of one dialect."""

    def __init__(self, dialect: str) -> None:
        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        saved = dialect_insert(channel_tokens)
        self.save: Insert = saved.on_conflict_do_update(
            index_elements=[channel_tokens.c.channel],
            set_={
                "origin": saved.excluded.origin,
                "tokens": saved.excluded.tokens,
                "expires_at": saved.excluded.expires_at,
                "refreshed_at": saved.excluded.refreshed_at,
            },
            where=or_(
                channel_tokens.c.origin != saved.excluded.origin,
                channel_tokens.c.refreshed_at < saved.excluded.refreshed_at,
            ),
        ).returning(channel_tokens.c.channel)
        self.load: Select[Any] = select(*channel_tokens.columns).where(
            channel_tokens.c.channel == bindparam("p_channel")
        )


@cache
def token_statements(dialect: str) -> TokenStatements:
    """The statements of ``dialect``, built on first use."""
    return TokenStatements(dialect)


def to_row(tokens: ChannelTokens) -> dict[str, Any]:
    """The row of ``tokens`` (plain token values, ISO 8601 expiries)."""
    return {
        "channel": tokens.channel,
        "origin": tokens.origin,
        "tokens": {name: value.get_secret_value() for name, value in tokens.tokens.items()},
        "expires_at": {name: moment.isoformat() for name, moment in tokens.expires_at.items()},
        "refreshed_at": tokens.refreshed_at,
    }


def from_row(row: Any) -> ChannelTokens:
    """The :class:`ChannelTokens` of a stored row."""
    return ChannelTokens(
        channel=row.channel,
        origin=row.origin,
        tokens=dict(row.tokens),
        expires_at={name: datetime.fromisoformat(raw) for name, raw in row.expires_at.items()},
        refreshed_at=row.refreshed_at,
    )
