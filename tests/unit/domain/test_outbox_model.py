"""Outbox task values: validation, personal-data refusal, error scrubbing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ordercore.domain.outbox import MAX_ERROR_LENGTH, OutboxState, OutboxTask, scrub_error
from ordercore.errors import InvalidOutboxTask

NOW = datetime(2026, 11, 11, tzinfo=UTC)


def test_a_new_task_is_pending_and_due_now() -> None:
    """OutboxTask.new gives a pending task, no attempts, due at ``now``."""
    task = OutboxTask.new(id="t1", kind="waybill.print", key="w:o1", payload={"o": 1}, now=NOW)
    assert (task.state, task.attempts, task.available_at, task.seq) == (
        OutboxState.PENDING,
        0,
        NOW,
        0,
    )


def test_a_kind_must_be_a_dotted_lower_case_name() -> None:
    """A kind like 'Waybill Print' is refused with the field named."""
    with pytest.raises(InvalidOutboxTask, match="kind"):
        OutboxTask.new(id="t1", kind="Waybill Print", key="k", payload={}, now=NOW)


def test_a_payload_must_be_json() -> None:
    """A payload holding a non-JSON value is refused."""
    with pytest.raises(InvalidOutboxTask, match="payload: must be plain JSON"):
        OutboxTask.new(id="t1", kind="a.b", key="k", payload={"at": object()}, now=NOW)


def test_personal_fields_anywhere_in_a_payload_are_refused() -> None:
    """Nested and listed personal fields are each named, their values never shown."""
    payload = {"lines": [{"sku": "A"}, {"receiver_name": "张三"}], "contact": {"email": "a@b.c"}}
    with pytest.raises(InvalidOutboxTask) as caught:
        OutboxTask.new(id="t1", kind="a.b", key="k", payload=payload, now=NOW)
    fields = [error.field for error in caught.value.errors]
    assert fields == ["payload.lines[1].receiver_name", "payload.contact.email"]
    assert "张三" not in str(caught.value)


def test_scrub_error_masks_people_and_removes_secrets() -> None:
    """Phones are masked; passwords in URLs and key=value secrets are replaced."""
    raw = "POST failed for 13800138000 via postgresql://u:hunter2@db/x app_secret=s3cr3t&token: abc"
    assert scrub_error(raw) == (
        "POST failed for 138****8000 via postgresql://u:***@db/x app_secret=***&token: ***"
    )


def test_scrub_error_cuts_long_messages() -> None:
    """A stored error is at most MAX_ERROR_LENGTH characters."""
    assert len(scrub_error("x" * 10_000)) == MAX_ERROR_LENGTH
