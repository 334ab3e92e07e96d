"""Contract tests for exception tickets: storage of tickets, their keys and their durable tasks.

Part of :class:`ordercore.testing.StorageContract`. The repository-level tests pin down
what every adapter must guarantee on its own (one active ticket per key, optimistic
versions, tasks claimed once and finished only by their claim); the service-level
tests race two runners over the same storage and check every timer fires once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from ordercore.core import OrderCore
from ordercore.domain.severity import Severity
from ordercore.domain.tickets import (
    TaskKind,
    TaskState,
    Team,
    Ticket,
    TicketAction,
    TicketPolicy,
    TicketQuery,
    TicketStatus,
    TicketTask,
)
from ordercore.errors import ConcurrencyConflict, TicketNotFound
from ordercore.ports.clock import ManualClock
from ordercore.ports.notifiers import RecordingNotifier
from ordercore.ports.storage import Storage
from ordercore.services.tickets import TicketService
from ordercore.testing.messaging import RecordingMessenger
from ordercore.testing.storage_base import StorageContractBase

__all__ = ["TicketContract"]

T0 = datetime(2026, 11, 11, 8, 0, tzinfo=UTC)


def make_ticket(
    ticket_id: str,
    *,
    order_id: str | None = "o1",
    ticket_type: str = "vague_address",
    minutes: int = 0,
    status: TicketStatus = TicketStatus.OPEN,
    assignee: str | None = None,
    channel: str = "taobao",
) -> Ticket:
    """A ticket opened ``minutes`` after T0, due two hours later."""
    opened = T0 + timedelta(minutes=minutes)
    policy = TicketPolicy()
    return Ticket(
        id=ticket_id,
        ticket_type=ticket_type,
        severity=Severity.WARNING,
        channel=channel,
        order_id=order_id,
        reasons=("address has fuzzy words: 附近",),
        status=status,
        team="ops",
        assignee=assignee,
        assigned_at=opened if assignee else None,
        sop=policy.sop_for(ticket_type),
        opened_at=opened,
        deadline=opened + timedelta(hours=2),
        updated_at=opened,
    )


def make_task(
    task_id: str, minutes: int, *, ticket_id: str = "t1", key: str | None = None
) -> TicketTask:
    """An escalation task due ``minutes`` after T0."""
    return TicketTask(
        id=task_id,
        key=key or f"{ticket_id}:escalate:{task_id}",
        ticket_id=ticket_id,
        kind=TaskKind.ESCALATE,
        due_at=T0 + timedelta(minutes=minutes),
        created_at=T0,
        payload={"n": minutes},
    )


async def add(storage: Storage, ticket: Ticket) -> tuple[Ticket, bool]:
    """Add in a unit of its own and commit."""
    async with storage.unit_of_work() as uow:
        result = await uow.tickets.add(ticket)
        await uow.commit()
    return result


async def claim(storage: Storage, minutes: int, token: str, *, limit: int = 10) -> list[TicketTask]:
    """Claim what is due ``minutes`` after T0 with a 5-minute lease, and commit."""
    now = T0 + timedelta(minutes=minutes)
    async with storage.unit_of_work() as uow:
        claimed = await uow.tickets.claim_tasks(
            now, claim=token, lease_until=now + timedelta(minutes=5), limit=limit
        )
        await uow.commit()
    return claimed


class TicketContract(StorageContractBase):
    """Tickets and ticket tasks: keys, versions, filters, workloads, exactly-once claims."""

    @pytest.mark.anyio
    async def test_ticket_round_trips_whole(self, core: OrderCore) -> None:
        """A stored ticket comes back equal, SOP, events and follow-up included."""
        ticket = make_ticket("t1").start_follow_up(
            "contact_update", T0, T0 + timedelta(hours=2), "system"
        )
        _, created = await add(core.storage, ticket)
        assert created
        async with core.storage.unit_of_work() as uow:
            assert await uow.tickets.get("t1") == ticket
            assert await uow.tickets.get("nope") is None

    @pytest.mark.anyio
    async def test_one_active_ticket_per_order_and_type(self, core: OrderCore) -> None:
        """A second ticket with the key of an active one is not stored; the first comes back."""
        await add(core.storage, make_ticket("t1"))
        existing, created = await add(core.storage, make_ticket("t2"))
        assert (existing.id, created) == ("t1", False)
        other, created = await add(core.storage, make_ticket("t3", ticket_type="payment"))
        assert (other.id, created) == ("t3", True)
        async with core.storage.unit_of_work() as uow:
            assert await uow.tickets.get("t2") is None

    @pytest.mark.anyio
    async def test_resolving_frees_the_key(self, core: OrderCore) -> None:
        """Once resolved, the order and type can have a new active ticket."""
        ticket, _ = await add(core.storage, make_ticket("t1"))
        async with core.storage.unit_of_work() as uow:
            saved = await uow.tickets.save(ticket.resolve("address_corrected", T0, "li"))
            await uow.commit()
        assert saved.version == 1
        again, created = await add(core.storage, make_ticket("t2"))
        assert (again.id, created) == ("t2", True)

    @pytest.mark.anyio
    async def test_save_checks_the_version(self, core: OrderCore) -> None:
        """Saving a stale copy raises ConcurrencyConflict; an unknown id TicketNotFound."""
        ticket, _ = await add(core.storage, make_ticket("t1"))
        async with core.storage.unit_of_work() as uow:
            await uow.tickets.save(ticket.comment(T0, "li", "first"))
            await uow.commit()
        async with core.storage.unit_of_work() as uow:
            with pytest.raises(ConcurrencyConflict):
                await uow.tickets.save(ticket.comment(T0, "zhao", "second"))
            with pytest.raises(TicketNotFound):
                await uow.tickets.save(make_ticket("ghost"))
        async with core.storage.unit_of_work() as uow:
            stored = await uow.tickets.get("t1")
        assert stored is not None
        assert [e.note for e in stored.events if e.action is TicketAction.COMMENTED] == ["first"]

    @pytest.mark.anyio
    async def test_find_filters_and_orders_newest_first(self, core: OrderCore) -> None:
        """Each filter narrows the list; tickets come newest opened first."""
        await add(core.storage, make_ticket("t1", order_id="o1", assignee="li"))
        await add(core.storage, make_ticket("t2", order_id="o2", minutes=10, channel="jd"))
        await add(core.storage, make_ticket("t3", order_id="o3", minutes=20, ticket_type="stock"))
        async with core.storage.unit_of_work() as uow:
            find = uow.tickets.find
            assert [t.id for t in await find(TicketQuery())] == ["t3", "t2", "t1"]
            assert [t.id for t in await find(TicketQuery(limit=2))] == ["t3", "t2"]
            assert [t.id for t in await find(TicketQuery(assignee="li"))] == ["t1"]
            assert [t.id for t in await find(TicketQuery(channel="jd"))] == ["t2"]
            assert [t.id for t in await find(TicketQuery(ticket_type="stock"))] == ["t3"]
            assert [t.id for t in await find(TicketQuery(order_id="o2"))] == ["t2"]
            overdue = TicketQuery(overdue_at=T0 + timedelta(hours=2, minutes=10))
            assert [t.id for t in await find(overdue)] == ["t2", "t1"]
            window = TicketQuery(
                opened_from=T0 + timedelta(minutes=5), opened_before=T0 + timedelta(minutes=20)
            )
            assert [t.id for t in await find(window)] == ["t2"]
            resolved = TicketQuery(statuses=(TicketStatus.RESOLVED,))
            assert await find(resolved) == []

    @pytest.mark.anyio
    async def test_workload_counts_active_tickets_and_last_assignment(
        self, core: OrderCore
    ) -> None:
        """Active tickets per agent, the time of their last assignment, zero for the idle."""
        await add(core.storage, make_ticket("t1", order_id="o1", assignee="li"))
        ticket, _ = await add(
            core.storage, make_ticket("t2", order_id="o2", minutes=5, assignee="li")
        )
        async with core.storage.unit_of_work() as uow:
            await uow.tickets.save(ticket.resolve("no_action", T0, "li"))
            loads = await uow.tickets.workload(["li", "zhao"])
        assert loads["li"].active == 1
        assert loads["li"].last_assigned_at == T0 + timedelta(minutes=5)
        assert (loads["zhao"].active, loads["zhao"].last_assigned_at) == (0, None)

    @pytest.mark.anyio
    async def test_scheduling_is_idempotent_per_key(self, core: OrderCore) -> None:
        """A task whose key is stored is skipped; cancel touches only pending tasks of a kind."""
        async with core.storage.unit_of_work() as uow:
            assert await uow.tickets.schedule([make_task("a", 0, key="k1")]) == 1
            assert await uow.tickets.schedule([make_task("b", 0, key="k1"), make_task("c", 5)]) == 1
            await uow.commit()
        assert [t.id for t in await claim(core.storage, 0, "r1")] == ["a"]
        async with core.storage.unit_of_work() as uow:
            assert await uow.tickets.cancel_tasks("t1", [TaskKind.ESCALATE], T0) == 1
            await uow.commit()
        async with core.storage.unit_of_work() as uow:
            states = {t.id: t.state for t in await uow.tickets.tasks("t1")}
        assert states == {"a": TaskState.CLAIMED, "c": TaskState.CANCELLED}

    @pytest.mark.anyio
    async def test_claims_take_due_tasks_once(self, core: OrderCore) -> None:
        """Only due tasks are claimed, earliest first, and a claimed task is not claimed again."""
        async with core.storage.unit_of_work() as uow:
            await uow.tickets.schedule(
                [make_task("late", 30), make_task("b", 2), make_task("a", 1)]
            )
            await uow.commit()
        first = await claim(core.storage, 10, "r1")
        assert [(t.id, t.state, t.claim, t.attempts) for t in first] == [
            ("a", TaskState.CLAIMED, "r1", 1),
            ("b", TaskState.CLAIMED, "r1", 1),
        ]
        assert await claim(core.storage, 10, "r2") == []

    @pytest.mark.anyio
    async def test_only_the_claim_finishes_and_an_expired_lease_is_taken_over(
        self, core: OrderCore
    ) -> None:
        """An expired lease is taken over; the old claim can no longer finish the task."""
        async with core.storage.unit_of_work() as uow:
            await uow.tickets.schedule([make_task("a", 0)])
            await uow.commit()
        await claim(core.storage, 0, "r1")
        assert await claim(core.storage, 4, "r2") == []
        taken = await claim(core.storage, 5, "r2")
        assert [(t.claim, t.attempts) for t in taken] == [("r2", 2)]
        async with core.storage.unit_of_work() as uow:
            assert not await uow.tickets.finish_task("a", "r1", TaskState.DONE, T0)
            retry_at = T0 + timedelta(minutes=9)
            assert await uow.tickets.finish_task(
                "a", "r2", TaskState.PENDING, T0, retry_at=retry_at, error="boom"
            )
            await uow.commit()
        async with core.storage.unit_of_work() as uow:
            (task,) = await uow.tickets.tasks("t1", states=[TaskState.PENDING])
        assert (task.due_at, task.last_error, task.claim) == (retry_at, "boom", None)
        assert [t.id for t in await claim(core.storage, 9, "r3")] == ["a"]

    @pytest.mark.anyio
    async def test_concurrent_claims_never_share_a_task(self, core: OrderCore) -> None:
        """Eight runners claiming 40 due tasks in small batches take each task exactly once."""
        async with core.storage.unit_of_work() as uow:
            await uow.tickets.schedule([make_task(f"x{i:02}", 0) for i in range(40)])
            await uow.commit()
        taken: list[str] = []

        async def runner(name: str) -> None:
            while batch := await claim(core.storage, 1, name, limit=3):
                taken.extend(task.id for task in batch)

        async with anyio.create_task_group() as group:
            for index in range(8):
                group.start_soon(runner, f"r{index}")
        assert sorted(taken) == [f"x{i:02}" for i in range(40)]

    @pytest.mark.anyio
    async def test_concurrent_opens_of_one_finding_make_one_ticket(self, core: OrderCore) -> None:
        """Twenty concurrent opens for one order and type: one ticket with every reason."""
        service = TicketService(core.storage, ManualClock(T0))
        ids: set[str] = set()

        async def open_one(index: int) -> None:
            ticket = await service.open(
                "stock", Severity.HIGH, order_id="o1", channel="jd", reasons=[f"short {index}"]
            )
            ids.add(ticket.id)

        async with anyio.create_task_group() as group:
            for index in range(20):
                group.start_soon(open_one, index)
        (ticket_id,) = ids
        ticket = await service.get(ticket_id)
        assert sorted(ticket.reasons) == sorted(f"short {index}" for index in range(20))
        assert len(await service.list(order_id="o1")) == 1

    @pytest.mark.anyio
    async def test_rolled_back_unit_keeps_no_ticket_nor_task(self, core: OrderCore) -> None:
        """Leaving a unit without commit discards its tickets and tasks."""
        async with core.storage.unit_of_work() as uow:
            await uow.tickets.add(make_ticket("t1"))
            await uow.tickets.schedule([make_task("a", 0)])
        async with core.storage.unit_of_work() as uow:
            assert await uow.tickets.get("t1") is None
            assert await uow.tickets.tasks() == []
        assert (await add(core.storage, make_ticket("t2")))[1]

    @pytest.mark.anyio
    async def test_two_runners_escalate_and_follow_up_once(self, core: OrderCore) -> None:
        """Two services racing run_due: one SMS, one move, one escalation, one alert each."""
        clock = ManualClock(T0)
        policy = TicketPolicy(
            teams=(
                Team(name="ops", supervisor="lead", agents=("li", "zhao")),
                Team(name="outbound_call", supervisor="out-lead", agents=("qian",)),
                Team(name="risk", supervisor="risk-lead"),
            )
        )
        messenger, notifier = RecordingMessenger(), RecordingNotifier()
        runners = [
            TicketService(core.storage, clock, policy, notifier=notifier, messenger=messenger)
            for _ in range(2)
        ]
        contact = await runners[0].open(
            "invalid_contact",
            Severity.WARNING,
            order_id="o1",
            channel="taobao",
            reasons=["no answer"],
        )
        address = await runners[0].open(
            "vague_address", Severity.CRITICAL, order_id="o2", channel="taobao", reasons=["附近"]
        )

        async def race() -> None:
            async with anyio.create_task_group() as group:
                for runner in runners:
                    group.start_soon(runner.run_due)

        await race()
        clock.advance(timedelta(hours=2))
        await race()
        await race()
        assert [m.order_id for m in messenger.sent] == ["o1"]
        moved = await runners[1].get(contact.id)
        escalated = await runners[1].get(address.id)
        assert (moved.team, moved.assignee, moved.status) == (
            "outbound_call",
            "qian",
            TicketStatus.OPEN,
        )
        assert escalated.escalation_level == 1
        assert [a.topic for a in notifier.alerts].count("tickets.escalated") == 1
        assert [a.topic for a in notifier.alerts].count("tickets.follow_up_expired") == 1
