"""Keys and counts for the fraud window: which recent orders share a phone, address, device.

Only keyed hashes of phones, addresses and devices are kept (BLAKE2b with the shop's
salt), never the values: the history reveals that two orders share a receiver, not who.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ordercore.domain.contact_checks import normalise_phone
from ordercore.domain.orders import Order
from ordercore.domain.rules.base import HistorySummary
from ordercore.domain.rules.config import FraudRules

__all__ = ["HistoryEntry", "history_entry", "screening_key", "summarise_history"]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One screened order in the fraud window, by hashed keys (empty: not known)."""

    order_id: str
    at: datetime
    phone_key: str = ""
    address_key: str = ""
    device_key: str = ""
    buyer_key: str = ""


_NOISE = re.compile(r"[\s,，.。、;；:：'\"\-_/()（）#]+")


def screening_key(kind: str, value: str, salt: bytes) -> str:
    """A keyed hash of a normalised value; empty for an empty value."""
    if not value:
        return ""
    digest = hashlib.blake2b(f"{kind}:{value}".encode(), digest_size=16, key=salt[:64])
    return digest.hexdigest()


def history_entry(
    order: Order, *, at: datetime, device: str = "", salt: bytes = b""
) -> HistoryEntry:
    """The history record of ``order``: its hashed phone, address, device and buyer."""
    receiver, address = order.receiver, order.address
    phone = "" if receiver.masked or "*" in receiver.phone else normalise_phone(receiver.phone)
    place = ""
    if not address.masked:
        place = _NOISE.sub("", unicodedata.normalize("NFKC", address.one_line())).lower()
    buyer = f"{order.channel}:{order.buyer_id}" if order.buyer_id else ""
    return HistoryEntry(
        order_id=order.id,
        at=at,
        phone_key=screening_key("phone", phone, salt),
        address_key=screening_key("address", place, salt),
        device_key=screening_key("device", device.strip(), salt),
        buyer_key=screening_key("buyer", buyer, salt),
    )


def summarise_history(
    current: HistoryEntry, recent: Iterable[HistoryEntry], rules: FraudRules
) -> HistorySummary:
    """Count the orders sharing a key with ``current`` (itself included) in each window.

    Entries of the same order id (a re-screen) are ignored, so screening twice does not
    count an order twice.
    """
    velocity_from = current.at - rules.window
    mismatch_from = current.at - rules.mismatch_window
    phone = address = device = 1
    receivers = {current.phone_key} if current.phone_key else set()
    buyers = {current.buyer_key} if current.buyer_key else set()
    for entry in recent:
        if entry.order_id == current.order_id or entry.at > current.at:
            continue
        if entry.at >= velocity_from:
            phone += bool(current.phone_key) and entry.phone_key == current.phone_key
            address += bool(current.address_key) and entry.address_key == current.address_key
            device += bool(current.device_key) and entry.device_key == current.device_key
        if entry.at >= mismatch_from:
            if current.buyer_key and entry.buyer_key == current.buyer_key and entry.phone_key:
                receivers.add(entry.phone_key)
            if current.phone_key and entry.phone_key == current.phone_key and entry.buyer_key:
                buyers.add(entry.buyer_key)
    return HistorySummary(
        orders_per_phone=phone,
        orders_per_address=address,
        orders_per_device=device,
        receivers_per_buyer=max(1, len(receivers)),
        buyers_per_receiver=max(1, len(buyers)),
    )
