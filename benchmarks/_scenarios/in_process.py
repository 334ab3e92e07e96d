"""The in-process ceiling: a plain dict of counters and one record per reservation.

The record carries what the library's reservation carries (an id, order, buyer, line,
times). The id comes from an in-process counter, the cheapest unique id: the library's
``uuid4().hex`` costs about 2 microseconds by itself on this machine, which alone would
cap a path at about 450,000/s. One variant builds a slotted dataclass, the other a
validated, frozen pydantic model: the price of validating every record on the hot path.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from _scenarios.common import SKU, WAREHOUSE, Measured, Params, Scenario, Tally, clock

__all__ = ["SCENARIOS"]

TTL = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class _Record:
    id: str
    order_id: str
    buyer_id: str
    sku: str
    warehouse: str
    quantity: int
    created_at: datetime
    expires_at: datetime


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: Annotated[str, Field(min_length=1)]
    order_id: Annotated[str, Field(min_length=1)]
    buyer_id: str
    sku: Annotated[str, Field(min_length=1)]
    warehouse: Annotated[str, Field(min_length=1)]
    quantity: Annotated[int, Field(gt=0)]
    created_at: datetime
    expires_at: datetime


def _sale(params: Params, record: Callable[..., object]) -> Measured:
    levels: dict[tuple[str, str], list[int]] = {(SKU, WAREHOUSE): [params.stock, 0]}
    held: dict[str, object] = {}
    tally = Tally()
    ids = itertools.count()
    opened = clock()
    for i in range(params.buyers):
        level = levels[SKU, WAREHOUSE]  # [on_hand, reserved]
        if level[0] - level[1] < 1:
            tally.rejected += 1
            continue
        level[1] += 1
        now = datetime.now(UTC)
        order_id = f"o{i}"
        held[order_id] = record(
            id=f"r{next(ids)}",
            order_id=order_id,
            buyer_id=f"b{i}",
            sku=SKU,
            warehouse=WAREHOUSE,
            quantity=1,
            created_at=now,
            expires_at=now + TTL,
        )
        tally.successes += 1
    tally.wall = clock() - opened
    on_hand, reserved = levels[SKU, WAREHOUSE]
    return Measured(tally, reserved=reserved, on_hand=on_hand, records=len(held))


SCENARIOS = [
    Scenario(
        "dict-dataclass",
        "dict + slotted dataclass record (in-process ceiling)",
        "memory",
        lambda params: _sale(params, _Record),
    ),
    Scenario(
        "dict-pydantic",
        "dict + validated pydantic model per record",
        "memory",
        lambda params: _sale(params, _Model),
    ),
    Scenario(
        "dict-dataclass-granted",
        "dict + slotted dataclass record, stock = buyers (every request granted)",
        "memory",
        lambda params: _sale(params, _Record),
        all_granted=True,
    ),
]
