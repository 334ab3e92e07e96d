"""The outbox of durable tasks: the outbox_tasks table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

Mirrors schema.py (tests/integration/test_sql_migrations.py compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_OPEN = "state IN ('pending', 'running')"


def upgrade() -> None:
    """Add the outbox."""
    op.create_table(
        "outbox_tasks",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("ordering_key", sa.String(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("available_at", _TIME, nullable=False),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", _TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox_tasks"),
        sa.UniqueConstraint("id", name="uq_outbox_tasks_id"),
        sa.UniqueConstraint("key", name="uq_outbox_tasks_key"),
        sa.CheckConstraint(
            "state IN ('pending', 'running', 'done', 'dead')", name="ck_outbox_tasks_state"
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_outbox_tasks_attempts"),
    )
    op.create_index(
        "ix_outbox_tasks_due",
        "outbox_tasks",
        ["available_at", "seq"],
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )
    op.create_index(
        "ix_outbox_tasks_ordering_key",
        "outbox_tasks",
        ["ordering_key", "seq"],
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )
    op.create_index("ix_outbox_tasks_state_seq", "outbox_tasks", ["state", "seq"])


def downgrade() -> None:
    """Drop the outbox."""
    op.drop_table("outbox_tasks")
