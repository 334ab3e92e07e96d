"""Waybills of order packages: the waybills table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26

Mirrors schema.py (tests/integration/test_sql_migrations.py compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the waybills table."""
    op.create_table(
        "waybills",
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("package_id", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("courier", sa.String(), nullable=True),
        sa.Column("tracking_number", sa.String(), nullable=True),
        sa.Column("label_ref", sa.Text(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "package_id", name="pk_waybills"),
        sa.CheckConstraint("state IN ('requested', 'created')", name="ck_waybills_state"),
        sa.CheckConstraint("attempts >= 0", name="ck_waybills_attempts"),
        sa.CheckConstraint(
            "state = 'requested' OR (courier IS NOT NULL AND tracking_number IS NOT NULL)",
            name="ck_waybills_created",
        ),
    )
    op.create_index("ix_waybills_state", "waybills", ["state"])


def downgrade() -> None:
    """Drop the waybills table."""
    op.drop_table("waybills")
