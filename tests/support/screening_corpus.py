"""The labelled screening corpus (tests/unit/domain/rules/corpus): cases -> order + context.

Each JSON line varies one clean base order (a real-looking Hangzhou tea order) in what
the case is about and names, in ``labels``, every rule that should fire on it. Fields:
``receiver``, ``address`` ([province, city, district, street, detail]), ``masked``,
``remark``, ``messages``, ``lines`` ([sku, quantity, unit price]), ``buyer``, ``device``,
``stock`` (SKU -> available; null: unknown; absent: plenty of every SKU), ``delisted``,
``payment`` ({status, minutes_ago, detail}; null: no payment data; absent: confirmed)
and ``history`` (earlier orders: count, minutes_ago, spacing, values or ``same``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ordercore.domain.orders import Address, Contact, Money, Order, OrderLine
from ordercore.domain.rules import (
    HistoryEntry,
    PaymentState,
    PaymentStatus,
    RulesConfig,
    ScreeningContext,
    history_entry,
    load_rules_config,
    summarise_history,
)

CORPUS_DIR = Path(__file__).resolve().parents[1] / "unit" / "domain" / "rules" / "corpus"
NOW = datetime(2026, 11, 11, 10, 30, tzinfo=UTC)
SALT = b"corpus-salt"

BASE_RECEIVER = {"name": "李娜", "phone": "13657120984"}
BASE_ADDRESS = ["浙江省", "杭州市", "西湖区", "文三路", "478号华星时代广场A座1203室"]
BASE_LINES = [["TEA-LJ-250", 1, "89.00"]]
BASE_BUYER = "tb_lina_2019"


@dataclass(frozen=True)
class CorpusCase:
    """One labelled case, ready to screen."""

    id: str
    source: str
    labels: frozenset[str]
    order: Order
    context: ScreeningContext


def corpus_config() -> RulesConfig:
    """The configuration the corpus is labelled against (defaults plus a shop's lists)."""
    return load_rules_config(CORPUS_DIR / "rules.toml")


def load_cases(config: RulesConfig | None = None) -> list[CorpusCase]:
    """Every case of every corpus file, in file order."""
    config = config or corpus_config()
    cases = []
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                raw = json.loads(line)
                cases.append(_case(raw, path.stem, config))
    return cases


def _order(raw: dict[str, Any], order_id: str, created_at: datetime) -> Order:
    receiver = {**BASE_RECEIVER, **raw.get("receiver", {})}
    province, city, district, street, detail = raw.get("address", BASE_ADDRESS)
    masked_address = raw.get("masked", False)
    lines = tuple(
        OrderLine(sku=sku, quantity=quantity, unit_price=Money(amount=Decimal(price)))
        for sku, quantity, price in raw.get("lines", BASE_LINES)
    )
    return Order(
        id=order_id,
        channel="taobao",
        external_id=f"TB{order_id}",
        buyer_id=raw.get("buyer", BASE_BUYER),
        lines=lines,
        receiver=Contact(
            name=receiver["name"], phone=receiver["phone"], masked=receiver.get("masked", False)
        ),
        address=Address(
            province=province,
            city=city,
            district=district,
            street=street,
            detail=detail,
            masked=masked_address,
        ),
        remark=raw.get("remark", ""),
        created_at=created_at,
        updated_at=created_at,
    )


def _case(raw: dict[str, Any], source: str, config: RulesConfig) -> CorpusCase:
    order = _order(raw, raw["id"], NOW - timedelta(minutes=1))
    device = raw.get("device", "")
    stock_raw = raw.get("stock", "plenty")
    if stock_raw == "plenty":
        stock: dict[str, int] | None = {line.sku: 10_000 for line in order.lines}
    else:
        stock = stock_raw
    payment_raw = raw.get("payment", {"status": "confirmed", "minutes_ago": 10})
    payment = None
    if payment_raw is not None:
        payment = PaymentState(
            status=PaymentStatus(payment_raw["status"]),
            since=NOW - timedelta(minutes=payment_raw["minutes_ago"]),
            detail=payment_raw.get("detail", ""),
        )
    current = history_entry(order, at=NOW, device=device, salt=SALT)
    entries = _history(raw, order, device)
    context = ScreeningContext(
        now=NOW,
        stock=stock,
        delisted=frozenset(raw.get("delisted", ())),
        payment=payment,
        history=summarise_history(current, entries, config.fraud),
        device=device,
        messages=tuple(raw.get("messages", ())),
    )
    return CorpusCase(raw["id"], source, frozenset(raw["labels"]), order, context)


def _history(raw: dict[str, Any], order: Order, device: str) -> list[HistoryEntry]:
    entries = []
    serial = 0
    for group in raw.get("history", ()):
        same = set(group.get("same", ()))
        for index in range(group["count"]):
            serial += 1
            at = NOW - timedelta(minutes=group["minutes_ago"] + index * group.get("spacing", 0))
            prior: dict[str, Any] = {
                "receiver": {
                    "name": "某人",
                    "phone": group.get("phone", f"18{serial:09d}"),
                    "masked": "*" in group.get("phone", ""),
                },
                "address": group.get(
                    "address", ["广东省", "广州市", "天河区", "", f"体育西路{serial}号{serial}01室"]
                ),
                "buyer": group.get("buyer", f"{raw['id']}-buyer-{serial}"),
            }
            if "phone" in same:
                prior["receiver"] = {
                    "name": order.receiver.name,
                    "phone": order.receiver.phone,
                    "masked": order.receiver.masked,
                }
            if "address" in same:
                address = order.address
                prior["address"] = [
                    address.province,
                    address.city,
                    address.district,
                    address.street,
                    address.detail,
                ]
            if "buyer" in same:
                prior["buyer"] = order.buyer_id
            prior_device = device if "device" in same else group.get("device", f"dev-{serial}")
            prior_order = _order(prior, f"{raw['id']}-prior-{serial}", at)
            entries.append(history_entry(prior_order, at=at, device=prior_device, salt=SALT))
    return entries
