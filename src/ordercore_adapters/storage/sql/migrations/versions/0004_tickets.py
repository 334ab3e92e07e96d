"""Exception tickets: the tickets and ticket_tasks tables.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Mirrors schema.py (tests/integration/test_sql_migrations.py compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add tickets and their durable tasks (timers, outgoing messages)."""
    op.create_table(
        "tickets",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("open_key", sa.String(), nullable=True),
        sa.Column("order_id", sa.String(), nullable=True),
        sa.Column("ticket_type", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("assignee", sa.String(), nullable=True),
        sa.Column("assigned_at", _TIME, nullable=True),
        sa.Column("deadline", _TIME, nullable=False),
        sa.Column("opened_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("resolved_at", _TIME, nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sa.UniqueConstraint("open_key", name="uq_tickets_open_key"),
    )
    op.create_index("ix_tickets_status_deadline", "tickets", ["status", "deadline"])
    op.create_index("ix_tickets_assignee_status", "tickets", ["assignee", "status"])
    op.create_index("ix_tickets_channel_opened_at", "tickets", ["channel", "opened_at"])
    op.create_index("ix_tickets_opened_at", "tickets", ["opened_at"])
    op.create_index("ix_tickets_order_id", "tickets", ["order_id"])
    op.create_table(
        "ticket_tasks",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("ticket_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("due_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim", sa.String(), nullable=True),
        sa.Column("lease_until", _TIME, nullable=True),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ticket_tasks"),
        sa.UniqueConstraint("key", name="uq_ticket_tasks_key"),
    )
    op.create_index("ix_ticket_tasks_state_due_at", "ticket_tasks", ["state", "due_at"])
    op.create_index("ix_ticket_tasks_ticket_id", "ticket_tasks", ["ticket_id"])


def downgrade() -> None:
    """Drop the ticket tables."""
    op.drop_table("ticket_tasks")
    op.drop_table("tickets")
