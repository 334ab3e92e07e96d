"""``ordercore tickets list|show|resolve|stats`` on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner, Result

from ordercore import OrderCore
from ordercore.cli import main
from ordercore.domain.severity import Severity
from support.postgres import fresh_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database with two tickets: one overdue critical, one fresh warning."""
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path / 'tickets.db'}"
        seed(database)
        yield database
    else:
        with fresh_postgres_database() as database:
            seed(database)
            yield database


def seed(url: str) -> None:
    """Open the two tickets in ``url``: the first one already two hours old (overdue)."""

    async def work() -> None:
        async with OrderCore.open(url) as core:
            now = core.clock.now()
            await core.tickets.open(
                "payment",
                Severity.CRITICAL,
                order_id="o-1",
                channel="jd",
                reasons=["amount mismatch", "paid 13800138000 wallet"],
            )
            # Backdate the first ticket's deadline through the storage port.
            (ticket,) = await core.tickets.list(order_id="o-1")
            overdue = ticket.model_copy(update={"deadline": now - timedelta(hours=1)})
            async with core.storage.unit_of_work() as uow:
                await uow.tickets.save(overdue)
                await uow.commit()
            await core.tickets.open(
                "vague_address",
                Severity.WARNING,
                order_id="o-2",
                channel="taobao",
                reasons=["address has fuzzy words: 附近"],
            )

    anyio.run(work)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["tickets", *args], catch_exceptions=False)


def listed(url: str, *args: str) -> list[dict[str, object]]:
    result = invoke("list", "--db", url, "--json", *args)
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1
    tickets = json.loads(result.output)["tickets"]
    assert isinstance(tickets, list)
    return tickets


def test_list_filters_by_status_type_and_overdue(url: str) -> None:
    """--json prints one object; --overdue and --type narrow it."""
    assert [t["order_id"] for t in listed(url)] == ["o-2", "o-1"]
    assert [t["order_id"] for t in listed(url, "--overdue")] == ["o-1"]
    assert [t["order_id"] for t in listed(url, "--type", "vague_address")] == ["o-2"]
    assert listed(url, "--status", "resolved") == []


def test_list_as_a_table_marks_overdue(url: str) -> None:
    """The human table names each ticket and flags the overdue one."""
    result = invoke("list", "--db", url)
    assert result.exit_code == 0
    assert "OVERDUE" in result.output
    assert "vague_address" in result.output


def test_show_prints_reasons_sop_and_history_masked(url: str) -> None:
    """show gives reasons (phone masked), the SOP and the history; --json the whole ticket."""
    (ticket,) = listed(url, "--type", "payment")
    text = invoke("show", str(ticket["id"]), "--db", url)
    assert text.exit_code == 0
    assert "支付异常处理" in text.output
    assert "138****8000" in text.output
    assert "13800138000" not in text.output
    assert "opened" in text.output
    data = json.loads(invoke("show", str(ticket["id"]), "--db", url, "--json").output)
    assert (data["ticket_type"], data["status"]) == ("payment", "open")


def test_resolve_records_outcome_and_actor(url: str) -> None:
    """resolve --close stores the outcome, the actor and closes the ticket."""
    (ticket,) = listed(url, "--type", "payment")
    result = invoke(
        "resolve",
        str(ticket["id"]),
        "--db",
        url,
        "--outcome",
        "payment_confirmed",
        "--by",
        "li",
        "--close",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["status"], data["outcome"]) == ("closed", "payment_confirmed")
    assert [t["order_id"] for t in listed(url, "--status", "closed")] == ["o-1"]
    assert data["events"][-2]["by"] == "li"


def test_bad_input_exits_2_with_one_line(url: str) -> None:
    """An unknown ticket or outcome is exit code 2 with a one-line message, no URL leaked."""
    missing = invoke("resolve", "T-nope", "--db", url, "--outcome", "no_action", "--by", "li")
    assert missing.exit_code == 2
    assert "unknown ticket 'T-nope'" in missing.output
    (ticket,) = listed(url, "--type", "payment")
    wrong = invoke("resolve", str(ticket["id"]), "--db", url, "--outcome", "magic", "--by", "li")
    assert wrong.exit_code == 2
    assert "outcome: must be one of" in wrong.output


def test_custom_outcomes_come_from_the_config(url: str, tmp_path: Path) -> None:
    """--config's [tickets] outcomes make a shop's own code valid."""
    config = tmp_path / "ordercore.toml"
    config.write_text('[tickets]\noutcomes = ["courier_fixed", "other"]\n', encoding="utf-8")
    (ticket,) = listed(url, "--type", "vague_address")
    result = invoke(
        "resolve",
        str(ticket["id"]),
        "--db",
        url,
        "--outcome",
        "courier_fixed",
        "--by",
        "zhao",
        "--config",
        str(config),
    )
    assert result.exit_code == 0, result.output
    assert "resolved (courier_fixed)" in result.output


def test_stats_reports_top_reasons_per_channel(url: str) -> None:
    """stats --json gives the per-channel distribution of the period."""
    today = datetime.now(UTC).date()
    result = invoke(
        "stats",
        "--db",
        url,
        "--from",
        str(today - timedelta(days=1)),
        "--to",
        str(today + timedelta(days=2)),
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["overall"]["tickets"] == 2
    assert sorted(data["channels"]) == ["jd", "taobao"]
    assert data["channels"]["jd"]["top_reasons"][0]["count"] == 1
