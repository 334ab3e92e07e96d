"""``ordercore serve`` on SQLite: ``--once`` in-process, and clean stops as a real process.

Channels come from a TOML config whose ``factory`` points at test-only channels in
tests/support (FakeChannel, and SlowChannel whose pages take a while).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result

from ordercore import OrderCore
from ordercore.cli import main
from ordercore.domain.intake import Feed, SyncRun

TESTS = Path(__file__).resolve().parents[1]
POS = (
    "order_no,store,created_at,sku,qty,unit_price\n"
    "A1,main,2026-11-10 09:00,SKU-1,2,10.00\n"
    "A2,main,2026-11-10 10:00,SKU-1,1,10.00\n"
)


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'shop.db').as_posix()}"


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ordercore.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def _jobs(stdout: str) -> list[tuple[str, str, str]]:
    return [(e["job"], e["channel"], e["status"]) for e in _lines(stdout) if e["event"] == "job"]


async def _state(url: str, channel: str) -> tuple[int, list[SyncRun], datetime | None]:
    """(orders stored, ledger entries, cursor position) of a channel."""
    async with OrderCore.open(url) as core:
        orders = [o for o in await core.orders.list(limit=1_000) if o.channel == channel]
        runs = await core.intake.runs(channel)
        async with core.storage.unit_of_work() as uow:
            cursor = await uow.intake.cursor(channel, Feed.ORDERS)
    return len(orders), runs, cursor.position if cursor else None


def test_serve_once_runs_every_due_job_and_logs_one_json_line_each(tmp_path: Path) -> None:
    """--once polls and reconciles each channel and imports each POS folder, one line a job."""
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "day.csv").write_text(POS, encoding="utf-8")
    config = _config(
        tmp_path,
        '[channels.shop]\nfactory = "support.fake_channels:make"\norders = 5\n'
        '[pos.pos]\nfolder = "exports"\n',
    )
    result = _invoke(
        "serve", "--db", _url(tmp_path), "--config", str(config), "--once", "--json-log"
    )
    assert result.exit_code == 0, result.output
    assert sorted(_jobs(result.stdout)) == [
        ("import", "pos", "succeeded"),
        ("poll", "shop", "succeeded"),
        ("reconcile", "shop", "succeeded"),
    ]
    poll = next(e for e in _lines(result.stdout) if e.get("job") == "poll")
    assert (poll["created"], poll["level"]) == (5, "info")
    assert anyio.run(_state, _url(tmp_path), "shop")[0] == 5
    assert anyio.run(_state, _url(tmp_path), "pos")[0] == 2
    assert (tmp_path / "exports" / "imported" / "day.csv").exists()


def test_serve_once_again_runs_only_what_is_due(tmp_path: Path) -> None:
    """A second --once right after the first finds nothing due (the ledger says so)."""
    config = _config(tmp_path, '[channels.shop]\nfactory = "support.fake_channels:make"\n')
    args = ("serve", "--db", _url(tmp_path), "--config", str(config), "--once", "--json-log")
    assert _jobs(_invoke(*args).stdout) == [
        ("poll", "shop", "succeeded"),
        ("reconcile", "shop", "succeeded"),
    ]
    again = _invoke(*args)
    assert again.exit_code == 0, again.output
    assert _jobs(again.stdout) == []


def test_serve_once_exits_3_with_an_alert_when_a_channel_paused(tmp_path: Path) -> None:
    """An expired channel pauses (exit 3, a HIGH alert line) while the other one syncs."""
    config = _config(
        tmp_path,
        '[channels.shop]\nfactory = "support.fake_channels:make"\norders = 2\n'
        '[channels.gone]\nfactory = "support.fake_channels:make"\nexpired = true\n'
        '[schedule]\nreconcile_every = "off"\n',
    )
    result = _invoke(
        "serve", "--db", _url(tmp_path), "--config", str(config), "--once", "--json-log"
    )
    assert result.exit_code == 3, result.output
    assert sorted(_jobs(result.stdout)) == [
        ("poll", "gone", "paused"),
        ("poll", "shop", "succeeded"),
    ]
    alerts = [e for e in _lines(result.stdout) if e["event"] == "alert"]
    assert [(a["topic"], a["channel"], a["level"]) for a in alerts] == [
        ("channel.paused", "gone", "error")
    ]


def test_serve_text_log_is_one_line_per_job(tmp_path: Path) -> None:
    """Without --json-log each job is one readable line with its counts."""
    config = _config(
        tmp_path,
        '[channels.shop]\nfactory = "support.fake_channels:make"\norders = 3\n'
        '[channels.shop.schedule]\nreconcile_every = "off"\n',
    )
    result = _invoke("serve", "--db", _url(tmp_path), "--config", str(config), "--once")
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert " INFO poll shop succeeded " in line
    assert "created=3" in line


def test_serve_refuses_a_bad_schedule_naming_the_key(tmp_path: Path) -> None:
    """A schedule value that is not a duration exits 2 with one line naming key and value."""
    config = _config(
        tmp_path,
        '[channels.shop]\nfactory = "support.fake_channels:make"\n'
        '[channels.shop.schedule]\npoll_every = "soon"\n',
    )
    result = CliRunner().invoke(
        main, ["serve", "--db", _url(tmp_path), "--config", str(config), "--once"]
    )
    assert result.exit_code == 2
    assert "schedule.poll_every" in result.stderr
    assert "'soon'" in result.stderr


def test_serve_refuses_a_config_with_nothing_to_serve(tmp_path: Path) -> None:
    """A config without channels or POS folders exits 2 instead of idling forever."""
    config = _config(tmp_path, '[schedule]\npoll_every = "1m"\n')
    result = CliRunner().invoke(main, ["serve", "--db", _url(tmp_path), "--config", str(config)])
    assert result.exit_code == 2
    assert "nothing to serve" in result.stderr


def test_serve_channel_option_runs_only_the_named_channels(tmp_path: Path) -> None:
    """--channel NAME limits the worker to that channel (no POS folders, no other channel)."""
    (tmp_path / "exports").mkdir()
    config = _config(
        tmp_path,
        '[channels.a]\nfactory = "support.fake_channels:make"\n'
        '[channels.b]\nfactory = "support.fake_channels:make"\n'
        '[schedule]\nreconcile_every = "off"\n[pos.pos]\nfolder = "exports"\n',
    )
    args = ["serve", "--db", _url(tmp_path), "--config", str(config), "--once", "--json-log"]
    result = _invoke(*args, "--channel", "b")
    assert result.exit_code == 0, result.output
    assert _jobs(result.stdout) == [("poll", "b", "succeeded")]


# -- a real process and real signals -----------------------------------------------------


class _Worker:
    """``ordercore serve`` as a subprocess, its stdout in a file the test reads as it grows."""

    def __init__(self, tmp_path: Path, config: Path, *extra: str) -> None:
        self.log = tmp_path / "serve.log"
        script = Path(sys.executable).with_name("ordercore")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "ordercore.cli"]
        env = os.environ | {"PYTHONPATH": str(TESTS)}
        with self.log.open("w", encoding="utf-8") as out:
            self.process = subprocess.Popen(
                [*command, "serve", "--db", _url(tmp_path), "--config", str(config), *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp_path,
            )

    def events(self) -> list[dict[str, Any]]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_for(self, condition: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, self.log.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, self.log.read_text(encoding="utf-8")
            time.sleep(0.05)

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def exit_code(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def _slow_config(tmp_path: Path, delay: float) -> Path:
    return _config(
        tmp_path,
        '[channels.slow]\nfactory = "support.slow_channels:make"\norders = 3\n'
        f"delay = {delay}\nmarker = '{(tmp_path / 'page-started').as_posix()}'\n"
        '[channels.slow.schedule]\nreconcile_every = "off"\n',
    )


def test_sigterm_lets_the_page_in_flight_finish_and_stops_cleanly(tmp_path: Path) -> None:
    """SIGTERM mid-page: the page and its run finish within the grace, then the worker exits 0."""
    worker = _Worker(tmp_path, _slow_config(tmp_path, 1.0), "--json-log", "--grace", "30")
    worker.wait_for((tmp_path / "page-started").exists)
    worker.signal(signal.SIGTERM)
    assert worker.exit_code() == 0
    events = [e["event"] for e in worker.events()]
    assert events[-3:] == ["serve.stopping", "job", "serve.stopped"]
    assert worker.events()[-1]["message"] == "stopped cleanly"
    stored, runs, cursor = anyio.run(_state, _url(tmp_path), "slow")
    assert stored == 3
    assert [(r.trigger, r.created) for r in runs] == [("poll", 3)]
    assert cursor is not None
    assert cursor == runs[0].cursor_after


def test_sigterm_past_the_grace_abandons_the_page_without_moving_the_cursor(
    tmp_path: Path,
) -> None:
    """A page still in flight when the grace ends is dropped: nothing stored, no cursor."""
    worker = _Worker(tmp_path, _slow_config(tmp_path, 60.0), "--json-log", "--grace", "0.5")
    worker.wait_for((tmp_path / "page-started").exists)
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.exit_code() == 0
    assert time.monotonic() - started < 15
    assert worker.events()[-1]["message"] == "stopped: abandoned the jobs in flight"
    assert anyio.run(_state, _url(tmp_path), "slow") == (0, [], None)


def test_a_second_signal_stops_at_once(tmp_path: Path) -> None:
    """SIGINT twice: the second one does not wait for the grace."""
    worker = _Worker(tmp_path, _slow_config(tmp_path, 60.0), "--json-log", "--grace", "60")
    worker.wait_for((tmp_path / "page-started").exists)
    worker.signal(signal.SIGINT)
    worker.wait_for(lambda: any(e["event"] == "serve.stopping" for e in worker.events()))
    worker.signal(signal.SIGINT)
    assert worker.exit_code(timeout=15) == 0
    assert worker.events()[-1]["event"] == "serve.stopped"
    assert anyio.run(_state, _url(tmp_path), "slow")[2] is None


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_an_idle_worker_stops_cleanly_on_a_signal(tmp_path: Path, number: int) -> None:
    """Between jobs, SIGINT or SIGTERM stops the worker at once with exit 0."""
    config = _config(
        tmp_path,
        '[channels.shop]\nfactory = "support.fake_channels:make"\norders = 2\n'
        '[channels.shop.schedule]\nreconcile_every = "off"\n',
    )
    worker = _Worker(tmp_path, config, "--json-log")
    worker.wait_for(lambda: any(e["event"] == "job" for e in worker.events()))
    worker.signal(number)
    assert worker.exit_code(timeout=15) == 0
    assert [e["event"] for e in worker.events()][-2:] == ["serve.stopping", "serve.stopped"]
    assert worker.events()[-1]["message"] == "stopped cleanly"
