"""Declarative field mapping: a platform's order shape -> the canonical Order.

A channel adapter describes its platform once, as data::

    TAOBAO = OrderMapping(
        fields=(
            FieldMap("external_id", "tid", convert=as_text),
            FieldMap("status", "status", convert=status_table(TAOBAO_STATUSES)),
            FieldMap("created_at", "created", convert=platform_time("Asia/Shanghai")),
            FieldMap("receiver.phone", ("receiver_mobile", "receiver_phone"), convert=masked_text),
            ...
        ),
        lines=LineMapping("orders.order", fields=(
            FieldMap("sku", ("outer_sku_id", "outer_iid", "sku_id"), convert=as_text),
            FieldMap("unit_price", "price", convert=yuan),
        )),
    )

``source`` is a dotted path into the payload; a tuple lists fallbacks, the first present
and non-empty one wins (the outer SKU id a seller typed, else the platform's own id).
Every failure is collected, not just the first, and names the channel, the order id, the
platform field and the value: ``taobao order 1234: orders.order[1].num: must be a whole
number > 0 (got 'x')``. Values the platform masked or encrypted are marked as such on
the order (``Address.masked``, ``Contact.masked``) and reported as warnings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from ordercore.domain.channels import MappedOrder, RawRecord
from ordercore.domain.orders import Order, OrderStatus
from ordercore.errors import FieldError, InvalidOrder

__all__ = [
    "FieldMap",
    "LineMapping",
    "MappingContext",
    "OrderMapping",
    "as_text",
    "fen_to_yuan",
    "masked_text",
    "platform_time",
    "positive_int",
    "status_table",
    "yuan",
]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class ConversionError(ValueError):
    """A converter's complaint about one value; the mapper adds where it happened."""


@dataclass
class MappingContext:
    """What converters may note while mapping one order."""

    warnings: list[str] = field(default_factory=list)
    masked: set[str] = field(default_factory=set)
    """Order sections (``receiver``, ``address``) that carried masked values."""


Converter = Callable[[Any, MappingContext, str], Any]
"""``(value, context, target) -> converted``; raises ConversionError for a bad value."""


