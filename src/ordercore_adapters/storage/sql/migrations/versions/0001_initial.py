"""Initial schema: stock, movements, reservations, flash sales, buyer purchases, orders.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Mirrors schema.py (tests/integration/test_sql_migrations.py compares the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table."""
    op.create_table(
        "stock_levels",
        sa.Column("sku", sa.String(), nullable=False),
        sa.Column("warehouse", sa.String(), nullable=False),
        sa.Column("on_hand", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("safety", sa.BigInteger(), nullable=False),
        sa.Column("safety_bp", sa.Integer(), nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("sku", "warehouse", name="pk_stock_levels"),
        sa.CheckConstraint(
            "reserved >= 0 AND reserved <= on_hand", name="ck_stock_levels_reserved"
        ),
        sa.CheckConstraint("on_hand >= 0", name="ck_stock_levels_on_hand"),
        sa.CheckConstraint("safety >= 0", name="ck_stock_levels_safety"),
        sa.CheckConstraint(
            "safety_bp IS NULL OR (safety_bp >= 0 AND safety_bp <= 10000)",
            name="ck_stock_levels_safety_bp",
        ),
    )
    op.create_table(
        "stock_movements",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("sku", sa.String(), nullable=False),
        sa.Column("warehouse", sa.String(), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("reference", sa.String(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
    )
    op.create_index("ix_stock_movements_sku_warehouse", "stock_movements", ["sku", "warehouse"])
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("buyer_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=True),
        sa.Column("payment_deadline", _TIME, nullable=True),
        sa.Column("paid", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_reservations"),
        sa.UniqueConstraint("order_id", name="uq_reservations_order_id"),
        sa.CheckConstraint(
            "status IN ('active', 'committed', 'released', 'expired')",
            name="ck_reservations_status",
        ),
    )
    op.create_index("ix_reservations_status_expires_at", "reservations", ["status", "expires_at"])
    op.create_table(
        "reservation_lines",
        sa.Column("reservation_id", sa.String(), nullable=False),
        sa.Column("sku", sa.String(), nullable=False),
        sa.Column("warehouse", sa.String(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("sale_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("reservation_id", "sku", "warehouse", name="pk_reservation_lines"),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name="fk_reservation_lines_reservation_id",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("quantity > 0", name="ck_reservation_lines_quantity"),
    )
    op.create_table(
        "flash_sales",
        sa.Column("sku", sa.String(), nullable=False),
        sa.Column("sale_id", sa.String(), nullable=False),
        sa.Column("cap", sa.BigInteger(), nullable=True),
        sa.Column("per_buyer_limit", sa.BigInteger(), nullable=True),
        sa.Column("sold", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("sku", name="pk_flash_sales"),
        sa.CheckConstraint("sold >= 0", name="ck_flash_sales_sold"),
        sa.CheckConstraint("cap IS NULL OR sold <= cap", name="ck_flash_sales_cap"),
    )
    op.create_table(
        "buyer_purchases",
        sa.Column("sku", sa.String(), nullable=False),
        sa.Column("buyer_id", sa.String(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sku", "buyer_id", name="pk_buyer_purchases"),
        sa.CheckConstraint("quantity >= 0", name="ck_buyer_purchases_quantity"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("buyer_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("channel", "external_id", name="uq_orders_channel_external_id"),
    )
    op.create_index("ix_orders_status_created_at", "orders", ["status", "created_at"])
    op.create_index("ix_orders_created_at", "orders", ["created_at"])


def downgrade() -> None:
    """Drop every table."""
    for table in (
        "orders",
        "buyer_purchases",
        "flash_sales",
        "reservation_lines",
        "reservations",
        "stock_movements",
        "stock_levels",
    ):
        op.drop_table(table)
