"""The outbox must-show: 4 ``ordercore worker`` OS processes drain 10,000 tasks on PostgreSQL.

One worker is SIGKILLed in the middle of a task; its task comes back when its 2-second
lease runs out and another process runs it. Every task runs to completion exactly once,
none is left behind, and tasks that share an ordering key run in order.

The victim starts first, alone and one task at a time, so it holds exactly one task (the
stalling one) when it dies: the only run a kill may cut short.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.outbox import OutboxState
from ordercore.ports.clock import SystemClock
from ordercore.services.outbox import new_task
from ordercore_adapters.storage.sql import SqlStorage
from support.outbox_handlers import TABLES

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

TASKS = 10_000
ORDERED = 8_000
"""Tasks 0..7999 belong to 2,000 orders, four steps each; the rest have no ordering key."""
STALL = 100
"""The task the victim stalls on (the first step of order o100), after 100 others."""
LEASE_SECONDS = 2
TESTS = Path(__file__).resolve().parents[1]


def _dsn(url: str) -> str:
    parsed = make_url(url)
    return psycopg.conninfo.make_conninfo(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        dbname=parsed.database,
        user=parsed.username or "",
        password=parsed.password or "",
    )


def _worker(url: str, dsn: str, concurrency: int) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    env["OUTBOX_TEST_DSN"] = dsn
    env["ORDERCORE_OUTBOX_POLL_INTERVAL"] = "PT0.2S"
    command = [
        sys.executable,
        "-m",
        "ordercore.cli",
        "worker",
        "--db",
        url,
        "--handlers",
        "support.outbox_handlers:registry",
        "--lease",
        str(LEASE_SECONDS),
        "--concurrency",
        str(concurrency),
        "--until",
        "drained",
        "--json",
    ]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(conn: psycopg.Connection[tuple[object, ...]], query: str, deadline: float) -> int:
    while time.monotonic() < deadline:
        row = conn.execute(query).fetchone()
        if row is not None and row[0]:
            return int(str(row[0]))
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {query}")


async def _enqueue(url: str) -> str:
    storage = SqlStorage(url, Settings())
    await storage.open()
    try:
        core = OrderCore(storage, SystemClock(), Settings())
        now = core.clock.now()
        tasks = [
            new_task(
                "test.record",
                {"step": index // 2_000, "stall": index == STALL},
                key=f"task-{index}",
                now=now,
                ordering_key=f"o{index % 2_000}" if index < ORDERED else None,
            )
            for index in range(TASKS)
        ]
        async with storage.unit_of_work() as uow:
            stored = await uow.outbox.enqueue(tasks)
            await uow.commit()
        assert len(stored) == TASKS
        return tasks[STALL].id
    finally:
        await storage.close()


async def _counts(url: str) -> dict[OutboxState, int]:
    async with OrderCore.open(url) as core:
        return await core.outbox.counts()


async def test_four_worker_processes_drain_ten_thousand_tasks_despite_a_kill(
    postgres_url: str,
) -> None:
    """4 processes, 10,000 tasks, one worker SIGKILLed mid-task: each task done exactly once."""
    dsn = _dsn(postgres_url)
    stall_id = await _enqueue(postgres_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(TABLES)
        started = time.monotonic()
        deadline = started + 90
        victim = _worker(postgres_url, dsn, concurrency=1)
        others: list[subprocess.Popen[str]] = []
        try:
            stalled_pid = _wait_for(conn, "SELECT max(pid) FROM outbox_test_stalls", deadline)
            assert stalled_pid == victim.pid
            others = [_worker(postgres_url, dsn, concurrency=8) for _ in range(3)]
            _wait_for(
                conn,
                f"SELECT count(*) FROM outbox_test_runs WHERE pid <> {victim.pid}",
                deadline,
            )
            os.kill(victim.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            victim.communicate(timeout=10)
            assert victim.returncode == -signal.SIGKILL
            outputs = [
                worker.communicate(timeout=max(1.0, deadline - time.monotonic()))
                for worker in others
            ]
        finally:
            for process in [victim, *others]:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
        elapsed = time.monotonic() - started

        for worker, (_, err) in zip(others, outputs, strict=True):
            assert worker.returncode == 0, err
        stats = [json.loads(out) for out, _ in outputs]

        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT task_id) FROM outbox_test_runs"
        ).fetchone() or (0, 0)
        assert (total, distinct) == (TASKS, TASKS)
        per_pid = dict(
            conn.execute("SELECT pid, count(*) FROM outbox_test_runs GROUP BY pid").fetchall()
        )
        assert set(per_pid) == {victim.pid, *(worker.pid for worker in others)}
        (rerun,) = conn.execute(
            "SELECT pid, attempt FROM outbox_test_runs WHERE task_id = %s", (stall_id,)
        ).fetchall()
        assert rerun[0] != victim.pid
        assert rerun[1] == 2
        out_of_order = conn.execute(
            "SELECT count(*) FROM (SELECT seq, lag(seq) OVER (PARTITION BY ordering_key ORDER BY n)"
            " AS previous FROM outbox_test_runs WHERE ordering_key IS NOT NULL) AS runs"
            " WHERE previous > seq"
        ).fetchone()
        assert out_of_order == (0,)

    counts = await _counts(postgres_url)
    assert counts == {
        OutboxState.PENDING: 0,
        OutboxState.RUNNING: 0,
        OutboxState.DONE: TASKS,
        OutboxState.DEAD: 0,
    }
    assert sum(stat["done"] for stat in stats) == TASKS - per_pid[victim.pid]
    assert sum(stat["lost"] for stat in stats) == 0
    print(
        f"\n{TASKS} tasks, 4 processes (victim ran {per_pid[victim.pid]} before SIGKILL at"
        f" {killed_at - started:.1f} s): drained in {elapsed:.1f} s; per process {per_pid}"
    )
