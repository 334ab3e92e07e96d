"""Every SQL statement the adapter runs, built once per dialect and reused.

Building a Core statement once means SQLAlchemy compiles it once (its compiled cache is
keyed by the statement's structure): the hot path only binds parameters. Upserts are
dialect-specific constructs (``ON CONFLICT`` exists on both SQLite and PostgreSQL, with
SQLAlchemy's dialect ``insert``); everything else is shared.

Bound parameters are named ``p_*`` so they never collide with the column names that
SQLAlchemy reserves for an UPDATE's SET clause, and carry a type so that psycopg is
told the type (``::BIGINT``) instead of guessing it from the value.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Integer,
    Select,
    String,
    Text,
    TextClause,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ordercore.domain.inventory import ReservationStatus
from ordercore_adapters.storage.sql.schema import (
    buyer_purchases,
    flash_sales,
    orders,
    reservation_lines,
    reservations,
    review_queue,
    stock_levels,
    stock_movements,
    sync_cursors,
    sync_rejects,
    sync_runs,
    webhook_deliveries,
)
from ordercore_adapters.storage.sql.types import UtcDateTime

__all__ = ["Statements", "statements_for"]

L = stock_levels
M = stock_movements
R = reservations
RL = reservation_lines
F = flash_sales
BP = buyer_purchases
O = orders  # noqa: E741 - one letter per table, like the others
SC = sync_cursors
SR = sync_runs
SJ = sync_rejects
WD = webhook_deliveries
RQ = review_queue

P_SKU = bindparam("p_sku", type_=String())
P_WAREHOUSE = bindparam("p_warehouse", type_=String())
P_Q = bindparam("p_q", type_=BigInteger())
P_NOW = bindparam("p_now", type_=UtcDateTime())
P_ORDER = bindparam("p_order", type_=String())
P_BUYER = bindparam("p_buyer", type_=String())

ACTIVE = ReservationStatus.ACTIVE.value
COMMITTED = ReservationStatus.COMMITTED.value
EXPIRED = ReservationStatus.EXPIRED.value

LEVEL_COLUMNS = (L.c.sku, L.c.warehouse, L.c.on_hand, L.c.reserved, L.c.safety, L.c.safety_bp)
HEADER_COLUMNS = (
    R.c.id,
    R.c.order_id,
    R.c.buyer_id,
    R.c.status,
    R.c.created_at,
    R.c.updated_at,
    R.c.expires_at,
    R.c.payment_deadline,
    R.c.paid,
)
SALE_COLUMNS = (F.c.sku, F.c.sale_id, F.c.cap, F.c.per_buyer_limit, F.c.sold)

_AT_LEVEL = and_(L.c.sku == P_SKU, L.c.warehouse == P_WAREHOUSE)


def _safety_for(on_hand: ColumnElement[Any]) -> ColumnElement[Any]:
    """Safety stock once on_hand becomes ``on_hand``: ceil(on_hand * bp / 10000) for a %."""
    return case(
        (L.c.safety_bp.is_(None), L.c.safety),
        else_=(on_hand * L.c.safety_bp + 9999) // 10000,
    )


class Statements:
    """The statements of one dialect. Get them with :func:`statements_for`."""

    def __init__(self, dialect: str) -> None:
        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

        # -- stock levels ---------------------------------------------------------------
        self.level = select(*LEVEL_COLUMNS).where(_AT_LEVEL)
        self.level_on_hand_for_update = select(L.c.on_hand).where(_AT_LEVEL).with_for_update()

        fresh = dialect_insert(L).values(
            sku=P_SKU,
            warehouse=P_WAREHOUSE,
            on_hand=P_Q,
            reserved=0,
            safety=0,
            safety_bp=None,
            updated_at=P_NOW,
        )
        added = L.c.on_hand + fresh.excluded.on_hand
        self.receive_up = fresh.on_conflict_do_update(
            index_elements=[L.c.sku, L.c.warehouse],
            set_={"on_hand": added, "safety": _safety_for(added), "updated_at": P_NOW},
        ).returning(*LEVEL_COLUMNS)
        self.ensure_level = fresh.on_conflict_do_nothing(index_elements=[L.c.sku, L.c.warehouse])

        lowered = L.c.on_hand + P_Q
        self.receive_down = (
            update(L)
            .where(_AT_LEVEL, lowered >= L.c.reserved, lowered >= 0)
            .values(on_hand=lowered, safety=_safety_for(lowered), updated_at=P_NOW)
            .returning(*LEVEL_COLUMNS)
        )

        counted = bindparam("p_on_hand", type_=BigInteger())
        self.set_on_hand = (
            update(L)
            .where(_AT_LEVEL, L.c.reserved <= counted)
            .values(on_hand=counted, safety=_safety_for(counted), updated_at=P_NOW)
            .returning(*LEVEL_COLUMNS)
        )

        self.set_safety_units = (
            update(L)
            .where(_AT_LEVEL)
            .values(safety=bindparam("p_units", type_=BigInteger()), safety_bp=None)
            .returning(*LEVEL_COLUMNS)
        )
        basis_points = bindparam("p_bp", type_=Integer())
        self.set_safety_bp = (
            update(L)
            .where(_AT_LEVEL)
            .values(safety=(L.c.on_hand * basis_points + 9999) // 10000, safety_bp=basis_points)
            .returning(*LEVEL_COLUMNS)
        )

        # The reservation check and the increment in one conditional UPDATE. RETURNING
        # also reads the SKU's running flash sale id (NULL when none) through an indexed
        # scalar subquery in the same statement: SKUs without a sale cost no extra round
        # trip. See reservations.take_stock for why this is safe under concurrency.
        # (A literal outer reference: SQLAlchemy renders RETURNING unqualified on SQLite,
        # which would turn a correlated ``flash_sales.sku = stock_levels.sku`` into
        # ``sku = sku``.)
        running_sale = (
            select(F.c.sale_id)
            .where(F.c.sku == literal_column("stock_levels.sku"))
            .scalar_subquery()
        )
        self.take_stock = (
            update(L)
            .where(_AT_LEVEL, L.c.on_hand - L.c.reserved - L.c.safety >= P_Q)
            .values(reserved=L.c.reserved + P_Q)
            .returning(running_sale)
        )
        self.give_back_stock = update(L).where(_AT_LEVEL).values(reserved=L.c.reserved - P_Q)
        shipped = L.c.on_hand - P_Q
        self.ship_stock = (
            update(L)
            .where(_AT_LEVEL)
            .values(
                on_hand=shipped,
                reserved=L.c.reserved - P_Q,
                safety=_safety_for(shipped),
                updated_at=P_NOW,
            )
        )
        self.insert_movement = insert(M)

        # -- flash sales ----------------------------------------------------------------
        self.sale = select(*SALE_COLUMNS).where(F.c.sku == P_SKU)
        self.take_sale = (
            update(F)
            .where(F.c.sku == P_SKU, or_(F.c.cap.is_(None), F.c.sold + P_Q <= F.c.cap))
            .values(sold=F.c.sold + P_Q)
            .returning(F.c.sale_id, F.c.per_buyer_limit)
        )
        p_sale = bindparam("p_sale", type_=String())
        self.give_back_sale = (
            update(F)
            .where(F.c.sku == P_SKU, F.c.sale_id == p_sale)
            .values(sold=F.c.sold - P_Q)
            .returning(F.c.sku)
        )
        purchase = dialect_insert(BP).values(sku=P_SKU, buyer_id=P_BUYER, quantity=P_Q)
        self.add_purchase = purchase.on_conflict_do_update(
            index_elements=[BP.c.sku, BP.c.buyer_id],
            set_={"quantity": BP.c.quantity + purchase.excluded.quantity},
        ).returning(BP.c.quantity)
        self.add_purchase_within_limit = purchase.on_conflict_do_update(
            index_elements=[BP.c.sku, BP.c.buyer_id],
            set_={"quantity": BP.c.quantity + purchase.excluded.quantity},
            where=BP.c.quantity + purchase.excluded.quantity
            <= bindparam("p_limit", type_=BigInteger()),
        ).returning(BP.c.quantity)
        self.give_back_purchase = (
            update(BP)
            .where(BP.c.sku == P_SKU, BP.c.buyer_id == P_BUYER)
            .values(quantity=BP.c.quantity - P_Q)
        )
        sale = dialect_insert(F).values(
            sku=P_SKU,
            sale_id=p_sale,
            cap=bindparam("p_cap", type_=BigInteger()),
            per_buyer_limit=bindparam("p_limit", type_=BigInteger()),
            sold=0,
        )
        self.upsert_sale = sale.on_conflict_do_update(
            index_elements=[F.c.sku],
            set_={"cap": sale.excluded.cap, "per_buyer_limit": sale.excluded.per_buyer_limit},
            where=or_(sale.excluded.cap.is_(None), F.c.sold <= sale.excluded.cap),
        ).returning(*SALE_COLUMNS)
        self.delete_sale = delete(F).where(F.c.sku == P_SKU)
        self.delete_purchases = delete(BP).where(BP.c.sku == P_SKU)

        # -- reservations ---------------------------------------------------------------
        # RETURNING tells "inserted" from "conflict": rowcount is only reliable for
        # UPDATE and DELETE (SQLAlchemy reports -1 for an INSERT on psycopg).
        self.insert_reservation = (
            dialect_insert(R)
            .on_conflict_do_nothing(index_elements=[R.c.order_id])
            .returning(R.c.id)
        )
        self.insert_lines = insert(RL)
        self.reservation = (
            select(*HEADER_COLUMNS, RL.c.sku, RL.c.warehouse, RL.c.quantity)
            .select_from(R.outerjoin(RL, RL.c.reservation_id == R.c.id))
            .where(R.c.order_id == P_ORDER)
            .order_by(RL.c.sku, RL.c.warehouse)
        )
        self.reservations_of_orders = (
            select(*HEADER_COLUMNS, RL.c.sku, RL.c.warehouse, RL.c.quantity)
            .select_from(R.outerjoin(RL, RL.c.reservation_id == R.c.id))
            .where(R.c.order_id.in_(bindparam("p_orders", expanding=True)))
            .order_by(R.c.order_id, RL.c.sku, RL.c.warehouse)
        )
        # One statement text whatever the batch size on PostgreSQL (an array parameter),
        # so psycopg's statement cache keeps hitting; SQLite expands an IN list.
        if dialect == "postgresql":
            orders_param = bindparam("p_orders", type_=postgresql.ARRAY(String()))
            self.orders_with_reservations = select(R.c.order_id).where(
                R.c.order_id == any_(orders_param)
            )
        else:
            self.orders_with_reservations = select(R.c.order_id).where(
                R.c.order_id.in_(bindparam("p_orders", expanding=True))
            )
        # PostgreSQL bulk writes of the hot-SKU batch: one statement with array parameters
        # (unnest) instead of a multi-row VALUES list, so the text never changes with the
        # batch size, psycopg parses it once, and 500 rows cost one small statement.
        self.unnest_headers: TextClause | None = None
        self.unnest_lines: TextClause | None = None
        self.unnest_purchases: TextClause | None = None
        if dialect == "postgresql":
            self.unnest_headers = text(
                "INSERT INTO reservations (id, order_id, buyer_id, status, created_at,"
                " updated_at, expires_at, payment_deadline, paid)"
                " SELECT * FROM unnest(CAST(:p_ids AS varchar[]), CAST(:p_orders AS varchar[]),"
                " CAST(:p_buyers AS varchar[]), CAST(:p_statuses AS varchar[]),"
                " CAST(:p_created AS timestamptz[]), CAST(:p_updated AS timestamptz[]),"
                " CAST(:p_expires AS timestamptz[]), CAST(:p_deadlines AS timestamptz[]),"
                " CAST(:p_paid AS boolean[]))"
                " ON CONFLICT (order_id) DO NOTHING RETURNING id"
            )
            self.unnest_lines = text(
                "INSERT INTO reservation_lines (reservation_id, sku, warehouse, quantity, sale_id)"
                " SELECT r, CAST(:p_sku AS varchar), CAST(:p_warehouse AS varchar), q,"
                " CAST(:p_sale AS varchar)"
                " FROM unnest(CAST(:p_ids AS varchar[]), CAST(:p_qtys AS bigint[])) AS t(r, q)"
            )
            self.unnest_purchases = text(
                "INSERT INTO buyer_purchases (sku, buyer_id, quantity)"
                " SELECT CAST(:p_sku AS varchar), b, q"
                " FROM unnest(CAST(:p_buyers AS varchar[]), CAST(:p_qtys AS bigint[])) AS t(b, q)"
                " ON CONFLICT (sku, buyer_id)"
                " DO UPDATE SET quantity = buyer_purchases.quantity + excluded.quantity"
            )
        # The hot-SKU batch locks its level (and the SKU's sale and its buyers' rows) once
        # and decides every request in Python; SQLite ignores FOR UPDATE (BEGIN IMMEDIATE
        # already holds the database's write lock).
        self.level_for_batch = (
            select(L.c.on_hand, L.c.reserved, L.c.safety).where(_AT_LEVEL).with_for_update()
        )
        self.sale_for_batch = (
            select(F.c.sale_id, F.c.cap, F.c.per_buyer_limit, F.c.sold)
            .where(F.c.sku == P_SKU)
            .with_for_update()
        )
        self.purchases_for_batch = (
            select(BP.c.buyer_id, BP.c.quantity)
            .where(BP.c.sku == P_SKU, BP.c.buyer_id.in_(bindparam("p_buyers", expanding=True)))
            .order_by(BP.c.buyer_id)
            .with_for_update()
        )
        self.add_reserved = (
            update(L)
            .where(_AT_LEVEL, L.c.on_hand - L.c.reserved - L.c.safety >= P_Q)
            .values(reserved=L.c.reserved + P_Q)
            .returning(L.c.on_hand - L.c.reserved - L.c.safety)
        )
        self.add_sold = (
            update(F)
            .where(
                F.c.sku == P_SKU,
                F.c.sale_id == p_sale,
                or_(F.c.cap.is_(None), F.c.sold + P_Q <= F.c.cap),
            )
            .values(sold=F.c.sold + P_Q)
            .returning(F.c.sold)
        )
        self.lines = (
            select(RL.c.sku, RL.c.warehouse, RL.c.quantity, RL.c.sale_id)
            .where(RL.c.reservation_id == bindparam("p_reservation", type_=String()))
            .order_by(RL.c.sku, RL.c.warehouse)
        )
        self.lines_of_many = (
            select(RL.c.reservation_id, RL.c.sku, RL.c.warehouse, RL.c.quantity, RL.c.sale_id)
            .where(RL.c.reservation_id.in_(bindparam("p_ids", expanding=True)))
            .order_by(RL.c.reservation_id, RL.c.sku, RL.c.warehouse)
        )
        self.set_line_sale = (
            update(RL)
            .where(
                RL.c.reservation_id == bindparam("p_reservation", type_=String()),
                RL.c.sku == P_SKU,
            )
            .values(sale_id=p_sale)
        )

        is_active = and_(R.c.order_id == P_ORDER, R.c.status == ACTIVE)
        target = bindparam("p_status", type_=String())
        self.flip_out = (
            update(R)
            .where(is_active)
            .values(status=target, updated_at=P_NOW)
            .returning(*HEADER_COLUMNS)
        )
        self.flip_committed = (
            update(R)
            .where(is_active)
            .values(status=COMMITTED, updated_at=P_NOW, expires_at=None)
            .returning(*HEADER_COLUMNS)
        )
        self.flip_reactivated = (
            update(R)
            .where(R.c.order_id == P_ORDER, R.c.status == EXPIRED)
            .values(
                status=ACTIVE,
                updated_at=P_NOW,
                expires_at=bindparam("p_expires", type_=UtcDateTime()),
                payment_deadline=None,
                paid=bindparam("p_paid", type_=Boolean()),
            )
            .returning(*HEADER_COLUMNS)
        )
        self.begin_payment = (
            update(R)
            .where(is_active)
            .values(payment_deadline=bindparam("p_deadline", type_=UtcDateTime()), updated_at=P_NOW)
        )
        self.mark_paid = (
            update(R)
            .where(is_active)
            .values(paid=True, expires_at=None, payment_deadline=None, updated_at=P_NOW)
        )

        # Claim and flip due reservations in one statement. On PostgreSQL the subquery's
        # FOR UPDATE SKIP LOCKED makes concurrent sweepers take disjoint batches; SQLite
        # drops the clause (its writers are serialised anyway).
        due = R.alias("due")
        claim = (
            select(due.c.id)
            .where(
                due.c.status == ACTIVE,
                due.c.expires_at.is_not(None),
                due.c.expires_at <= P_NOW,
                or_(due.c.payment_deadline.is_(None), due.c.payment_deadline <= P_NOW),
            )
            .order_by(due.c.expires_at)
            .limit(bindparam("p_limit", type_=Integer()))
            .with_for_update(skip_locked=True)
        )
        self.expire_due = (
            update(R)
            .where(R.c.id.in_(claim.scalar_subquery()), R.c.status == ACTIVE)
            .values(status=EXPIRED, updated_at=P_NOW)
            .returning(*HEADER_COLUMNS)
        )

        # -- orders ---------------------------------------------------------------------
        # No conflict target: a clash on either unique key (id, or channel + external id)
        # inserts nothing and leaves the transaction usable.
        self.insert_order = dialect_insert(O).on_conflict_do_nothing().returning(O.c.id)
        p_id = bindparam("p_id", type_=String())
        self.order = select(O.c.document).where(O.c.id == p_id)
        self.order_by_external = select(O.c.document).where(
            O.c.channel == bindparam("p_channel", type_=String()),
            O.c.external_id == bindparam("p_external", type_=String()),
        )
        self.order_exists = select(literal(1)).where(O.c.id == p_id)
        self.save_order = (
            update(O)
            .where(O.c.id == p_id, O.c.version == bindparam("p_version", type_=Integer()))
            .values(
                version=O.c.version + 1,
                channel=bindparam("p_channel", type_=String()),
                external_id=bindparam("p_external", type_=String()),
                status=bindparam("p_status", type_=String()),
                buyer_id=P_BUYER,
                updated_at=P_NOW,
                document=bindparam("p_document"),
                source_modified_at=bindparam("p_modified", type_=UtcDateTime()),
            )
        )
        newest = (O.c.created_at.desc(), O.c.id.desc())
        p_limit = bindparam("p_limit", type_=Integer())
        self.list_orders = select(O.c.document).order_by(*newest).limit(p_limit)
        self.list_orders_by_status = (
            select(O.c.document)
            .where(O.c.status == bindparam("p_status", type_=String()))
            .order_by(*newest)
            .limit(p_limit)
        )

        # Channel intake: one statement per batch (see upsert.py for how it is used).
        # A version replaces the stored one only when it is newer (NULL = oldest); the
        # comparison is the statement's conflict WHERE, evaluated on the row as it is when
        # the statement reaches it, so concurrent intakes never regress an order. The
        # stored id is never touched, and the replacement document gets the stored id and
        # the bumped version patched in by the database, so it always agrees with the
        # columns whatever this transaction read before.
        #
        # SQLite takes the rows as an executemany (SQLAlchemy's insertmanyvalues renders one
        # multi-row VALUES statement per batch). PostgreSQL takes one array per column and
        # unnests them: the statement text never changes with the batch size, so psycopg
        # parses it once (a 5,000-parameter VALUES list cost more to parse client-side than
        # the database spent running it). The documents travel as one JSON array text
        # (``[doc,doc,...]``, no escaping at all; a text[] array would escape every quote
        # of every document in Python), split by json_array_elements, whose json (not
        # jsonb) values keep their text. ORDER BY the ordinality keeps the rows in the
        # given (sorted) order, which is the lock order.
        p_channel = bindparam("p_channel", type_=String())
        fresh_order: postgresql.Insert | sqlite.Insert
        if dialect == "postgresql":
            scalars = [column for column in O.columns if column.name != "document"]
            arrays = (
                func.unnest(
                    *(
                        bindparam(f"p_{column.name}", type_=postgresql.ARRAY(column.type))
                        for column in scalars
                    )
                )
                .table_valued(*(column.name for column in scalars), with_ordinality="ordinal")
                .render_derived()
            )
            documents = (
                func.json_array_elements(
                    cast(bindparam("p_documents", type_=Text()), postgresql.JSON())
                )
                .table_valued("value", with_ordinality="ordinal")
                .render_derived()
            )
            fresh_order = postgresql.insert(O).from_select(
                [*(column.name for column in scalars), "document"],
                select(
                    *(arrays.c[column.name] for column in scalars),
                    cast(documents.c.value, Text()),
                )
                .select_from(arrays)
                .join(documents, documents.c.ordinal == arrays.c.ordinal)
                .order_by(arrays.c.ordinal),
            )
        else:
            fresh_order = sqlite.insert(O)
        newer = and_(
            fresh_order.excluded.source_modified_at.is_not(None),
            or_(
                O.c.source_modified_at.is_(None),
                O.c.source_modified_at < fresh_order.excluded.source_modified_at,
            ),
        )
        bumped = O.c.version + 1
        patched: ColumnElement[Any]
        if dialect == "postgresql":
            patched = cast(
                cast(fresh_order.excluded.document, postgresql.JSONB).op("||")(
                    func.jsonb_build_object(
                        literal_column("'id'"), O.c.id, literal_column("'version'"), bumped
                    )
                ),
                Text(),
            )
        else:
            patched = func.json_set(
                fresh_order.excluded.document,
                literal_column("'$.id'"),
                O.c.id,
                literal_column("'$.version'"),
                bumped,
            )
        upsert = fresh_order.on_conflict_do_update(
            index_elements=[O.c.channel, O.c.external_id],
            set_={
                "status": fresh_order.excluded.status,
                "buyer_id": fresh_order.excluded.buyer_id,
                "version": bumped,
                "created_at": fresh_order.excluded.created_at,
                "updated_at": fresh_order.excluded.updated_at,
                "source_modified_at": fresh_order.excluded.source_modified_at,
                "document": patched,
            },
            where=newer,
        )
        # PostgreSQL tells an inserted row from an updated one itself: a row this
        # statement inserted has no deleting/locking transaction yet (xmax = 0).
        self.upsert_orders = (
            upsert.returning(O.c.channel, O.c.external_id, literal_column("(xmax = 0)", Boolean()))
            if dialect == "postgresql"
            else upsert.returning(O.c.channel, O.c.external_id, literal_column("NULL", Boolean()))
        )
        if dialect == "postgresql":
            p_externals: ColumnElement[Any] = any_(
                bindparam("p_externals", type_=postgresql.ARRAY(String()))
            )
            p_ids: ColumnElement[Any] = any_(bindparam("p_ids", type_=postgresql.ARRAY(String())))
            in_externals = O.c.external_id == p_externals
            in_ids = O.c.id == p_ids
        else:
            in_externals = O.c.external_id.in_(bindparam("p_externals", expanding=True))
            in_ids = O.c.id.in_(bindparam("p_ids", expanding=True))
        self.orders_by_external = select(O.c.document).where(O.c.channel == p_channel, in_externals)
        self.order_versions = select(O.c.external_id, O.c.source_modified_at).where(
            O.c.channel == p_channel, in_externals
        )
        self.order_keys_of_ids = select(O.c.id, O.c.channel, O.c.external_id).where(in_ids)

        # -- intake bookkeeping ---------------------------------------------------------
        p_feed = bindparam("p_feed", type_=String())
        self.cursor = select(SC.c.position, SC.c.updated_at).where(
            SC.c.channel == p_channel, SC.c.feed == p_feed
        )
        moved = dialect_insert(SC).values(
            channel=p_channel,
            feed=p_feed,
            position=bindparam("p_position", type_=UtcDateTime()),
            updated_at=P_NOW,
        )
        # Forward only, decided by the database: the conditional upsert writes (and
        # RETURNING yields a row) only when the new position is later.
        self.advance_cursor = moved.on_conflict_do_update(
            index_elements=[SC.c.channel, SC.c.feed],
            set_={"position": moved.excluded.position, "updated_at": moved.excluded.updated_at},
            where=SC.c.position < moved.excluded.position,
        ).returning(SC.c.channel)
        run = dialect_insert(SR)
        self.save_run = run.on_conflict_do_update(
            index_elements=[SR.c.id],
            set_={
                column.name: run.excluded[column.name]
                for column in SR.columns
                if column.name != "id"
            },
        )
        newest_runs = (SR.c.started_at.desc(), SR.c.id.desc())
        self.runs = select(*SR.columns).order_by(*newest_runs).limit(p_limit)
        self.runs_of_channel = (
            select(*SR.columns)
            .where(SR.c.channel == p_channel)
            .order_by(*newest_runs)
            .limit(p_limit)
        )
        self.add_rejects = dialect_insert(SJ).on_conflict_do_nothing(index_elements=[SJ.c.id])
        self.rejects: dict[tuple[bool, bool], Select[Any]] = {}
        for of_channel in (False, True):
            for unresolved in (False, True):
                query = select(*SJ.columns)
                if of_channel:
                    query = query.where(SJ.c.channel == p_channel)
                if unresolved:
                    query = query.where(SJ.c.resolved_at.is_(None))
                oldest = (SJ.c.rejected_at, SJ.c.id)
                self.rejects[of_channel, unresolved] = query.order_by(*oldest).limit(p_limit)
        self.resolve_reject = (
            update(SJ).where(SJ.c.id == p_id, SJ.c.resolved_at.is_(None)).values(resolved_at=P_NOW)
        )
        # Many rows, one statement (SQLAlchemy's insertmanyvalues), and only the inserted
        # ones come back: a delivery another transaction recorded first is a conflict.
        self.remember_deliveries = (
            dialect_insert(WD)
            .on_conflict_do_nothing(index_elements=[WD.c.channel, WD.c.message_id])
            .returning(WD.c.message_id)
        )

        # -- review queue ---------------------------------------------------------------
        # One upsert per batch (insertmanyvalues again). The SET expressions all read the
        # row as it was: a resolved entry is re-opened with the new entered_at, an
        # unresolved one keeps its own; score and reasons are always the new ones.
        queued = dialect_insert(RQ)
        self.enqueue_reviews = queued.on_conflict_do_update(
            index_elements=[RQ.c.order_id],
            set_={
                "channel": queued.excluded.channel,
                "score": queued.excluded.score,
                "reasons": queued.excluded.reasons,
                "entered_at": case(
                    (RQ.c.resolved_at.is_(None), RQ.c.entered_at),
                    else_=queued.excluded.entered_at,
                ),
                "resolved_at": null(),
            },
        ).returning(RQ.c.order_id)
        lowest = (RQ.c.score, RQ.c.entered_at, RQ.c.order_id)
        unresolved_reviews = select(*RQ.columns).where(RQ.c.resolved_at.is_(None))
        self.review_queue = unresolved_reviews.order_by(*lowest).limit(p_limit)
        self.review_queue_of_channel = (
            unresolved_reviews.where(RQ.c.channel == p_channel).order_by(*lowest).limit(p_limit)
        )
        self.resolve_review = (
            update(RQ)
            .where(RQ.c.order_id == P_ORDER, RQ.c.resolved_at.is_(None))
            .values(resolved_at=P_NOW)
        )

        # -- verify ---------------------------------------------------------------------
        self.drift_reserved = _DRIFT_RESERVED
        self.drift_on_hand = _DRIFT_ON_HAND
        self.drift_flash_sold = _DRIFT_FLASH_SOLD
        self.drift_buyer_purchases = _DRIFT_BUYER_PURCHASES


# Each drift query puts the counter (recorded) and its records (expected) side by side
# with UNION ALL and keeps the keys where the sums differ: a counter without records and
# records without a counter are both caught, on every backend (no FULL OUTER JOIN).
_DRIFT_RESERVED: TextClause = text(
    f"""
    SELECT sku, warehouse, SUM(recorded), SUM(expected) FROM (
        SELECT sku, warehouse, reserved AS recorded, 0 AS expected FROM stock_levels
        UNION ALL
        SELECT l.sku, l.warehouse, 0, l.quantity
        FROM reservation_lines l JOIN reservations r ON r.id = l.reservation_id
        WHERE r.status = '{ACTIVE}'
    ) AS t
    GROUP BY sku, warehouse HAVING SUM(recorded) <> SUM(expected)
    ORDER BY sku, warehouse
    """  # noqa: S608 - constants only
)
_DRIFT_ON_HAND: TextClause = text(
    """
    SELECT sku, warehouse, SUM(recorded), SUM(expected) FROM (
        SELECT sku, warehouse, on_hand AS recorded, 0 AS expected FROM stock_levels
        UNION ALL
        SELECT sku, warehouse, 0, delta FROM stock_movements
    ) AS t
    GROUP BY sku, warehouse HAVING SUM(recorded) <> SUM(expected)
    ORDER BY sku, warehouse
    """
)
_SALE_LINES = f"""
    FROM reservation_lines l
    JOIN reservations r ON r.id = l.reservation_id
    JOIN flash_sales f ON f.sku = l.sku AND f.sale_id = l.sale_id
    WHERE r.status IN ('{ACTIVE}', '{COMMITTED}')
"""
_DRIFT_FLASH_SOLD: TextClause = text(
    f"""
    SELECT sku, SUM(recorded), SUM(expected) FROM (
        SELECT sku, sold AS recorded, 0 AS expected FROM flash_sales
        UNION ALL
        SELECT l.sku, 0, l.quantity {_SALE_LINES}
    ) AS t
    GROUP BY sku HAVING SUM(recorded) <> SUM(expected)
    ORDER BY sku
    """  # noqa: S608 - constants only
)
_DRIFT_BUYER_PURCHASES: TextClause = text(
    f"""
    SELECT sku, buyer_id, SUM(recorded), SUM(expected) FROM (
        SELECT sku, buyer_id, quantity AS recorded, 0 AS expected FROM buyer_purchases
        UNION ALL
        SELECT l.sku, r.buyer_id, 0, l.quantity {_SALE_LINES} AND r.buyer_id <> ''
    ) AS t
    GROUP BY sku, buyer_id HAVING SUM(recorded) <> SUM(expected)
    ORDER BY sku, buyer_id
    """  # noqa: S608 - constants only
)


@cache
def statements_for(dialect: str) -> Statements:
    """The statements of ``dialect`` ("sqlite" or "postgresql"), built on first use."""
    return Statements(dialect)
