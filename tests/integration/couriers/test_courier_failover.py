"""The courier failover chain over real HTTP: a primary that hangs, slows down and recovers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import anyio
import pytest

from fakes.courier_server import APP_KEY, APP_SECRET, FakeCourierServer
from ordercore.errors import CourierRejected, InvalidInput
from ordercore.resilience import BreakerState, ServicePolicy
from ordercore.testing.couriers import sample_request
from ordercore_adapters.couriers import CourierChain, HttpCourier, courier_chain
from ordercore_adapters.couriers.http_courier import CREATE

pytestmark = pytest.mark.anyio

TIMEOUT = 0.2
RESET = 0.6
POLICY = ServicePolicy(
    timeout=timedelta(seconds=TIMEOUT),
    attempts=2,
    backoff_initial=timedelta(0),
    backoff_max=timedelta(0),
    fail_max=3,
    reset_timeout=timedelta(seconds=RESET),
    slow_call_threshold=None,
)
BACKUP = POLICY.model_copy(update={"timeout": timedelta(seconds=5)})
"""The backup is not under test: a loaded loopback server must not trip it."""
SLOW = POLICY.model_copy(
    update={
        "slow_call_threshold": timedelta(seconds=0.1),
        "slow_call_window": 4,
        "slow_call_minimum": 4,
        "slow_call_rate": 0.5,
    }
)


@pytest.fixture
def servers() -> Iterator[tuple[FakeCourierServer, FakeCourierServer]]:
    """The primary (ZT...) and the backup (SF...) courier APIs."""
    with FakeCourierServer("ZT") as primary, FakeCourierServer("SF") as backup:
        yield primary, backup


def _adapter(code: str, server: FakeCourierServer) -> HttpCourier:
    config = {"base_url": server.url, "app_key": APP_KEY, "app_secret": APP_SECRET, "timeout": 5}
    return HttpCourier(code, config)


@pytest.fixture
async def chain(
    servers: tuple[FakeCourierServer, FakeCourierServer],
) -> AsyncIterator[CourierChain]:
    primary, backup = servers
    built = courier_chain(
        [_adapter("zto", primary), _adapter("sf", backup)],
        policy=POLICY,
        policies={"sf": BACKUP},
    )
    yield built
    await built.aclose()


async def _ship(chain: CourierChain, order_id: str) -> tuple[str, str]:
    _, waybill = await chain.failover.invoke_with_source(
        lambda courier: courier.create_waybill(sample_request(order_id))
    )
    return waybill.courier, waybill.tracking_number


def _states(chain: CourierChain, code: str) -> list[str]:
    return [change.new.value for change in chain.breakers[code].history]


async def test_a_hanging_primary_opens_its_breaker_and_the_backup_takes_over(
    chain: CourierChain, servers: tuple[FakeCourierServer, FakeCourierServer]
) -> None:
    """Three timeouts open the primary's breaker; later waybills go to the backup directly."""
    primary, backup = servers
    primary.set_mode("hang")
    shipped = [await _ship(chain, f"o-{n}") for n in range(8)]
    assert {courier for courier, _ in shipped} == {"sf"}
    assert primary.requests_to(CREATE) == 3  # timeouts are not retried; then the circuit opens
    assert chain.breakers["zto"].state is BreakerState.OPEN
    assert _states(chain, "zto") == ["open"]
    assert "consecutive failures" in chain.breakers["zto"].history[0].reason
    assert backup.creates == 8
    primary.recover()


async def test_each_call_costs_at_most_the_timeout_while_the_primary_hangs(
    chain: CourierChain, servers: tuple[FakeCourierServer, FakeCourierServer]
) -> None:
    """20 concurrent waybills against a hung primary: each answered within about one timeout."""
    primary, _ = servers
    primary.set_mode("hang")
    took: list[float] = []

    async def one(n: int) -> None:
        started = time.monotonic()
        courier, _ = await _ship(chain, f"o-{n}")
        took.append(time.monotonic() - started)
        assert courier == "sf"

    async with anyio.create_task_group() as group:
        for n in range(20):
            group.start_soon(one, n)
    assert len(took) == 20
    assert max(took) < TIMEOUT + 0.8
    primary.recover()


