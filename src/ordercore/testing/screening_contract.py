"""The contract every :class:`~ordercore.ports.screening.ScreeningStore` must pass.

Subclass :class:`ScreeningStoreContract` and supply an async ``screening_store`` fixture
that yields an empty store::

    class TestMyStore(ScreeningStoreContract):
        @pytest.fixture
        async def screening_store(self):
            yield MyStore(...)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from ordercore.domain.exceptions import Finding, RuleAction, ScreeningResult
from ordercore.domain.rules.history import HistoryEntry
from ordercore.domain.severity import Severity
from ordercore.ports.screening import BatchScreeningStore, ScreeningStore

__all__ = ["ScreeningStoreContract"]

T0 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)


def entry(order_id: str, minutes: int = 0, **keys: str) -> HistoryEntry:
    """A history entry ``minutes`` after T0 with the given keys (others empty)."""
    return HistoryEntry(order_id=order_id, at=T0 + timedelta(minutes=minutes), **keys)


def result(order_id: str, minutes: int, *, flagged: bool) -> ScreeningResult:
    """A screening result, with one finding when ``flagged``."""
    findings = (
        (
            Finding(
                rule_id="remark.risk",
                family="remark_risk",
                severity=Severity.WARNING,
                reasons=("remark mentions 差评",),
                actions=frozenset({RuleAction.FLAG, RuleAction.RAISE_PRIORITY}),
            ),
        )
        if flagged
        else ()
    )
    return ScreeningResult(
        order_id=order_id,
        findings=findings,
        screened_at=T0 + timedelta(minutes=minutes),
        priority_raised=flagged,
    )


@pytest.mark.anyio
class ScreeningStoreContract:
    """Behaviour shared by every screening store (memory, SQLite, PostgreSQL, yours)."""

    async def test_an_entry_finds_earlier_ones_sharing_a_key(
        self, screening_store: ScreeningStore
    ) -> None:
        """A later order with the same phone gets the earlier one back; others stay out."""
        assert await screening_store.record(entry("a", 0, phone_key="p1"), T0) == []
        await screening_store.record(entry("b", 1, phone_key="p2", device_key="d1"), T0)
        found = await screening_store.record(entry("c", 2, phone_key="p1", device_key="d1"), T0)
        assert sorted(e.order_id for e in found) == ["a", "b"]
        assert {e.phone_key for e in found} == {"p1", "p2"}

    async def test_entries_before_since_are_left_out(self, screening_store: ScreeningStore) -> None:
        """Only entries at or after ``since`` come back."""
        await screening_store.record(entry("old", 0, address_key="a1"), T0)
        await screening_store.record(entry("new", 30, address_key="a1"), T0)
        found = await screening_store.record(
            entry("now", 40, address_key="a1"), T0 + timedelta(minutes=30)
        )
        assert [e.order_id for e in found] == ["new"]

    async def test_recording_an_order_again_replaces_it(
        self, screening_store: ScreeningStore
    ) -> None:
        """A re-screen neither returns the order itself nor keeps its old keys."""
        await screening_store.record(entry("a", 0, buyer_key="b1"), T0)
        assert await screening_store.record(entry("a", 1, buyer_key="b2"), T0) == []
        assert await screening_store.record(entry("x", 2, buyer_key="b1"), T0) == []
        found = await screening_store.record(entry("y", 3, buyer_key="b2"), T0)
        assert [(e.order_id, e.at) for e in found] == [("a", T0 + timedelta(minutes=1))]

    async def test_empty_keys_match_nothing(self, screening_store: ScreeningStore) -> None:
        """Orders without a known device do not match each other on the device."""
        await screening_store.record(entry("a", 0), T0)
        assert await screening_store.record(entry("b", 1), T0) == []

    async def test_results_are_kept_and_flagged_ones_listed_newest_first(
        self, screening_store: ScreeningStore
    ) -> None:
        """save_result replaces; flagged lists results with findings, newest first."""
        await screening_store.save_result(result("a", 1, flagged=True))
        await screening_store.save_result(result("b", 2, flagged=True))
        await screening_store.save_result(result("c", 3, flagged=False))
        assert [r.order_id for r in await screening_store.flagged()] == ["b", "a"]
        assert await screening_store.result("a") == result("a", 1, flagged=True)
        await screening_store.save_result(result("a", 4, flagged=False))
        assert [r.order_id for r in await screening_store.flagged()] == ["b"]
        assert await screening_store.result("nope") is None

    async def test_prune_forgets_old_entries(self, screening_store: ScreeningStore) -> None:
        """Entries older than the cut-off are gone and counted."""
        await screening_store.record(entry("a", 0, phone_key="p"), T0)
        await screening_store.record(entry("b", 10, phone_key="p"), T0)
        assert await screening_store.prune(T0 + timedelta(minutes=5)) == 1
        found = await screening_store.record(entry("c", 20, phone_key="p"), T0)
        assert [e.order_id for e in found] == ["b"]

    async def test_at_most_limit_newest_entries_per_key_come_back(
        self, screening_store: ScreeningStore
    ) -> None:
        """A hot key returns only its ``limit`` newest entries."""
        for index in range(5):
            await screening_store.record(entry(f"o{index}", index, phone_key="hot"), T0)
        found = await screening_store.record(entry("x", 10, phone_key="hot"), T0, limit=2)
        assert sorted(e.order_id for e in found) == ["o3", "o4"]

    async def test_concurrent_records_are_all_kept(self, screening_store: ScreeningStore) -> None:
        """Ten orders of one phone recorded at once are all seen by the next one."""
        async with anyio.create_task_group() as group:
            for index in range(10):
                group.start_soon(
                    screening_store.record, entry(f"o{index}", index, phone_key="p"), T0
                )
        found = await screening_store.record(entry("last", 20, phone_key="p"), T0)
        assert len(found) == 10

    async def test_a_recorded_batch_sees_its_own_earlier_entries(
        self, screening_store: ScreeningStore
    ) -> None:
        """record_many (where offered) answers each entry as record would, in batch order."""
        if not isinstance(screening_store, BatchScreeningStore):
            pytest.skip("this store records one entry at a time only")
        await screening_store.record(entry("before", 0, phone_key="p"), T0)
        found = await screening_store.record_many(
            [
                entry("a", 1, phone_key="p"),
                entry("b", 2, device_key="d"),
                entry("c", 3, phone_key="p", device_key="d"),
            ],
            [T0, T0, T0],
        )
        assert [sorted(e.order_id for e in window) for window in found] == [
            ["before"],
            [],
            ["a", "b", "before"],
        ]

    async def test_saving_results_in_a_batch_only_replaces_where_asked(
        self, screening_store: ScreeningStore
    ) -> None:
        """save_results keeps flagged results; replace_only touches only known orders."""
        if not isinstance(screening_store, BatchScreeningStore):
            pytest.skip("this store saves one result at a time only")
        await screening_store.save_results(
            [result("a", 1, flagged=True), result("b", 1, flagged=True)], replace_only=False
        )
        await screening_store.save_results(
            [result("a", 2, flagged=False), result("new", 2, flagged=False)], replace_only=True
        )
        assert [r.order_id for r in await screening_store.flagged()] == ["b"]
        assert await screening_store.result("new") is None
        cleared = await screening_store.result("a")
        assert cleared is not None
        assert cleared.findings == ()
