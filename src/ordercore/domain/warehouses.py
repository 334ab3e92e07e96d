"""Warehouses: where stock sits, and the stock feed a WMS sends about it.

A :class:`Warehouse` is placed on the offline region map (:mod:`ordercore.domain.geo`)
so that routing can measure how far it is from a receiver. Its ``code`` is the
``warehouse`` of stock levels and reservation lines.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ordercore.domain.geo import Region, region_map

__all__ = ["StockFeedBatch", "StockFeedEntry", "Warehouse", "WarehouseCode"]

_FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

WarehouseCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Warehouse(BaseModel):
    """A place stock is kept and shipped from.

    ``priority``: lower is preferred by the priority policy (and breaks distance ties).
    ``capabilities``: what it can do (``cold_chain``, ``cod``, ``bulky``...); an order
    that requires some is routed only to warehouses that have them all.
    """

    model_config = _FROZEN

    code: WarehouseCode
    name: str = ""
    region: Region
    priority: Annotated[int, Field(ge=0)] = 100
    active: bool = True
    capabilities: frozenset[str] = frozenset()

    @field_validator("capabilities")
    @classmethod
    def _clean_capabilities(cls, value: frozenset[str]) -> frozenset[str]:
        cleaned = frozenset(item.strip() for item in value)
        if "" in cleaned:
            raise ValueError("capabilities must not be empty strings")
        return cleaned

    @classmethod
    def located(
        cls,
        code: str,
        address: str,
        *,
        name: str = "",
        priority: int = 100,
        active: bool = True,
        capabilities: frozenset[str] = frozenset(),
    ) -> Warehouse:
        """A warehouse placed by its address text (e.g. ``"浙江省杭州市余杭区"``), offline."""
        return cls(
            code=code,
            name=name,
            region=region_map().resolve_text(address),
            priority=priority,
            active=active,
            capabilities=capabilities,
        )


class StockFeedEntry(BaseModel):
    """What a WMS says about one SKU in one of its warehouses.

    ``on_hand`` is the WMS's absolute figure (it is the source of truth); ``delta`` is a
    change. Exactly one of them is given.
    """

    model_config = _FROZEN

    sku: Annotated[str, Field(min_length=1)]
    warehouse: WarehouseCode
    on_hand: Annotated[int, Field(ge=0)] | None = None
    delta: int | None = None

    @field_validator("delta")
    @classmethod
    def _nonzero(cls, value: int | None) -> int | None:
        if value == 0:
            raise ValueError("a delta must not be 0")
        return value

    @model_validator(mode="after")
    def _one_figure(self) -> Self:
        if (self.on_hand is None) == (self.delta is None):
            raise ValueError("give exactly one of on_hand and delta")
        return self


class StockFeedBatch(BaseModel):
    """One page of a WMS feed: entries, the batch id (idempotency) and the next cursor."""

    model_config = _FROZEN

    batch_id: Annotated[str, Field(min_length=1)]
    entries: tuple[StockFeedEntry, ...]
    cursor: str
    """Where the next read starts (an opaque token of the WMS)."""
    has_more: bool = False
    produced_at: datetime | None = None

    @property
    def digest(self) -> str:
        """SHA-256 of the entries: a batch id that comes back with other entries changed."""
        canonical = json.dumps(
            [entry.model_dump(mode="json") for entry in self.entries],
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()
