"""Channel intake: orders.source_modified_at, sync cursors, the sync ledger, rejects, deliveries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Mirrors schema.py (tests/integration/test_sql_migrations.py compares the two). Existing
orders get a NULL ``source_modified_at``: the oldest version, so the next version a
channel delivers replaces them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the intake column and tables."""
    op.add_column("orders", sa.Column("source_modified_at", _TIME, nullable=True))
    op.create_table(
        "sync_cursors",
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("feed", sa.String(), nullable=False),
        sa.Column("position", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("channel", "feed", name="pk_sync_cursors"),
    )
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("feed", sa.String(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("stale", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("cursor_before", _TIME, nullable=True),
        sa.Column("cursor_after", _TIME, nullable=True),
        sa.Column("credential_state", sa.String(), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sync_runs"),
    )
    op.create_index("ix_sync_runs_channel_started_at", "sync_runs", ["channel", "started_at"])
    op.create_index("ix_sync_runs_started_at", "sync_runs", ["started_at"])
    op.create_table(
        "sync_rejects",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("modified_at", _TIME, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("rejected_at", _TIME, nullable=False),
        sa.Column("resolved_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sync_rejects"),
    )
    op.create_index(
        "ix_sync_rejects_channel_resolved_at",
        "sync_rejects",
        ["channel", "resolved_at", "rejected_at"],
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("channel", "message_id", name="pk_webhook_deliveries"),
    )
    op.create_index("ix_webhook_deliveries_received_at", "webhook_deliveries", ["received_at"])


def downgrade() -> None:
    """Drop the intake tables and column."""
    for table in ("webhook_deliveries", "sync_rejects", "sync_runs", "sync_cursors"):
        op.drop_table(table)
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("source_modified_at")
