"""The failover chain (primary courier -> backup) and the degradation rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from _resilience_helpers import Service

from ordercore.errors import CircuitOpen, InvalidInput, InvalidOrder, NoFallbackLeft
from ordercore.resilience import (
    Breaker,
    Deferred,
    Degrader,
    Failover,
    ManualTime,
    OnOpen,
    Pipeline,
    Skipped,
    Step,
    Target,
    failover,
    resilient,
)

pytestmark = pytest.mark.anyio

MakeBreaker = Callable[..., Breaker]


@pytest.fixture
def couriers(time: ManualTime) -> tuple[Service, Service]:
    return Service(time, "sf"), Service(time, "yto")


async def test_an_open_breaker_is_skipped_and_the_backup_answers(
    make_breaker: MakeBreaker, couriers: tuple[Service, Service]
) -> None:
    """The primary's circuit is open: it is not called, the backup answers."""
    primary, backup = couriers
    breaker = make_breaker("courier.sf")
    breaker.open("waybill API hangs")
    chain = Failover("courier", [Target("sf", primary, breaker), Target("yto", backup)])
    source, waybill = await chain.invoke_with_source(lambda c: c.work("W1"))
    assert (source, waybill) == ("yto", "yto:W1")
    assert primary.calls == 0


async def test_a_transient_failure_of_the_primary_fails_over(
    couriers: tuple[Service, Service],
) -> None:
    """A refused connection at the primary hands the call to the backup."""
    primary, backup = couriers
    primary.fail_next(ConnectionError("refused"))
    chain = Failover("courier", [Target("sf", primary), Target("yto", backup)])
    assert await chain.invoke(lambda c: c.work("W1")) == "yto:W1"
    assert chain.used == {"yto": 1}


async def test_a_business_error_does_not_fail_over(couriers: tuple[Service, Service]) -> None:
    """An invalid order is raised at once: the backup would refuse it too."""
    primary, backup = couriers
    primary.fail_next(InvalidOrder([]))
    chain = Failover("courier", [Target("sf", primary), Target("yto", backup)])
    with pytest.raises(InvalidOrder):
        await chain.invoke(lambda c: c.work())
    assert backup.calls == 0


async def test_fail_over_on_is_configurable(couriers: tuple[Service, Service]) -> None:
    """A predicate can fail over on a business error (area not served by the primary)."""
    primary, backup = couriers
    primary.fail_next(InvalidOrder([]))
    chain = Failover(
        "courier",
        [Target("sf", primary), Target("yto", backup)],
        fail_over_on=lambda exc: isinstance(exc, InvalidOrder),
    )
    assert await chain.invoke(lambda c: c.work()) == "yto:ok"


async def test_when_all_fail_the_error_lists_each(
    make_breaker: MakeBreaker, couriers: tuple[Service, Service]
) -> None:
    """Primary open, backup timing out: NoFallbackLeft names both and why."""
    primary, backup = couriers
    breaker = make_breaker("courier.sf")
    breaker.open()
    backup.fail_next(TimeoutError("read timeout"))
    chain = Failover("courier", [Target("sf", primary, breaker), Target("yto", backup)])
    with pytest.raises(NoFallbackLeft) as caught:
        await chain.invoke(lambda c: c.work())
    assert [(name, type(error)) for name, error in caught.value.errors] == [
        ("sf", CircuitOpen),
        ("yto", TimeoutError),
    ]


async def test_a_failover_proxy_over_resilient_ports_reads_their_breakers(
    make_breaker: MakeBreaker, couriers: tuple[Service, Service], time: ManualTime
) -> None:
    """failover() over resilient() ports skips the one whose pipeline breaker is open."""
    primary, backup = couriers
    breaker = make_breaker("courier.sf")
    sf = resilient(primary, Pipeline(service="courier.sf", breaker=breaker, time=time))
    yto = resilient(backup, Pipeline(service="courier.yto", time=time))
    courier = failover("courier", [sf, yto])
    breaker.open()
    assert await courier.work("W9") == "yto:W9"
    assert primary.calls == 0


def test_a_chain_needs_unique_names(couriers: tuple[Service, Service]) -> None:
    """Two targets with one name are refused."""
    primary, backup = couriers
    with pytest.raises(InvalidInput, match="names must be unique"):
        Failover("courier", [Target("sf", primary), Target("sf", backup)])


@pytest.fixture
def degrader(make_breaker: MakeBreaker) -> Degrader:
    breakers = {"sms": make_breaker("sms"), "courier": make_breaker("courier")}
    return Degrader(
        breakers,
        [
            Step("notify_buyer", depends_on=("sms",), on_open=OnOpen.SKIP),
            Step("request_waybill", depends_on=("courier",), on_open=OnOpen.DEFER),
            Step("reserve_stock", depends_on=("courier",), critical=True),
        ],
    )


async def test_a_non_critical_step_is_skipped_while_its_dependency_is_down(
    degrader: Degrader, make_breaker: MakeBreaker, service: Service
) -> None:
    """With the SMS circuit open, the buyer notification is skipped, not called."""
    degrader.breakers["sms"].open()
    outcome = await degrader.run("notify_buyer", service.work)
    assert isinstance(outcome, Skipped)
    assert outcome.service == "sms"
    assert service.calls == 0


async def test_a_deferred_step_says_when_to_try_again(
    degrader: Degrader, service: Service, time: ManualTime
) -> None:
    """With the courier circuit open, the waybill request is deferred to its retry time."""
    degrader.breakers["courier"].open()
    outcome = await degrader.run("request_waybill", service.work)
    assert outcome == Deferred(
        "request_waybill",
        "courier",
        "circuit breaker of 'courier' is open",
        time.now() + timedelta(seconds=30),
    )


async def test_a_critical_step_carries_on_while_a_dependency_is_down(
    degrader: Degrader, service: Service
) -> None:
    """Reserving stock runs even though the courier circuit is open."""
    degrader.breakers["courier"].open()
    assert await degrader.run("reserve_stock", service.work) == "svc:ok"


async def test_a_step_that_meets_an_open_circuit_while_running_is_deferred(
    degrader: Degrader,
) -> None:
    """A CircuitOpen raised inside a non-critical step becomes a Deferred marker."""

    async def request() -> str:
        raise CircuitOpen("courier", "open")

    outcome = await degrader.run("request_waybill", request)
    assert isinstance(outcome, Deferred)


async def test_steps_run_normally_when_all_is_well(degrader: Degrader, service: Service) -> None:
    """With every circuit closed the step's own result comes back."""
    assert await degrader.run("notify_buyer", service.work, "hi") == "svc:hi"


def test_a_step_on_an_unknown_service_is_refused(degrader: Degrader) -> None:
    """A dependency without a breaker is refused, listing the known ones."""
    with pytest.raises(InvalidInput, match="known: courier, sms"):
        degrader.add(Step("invoice", depends_on=("einvoice",)))
