"""After-sales: refund, return, exchange and resend requests, and their inspections.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26

Mirrors schema.py (tests/integration/test_sql_migrations.py compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add after_sales and after_sale_inspections."""
    op.create_table(
        "after_sales",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("order_external_id", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("source_modified_at", _TIME, nullable=False),
        sa.Column("handed_over_at", _TIME, nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_after_sales"),
        sa.UniqueConstraint("channel", "external_id", name="uq_after_sales_channel_external_id"),
    )
    op.create_index(
        "ix_after_sales_channel_order_external_id",
        "after_sales",
        ["channel", "order_external_id"],
    )
    op.create_index("ix_after_sales_order_id", "after_sales", ["order_id"])
    op.create_index("ix_after_sales_source_modified_at", "after_sales", ["source_modified_at"])
    op.create_table(
        "after_sale_inspections",
        sa.Column("after_sale_id", sa.String(), nullable=False),
        sa.Column("inspected_by", sa.String(), nullable=False),
        sa.Column("inspected_at", _TIME, nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("after_sale_id", name="pk_after_sale_inspections"),
        sa.ForeignKeyConstraint(
            ["after_sale_id"],
            ["after_sales.id"],
            name="fk_after_sale_inspections_after_sale_id",
        ),
    )


def downgrade() -> None:
    """Drop after_sale_inspections and after_sales."""
    op.drop_table("after_sale_inspections")
    op.drop_table("after_sales")
