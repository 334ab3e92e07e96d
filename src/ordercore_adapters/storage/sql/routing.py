"""The routing repository in SQL: warehouses, plans, transfers, WMS feed bookkeeping.

``relocate`` is one transaction (a SAVEPOINT when the unit did work before): it locks
the reservation row (``FOR UPDATE`` on PostgreSQL; SQLite units already hold the write
lock), then changes ``reserved`` by the net difference per (sku, warehouse) in sorted
order, each increase being the conditional ``UPDATE ... WHERE on_hand - reserved -
safety >= :q`` of ``reserve``, and rewrites the reservation's lines. A refused increase
raises and the savepoint undoes the rest. ``set_transfer_status`` and
``record_feed_batch`` are conditional writes: a second caller hits no row.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ordercore.domain.inventory import Reservation, ReservationLine, ReservationStatus, merge_lines
from ordercore.domain.routing import (
    FulfilmentPlan,
    TransferRequest,
    TransferStatus,
    check_relocation,
    relocation_deltas,
)
from ordercore.domain.warehouses import Warehouse
from ordercore.errors import InsufficientStock, ReservationStateConflict, UnknownSku
from ordercore_adapters.storage.sql.schema import (
    fulfilment_plans,
    reservation_lines,
    reservations,
    stock_levels,
    transfer_requests,
    warehouses,
    wms_feed_batches,
    wms_feed_cursors,
)

if TYPE_CHECKING:
    from ordercore.ports.storage import RoutingRepository
    from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlRoutingRepository"]

W, FP, TR = warehouses, fulfilment_plans, transfer_requests
R, RL, L = reservations, reservation_lines, stock_levels
_ACTIVE = ReservationStatus.ACTIVE.value
_REQUESTED = TransferStatus.REQUESTED.value


def _transfer(row: Any) -> TransferRequest:
    return TransferRequest(
        id=row.id,
        order_id=row.order_id,
        sku=row.sku,
        quantity=row.quantity,
        from_warehouse=row.from_warehouse,
        to_warehouse=row.to_warehouse,
        status=TransferStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _transfer_values(transfer: TransferRequest) -> dict[str, Any]:
    return {
        "id": transfer.id,
        "order_id": transfer.order_id,
        "sku": transfer.sku,
        "quantity": transfer.quantity,
        "from_warehouse": transfer.from_warehouse,
        "to_warehouse": transfer.to_warehouse,
        "status": transfer.status.value,
        "created_at": transfer.created_at,
        "updated_at": transfer.updated_at,
    }


class SqlRoutingRepository:
    """Implements ``ordercore.ports.storage.RoutingRepository`` on SQLAlchemy Core."""

    def __init__(self, uow: SqlUnitOfWork, dialect: str) -> None:
        self._uow = uow
        self._dialect = dialect
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    # -- warehouses ---------------------------------------------------------------------------

    async def save_warehouse(self, warehouse: Warehouse) -> None:
        """Insert or replace a warehouse."""
        values = {
            "code": warehouse.code,
            "active": warehouse.active,
            "document": warehouse.model_dump(mode="json"),
        }
        statement = self._insert(W).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[W.c.code],
            set_={"active": statement.excluded.active, "document": statement.excluded.document},
        )
        await self._uow.run(lambda conn: conn.execute(statement))

    async def warehouse(self, code: str) -> Warehouse | None:
        """The warehouse with this code."""
        query = select(W.c.document).where(W.c.code == code)
        document = await self._uow.run(lambda conn: conn.execute(query).scalar_one_or_none())
        return None if document is None else Warehouse.model_validate(document)

    async def warehouses(self, *, active_only: bool = False) -> builtins.list[Warehouse]:
        """Every warehouse (or the active ones), by code."""
        query = select(W.c.document).order_by(W.c.code)
        if active_only:
            query = query.where(W.c.active.is_(True))
        documents = await self._uow.run(lambda conn: conn.execute(query).scalars().all())
        return [Warehouse.model_validate(document) for document in documents]

    # -- plans and transfers ----------------------------------------------------------------

    async def save_plan(self, plan: FulfilmentPlan) -> None:
        """Replace the order's plan and its transfers."""
        document = plan.model_dump(mode="json", exclude={"transfers"})

        def work(conn: Connection) -> None:
            conn.execute(delete(TR).where(TR.c.order_id == plan.order_id))
            conn.execute(delete(FP).where(FP.c.order_id == plan.order_id))
            conn.execute(
                insert(FP).values(
                    order_id=plan.order_id,
                    policy=plan.policy,
                    created_at=plan.created_at,
                    document=document,
                )
            )
            if plan.transfers:
                conn.execute(insert(TR), [_transfer_values(t) for t in plan.transfers])

        await self._uow.run(work, atomic=True)

    async def plan(self, order_id: str) -> FulfilmentPlan | None:
        """The order's plan with its transfers as they now stand."""

        def work(conn: Connection) -> FulfilmentPlan | None:
            document = conn.execute(
                select(FP.c.document).where(FP.c.order_id == order_id)
            ).scalar_one_or_none()
            if document is None:
                return None
            rows = conn.execute(
                select(TR).where(TR.c.order_id == order_id).order_by(TR.c.created_at, TR.c.id)
            ).all()
            return FulfilmentPlan.model_validate(
                {**document, "transfers": [_transfer(row) for row in rows]}
            )

        return await self._uow.run(work)

    async def transfers(
        self, *, status: TransferStatus | None = None, warehouse: str | None = None
    ) -> builtins.list[TransferRequest]:
        """Transfers, oldest first, optionally of one status and one warehouse."""
        query = select(TR).order_by(TR.c.created_at, TR.c.id)
        if status is not None:
            query = query.where(TR.c.status == status.value)
        if warehouse is not None:
            query = query.where(
                or_(TR.c.from_warehouse == warehouse, TR.c.to_warehouse == warehouse)
            )
        rows = await self._uow.run(lambda conn: conn.execute(query).all())
        return [_transfer(row) for row in rows]

    async def set_transfer_status(
        self, transfer_id: str, status: TransferStatus, now: datetime
    ) -> TransferRequest | None:
        """Move a requested transfer on, once (a conditional UPDATE)."""
        statement = (
            update(TR)
            .where(and_(TR.c.id == transfer_id, TR.c.status == _REQUESTED))
            .values(status=status.value, updated_at=now)
            .returning(*TR.c)
        )
        row = await self._uow.run(lambda conn: conn.execute(statement).first())
        return None if row is None else _transfer(row)

    # -- relocating a reservation -----------------------------------------------------------

    async def relocate(
        self, order_id: str, lines: Sequence[ReservationLine], now: datetime
    ) -> Reservation:
        """Move the order's active reservation onto ``lines``, all or nothing."""
        new_lines = merge_lines(lines)
        locking = self._dialect == "postgresql"

        def work(conn: Connection) -> Reservation:
            header = select(R).where(R.c.order_id == order_id)
            if locking:
                header = header.with_for_update()
            row = conn.execute(header).first()
            current = None if row is None else _reservation(conn, row)
            current = check_relocation(order_id, current, new_lines)
            sale_ids = dict(
                conn.execute(
                    select(RL.c.sku, RL.c.sale_id).where(RL.c.reservation_id == current.id)
                ).all()
            )
            for sku, warehouse, delta in relocation_deltas(current.lines, new_lines):
                _move_reserved(conn, sku, warehouse, delta)
            conn.execute(delete(RL).where(RL.c.reservation_id == current.id))
            conn.execute(
                insert(RL),
                [
                    {
                        "reservation_id": current.id,
                        "sku": line.sku,
                        "warehouse": line.warehouse,
                        "quantity": line.quantity,
                        "sale_id": sale_ids.get(line.sku),
                    }
                    for line in new_lines
                ],
            )
            flipped = conn.execute(
                update(R)
                .where(and_(R.c.id == current.id, R.c.status == _ACTIVE))
                .values(updated_at=now)
            )
            if flipped.rowcount != 1:
                raise ReservationStateConflict(order_id, "changed", "relocate")
            return Reservation(
                id=current.id,
                order_id=current.order_id,
                lines=new_lines,
                status=current.status,
                created_at=current.created_at,
                updated_at=now,
                expires_at=current.expires_at,
                buyer_id=current.buyer_id,
                paid=current.paid,
                payment_deadline=current.payment_deadline,
            )

        return await self._uow.run(work, atomic=True)

    # -- WMS feeds ----------------------------------------------------------------------------

    async def record_feed_batch(
        self, source: str, batch_id: str, cursor: str, digest: str, entries: int, now: datetime
    ) -> str | None:
        """Remember a batch once (INSERT ... ON CONFLICT DO NOTHING) and move the cursor."""
        remember = (
            self._insert(wms_feed_batches)
            .values(
                source=source,
                batch_id=batch_id,
                cursor=cursor,
                digest=digest,
                entries=entries,
                applied_at=now,
            )
            .on_conflict_do_nothing()
            .returning(wms_feed_batches.c.batch_id)
        )
        move = self._insert(wms_feed_cursors).values(source=source, cursor=cursor, updated_at=now)
        move = move.on_conflict_do_update(
            index_elements=[wms_feed_cursors.c.source],
            set_={"cursor": move.excluded.cursor, "updated_at": move.excluded.updated_at},
        )
        recorded = select(wms_feed_batches.c.digest).where(
            and_(wms_feed_batches.c.source == source, wms_feed_batches.c.batch_id == batch_id)
        )

        def work(conn: Connection) -> str | None:
            if conn.execute(remember).first() is None:
                known: str = conn.execute(recorded).scalar_one()
                return known
            conn.execute(move)
            return None

        return await self._uow.run(work, atomic=True)

    async def feed_cursor(self, source: str) -> str | None:
        """Where the source's feed was read up to."""
        query = select(wms_feed_cursors.c.cursor).where(wms_feed_cursors.c.source == source)
        return await self._uow.run(lambda conn: conn.execute(query).scalar_one_or_none())


