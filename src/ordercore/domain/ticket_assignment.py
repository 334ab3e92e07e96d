"""Who gets a ticket: pluggable assignment policies over a team's agents and workloads.

A team names its policy (``Team.assignment``); the ticket service looks the name up
among the built-in policies and any the application passes in. A policy is a pure
choice: it gets the team, the ticket and each agent's :class:`AgentLoad` (read from the
storage in the same unit of work) and returns an agent, or None to leave the ticket in
the team's queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

from ordercore.domain.tickets import AgentLoad, Team, Ticket

__all__ = [
    "BUILTIN_POLICIES",
    "AssignmentPolicy",
    "LeastLoaded",
    "QueueOnly",
    "RoundRobin",
]

_NEVER = datetime.min.replace(tzinfo=UTC)


class AssignmentPolicy(Protocol):
    """Chooses an agent of ``team`` for ``ticket``; None leaves it in the team queue."""

    def choose(
        self,
        team: Team,
        ticket: Ticket,
        loads: Mapping[str, AgentLoad],
        exclude: frozenset[str] = frozenset(),
    ) -> str | None: ...


def _candidates(team: Team, exclude: frozenset[str]) -> list[str]:
    agents = [agent for agent in team.agents if agent not in exclude]
    return agents or list(team.agents)


class QueueOnly:
    """Per-type queues: the ticket waits in its team's queue until an agent takes it."""

    def choose(
        self,
        team: Team,
        ticket: Ticket,
        loads: Mapping[str, AgentLoad],
        exclude: frozenset[str] = frozenset(),
    ) -> str | None:
        """Always None."""
        return None


class LeastLoaded:
    """The agent with the fewest active tickets; ties go to whoever waited longest."""

    def choose(
        self,
        team: Team,
        ticket: Ticket,
        loads: Mapping[str, AgentLoad],
        exclude: frozenset[str] = frozenset(),
    ) -> str | None:
        """The least loaded agent (``exclude``d ones only if nobody else is left)."""
        agents = _candidates(team, exclude)
        if not agents:
            return None

        def rank(indexed: tuple[int, str]) -> tuple[int, datetime, int]:
            load = loads.get(indexed[1], AgentLoad())
            return (load.active, load.last_assigned_at or _NEVER, indexed[0])

        return min(enumerate(agents), key=rank)[1]


class RoundRobin:
    """Agents in turn: the one whose last assignment is oldest (never assigned: first).

    The turn is derived from the stored tickets, so it survives restarts and is shared
    by every process on one database.
    """

    def choose(
        self,
        team: Team,
        ticket: Ticket,
        loads: Mapping[str, AgentLoad],
        exclude: frozenset[str] = frozenset(),
    ) -> str | None:
        """The agent who has waited longest for a ticket."""
        agents = _candidates(team, exclude)
        if not agents:
            return None

        def rank(indexed: tuple[int, str]) -> tuple[datetime, int]:
            load = loads.get(indexed[1], AgentLoad())
            return (load.last_assigned_at or _NEVER, indexed[0])

        return min(enumerate(agents), key=rank)[1]


BUILTIN_POLICIES: Mapping[str, AssignmentPolicy] = {
    "queue": QueueOnly(),
    "least_loaded": LeastLoaded(),
    "round_robin": RoundRobin(),
}
"""Policies a team can name without registering anything."""
