"""Warehouses, fulfilment plans, transfer requests and WMS feed bookkeeping.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26

Mirrors schema.py (tests/integration/test_sql_migrations.py compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add warehouses, fulfilment_plans, transfer_requests, wms_feed_batches/cursors."""
    op.create_table(
        "warehouses",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_warehouses"),
    )
    op.create_table(
        "fulfilment_plans",
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("policy", sa.String(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_fulfilment_plans"),
    )
    op.create_table(
        "transfer_requests",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("sku", sa.String(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("from_warehouse", sa.String(), nullable=False),
        sa.Column("to_warehouse", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_transfer_requests"),
        sa.CheckConstraint("quantity > 0", name="ck_transfer_requests_quantity"),
        sa.CheckConstraint(
            "status IN ('requested', 'completed', 'cancelled')",
            name="ck_transfer_requests_status",
        ),
    )
    op.create_index("ix_transfer_requests_order_id", "transfer_requests", ["order_id"])
    op.create_index(
        "ix_transfer_requests_status_created_at", "transfer_requests", ["status", "created_at"]
    )
    op.create_table(
        "wms_feed_batches",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("batch_id", sa.String(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("applied_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("source", "batch_id", name="pk_wms_feed_batches"),
    )
    op.create_table(
        "wms_feed_cursors",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_wms_feed_cursors"),
    )


def downgrade() -> None:
    """Drop the routing tables."""
    for table in (
        "wms_feed_cursors",
        "wms_feed_batches",
        "transfer_requests",
        "fulfilment_plans",
        "warehouses",
    ):
        op.drop_table(table)