def _reservation(conn: Connection, row: Any) -> Reservation:
    found = conn.execute(
        select(RL.c.sku, RL.c.warehouse, RL.c.quantity).where(RL.c.reservation_id == row.id)
    ).all()
    return Reservation(
        id=row.id,
        order_id=row.order_id,
        lines=tuple(sorted(ReservationLine(sku, wh, q) for sku, wh, q in found)),
        status=ReservationStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        buyer_id=row.buyer_id,
        paid=bool(row.paid),
        payment_deadline=row.payment_deadline,
    )


def _move_reserved(conn: Connection, sku: str, warehouse: str, delta: int) -> None:
    """Add ``delta`` to reserved; an increase only where it stays sellable."""
    at_level = and_(L.c.sku == sku, L.c.warehouse == warehouse)
    condition = at_level
    if delta > 0:
        condition = and_(at_level, L.c.on_hand - L.c.reserved - L.c.safety >= delta)
    result = conn.execute(update(L).where(condition).values(reserved=L.c.reserved + delta))
    if result.rowcount == 1:
        return
    row = conn.execute(select(L.c.on_hand, L.c.reserved, L.c.safety).where(at_level)).first()
    if row is None:
        raise UnknownSku(sku, warehouse)
    raise InsufficientStock(sku, warehouse, delta, max(0, row.on_hand - row.reserved - row.safety))


if TYPE_CHECKING:

    def _conforms(uow: SqlUnitOfWork) -> RoutingRepository:
        return SqlRoutingRepository(uow, "sqlite")
