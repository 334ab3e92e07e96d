"""The service gateway view: percentiles, success rate, breaker state, SLA alerts."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from ordercore.errors import InvalidInput
from ordercore.ports.notifiers import AlertLevel, RecordingNotifier
from ordercore.resilience import Breaker, GatewaySnapshot, ManualTime, ServiceGateway, Sla

pytestmark = pytest.mark.anyio

MakeBreaker = Callable[..., Breaker]


def _feed(gateway: ServiceGateway, service: str, millis: range, ok: bool = True) -> None:
    for value in millis:
        gateway.record(service, value / 1000, ok=ok)


def test_latency_percentiles_by_nearest_rank(time: ManualTime) -> None:
    """Durations 1..100 ms give p50 50 ms, p95 95 ms, p99 99 ms."""
    gateway = ServiceGateway(time=time)
    _feed(gateway, "courier.sf", range(100, 0, -1))
    view = gateway.snapshot().dependency("courier.sf")
    assert (view.p50_ms, view.p95_ms, view.p99_ms) == (50.0, 95.0, 99.0)


def test_success_rate_counts_failed_calls(time: ManualTime) -> None:
    """Three good calls and one failed one: 75% success."""
    gateway = ServiceGateway(time=time)
    _feed(gateway, "sms", range(1, 4))
    gateway.record("sms", 0.01, ok=False)
    assert gateway.snapshot().dependency("sms").success_rate == 0.75


def test_the_window_forgets_old_calls(time: ManualTime) -> None:
    """Calls older than max_age leave the window."""
    gateway = ServiceGateway(time=time, max_age=60)
    _feed(gateway, "sms", range(1, 11))
    time.advance(61)
    _feed(gateway, "sms", range(500, 502))
    view = gateway.snapshot().dependency("sms")
    assert (view.calls, view.p50_ms) == (2, 500.0)


async def test_an_sla_breach_alerts_exactly_once(time: ManualTime) -> None:
    """p95 over its limit sends one alert, however often the gateway checks."""
    notifier = RecordingNotifier()
    gateway = ServiceGateway(notifier, time=time)
    gateway.watch("courier.sf", sla=Sla(max_p95=0.5, minimum_calls=10))
    _feed(gateway, "courier.sf", range(100, 2100, 100))
    await gateway.check()
    await gateway.check()
    assert [(a.level, a.topic, a.key) for a in notifier.alerts] == [
        (AlertLevel.HIGH, "resilience.sla_breach", "sla:courier.sf:p95")
    ]
    assert "p95 latency 1900ms > 500ms" in notifier.alerts[0].message


async def test_recovery_clears_the_breach_so_a_new_one_alerts_again(time: ManualTime) -> None:
    """Breach, recovery (an info alert), breach again: three alerts in all."""
    notifier = RecordingNotifier()
    gateway = ServiceGateway(notifier, time=time, window=10)
    gateway.watch("sms", sla=Sla(min_success_rate=0.9, minimum_calls=10))
    _feed(gateway, "sms", range(1, 11), ok=False)
    await gateway.check()
    _feed(gateway, "sms", range(1, 11), ok=True)
    await gateway.check()
    _feed(gateway, "sms", range(1, 11), ok=False)
    await gateway.check()
    assert [a.topic for a in notifier.alerts] == [
        "resilience.sla_breach",
        "resilience.sla_recovered",
        "resilience.sla_breach",
    ]


async def test_no_latency_verdict_before_minimum_calls(time: ManualTime) -> None:
    """Five very slow calls are too few (minimum_calls=20) to breach."""
    notifier = RecordingNotifier()
    gateway = ServiceGateway(notifier, time=time)
    gateway.watch("sms", sla=Sla(max_p99=0.1))
    _feed(gateway, "sms", range(5000, 5005))
    assert await gateway.check() == []


async def test_an_open_breaker_is_a_breach(make_breaker: MakeBreaker, time: ManualTime) -> None:
    """A watched breaker that opens raises an alert and shows in the snapshot."""
    notifier = RecordingNotifier()
    breaker = make_breaker("courier.sf")
    gateway = ServiceGateway(notifier, time=time)
    gateway.watch("courier.sf", breaker=breaker, sla=Sla())
    breaker.open("waybill API hangs")
    await gateway.check()
    view = gateway.snapshot().dependency("courier.sf")
    assert (view.breaker, view.breaches) == ("open", ("breaker",))
    assert [a.key for a in notifier.alerts] == ["sla:courier.sf:breaker"]


def test_the_snapshot_is_json(make_breaker: MakeBreaker, time: ManualTime) -> None:
    """The snapshot dumps to JSON and loads back equal."""
    gateway = ServiceGateway(time=time)
    gateway.watch("courier.sf", breaker=make_breaker("courier.sf"), sla=Sla(max_p95=1.0))
    _feed(gateway, "courier.sf", range(10, 20))
    snapshot = gateway.snapshot()
    data = json.loads(snapshot.model_dump_json())
    assert data["dependencies"][0]["breaker"] == "closed"
    assert GatewaySnapshot.model_validate(data) == snapshot


def test_an_unknown_dependency_is_named(time: ManualTime) -> None:
    """Asking the snapshot for an unwatched service lists the known ones."""
    gateway = ServiceGateway(time=time)
    gateway.watch("sms")
    with pytest.raises(InvalidInput, match="known: sms"):
        gateway.snapshot().dependency("courier")
