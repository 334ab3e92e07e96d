"""Order health review: the review_queue table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Mirrors schema.py (tests/integration/test_sql_migrations.py compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the review queue."""
    op.create_table(
        "review_queue",
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("entered_at", _TIME, nullable=False),
        sa.Column("resolved_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("order_id", name="pk_review_queue"),
    )
    op.create_index(
        "ix_review_queue_resolved_at_score",
        "review_queue",
        ["resolved_at", "score", "entered_at"],
    )


def downgrade() -> None:
    """Drop the review queue."""
    op.drop_table("review_queue")
