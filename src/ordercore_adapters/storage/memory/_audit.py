"""verify() of the memory storage: every counter recomputed from the records."""

from __future__ import annotations

from ordercore.domain.inventory import Drift, ReservationStatus

from ._state import MemoryState

__all__ = ["find_drift"]

_ACTIVE = ReservationStatus.ACTIVE
_COMMITTED = ReservationStatus.COMMITTED


def find_drift(state: MemoryState) -> list[Drift]:
    """Compare each counter with what the records say, never trusting a counter.

    reserved per level = lines of active reservations; on_hand per level = sum of the
    movement list; sold per running sale and units per (sku, buyer) = active and
    committed lines counted under that sale. Sorted by kind, then key.
    """
    reserved: dict[tuple[str, ...], int] = {}
    sold: dict[tuple[str, ...], int] = {}
    bought: dict[tuple[str, ...], int] = {}
    for reservation in state.reservations.values():
        if reservation.status is _ACTIVE:
            for line in reservation.lines:
                key = (line.sku, line.warehouse)
                reserved[key] = reserved.get(key, 0) + line.quantity
    for order_id, marks in state.sale_marks.items():
        reservation = state.reservations[order_id]
        if reservation.status is not _ACTIVE and reservation.status is not _COMMITTED:
            continue
        for line, mark in zip(reservation.lines, marks, strict=True):
            sale = state.sales.get(line.sku)
            if mark is None or sale is None or sale.sale_id != mark:
                continue
            sold[(line.sku,)] = sold.get((line.sku,), 0) + line.quantity
            if reservation.buyer_id:
                key = (line.sku, reservation.buyer_id)
                bought[key] = bought.get(key, 0) + line.quantity
    on_hand: dict[tuple[str, ...], int] = {}
    for movement in state.movements:
        key = (movement.sku, movement.warehouse)
        on_hand[key] = on_hand.get(key, 0) + movement.delta

    levels = {
        (sku, warehouse): level
        for sku, by_warehouse in state.levels.items()
        for warehouse, level in by_warehouse.items()
    }
    recorded_reserved: dict[tuple[str, ...], int] = {
        key: level.reserved for key, level in levels.items()
    }
    recorded_on_hand: dict[tuple[str, ...], int] = {
        key: level.on_hand for key, level in levels.items()
    }
    recorded_sold: dict[tuple[str, ...], int] = {
        (sku,): sale.sold for sku, sale in state.sales.items()
    }
    recorded_bought: dict[tuple[str, ...], int] = {
        (sku, buyer): units
        for sku, by_buyer in state.purchases.items()
        for buyer, units in by_buyer.items()
    }
    return [
        *_compare("reserved", recorded_reserved, reserved),
        *_compare("on_hand", recorded_on_hand, on_hand),
        *_compare("flash_sold", recorded_sold, sold),
        *_compare("buyer_purchases", recorded_bought, bought),
    ]


def _compare(
    kind: str, recorded: dict[tuple[str, ...], int], expected: dict[tuple[str, ...], int]
) -> list[Drift]:
    return [
        Drift(kind, key, recorded.get(key, 0), expected.get(key, 0))
        for key in sorted(recorded.keys() | expected.keys())
        if recorded.get(key, 0) != expected.get(key, 0)
    ]
