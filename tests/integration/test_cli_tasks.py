"""``ordercore tasks`` and ``ordercore worker`` on a SQLite file, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner, Result

from ordercore.cli import main
from ordercore.core import OrderCore
from support import outbox_cli_handlers

HANDLERS = "support.outbox_cli_handlers:registry"


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _enqueue(url: str, *tasks: tuple[str, str]) -> None:
    async def run() -> None:
        async with OrderCore.open(url) as core, core.storage.unit_of_work() as uow:
            for kind, key in tasks:
                await core.outbox.enqueue(uow, kind, {"n": key}, key=key)
            await uow.commit()

    anyio.run(run)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'tasks.db').as_posix()}"


def test_worker_runs_tasks_until_drained_and_reports(url: str) -> None:
    """worker --until drained runs every task and prints its stats as JSON."""
    outbox_cli_handlers.touched.clear()
    _enqueue(url, ("test.touch", "a"), ("test.touch", "b"), ("test.reject", "c"))
    result = _invoke("worker", "--db", url, "--handlers", HANDLERS, "--until", "drained", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert (stats["done"], stats["dead"], stats["processes"]) == (2, 1, 1)
    assert sorted(outbox_cli_handlers.touched) == ["a", "b"]


def test_tasks_list_shows_counts_and_filters_by_state(url: str) -> None:
    """tasks list --state dead --json lists the dead task and the counts of every state."""
    _enqueue(url, ("test.touch", "a"), ("test.reject", "c"))
    _invoke("worker", "--db", url, "--handlers", HANDLERS, "--until", "drained")
    result = _invoke("tasks", "list", "--db", url, "--state", "dead", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["counts"] == {"pending": 0, "running": 0, "done": 1, "dead": 1}
    (dead,) = body["tasks"]
    assert (dead["key"], dead["attempts"]) == ("c", 1)
    assert dead["last_error"].startswith("InvalidOrder: invalid task c")
    table = _invoke("tasks", "list", "--db", url)
    assert "done 1, dead 1" in table.stdout


def test_tasks_redrive_puts_dead_tasks_back(url: str) -> None:
    """tasks redrive ID makes it pending again; --all-dead takes every dead task."""
    _enqueue(url, ("test.reject", "c"), ("test.reject", "d"))
    _invoke("worker", "--db", url, "--handlers", HANDLERS, "--until", "drained")
    listed = json.loads(_invoke("tasks", "list", "--db", url, "--json").stdout)["tasks"]
    first, second = (task["id"] for task in listed)
    one = json.loads(_invoke("tasks", "redrive", first, "--db", url, "--json").stdout)
    assert one == {"redriven": [first], "not_dead": []}
    rest = json.loads(_invoke("tasks", "redrive", "--all-dead", "--db", url, "--json").stdout)
    assert rest["redriven"] == [second]
    shown = json.loads(_invoke("tasks", "show", first, "--db", url, "--json").stdout)
    assert (shown["state"], shown["attempts"]) == ("pending", 0)


def test_tasks_show_of_an_unknown_id_is_bad_input(url: str) -> None:
    """An unknown task id exits 2 with one line naming it."""
    _enqueue(url)
    result = CliRunner().invoke(main, ["tasks", "show", "nope", "--db", url])
    assert result.exit_code == 2
    assert "unknown outbox task 'nope'" in result.output


def test_worker_refuses_several_processes_on_sqlite(url: str) -> None:
    """--processes 2 on SQLite exits 2: only PostgreSQL shares tasks between processes."""
    result = CliRunner().invoke(
        main, ["worker", "--db", url, "--handlers", HANDLERS, "--processes", "2"]
    )
    assert result.exit_code == 2
    assert "only PostgreSQL" in result.output


def test_worker_needs_handlers_that_import(url: str) -> None:
    """A --handlers target that does not import exits 2 naming it."""
    result = CliRunner().invoke(
        main, ["worker", "--db", url, "--handlers", "support.nowhere:registry", "--until", "idle"]
    )
    assert result.exit_code == 2
    assert "support.nowhere:registry" in result.output


def test_tasks_purge_deletes_done_tasks_past_the_retention(url: str) -> None:
    """purge --older-than-days 0 deletes done tasks and keeps dead ones."""
    _enqueue(url, ("test.touch", "a"), ("test.reject", "c"))
    _invoke("worker", "--db", url, "--handlers", HANDLERS, "--until", "drained")
    result = _invoke("tasks", "purge", "--older-than-days", "0", "--db", url, "--json")
    assert json.loads(result.stdout) == {"deleted": 1}
    listed = json.loads(_invoke("tasks", "list", "--db", url, "--json").stdout)
    assert [task["key"] for task in listed["tasks"]] == ["c"]
