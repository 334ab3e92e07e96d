"""The after-sale model: merge rules, the state machine, inspection checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from ordercore.domain.after_sales import (
    AfterSaleKind,
    AfterSaleStatus,
    InspectionLine,
    check_inspection,
    is_regular,
    merge_after_sale,
)
from ordercore.errors import InvalidInput
from ordercore.testing.storage_after_sales import sample_after_sale

T0 = datetime(2026, 11, 11, 8, 0, tzinfo=UTC)


def test_a_newer_version_replaces_the_platform_data_but_keeps_ours() -> None:
    """merge keeps our id, order link, version, first-seen time and hand-over."""
    stored = sample_after_sale("R1", T0, order_id="o-1", version=3, handed_over_at=T0)
    incoming = sample_after_sale("R1", T0 + timedelta(minutes=1), status=AfterSaleStatus.REFUNDED)
    merged = merge_after_sale(stored, incoming)
    assert merged.status is AfterSaleStatus.REFUNDED
    assert (merged.order_id, merged.version, merged.handed_over_at) == ("o-1", 3, T0)
    assert merged.created_at == stored.created_at


def test_an_older_or_equal_version_changes_nothing() -> None:
    """merge returns the stored request for a version that is not newer."""
    stored = sample_after_sale("R1", T0)
    older = sample_after_sale("R1", T0 - timedelta(seconds=1), status=AfterSaleStatus.CLOSED)
    assert merge_after_sale(stored, older) is stored
    assert merge_after_sale(stored, stored) is stored


def test_the_state_machine_names_regular_steps() -> None:
    """requested -> approved is regular; refunded is final; refunded -> requested is not."""
    assert is_regular(AfterSaleStatus.REQUESTED, AfterSaleStatus.APPROVED)
    assert is_regular(AfterSaleStatus.REFUNDED, AfterSaleStatus.REFUNDED)
    assert not is_regular(AfterSaleStatus.REFUNDED, AfterSaleStatus.REQUESTED)
    assert sample_after_sale("R1", T0, status=AfterSaleStatus.CLOSED).is_final


def test_only_goods_that_come_back_are_counted_as_returned() -> None:
    """A refund-only request returns no units; a return returns its lines."""
    refund = sample_after_sale("R1", T0, kind=AfterSaleKind.REFUND_ONLY)
    ret = sample_after_sale("R2", T0, lines=[("A", 2), ("A", 1), ("B", 1)])
    assert refund.returned_units() == {}
    assert ret.returned_units() == {"A": 3, "B": 1}


def test_an_inspection_line_must_grade_some_units() -> None:
    """An all-zero line is refused."""
    with pytest.raises(ValidationError, match="grade at least one unit"):
        InspectionLine(sku="A")


def test_check_inspection_names_every_broken_rule() -> None:
    """A requested refund-only request graded twice over is refused with each reason."""
    item = sample_after_sale(
        "R1", T0, kind=AfterSaleKind.REFUND_ONLY, status=AfterSaleStatus.REQUESTED
    )
    lines = [InspectionLine(sku="A", sellable=1), InspectionLine(sku="A", scrap=1)]
    with pytest.raises(InvalidInput) as caught:
        check_inspection(item, lines)
    fields = [error.field for error in caught.value.errors]
    assert fields == ["kind", "status", "lines[1].sku"]


def test_a_request_without_lines_accepts_any_graded_sku() -> None:
    """When the platform names no units, the warehouse's count is taken as it is."""
    item = sample_after_sale("R1", T0, lines=())
    check_inspection(item, [InspectionLine(sku="Z", sellable=5)])
