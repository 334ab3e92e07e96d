"""Stock push: the last push of each SKU to each shop (the stock_pushes table).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26

Mirrors schema.py (tests/integration/test_sql_migrations.py compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add stock_pushes."""
    op.create_table(
        "stock_pushes",
        sa.Column("shop", sa.String(), nullable=False),
        sa.Column("sku", sa.String(), nullable=False),
        sa.Column("listing", sa.String(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=True),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("pushed_at", _TIME, nullable=True),
        sa.Column("attempted_at", _TIME, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("pending", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("shop", "sku", name="pk_stock_pushes"),
        sa.CheckConstraint("quantity >= 0 AND pending >= 0", name="ck_stock_pushes_quantity"),
    )
    op.create_index("ix_stock_pushes_sku", "stock_pushes", ["sku"])


def downgrade() -> None:
    """Drop stock_pushes."""
    op.drop_table("stock_pushes")
