"""Pushes that name orders by id only (抖店): fetch each named order before storing.

A push is a hint and the poll is the source of truth, but a push that names an order
lets the intake store that order's newest version at once: the channel's
:class:`~ordercore.ports.channels.OrderLookupPort` fetches it (signed, like every call).
An id the platform no longer returns is kept as a ``push_hint`` reject (the record of
what the push named; replay skips it), never dropped silently; a lookup that fails
(the platform unavailable) is reported and left to the poll.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime

from ordercore.domain.channels import RawRecord, RecordKind, WebhookDelivery
from ordercore.domain.intake import RejectedRecord
from ordercore.domain.privacy import mask_text
from ordercore.errors import OrderCoreError
from ordercore.ports.channels import ChannelPort, OrderLookupPort

__all__ = ["resolve_push_hints"]

_log = logging.getLogger("ordercore.intake")


async def resolve_push_hints(
    channel: ChannelPort, delivery: WebhookDelivery, now: datetime
) -> tuple[list[RawRecord], list[RejectedRecord], list[str]]:
    """The orders ``delivery.hints`` name: (records fetched, rejects kept, errors)."""
    if not delivery.hints:
        return [], [], []
    if not isinstance(channel, OrderLookupPort):
        return (
            [],
            [],
            [
                f"push {delivery.message_id} names {len(delivery.hints)} order(s) but channel "
                f"{channel.name!r} cannot look orders up; the poll will store them"
            ],
        )
    records: list[RawRecord] = []
    rejects: list[RejectedRecord] = []
    errors: list[str] = []
    for external_id in delivery.hints:
        try:
            record = await channel.fetch_order(external_id)
        except OrderCoreError as exc:
            errors.append(
                mask_text(f"order {external_id} named by push {delivery.message_id}: {exc}")
            )
            continue
        if record is not None:
            records.append(record)
            continue
        reason = (
            f"push {delivery.message_id} named order {external_id}, which the platform "
            f"no longer returns"
        )
        _log.warning(
            "push names a missing order", extra={"channel": channel.name, "order": external_id}
        )
        errors.append(reason)
        rejects.append(
            RejectedRecord(
                id=os.urandom(8).hex(),
                channel=channel.name,
                kind=RecordKind.PUSH_HINT,
                external_id=external_id,
                modified_at=now,
                payload={"message_id": delivery.message_id, "topic": delivery.topic},
                reason=reason,
                run_id=None,
                rejected_at=now,
            )
        )
    return records, rejects, errors
