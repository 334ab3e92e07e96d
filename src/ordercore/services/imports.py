"""POS file import: idempotent, all or nothing, recorded in the sync ledger.

``core.imports.import_pos_file(data, filename)`` reads a POS export, stores its orders
exactly once per (channel, order number), reserves stock for new ones, keeps bad orders
as rejects (with their line numbers) and records the run with trigger ``import``.

**The boundary.** The core does not import ``ordercore_adapters``: the file is read by a
:class:`PosFileReader` (bytes -> canonical orders and row errors). The default reader is
the ``pos_file`` adapter, found by its dotted path and imported lazily, like the
registry's built-in names; pass ``reader=`` to use another.

**Idempotence and versions.** The file's SHA-256 is remembered (``file:<sha256>`` in the
channel's seen-keys store, :meth:`IntakeRepository.remember_deliveries`) in the same unit
of work as the orders: the same bytes again report ``already_imported`` and change
nothing. A POS order has no platform modification time, so its version
(``source_modified_at``) is derived from its content: an order whose content (lines,
receiver, address, remark, buyer, creation time) equals the stored order's keeps the
stored version and is UNCHANGED; changed content gets the import time (at least one
microsecond after the stored version), so the newest import of a corrected order wins,
also when it restores an older content. A wholly bad file raises the reader's typed
error (an ``InvalidInput``) before anything is written.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from ordercore.domain.channels import RecordKind
from ordercore.domain.intake import (
    RejectedRecord,
    RunStatus,
    SyncRun,
)
from ordercore.domain.orders import Order, OrderStatus
from ordercore.domain.privacy import mask_text
from ordercore.ports.clock import Clock
from ordercore.ports.storage import Storage, UnitOfWork
from ordercore.services.intake import IntakeService, StoreReport, Versioning

__all__ = [
    "ImportReject",
    "ImportReport",
    "ImportService",
    "PosFileReader",
    "PosMapping",
    "content_fingerprint",
]

DEFAULT_READER = "ordercore_adapters.channels.pos_file"
"""The module whose ``read_pos_file`` and ``map_rows`` make the default reader."""

_RESERVABLE = (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID)
_CONTENT_EXCLUDE = frozenset(
    {"id", "status", "status_history", "version", "updated_at", "source_modified_at"}
)
_TICK = timedelta(microseconds=1)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def _defuse(text: str) -> str:
    """Neutralise spreadsheet formula injection, but keep plain numbers such as ``-1``."""
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


class RowErrorLike(Protocol):
    """One broken rule in one row of a file."""

    @property
    def line(self) -> int: ...
    @property
    def column(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def order_no(self) -> str: ...


class PosOrderLike(Protocol):
    """One order mapped from its rows."""

    @property
    def order(self) -> Order: ...
    @property
    def lines(self) -> tuple[int, ...]: ...


class RejectedOrderLike(Protocol):
    """One order left out because of bad rows."""

    @property
    def order_no(self) -> str: ...
    @property
    def lines(self) -> tuple[int, ...]: ...
    @property
    def errors(self) -> Sequence[RowErrorLike]: ...


class PosMapping(Protocol):
    """What a reader makes of a file (``pos_file.MappingResult`` has this shape)."""

    @property
    def orders(self) -> Sequence[PosOrderLike]: ...
    @property
    def rejected(self) -> Sequence[RejectedOrderLike]: ...
    @property
    def unassigned(self) -> Sequence[RowErrorLike]: ...


class PosFileReader(Protocol):
    """Bytes of a POS export -> orders and row errors; a wholly bad file raises InvalidInput."""

    def __call__(self, data: bytes, filename: str, *, channel: str) -> PosMapping: ...


@dataclass(frozen=True, slots=True)
class ImportReject:
    """One row error of an import: where it is and which rule it broke."""

    line: int
    order_no: str
    column: str
    value: str
    message: str


@dataclass
class ImportReport:
    """What one import did."""

    filename: str
    sha256: str
    channel: str
    already_imported: bool = False
    run_id: str | None = None
    orders: int = 0
    stored: StoreReport = field(default_factory=StoreReport)
    rejected_orders: int = 0
    rejects: list[ImportReject] = field(default_factory=list)

    def rejects_csv(self) -> str:
        """The row errors as CSV text with a BOM (Excel-friendly), formulas defused."""
        buffer = io.StringIO()
        buffer.write("\ufeff")
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(("line", "order_no", "column", "value", "message"))
        for r in self.rejects:
            writer.writerow(
                (r.line, _defuse(r.order_no), _defuse(r.column), _defuse(r.value), r.message)
            )
        return buffer.getvalue()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (row values are kept: they are the shop's own export)."""
        return {
            "filename": self.filename,
            "sha256": self.sha256,
            "channel": self.channel,
            "already_imported": self.already_imported,
            "run_id": self.run_id,
            "orders": self.orders,
            "created": self.stored.created,
            "updated": self.stored.updated,
            "unchanged": self.stored.unchanged,
            "stale": self.stored.stale,
            "rejected_orders": self.rejected_orders,
            "rejects": [
                {
                    "line": r.line,
                    "order_no": r.order_no,
                    "column": r.column,
                    "value": r.value,
                    "message": r.message,
                }
                for r in self.rejects
            ],
            "errors": list(self.stored.errors),
        }


