"""SQL storage for ordercore: SQLite (the embedded default) and PostgreSQL.

SQLAlchemy 2 Core on a synchronous engine, every call in a worker thread; schema by
alembic migrations shipped in this package. Registered under the ``ordercore.storage``
entry points ``sqlite`` and ``postgresql``::

    storage = SqlStorage("sqlite:///shop.db", Settings())
    await storage.open()  # migrates when settings.migrate_on_open
"""

from ordercore_adapters.storage.sql.storage import SqlStorage

__all__ = ["SqlStorage"]
