"""Refreshed channel credentials: the channel_tokens table.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Mirrors schema.py (tests/integration/test_sql_migrations.py compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the table of refreshed channel tokens."""
    op.create_table(
        "channel_tokens",
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("origin", sa.String(), nullable=False),
        sa.Column("tokens", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.JSON(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", name="pk_channel_tokens"),
    )


def downgrade() -> None:
    """Drop the table of refreshed channel tokens."""
    op.drop_table("channel_tokens")