@dataclass(frozen=True)
class FieldMap:
    """One platform field (with fallbacks) mapped to one Order field (dotted target)."""

    target: str
    source: str | tuple[str, ...]
    convert: Converter | None = None
    required: bool = True
    default: Any = MISSING

    @property
    def sources(self) -> tuple[str, ...]:
        """The source paths in fallback order."""
        return (self.source,) if isinstance(self.source, str) else self.source

    @cached_property
    def _paths(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Each source with its path split once (mapping runs per order, specs live long)."""
        return tuple((source, tuple(source.split("."))) for source in self.sources)


@dataclass(frozen=True, slots=True)
class LineMapping:
    """Where the lines are in the payload, and how each one maps to an OrderLine."""

    source: str
    fields: tuple[FieldMap, ...]


class _Step(NamedTuple):
    """One FieldMap, compiled: what mapping a value needs, nothing to work out per order."""

    keys: tuple[str, ...] | None
    """The source keys when every source is top-level (read with ``dict.get``), else None."""
    paths: tuple[tuple[str, tuple[str, ...]], ...]
    convert: Converter | None
    target: str
    parents: tuple[str, ...]
    leaf: str
    required: bool
    default: Any


def _compile(fields: Sequence[FieldMap]) -> tuple[_Step, ...]:
    steps = []
    for spec in fields:
        paths = spec._paths
        flat = all(len(parts) == 1 for _, parts in paths)
        *parents, leaf = spec.target.split(".")
        steps.append(
            _Step(
                tuple(parts[0] for _, parts in paths) if flat else None,
                paths,
                spec.convert,
                spec.target,
                tuple(parents),
                leaf,
                spec.required,
                spec.default,
            )
        )
    return tuple(steps)


@dataclass(frozen=True, slots=True)
class OrderMapping:
    """A platform's whole order shape. ``constants`` fill Order fields the platform lacks.

    The field specs are compiled once, when the mapping is made (paths split, targets
    resolved, top-level keys looked up directly), so mapping an order interprets no spec.
    """

    fields: tuple[FieldMap, ...]
    lines: LineMapping
    constants: Mapping[str, Any] = field(default_factory=dict)
    _order_steps: tuple[_Step, ...] = field(init=False, repr=False, compare=False)
    _line_steps: tuple[_Step, ...] = field(init=False, repr=False, compare=False)
    _lines_path: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_order_steps", _compile(self.fields))
        object.__setattr__(self, "_line_steps", _compile(self.lines.fields))
        object.__setattr__(self, "_lines_path", tuple(self.lines.source.split(".")))

    def map(self, record: RawRecord, *, order_id: str | None = None) -> MappedOrder:
        """Map a raw record; InvalidOrder lists every field that failed.

        The order's ``updated_at`` and ``source_modified_at`` default to the record's
        modification time (a mapping may take them from the payload instead).
        """
        context = MappingContext()
        errors: list[FieldError] = []
        data: dict[str, Any] = {}
        for key, value in self.constants.items():
            _assign(data, key, value)
        payload = record.payload
        _run(self._order_steps, payload, "", data, context, errors)
        raw_lines = _walk(payload, self._lines_path)
        lines: list[dict[str, Any]] = []
        if raw_lines is MISSING or not isinstance(raw_lines, list) or not raw_lines:
            errors.append(FieldError(self.lines.source, "the order has no lines", None))
        else:
            steps = self._line_steps
            for index, raw_line in enumerate(raw_lines):
                line: dict[str, Any] = {}
                if type(raw_line) is not dict and not isinstance(raw_line, Mapping):
                    where = f"{self.lines.source}[{index}]"
                    errors.append(FieldError(where, "must be an object", raw_line))
                    continue
                prefix = f"{self.lines.source}[{index}]."
                _run(steps, raw_line, prefix, line, context, errors)
                lines.append(line)
        subject = f"{record.channel} order {record.external_id}"
        if errors:
            raise InvalidOrder(errors, subject=subject)
        data["lines"] = lines
        data.setdefault("channel", record.channel)
        data.setdefault("external_id", record.external_id)
        data.setdefault("id", order_id or f"{record.channel}:{record.external_id}")
        data.setdefault("updated_at", record.modified_at)
        data.setdefault("source_modified_at", record.modified_at)
        for section in context.masked:
            _assign(data, f"{section}.masked", True)
        try:
            order = Order.model_validate(data)
        except ValidationError as exc:
            raise InvalidOrder(_validation_errors(exc), subject=subject) from None
        return MappedOrder(order=order, warnings=tuple(context.warnings))


def _run(
    steps: tuple[_Step, ...],
    payload: Mapping[str, Any],
    prefix: str,
    into: dict[str, Any],
    context: MappingContext,
    errors: list[FieldError],
) -> None:
    """Apply compiled steps to one payload (the order, or one line under ``prefix``)."""
    flat = type(payload) is dict
    for keys, paths, convert, target, parents, leaf, required, default in steps:
        value: Any = MISSING
        found_at = 0
        if flat and keys is not None:
            for position, key in enumerate(keys):
                candidate = payload.get(key, MISSING)
                if candidate is not MISSING and candidate is not None and candidate != "":
                    value, found_at = candidate, position
                    break
        else:
            for position, (_, parts) in enumerate(paths):
                candidate = _walk(payload, parts)
                if candidate is not MISSING and candidate is not None and candidate != "":
                    value, found_at = candidate, position
                    break
        if value is MISSING:
            if default is MISSING:
                if required:
                    names = " or ".join(prefix + source for source, _ in paths)
                    errors.append(FieldError(names, "is missing", None))
                continue
            value = default
        elif convert is not None:
            try:
                value = convert(value, context, target)
            except ConversionError as exc:
                errors.append(FieldError(prefix + paths[found_at][0], str(exc), value))
                continue
        node = into
        for part in parents:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            node = child
        node[leaf] = value


def _walk(payload: Any, parts: tuple[str, ...]) -> Any:
    current = payload
    for part in parts:
        if type(current) is not dict and not isinstance(current, Mapping):
            return MISSING
        try:
            current = current[part]
        except KeyError:
            return MISSING
    return current


def _assign(into: dict[str, Any], target: str, value: Any) -> None:
    *parents, leaf = target.split(".")
    node = into
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _validation_errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(
            ".".join(str(part) for part in error["loc"]) or "order",
            error["msg"],
            error.get("input"),
        )
        for error in exc.errors()
    ]


# -- converters -------------------------------------------------------------------------


def as_text(value: Any, context: MappingContext, target: str) -> str:
    """Any scalar as a stripped string (platform ids come as numbers or strings)."""
    if type(value) is str:
        return value.strip()
    if isinstance(value, Mapping | list):
        raise ConversionError("must be a single value")
    return str(value).strip()


def positive_int(value: Any, context: MappingContext, target: str) -> int:
    """A whole number > 0 (quantities), from an int or a digit string."""
    if type(value) is int:
        number = value
    else:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ConversionError("must be a whole number > 0") from None
    if number <= 0:
        raise ConversionError("must be a whole number > 0")
    return number


def yuan(value: Any, context: MappingContext, target: str) -> dict[str, Any]:
    """A price in yuan given as text or number ("19.90") -> Money (exact, never float)."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConversionError("must be an amount in yuan") from None
    if not amount.is_finite() or amount < 0:
        raise ConversionError("must be an amount in yuan >= 0")
    return {"amount": amount, "currency": "CNY"}


def fen_to_yuan(value: Any, context: MappingContext, target: str) -> dict[str, Any]:
    """A price in fen (integer cents, Pinduoduo and Douyin) -> Money in yuan."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConversionError("must be a whole number of fen")
    try:
        fen = int(str(value).strip())
    except ValueError:
        raise ConversionError("must be a whole number of fen") from None
    if fen < 0:
        raise ConversionError("must be a whole number of fen >= 0")
    return {"amount": Decimal(fen) / 100, "currency": "CNY"}


def status_table(table: Mapping[str, str | OrderStatus]) -> Converter:
    """Map the platform's status codes; an unknown code is an error naming it."""
    resolved = {str(code): OrderStatus(status) for code, status in table.items()}

    def convert(value: Any, context: MappingContext, target: str) -> OrderStatus:
        status = resolved.get(value if type(value) is str else str(value))
        if status is None:
            known = ", ".join(sorted(resolved))
            raise ConversionError(f"unknown status code (known: {known})")
        return status

    return convert


def platform_time(zone: str) -> Converter:
    """A platform wall-clock time ("2026-11-11 08:00:00" or epoch seconds) -> UTC."""
    tz = ZoneInfo(zone)

    def convert(value: Any, context: MappingContext, target: str) -> datetime:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        text = str(value).strip()
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ConversionError(f"must be a time like 2026-11-11 08:00:00 ({zone})") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return moment.astimezone(UTC)

    return convert


def masked_text(value: Any, context: MappingContext, target: str) -> str:
    """Receiver data as given; masked values (``138****0000``, ``*``) mark their section."""
    text = value.strip() if type(value) is str else as_text(value, context, target)
    if "*" in text:
        section = target.split(".", 1)[0]
        if section not in context.masked:
            context.warnings.append(f"{section} data is masked by the platform")
        context.masked.add(section)
    return text
