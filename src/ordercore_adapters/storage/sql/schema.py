"""The tables, as SQLAlchemy Core metadata. Migrations create them; tests compare the two.

Every constraint has an explicit name so migrations and reflection agree on both
backends. Quantities are BIGINT: ``on_hand * safety_bp`` must not overflow.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from ordercore_adapters.storage.sql.types import JsonValue, UtcDateTime

__all__ = [
    "after_sale_inspections",
    "after_sales",
    "buyer_purchases",
    "channel_tokens",
    "flash_sales",
    "metadata",
    "orders",
    "outbox_tasks",
    "reservation_lines",
    "reservations",
    "review_queue",
    "screening_history",
    "screening_results",
    "screening_salt",
    "shipment_pushes",
    "shipments",
    "stock_levels",
    "stock_movements",
    "stock_pushes",
    "sync_cursors",
    "sync_rejects",
    "sync_runs",
    "ticket_tasks",
    "tickets",
    "waybills",
    "webhook_deliveries",
]

metadata = MetaData()

Quantity = BigInteger
# SQLite only auto-increments an "INTEGER PRIMARY KEY" (the rowid alias).
RowId = BigInteger().with_variant(Integer(), "sqlite")

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("sku", String(), nullable=False),
    Column("warehouse", String(), nullable=False),
    Column("on_hand", Quantity, nullable=False),
    Column("reserved", Quantity, nullable=False),
    Column("safety", Quantity, nullable=False),
    Column("safety_bp", Integer(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("sku", "warehouse", name="pk_stock_levels"),
    CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="ck_stock_levels_reserved"),
    CheckConstraint("on_hand >= 0", name="ck_stock_levels_on_hand"),
    CheckConstraint("safety >= 0", name="ck_stock_levels_safety"),
    CheckConstraint(
        "safety_bp IS NULL OR (safety_bp >= 0 AND safety_bp <= 10000)",
        name="ck_stock_levels_safety_bp",
    ),
)

stock_movements = Table(
    "stock_movements",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("sku", String(), nullable=False),
    Column("warehouse", String(), nullable=False),
    Column("delta", Quantity, nullable=False),
    Column("reason", String(), nullable=False),
    Column("reference", String(), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_stock_movements_sku_warehouse", "sku", "warehouse"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", String(), nullable=False),
    Column("order_id", String(), nullable=False),
    Column("buyer_id", String(), nullable=False),
    Column("status", String(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("payment_deadline", UtcDateTime(), nullable=True),
    Column("paid", Boolean(), nullable=False, server_default=false()),
    PrimaryKeyConstraint("id", name="pk_reservations"),
    UniqueConstraint("order_id", name="uq_reservations_order_id"),
    CheckConstraint(
        "status IN ('active', 'committed', 'released', 'expired')",
        name="ck_reservations_status",
    ),
    Index("ix_reservations_status_expires_at", "status", "expires_at"),
)

reservation_lines = Table(
    "reservation_lines",
    metadata,
    Column("reservation_id", String(), nullable=False),
    Column("sku", String(), nullable=False),
    Column("warehouse", String(), nullable=False),
    Column("quantity", Quantity, nullable=False),
    Column("sale_id", String(), nullable=True),
    PrimaryKeyConstraint("reservation_id", "sku", "warehouse", name="pk_reservation_lines"),
    ForeignKeyConstraint(
        ["reservation_id"],
        ["reservations.id"],
        name="fk_reservation_lines_reservation_id",
        ondelete="CASCADE",
    ),
    CheckConstraint("quantity > 0", name="ck_reservation_lines_quantity"),
)

flash_sales = Table(
    "flash_sales",
    metadata,
    Column("sku", String(), nullable=False),
    Column("sale_id", String(), nullable=False),
    Column("cap", Quantity, nullable=True),
    Column("per_buyer_limit", Quantity, nullable=True),
    Column("sold", Quantity, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("sku", name="pk_flash_sales"),
    CheckConstraint("sold >= 0", name="ck_flash_sales_sold"),
    CheckConstraint("cap IS NULL OR sold <= cap", name="ck_flash_sales_cap"),
)

buyer_purchases = Table(
    "buyer_purchases",
    metadata,
    Column("sku", String(), nullable=False),
    Column("buyer_id", String(), nullable=False),
    Column("quantity", Quantity, nullable=False),
    PrimaryKeyConstraint("sku", "buyer_id", name="pk_buyer_purchases"),
    CheckConstraint("quantity >= 0", name="ck_buyer_purchases_quantity"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(), nullable=False),
    Column("channel", String(), nullable=False),
    Column("external_id", String(), nullable=False),
    Column("status", String(), nullable=False),
    Column("buyer_id", String(), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("document", Text(), nullable=False),
    Column("source_modified_at", UtcDateTime(), nullable=True),
    PrimaryKeyConstraint("id", name="pk_orders"),
    UniqueConstraint("channel", "external_id", name="uq_orders_channel_external_id"),
    Index("ix_orders_status_created_at", "status", "created_at"),
    Index("ix_orders_created_at", "created_at"),
)

# -- channel intake (migration 0002) ------------------------------------------------------

sync_cursors = Table(
    "sync_cursors",
    metadata,
    Column("channel", String(), nullable=False),
    Column("feed", String(), nullable=False),
    Column("position", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("channel", "feed", name="pk_sync_cursors"),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", String(), nullable=False),
    Column("channel", String(), nullable=False),
    Column("feed", String(), nullable=False),
    Column("trigger", String(), nullable=False),
    Column("status", String(), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("windows", Integer(), nullable=False),
    Column("pages", Integer(), nullable=False),
    Column("fetched", Integer(), nullable=False),
    Column("created", Integer(), nullable=False),
    Column("updated", Integer(), nullable=False),
    Column("unchanged", Integer(), nullable=False),
    Column("stale", Integer(), nullable=False),
    Column("rejected", Integer(), nullable=False),
    Column("cursor_before", UtcDateTime(), nullable=True),
    Column("cursor_after", UtcDateTime(), nullable=True),
    Column("credential_state", String(), nullable=True),
    Column("errors", JsonValue(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_sync_runs"),
    Index("ix_sync_runs_channel_started_at", "channel", "started_at"),
    Index("ix_sync_runs_started_at", "started_at"),
)

sync_rejects = Table(
    "sync_rejects",
    metadata,
    Column("id", String(), nullable=False),
    Column("channel", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("external_id", String(), nullable=False),
    Column("modified_at", UtcDateTime(), nullable=False),
    Column("payload", JsonValue(), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("run_id", String(), nullable=True),
    Column("rejected_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime(), nullable=True),
    PrimaryKeyConstraint("id", name="pk_sync_rejects"),
    Index("ix_sync_rejects_channel_resolved_at", "channel", "resolved_at", "rejected_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("channel", String(), nullable=False),
    Column("message_id", String(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("channel", "message_id", name="pk_webhook_deliveries"),
    Index("ix_webhook_deliveries_received_at", "received_at"),
)

# -- order health review (migration 0003) -------------------------------------------------

review_queue = Table(
    "review_queue",
    metadata,
    Column("order_id", String(), nullable=False),
    Column("channel", String(), nullable=False),
    Column("score", Integer(), nullable=False),
    Column("reasons", JsonValue(), nullable=False),
    Column("entered_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime(), nullable=True),
    PrimaryKeyConstraint("order_id", name="pk_review_queue"),
    # The queue lists unresolved entries (resolved_at IS NULL), lowest score, then oldest.
    Index("ix_review_queue_resolved_at_score", "resolved_at", "score", "entered_at"),
)

# -- refreshed channel credentials (migration 0005) ---------------------------------------

channel_tokens = Table(
    "channel_tokens",
    metadata,
    Column("channel", String(), nullable=False),
    Column("origin", String(), nullable=False),
    Column("tokens", JsonValue(), nullable=False),
    Column("expires_at", JsonValue(), nullable=False),
    Column("refreshed_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("channel", name="pk_channel_tokens"),
)

# -- exception tickets (migration 0004) ---------------------------------------------------

tickets = Table(
    "tickets",
    metadata,
    Column("id", String(), nullable=False),
    # The ticket's key while it is active, NULL otherwise: one active ticket per key.
    Column("open_key", String(), nullable=True),
    Column("order_id", String(), nullable=True),
    Column("ticket_type", String(), nullable=False),
    Column("channel", String(), nullable=False),
    Column("severity", String(), nullable=False),
    Column("status", String(), nullable=False),
    Column("team", String(), nullable=False),
    Column("assignee", String(), nullable=True),
    Column("assigned_at", UtcDateTime(), nullable=True),
    Column("deadline", UtcDateTime(), nullable=False),
    Column("opened_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime(), nullable=True),
    Column("outcome", String(), nullable=True),
    Column("version", Integer(), nullable=False),
    Column("document", Text(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_tickets"),
    UniqueConstraint("open_key", name="uq_tickets_open_key"),
    Index("ix_tickets_status_deadline", "status", "deadline"),
    Index("ix_tickets_assignee_status", "assignee", "status"),
    Index("ix_tickets_channel_opened_at", "channel", "opened_at"),
    Index("ix_tickets_opened_at", "opened_at"),
    Index("ix_tickets_order_id", "order_id"),
)

ticket_tasks = Table(
    "ticket_tasks",
    metadata,
    Column("id", String(), nullable=False),
    Column("key", String(), nullable=False),
    Column("ticket_id", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("state", String(), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("claim", String(), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("last_error", Text(), nullable=True),
    Column("payload", JsonValue(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_ticket_tasks"),
    UniqueConstraint("key", name="uq_ticket_tasks_key"),
    # Claiming reads pending tasks by due time, and claimed ones by lease.
    Index("ix_ticket_tasks_state_due_at", "state", "due_at"),
    Index("ix_ticket_tasks_ticket_id", "ticket_id"),
)

# -- the outbox of durable tasks (migration 0007) -----------------------------------------

OUTBOX_OPEN = "state IN ('pending', 'running')"
"""The claimable states; the outbox's partial indexes cover only these rows."""