def content_fingerprint(order: Order) -> str:
    """SHA-256 of what a channel says about an order, without our identity and lifecycle."""
    content = order.model_dump(mode="json", exclude=set(_CONTENT_EXCLUDE))
    blob = json.dumps(content, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


def _default_reader(data: bytes, filename: str, *, channel: str) -> PosMapping:
    module = importlib.import_module(DEFAULT_READER)
    result: PosMapping = module.map_rows(module.read_pos_file(data, filename), channel=channel)
    return result


class ImportService:
    """POS file imports over the storage. Reached as ``core.imports``."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        intake: IntakeService,
        reader: PosFileReader | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._intake = intake
        self._reader: PosFileReader = reader or _default_reader

    async def import_pos_file(
        self, data: bytes, filename: str, *, channel: str = "pos"
    ) -> ImportReport:
        """Import one POS export once (see the module docstring); return what it did."""
        sha256 = hashlib.sha256(data).hexdigest()
        report = ImportReport(filename=filename, sha256=sha256, channel=channel)
        mapping = self._reader(data, filename, channel=channel)
        now = self._clock.now()
        report.rejects = _rejects(mapping)
        report.rejected_orders = len(mapping.rejected)
        report.orders = len(mapping.orders)
        run_id = os.urandom(8).hex()
        rejects = _reject_records(mapping, filename, sha256, channel, run_id, now)
        incoming = [pos_order.order for pos_order in mapping.orders]
        key = f"file:{sha256}"

        async def remember(uow: UnitOfWork) -> bool:
            fresh = await uow.intake.remember_deliveries(channel, [key], now)
            return key in fresh

        async with self._storage.unit_of_work() as probe:  # rolled back: only asks
            seen = not await remember(probe)
        stored = None
        if not seen:
            # The key is recorded with the last batch, so a crash mid-file leaves it unknown
            # and the next import of the same file completes it (upserts are idempotent).
            stored = await self._intake.store_orders(
                channel, incoming, rejects, versioning=_content_version(now), guard=remember
            )
        if stored is None:
            report.already_imported = True
            return report
        stored.rejected = len(rejects)
        report.stored = stored
        report.run_id = run_id
        run = SyncRun(
            id=run_id,
            channel=channel,
            trigger="import",
            status=RunStatus.SUCCEEDED,
            started_at=now,
            finished_at=self._clock.now(),
            fetched=len(incoming) + len(mapping.rejected),
            created=stored.created,
            updated=stored.updated,
            unchanged=stored.unchanged,
            stale=stored.stale,
            rejected=len(rejects),
            errors=tuple(stored.errors),
        )
        async with self._storage.unit_of_work() as uow:
            await uow.intake.save_run(run)
            await uow.commit()
        return report


def _content_version(now: datetime) -> Versioning:
    def version(stored: Order | None, incoming: Order) -> Order:
        if stored is None:
            return incoming.model_copy(update={"source_modified_at": now})
        if content_fingerprint(stored) == content_fingerprint(incoming):
            return incoming.model_copy(update={"source_modified_at": stored.source_modified_at})
        floor = stored.source_modified_at
        moment = now if floor is None or now > floor else floor + _TICK
        return incoming.model_copy(update={"source_modified_at": moment})

    return version


def _rejects(mapping: PosMapping) -> list[ImportReject]:
    errors = [*mapping.unassigned, *(e for r in mapping.rejected for e in r.errors)]
    return [
        ImportReject(e.line, e.order_no, e.column, e.value, e.message)
        for e in sorted(errors, key=lambda e: e.line)
    ]


def _reject_records(
    mapping: PosMapping, filename: str, sha256: str, channel: str, run_id: str, at: datetime
) -> list[RejectedRecord]:
    def record(
        external_id: str, lines: Sequence[int], errors: Sequence[RowErrorLike]
    ) -> RejectedRecord:
        return RejectedRecord(
            id=os.urandom(8).hex(),
            channel=channel,
            kind=RecordKind.ORDER,
            external_id=external_id,
            modified_at=at,
            payload={
                "file": filename,
                "sha256": sha256,
                "lines": list(lines),
                "errors": [
                    {"line": e.line, "column": e.column, "value": e.value, "message": e.message}
                    for e in errors
                ],
            },
            reason=mask_text("; ".join(f"line {e.line}, {e.column}: {e.message}" for e in errors)),
            run_id=run_id,
            rejected_at=at,
        )

    found = [record(r.order_no, r.lines, r.errors) for r in mapping.rejected]
    found.extend(record(f"line {e.line}", [e.line], [e]) for e in mapping.unassigned)
    return found
