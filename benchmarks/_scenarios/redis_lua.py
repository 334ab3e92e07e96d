"""Redis with a Lua check-and-decrement script: the usual outside answer, as the baseline.

The script checks the counter, decrements it and records the reservation (order id ->
buyer id in a hash) atomically, called with ``EVALSHA``: one call per request from
one client, the same from 8 client threads, and pipelined (100 calls per round trip).
Keys live under a unique prefix and are deleted afterwards; the scenario is skipped,
saying why, when Redis is unreachable.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from _scenarios.common import Measured, Params, Scenario, Skipped, Tally, clock

__all__ = ["SCENARIOS", "server_version"]

CHECK_AND_DECREMENT = """
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if left < wanted then
    return 0
end
redis.call('DECRBY', KEYS[1], wanted)
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

PIPELINE = 100
THREADS = 8

Run = Callable[[Any, str, tuple[str, str], int], Tally]
"""(client, script sha, keys, buyers) -> tally of the reserve phase."""


def _client(url: str) -> Any:
    try:
        import redis
    except ImportError as exc:
        raise Skipped("redis-py is not installed: pip install redis") from exc
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=10)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        client.close()
        raise Skipped(f"Redis at {url} is unreachable: {exc}") from exc
    return client


def server_version(url: str) -> str | None:
    """The Redis server's version, or None when it is unreachable."""
    try:
        client = _client(url)
    except Skipped:
        return None
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def _sale(params: Params, run: Run) -> Measured:
    client = _client(params.redis_url)
    prefix = f"ordercore-cmp:{uuid.uuid4().hex[:12]}:"
    keys = (f"{prefix}stock", f"{prefix}reservations")
    try:
        client.set(keys[0], params.stock)
        sha = client.script_load(CHECK_AND_DECREMENT)
        tally = run(client, sha, keys, params.buyers)
        left = int(client.get(keys[0]) or 0)
        records = int(client.hlen(keys[1]))
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()
    return Measured(tally, reserved=params.stock - left, on_hand=params.stock, records=records)


def _one_at_a_time(client: Any, sha: str, keys: tuple[str, str], buyers: int) -> Tally:
    tally = Tally(latencies=[])
    latencies = tally.latencies
    assert latencies is not None
    evalsha = client.evalsha
    opened = clock()
    for i in range(buyers):
        begun = clock()
        try:
            if evalsha(sha, 2, *keys, 1, f"o{i}", f"b{i}"):
                tally.successes += 1
            else:
                tally.rejected += 1
        except Exception as exc:
            tally.error(exc)
        latencies.append(clock() - begun)
    tally.wall = clock() - opened
    return tally


def _threads(client: Any, sha: str, keys: tuple[str, str], buyers: int) -> Tally:
    indexes = iter(range(buyers))  # next() on a range iterator is atomic under the GIL
    start = threading.Barrier(THREADS + 1)
    tallies = [Tally(latencies=[]) for _ in range(THREADS)]

    def worker(tally: Tally) -> None:
        latencies = tally.latencies
        assert latencies is not None
        start.wait()
        for i in indexes:
            begun = clock()
            try:
                if client.evalsha(sha, 2, *keys, 1, f"o{i}", f"b{i}"):
                    tally.successes += 1
                else:
                    tally.rejected += 1
            except Exception as exc:
                tally.error(exc)
            latencies.append(clock() - begun)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in tallies]
    for thread in threads:
        thread.start()
    start.wait()
    opened = clock()
    for thread in threads:
        thread.join()
    total = Tally(latencies=[], wall=clock() - opened)
    for tally in tallies:
        total.merge(tally)
    return total


def _pipelined(client: Any, sha: str, keys: tuple[str, str], buyers: int) -> Tally:
    tally = Tally()
    opened = clock()
    for first in range(0, buyers, PIPELINE):
        pipe = client.pipeline(transaction=False)
        for i in range(first, min(first + PIPELINE, buyers)):
            pipe.evalsha(sha, 2, *keys, 1, f"o{i}", f"b{i}")
        try:
            answers = pipe.execute()
        except Exception as exc:
            tally.error(exc)
            continue
        granted = sum(1 for answer in answers if answer == 1)
        tally.successes += granted
        tally.rejected += len(answers) - granted
    tally.wall = clock() - opened
    return tally


SCENARIOS = [
    Scenario(
        "redis-lua",
        "Redis Lua check-and-decrement, EVALSHA per request, 1 client",
        "redis",
        lambda params: _sale(params, _one_at_a_time),
    ),
    Scenario(
        "redis-lua-8",
        f"Redis Lua, EVALSHA per request, {THREADS} client threads",
        "redis",
        lambda params: _sale(params, _threads),
    ),
    Scenario(
        "redis-lua-pipelined",
        f"Redis Lua pipelined ({PIPELINE} per round trip)",
        "redis",
        lambda params: _sale(params, _pipelined),
    ),
]