outbox_tasks = Table(
    "outbox_tasks",
    metadata,
    Column("seq", RowId, nullable=False, autoincrement=True),
    Column("id", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("key", String(), nullable=False),
    Column("ordering_key", String(), nullable=True),
    Column("payload", JsonValue(), nullable=False),
    Column("state", String(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("available_at", UtcDateTime(), nullable=False),
    Column("lease_owner", String(), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("last_error", Text(), nullable=True),
    Column("finished_at", UtcDateTime(), nullable=True),
    PrimaryKeyConstraint("seq", name="pk_outbox_tasks"),
    UniqueConstraint("id", name="uq_outbox_tasks_id"),
    UniqueConstraint("key", name="uq_outbox_tasks_key"),
    CheckConstraint(
        "state IN ('pending', 'running', 'done', 'dead')", name="ck_outbox_tasks_state"
    ),
    CheckConstraint("attempts >= 0", name="ck_outbox_tasks_attempts"),
    # Claims read open tasks by due time; the ordering rule looks up open tasks per key.
    Index(
        "ix_outbox_tasks_due",
        "available_at",
        "seq",
        postgresql_where=text(OUTBOX_OPEN),
        sqlite_where=text(OUTBOX_OPEN),
    ),
    Index(
        "ix_outbox_tasks_ordering_key",
        "ordering_key",
        "seq",
        postgresql_where=text(OUTBOX_OPEN),
        sqlite_where=text(OUTBOX_OPEN),
    ),
    Index("ix_outbox_tasks_state_seq", "state", "seq"),
)

# -- exception screening (migration 0006) -------------------------------------------------

screening_history = Table(
    "screening_history",
    metadata,
    # Keyed hashes only (ordercore.domain.rules.history): never a phone or an address.
    Column("order_id", String(), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("phone_key", String(), nullable=False),
    Column("address_key", String(), nullable=False),
    Column("device_key", String(), nullable=False),
    Column("buyer_key", String(), nullable=False),
    PrimaryKeyConstraint("order_id", name="pk_screening_history"),
    # The fraud window looks up recent orders by each key; pruning scans by time.
    Index("ix_screening_history_phone_key_at", "phone_key", "at"),
    Index("ix_screening_history_address_key_at", "address_key", "at"),
    Index("ix_screening_history_device_key_at", "device_key", "at"),
    Index("ix_screening_history_buyer_key_at", "buyer_key", "at"),
    Index("ix_screening_history_at", "at"),
)

screening_results = Table(
    "screening_results",
    metadata,
    Column("order_id", String(), nullable=False),
    Column("screened_at", UtcDateTime(), nullable=False),
    Column("flagged", Boolean(), nullable=False),
    Column("result", JsonValue(), nullable=False),
    PrimaryKeyConstraint("order_id", name="pk_screening_results"),
    Index("ix_screening_results_flagged_screened_at", "flagged", "screened_at"),
)

screening_salt = Table(
    "screening_salt",
    metadata,
    # One row: the key for hashing phones, addresses and devices when the settings
    # give none, so every process on this database hashes alike.
    Column("id", Integer(), nullable=False),
    Column("salt", String(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_screening_salt"),
    CheckConstraint("id = 1", name="ck_screening_salt_single_row"),
)

# -- waybills of order packages (migration 0009) ------------------------------------------

waybills = Table(
    "waybills",
    metadata,
    # No receiver data here: the order store keeps it (ordercore.domain.couriers).
    Column("order_id", String(), nullable=False),
    Column("package_id", String(), nullable=False),
    Column("state", String(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("courier", String(), nullable=True),
    Column("tracking_number", String(), nullable=True),
    Column("label_ref", Text(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("order_id", "package_id", name="pk_waybills"),
    CheckConstraint("state IN ('requested', 'created')", name="ck_waybills_state"),
    CheckConstraint("attempts >= 0", name="ck_waybills_attempts"),
    CheckConstraint(
        "state = 'requested' OR (courier IS NOT NULL AND tracking_number IS NOT NULL)",
        name="ck_waybills_created",
    ),
    Index("ix_waybills_state", "state"),
)

# -- stock push: the last push per (shop, sku) (migration 0010) ---------------------------

stock_pushes = Table(
    "stock_pushes",
    metadata,
    Column("shop", String(), nullable=False),
    Column("sku", String(), nullable=False),
    Column("listing", String(), nullable=False),
    Column("quantity", BigInteger(), nullable=True),
    Column("listed", Boolean(), nullable=False),
    Column("pushed_at", UtcDateTime(), nullable=True),
    Column("attempted_at", UtcDateTime(), nullable=False),
    Column("error", Text(), nullable=True),
    Column("pending", BigInteger(), nullable=True),
    PrimaryKeyConstraint("shop", "sku", name="pk_stock_pushes"),
    CheckConstraint("quantity >= 0 AND pending >= 0", name="ck_stock_pushes_quantity"),
    # The drift report and a SKU's push read every shop's record of one SKU.
    Index("ix_stock_pushes_sku", "sku"),
)

# -- warehouses, fulfilment plans, transfers, WMS feeds (migration 0008) -------------------

warehouses = Table(
    "warehouses",
    metadata,
    Column("code", String(), nullable=False),
    Column("active", Boolean(), nullable=False),
    Column("document", JsonValue(), nullable=False),
    PrimaryKeyConstraint("code", name="pk_warehouses"),
)

fulfilment_plans = Table(
    "fulfilment_plans",
    metadata,
    Column("order_id", String(), nullable=False),
    Column("policy", String(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("document", JsonValue(), nullable=False),
    PrimaryKeyConstraint("order_id", name="pk_fulfilment_plans"),
)

transfer_requests = Table(
    "transfer_requests",
    metadata,
    Column("id", String(), nullable=False),
    Column("order_id", String(), nullable=False),
    Column("sku", String(), nullable=False),
    Column("quantity", Quantity, nullable=False),
    Column("from_warehouse", String(), nullable=False),
    Column("to_warehouse", String(), nullable=False),
    Column("status", String(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_transfer_requests"),
    CheckConstraint("quantity > 0", name="ck_transfer_requests_quantity"),
    CheckConstraint(
        "status IN ('requested', 'completed', 'cancelled')", name="ck_transfer_requests_status"
    ),
    Index("ix_transfer_requests_order_id", "order_id"),
    Index("ix_transfer_requests_status_created_at", "status", "created_at"),
)

wms_feed_batches = Table(
    "wms_feed_batches",
    metadata,
    Column("source", String(), nullable=False),
    Column("batch_id", String(), nullable=False),
    Column("cursor", Text(), nullable=False),
    Column("digest", String(), nullable=False),
    Column("entries", Integer(), nullable=False),
    Column("applied_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("source", "batch_id", name="pk_wms_feed_batches"),
)

wms_feed_cursors = Table(
    "wms_feed_cursors",
    metadata,
    Column("source", String(), nullable=False),
    Column("cursor", Text(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("source", name="pk_wms_feed_cursors"),
)

# -- after-sales: refunds, returns, exchanges, resends; inspections (migration 0012) -------

after_sales = Table(
    "after_sales",
    metadata,
    # No customer data: the platform's after-sale records name the order, not the buyer.
    Column("id", String(), nullable=False),
    Column("channel", String(), nullable=False),
    Column("external_id", String(), nullable=False),
    Column("order_external_id", String(), nullable=False),
    Column("order_id", String(), nullable=True),
    Column("kind", String(), nullable=False),
    Column("status", String(), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("source_modified_at", UtcDateTime(), nullable=False),
    Column("handed_over_at", UtcDateTime(), nullable=True),
    Column("document", JsonValue(), nullable=False),
    PrimaryKeyConstraint("id", name="pk_after_sales"),
    UniqueConstraint("channel", "external_id", name="uq_after_sales_channel_external_id"),
    # Linking looks up a channel's requests by platform order; listing by our order.
    Index("ix_after_sales_channel_order_external_id", "channel", "order_external_id"),
    Index("ix_after_sales_order_id", "order_id"),
    Index("ix_after_sales_source_modified_at", "source_modified_at"),
)

after_sale_inspections = Table(
    "after_sale_inspections",
    metadata,
    Column("after_sale_id", String(), nullable=False),
    Column("inspected_by", String(), nullable=False),
    Column("inspected_at", UtcDateTime(), nullable=False),
    Column("document", JsonValue(), nullable=False),
    PrimaryKeyConstraint("after_sale_id", name="pk_after_sale_inspections"),
    ForeignKeyConstraint(
        ["after_sale_id"],
        ["after_sales.id"],
        name="fk_after_sale_inspections_after_sale_id",
    ),
)

# -- shipments (parcels) and their push-back per order part (migration 0011) ---------------

shipments = Table(
    "shipments",
    metadata,
    Column("id", String(), nullable=False),
    Column("state", String(), nullable=False),
    Column("courier", String(), nullable=False),
    Column("tracking_number", String(), nullable=False),
    Column("warehouse", String(), nullable=False),
    # The order parts ({order_id, package_id, sub_orders}); ids only, no personal data.
    Column("parts", JsonValue(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("shipped_at", UtcDateTime(), nullable=True),
    PrimaryKeyConstraint("id", name="pk_shipments"),
    CheckConstraint(
        "state IN ('preparing', 'picked', 'shipped', 'recall_requested', 'recalled')",
        name="ck_shipments_state",
    ),
)

shipment_pushes = Table(
    "shipment_pushes",
    metadata,
    Column("shipment_id", String(), nullable=False),
    Column("order_id", String(), nullable=False),
    Column("package_id", String(), nullable=False),
    Column("channel", String(), nullable=False),
    Column("external_order_id", String(), nullable=False),
    Column("sub_orders", JsonValue(), nullable=False),
    Column("state", String(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("last_error", Text(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("pushed_at", UtcDateTime(), nullable=True),
    PrimaryKeyConstraint("shipment_id", "order_id", name="pk_shipment_pushes"),
    ForeignKeyConstraint(
        ["shipment_id"], ["shipments.id"], name="fk_shipment_pushes_shipment", ondelete="CASCADE"
    ),
    CheckConstraint(
        "state IN ('waiting', 'pending', 'retry', 'ok', 'failed', 'cancelled')",
        name="ck_shipment_pushes_state",
    ),
    CheckConstraint("attempts >= 0", name="ck_shipment_pushes_attempts"),
    # An order's shipments (interception, the push list) and the open pushes.
    Index("ix_shipment_pushes_order_id", "order_id"),
    Index("ix_shipment_pushes_state", "state"),
)
