"""Handlers for ``ordercore worker`` tests run in-process (CliRunner).

``test.touch`` records the task's key in ``touched``; ``test.reject`` raises a business
error, so its task is dead after one attempt.
"""

from __future__ import annotations

from ordercore.domain.outbox import OutboxTask
from ordercore.errors import InvalidOrder
from ordercore.services.outbox import HandlerRegistry

__all__ = ["make_registry", "registry", "touched"]

touched: list[str] = []
registry = HandlerRegistry()


@registry.handler("test.touch")
async def touch(task: OutboxTask) -> None:
    """Remember the key."""
    touched.append(task.key)


@registry.handler("test.reject")
async def reject(task: OutboxTask) -> None:
    """Refuse, as a courier refuses a bad address."""
    raise InvalidOrder([], subject=f"task {task.key}")


def make_registry() -> HandlerRegistry:
    """A registry factory (``--handlers support.outbox_cli_handlers:make_registry``)."""
    return registry
