"""ServicePolicy: a pipeline from settings values; the shared error classification."""

from __future__ import annotations

from datetime import timedelta

import pybreaker
import pytest
from _resilience_helpers import Service
from pydantic import ValidationError

from ordercore.config import Settings
from ordercore.errors import (
    BulkheadFull,
    CallTimedOut,
    ChannelAuthExpired,
    ChannelUnavailable,
    CircuitOpen,
    InsufficientStock,
    RateLimited,
    StorageError,
    StorageUnavailable,
)
from ordercore.resilience import (
    BreakerState,
    ErrorKind,
    ManualTime,
    MemoryStateStore,
    ServicePolicy,
    default_classifier,
    retry_after_of,
)

pytestmark = pytest.mark.anyio


async def test_a_policy_builds_a_working_pipeline(service: Service, time: ManualTime) -> None:
    """fail_max=2, attempts=2: one failing call retries once, and that opens the circuit."""
    policy = ServicePolicy(fail_max=2, attempts=2, rate_per_second=100.0)
    pipeline = policy.build("courier.sf", machine_factory=pybreaker.CircuitBreaker, time=time)
    service.fail_next(ConnectionError(), ConnectionError())
    with pytest.raises(ConnectionError):
        await pipeline.call(service.work)
    assert pipeline.breaker is not None
    assert pipeline.breaker.state is BreakerState.OPEN
    assert pipeline.rate_limiter is not None
    assert pipeline.bulkhead is not None


async def test_a_shared_store_is_handed_to_the_machine(time: ManualTime) -> None:
    """Two pipelines built on one store share one circuit."""
    store = MemoryStateStore("courier.sf")
    first = ServicePolicy().build(
        "courier.sf", machine_factory=pybreaker.CircuitBreaker, store=store
    )
    second = ServicePolicy().build(
        "courier.sf", machine_factory=pybreaker.CircuitBreaker, store=store, time=time
    )
    assert first.breaker is not None
    first.breaker.open()
    with pytest.raises(CircuitOpen):
        await second.call(time.sleep, 0)


def test_none_switches_parts_off() -> None:
    """No timeout, one attempt, no limits: the pipeline has only its breaker."""
    policy = ServicePolicy(timeout=None, attempts=1, max_concurrent=None, slow_call_threshold=None)
    pipeline = policy.build("sms", machine_factory=pybreaker.CircuitBreaker)
    assert (pipeline.timeout, pipeline.retry, pipeline.bulkhead, pipeline.rate_limiter) == (
        None,
        None,
        None,
        None,
    )
    assert pipeline.breaker is not None
    assert pipeline.breaker.slow_calls is None


def test_bad_settings_name_the_field() -> None:
    """A zero fail_max is refused by validation, naming the field."""
    with pytest.raises(ValidationError, match="fail_max"):
        ServicePolicy(fail_max=0)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TimeoutError(), ErrorKind.TRANSIENT),
        (ConnectionResetError(), ErrorKind.TRANSIENT),
        (CallTimedOut("courier", "create_waybill", 3), ErrorKind.TRANSIENT),
        (ChannelUnavailable("502"), ErrorKind.TRANSIENT),
        (StorageUnavailable("locked"), ErrorKind.TRANSIENT),
        (ChannelAuthExpired("token expired"), ErrorKind.PERMANENT),
        (StorageError("constraint"), ErrorKind.PERMANENT),
        (CircuitOpen("courier", "open"), ErrorKind.PERMANENT),
        (RuntimeError("bug"), ErrorKind.PERMANENT),
        (InsufficientStock("SKU-1", "main", 2, 1), ErrorKind.BUSINESS),
        (RateLimited("taobao", "shop-1", 2.0, 1.0), ErrorKind.LOCAL),
        (BulkheadFull("courier", 4, 0), ErrorKind.LOCAL),
    ],
)
def test_default_classification(error: BaseException, kind: ErrorKind) -> None:
    """Each error maps to the kind docs/resilience.md gives it."""
    assert default_classifier(error) is kind


def test_an_error_can_declare_itself_transient() -> None:
    """A ``transient = True`` attribute overrides the default mapping."""
    error = InsufficientStock("SKU-1", "main", 2, 1)
    error.transient = True  # type: ignore[attr-defined]
    assert default_classifier(error) is ErrorKind.TRANSIENT


def test_retry_after_hints_are_read_as_seconds() -> None:
    """A timedelta hint reads as seconds; a missing one as None."""
    error = ConnectionError()
    assert retry_after_of(error) is None
    error.retry_after = timedelta(milliseconds=1500)  # type: ignore[attr-defined]
    assert retry_after_of(error) == 1.5


def test_settings_give_each_service_its_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """ORDERCORE_RESILIENCE sets one service's policy; others get the default."""
    monkeypatch.setenv("ORDERCORE_RESILIENCE", '{"courier.sf": {"fail_max": 2, "timeout": "PT3S"}}')
    settings = Settings()
    assert settings.resilience_for("courier.sf").fail_max == 2
    assert settings.resilience_for("courier.sf").timeout == timedelta(seconds=3)
    assert settings.resilience_for("sms") == ServicePolicy()