async def test_a_recovered_primary_is_tried_half_open_then_used_again(
    chain: CourierChain, servers: tuple[FakeCourierServer, FakeCourierServer]
) -> None:
    """After reset_timeout one trial reaches the primary; it succeeds and closes the circuit."""
    primary, _ = servers
    primary.set_mode("hang")
    for n in range(4):
        await _ship(chain, f"o-{n}")
    assert chain.breakers["zto"].state is BreakerState.OPEN
    primary.recover()
    await anyio.sleep(RESET + 0.1)
    assert await _ship(chain, "o-after") == ("zto", primary.orders["o-after:1"].bill_code)
    assert (await _ship(chain, "o-later"))[0] == "zto"
    assert _states(chain, "zto") == ["open", "half-open", "closed"]
    assert [change.new for change in chain.history()] == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


async def test_a_failed_trial_opens_the_circuit_again(
    chain: CourierChain, servers: tuple[FakeCourierServer, FakeCourierServer]
) -> None:
    """A primary still hanging at the half-open trial: open again, and the backup answers."""
    primary, _ = servers
    primary.set_mode("hang")
    for n in range(3):
        await _ship(chain, f"o-{n}")
    await anyio.sleep(RESET + 0.1)
    assert (await _ship(chain, "o-trial"))[0] == "sf"
    assert _states(chain, "zto") == ["open", "half-open", "open"]
    primary.recover()


async def test_a_slow_primary_opens_on_the_slow_call_rate(
    servers: tuple[FakeCourierServer, FakeCourierServer],
) -> None:
    """Answers slower than the threshold, though successful, open the breaker by their rate."""
    primary, backup = servers
    chain = courier_chain(
        [_adapter("zto", primary), _adapter("sf", backup)],
        policy=POLICY,
        policies={"zto": SLOW, "sf": BACKUP},
    )
    primary.slow_seconds = 0.12
    primary.set_mode("slow")
    try:
        shipped = [await _ship(chain, f"o-{n}") for n in range(6)]
    finally:
        await chain.aclose()
    assert [courier for courier, _ in shipped] == ["zto"] * 4 + ["sf"] * 2
    assert "slow-call rate" in chain.breakers["zto"].history[0].reason
    primary.recover()


async def test_a_quick_transient_error_is_retried_on_the_same_courier(
    chain: CourierChain, servers: tuple[FakeCourierServer, FakeCourierServer]
) -> None:
    """One 5xx from the primary is retried there: the waybill is the primary's, none at backup."""
    primary, backup = servers
    primary.fail_next(1, "5xx")
    assert (await _ship(chain, "o-1"))[0] == "zto"
    assert primary.requests_to(CREATE) == 2
    assert backup.requests == []


async def test_a_business_rejection_does_not_fail_over(
    chain: CourierChain, servers: tuple[FakeCourierServer, FakeCourierServer]
) -> None:
    """An area the primary does not serve raises at once; the backup is not asked."""
    primary, backup = servers
    primary.unserved = ("浙江省",)
    with pytest.raises(CourierRejected, match="AREA_NOT_SERVED"):
        await _ship(chain, "o-1")
    assert backup.requests == []
    assert chain.breakers["zto"].state is BreakerState.CLOSED


def test_a_chain_needs_unique_couriers_and_known_policy_codes() -> None:
    """Duplicate courier codes and policies for unknown codes are named in one error."""
    config = {"base_url": "http://127.0.0.1:9", "app_key": "k", "app_secret": "s"}
    one, two = HttpCourier("zto", config), HttpCourier("zto", config)
    with pytest.raises(InvalidInput) as caught:
        courier_chain([one, two], policies={"ems": POLICY})
    assert {error.field for error in caught.value.errors} == {"couriers", "policies"}
