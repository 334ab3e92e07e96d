"""Driver errors translated into ordercore's error tree, at the adapter's boundary.

Nothing from SQLAlchemy, sqlite3 or psycopg escapes: connection trouble, timeouts,
lock waits and serialization failures become :class:`StorageUnavailable` (transient,
worth retrying); everything else becomes :class:`StorageError`. Messages never carry
a password.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from ordercore.errors import StorageError, StorageUnavailable

__all__ = ["translate"]


def translate(exc: sa_exc.SQLAlchemyError, backend: str, secret: str | None) -> StorageError:
    """The ordercore error for a SQLAlchemy/driver error; the caller raises it ``from exc``."""
    detail = _describe(exc)
    if secret:
        detail = detail.replace(secret, "***")
    transient = isinstance(
        exc, sa_exc.OperationalError | sa_exc.TimeoutError | sa_exc.DisconnectionError
    ) or (isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated)
    if transient:
        return StorageUnavailable(f"{backend} storage unavailable: {detail}")
    return StorageError(f"{backend} storage failed: {detail}")


def _describe(exc: sa_exc.SQLAlchemyError) -> str:
    # StatementError (DBAPIError's base) keeps the driver's exception in ``orig``; its own
    # text would quote the SQL parameters, which can hold customer data.
    original = exc.orig if isinstance(exc, sa_exc.StatementError) else None
    if original is not None:
        message = str(original).strip().splitlines()
        return f"{type(original).__name__}: {message[0] if message else ''}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"
