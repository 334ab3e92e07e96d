"""Exception screening: the fraud window, the results and the shared hashing salt.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26

Mirrors schema.py (tests/integration/test_sql_migrations.py
compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the screening history and results."""
    op.create_table(
        "screening_history",
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("phone_key", sa.String(), nullable=False),
        sa.Column("address_key", sa.String(), nullable=False),
        sa.Column("device_key", sa.String(), nullable=False),
        sa.Column("buyer_key", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_screening_history"),
    )
    for key in ("phone_key", "address_key", "device_key", "buyer_key"):
        op.create_index(f"ix_screening_history_{key}_at", "screening_history", [key, "at"])
    op.create_index("ix_screening_history_at", "screening_history", ["at"])
    op.create_table(
        "screening_results",
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("screened_at", _TIME, nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_screening_results"),
    )
    op.create_index(
        "ix_screening_results_flagged_screened_at",
        "screening_results",
        ["flagged", "screened_at"],
    )
    op.create_table(
        "screening_salt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_screening_salt"),
        sa.CheckConstraint("id = 1", name="ck_screening_salt_single_row"),
    )


def downgrade() -> None:
    """Drop the screening tables."""
    op.drop_table("screening_salt")
    op.drop_table("screening_results")
    op.drop_table("screening_history")
