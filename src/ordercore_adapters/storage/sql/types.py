"""Column types shared by the schema and the migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import JSON, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["JsonValue", "UtcDateTime"]


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``. SQLite has no time type: SQLAlchemy stores the
    fixed-width text ``YYYY-MM-DD HH:MM:SS.ffffff``, so we normalise to UTC and drop the
    zone on the way in (the text then sorts and compares in time order) and attach UTC
    on the way out. A naive datetime is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC (naive for SQLite, aware elsewhere)."""
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JsonValue(TypeDecorator[Any]):
    """A JSON value (``json`` on PostgreSQL, JSON text on SQLite), kept as given.

    Plain JSON values (dicts, lists, strings, numbers, booleans, None) come back equal;
    anything else pydantic can serialise (datetimes, Decimals, tuples, enums) is stored
    as its JSON form. PostgreSQL's ``json`` (not ``jsonb``) keeps the text, key order
    included, which is what a kept raw payload needs for a faithful replay.
    """

    impl = JSON(none_as_null=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Turn anything pydantic can serialise into plain JSON values."""
        return None if value is None else to_jsonable_python(value)
