"""Shipments (parcels) and the push-back of each order part: shipments, shipment_pushes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26

Mirrors schema.py (tests/integration/test_sql_migrations.py compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add shipments and shipment_pushes."""
    op.create_table(
        "shipments",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("courier", sa.String(), nullable=False),
        sa.Column("tracking_number", sa.String(), nullable=False),
        sa.Column("warehouse", sa.String(), nullable=False),
        sa.Column("parts", sa.JSON(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("shipped_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_shipments"),
        sa.CheckConstraint(
            "state IN ('preparing', 'picked', 'shipped', 'recall_requested', 'recalled')",
            name="ck_shipments_state",
        ),
    )
    op.create_table(
        "shipment_pushes",
        sa.Column("shipment_id", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("package_id", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("external_order_id", sa.String(), nullable=False),
        sa.Column("sub_orders", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("pushed_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("shipment_id", "order_id", name="pk_shipment_pushes"),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["shipments.id"],
            name="fk_shipment_pushes_shipment",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "state IN ('waiting', 'pending', 'retry', 'ok', 'failed', 'cancelled')",
            name="ck_shipment_pushes_state",
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_shipment_pushes_attempts"),
    )
    op.create_index("ix_shipment_pushes_order_id", "shipment_pushes", ["order_id"])
    op.create_index("ix_shipment_pushes_state", "shipment_pushes", ["state"])


def downgrade() -> None:
    """Drop shipment_pushes and shipments."""
    op.drop_table("shipment_pushes")
    op.drop_table("shipments")
