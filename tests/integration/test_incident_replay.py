"""The incident replay over real HTTP couriers and real SQL storage.

The New Year sale: orders over four channels, the primary courier's waybill API hangs
for a stretch in the middle. A smaller day than the 12,847 orders of the incident keeps
CI short (docs/fulfilment.md has the full run's figures; ``ordercore replay-incident``
runs it); the checks are the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from ordercore.cli import main
from ordercore.core import OrderCore
from ordercore.incident import IncidentConfig, IncidentReport, run_incident
from ordercore_adapters.couriers.simulator import incident_rig

pytestmark = pytest.mark.slow

DAY = IncidentConfig(orders=600, window=50, hang_from=0.3, hang_for=2.0, warmup=100)


def _replay(url: str, config: IncidentConfig) -> IncidentReport:
    async def run() -> IncidentReport:
        async with OrderCore.open(url) as core:
            return await run_incident(core, incident_rig, config)

    return anyio.run(run)


@pytest.fixture(scope="module")
def sqlite_day(tmp_path_factory: pytest.TempPathFactory) -> IncidentReport:
    """One replay on a SQLite file, shared by the checks below."""
    folder = tmp_path_factory.mktemp("incident")
    return _replay(f"sqlite:///{(folder / 'day.db').as_posix()}", DAY)


def test_order_creation_keeps_its_throughput_while_the_courier_hangs(
    sqlite_day: IncidentReport,
) -> None:
    """The faulted run creates and reserves orders at >= 90 % of the healthy run's rate."""
    assert sqlite_day.faulted.reserved == DAY.orders
    assert sqlite_day.ratio >= 0.90, sqlite_day.as_dict()


def test_every_order_ends_with_exactly_one_waybill(sqlite_day: IncidentReport) -> None:
    """In storage, each order of both runs has one waybill; no courier holds a second one."""
    for run in (sqlite_day.healthy, sqlite_day.faulted):
        assert run.orders_with_one_waybill == DAY.orders, run.as_dict()
        assert (run.orders_without_waybill, run.orders_with_several) == (0, 0)
        assert run.duplicate_live_waybills == 0
        assert sum(run.waybills_by_courier.values()) == DAY.orders


def test_no_task_is_dead_or_left_behind(sqlite_day: IncidentReport) -> None:
    """Every waybill task of both runs finished: none dead, none still open."""
    for run in (sqlite_day.healthy, sqlite_day.faulted):
        assert (run.dead_tasks, run.open_tasks) == (0, 0)


def test_waybills_fail_over_to_the_backup_during_the_hang(sqlite_day: IncidentReport) -> None:
    """The backup courier made waybills in the faulted run while the primary hung."""
    assert sqlite_day.faulted.waybills_by_courier.get("sf", 0) > 0
    assert sqlite_day.faulted.hang_started is not None
    assert sqlite_day.faulted.hang_started < sqlite_day.faulted.ingest_seconds


def test_the_report_shows_the_breaker_opening_and_closing(sqlite_day: IncidentReport) -> None:
    """The primary's breaker opened during the hang and was closed again at the end."""
    moves = [
        (change["old"], change["new"])
        for change in sqlite_day.faulted.breaker_history
        if change["service"] == "courier.zto"
    ]
    assert ("closed", "open") in moves
    assert moves[-1][1] == "closed"
    assert all(change["new"] != "open" for change in sqlite_day.healthy.breaker_history)
    assert sqlite_day.ok


def test_replay_incident_command_reports_as_json(tmp_path: Path) -> None:
    """``ordercore replay-incident --json`` runs both days and exits 0 with the verdict."""
    url = f"sqlite:///{tmp_path}/cli.db"
    args = ["replay-incident", "--db", url, "--json", "--orders", "300", "--window", "25"]
    args += ["--hang-from", "0.3", "--hang-for", "1.5"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    report = json.loads(result.stdout)
    assert result.exit_code == (0 if report["ok"] else 1), result.output
    for run in ("healthy", "faulted"):
        assert report[run]["orders_with_one_waybill"] == 300
        assert report[run]["intact"] is True
    assert report["faulted"]["waybills_by_courier"]["sf"] > 0


@pytest.mark.postgres
def test_the_day_on_postgresql_ends_with_one_waybill_per_order(postgres_url: str) -> None:
    """On PostgreSQL too: throughput kept, failover, exactly one waybill per order."""
    day = IncidentConfig(orders=300, window=25, hang_from=0.3, hang_for=1.5, warmup=50)
    report = _replay(postgres_url, day)
    summary = report.as_dict()
    assert (report.healthy.intact, report.faulted.intact) == (True, True), summary
    assert (report.failed_over, report.breaker_opened_and_closed) == (True, True), summary
    assert report.ratio >= 0.90, summary
