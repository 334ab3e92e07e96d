"""Adapter lookup by name through entry points, imported lazily.

Third parties register adapters under the entry-point groups ``ordercore.storage``,
``ordercore.channels``, ``ordercore.couriers``, ``ordercore.warehouses`` and
``ordercore.notifiers``. Our own adapters are registered the same way; the names below
are a fallback for a source checkout that was never installed, so the core still
imports nothing from them statically.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from ordercore.errors import UnknownAdapter

__all__ = ["GROUPS", "known_names", "load", "storage_name_for_url"]

GROUPS = (
    "ordercore.storage",
    "ordercore.channels",
    "ordercore.couriers",
    "ordercore.warehouses",
    "ordercore.notifiers",
)

_BUILT_IN: dict[str, dict[str, str]] = {
    "ordercore.storage": {
        "memory": "ordercore_adapters.storage.memory:MemoryStorage",
        "sqlite": "ordercore_adapters.storage.sql:SqlStorage",
        "postgresql": "ordercore_adapters.storage.sql:SqlStorage",
    },
}

_INSTALL_HINTS = {
    "postgresql": "pip install 'ordercore[postgres]'",
}


def _targets(group: str) -> dict[str, str]:
    targets = dict(_BUILT_IN.get(group, {}))
    for entry in entry_points(group=group):
        targets[entry.name] = entry.value
    return targets


def known_names(group: str) -> list[str]:
    """Names registered in an entry-point group, sorted."""
    return sorted(_targets(group))


def load(group: str, name: str) -> Any:
    """Import and return the object registered as ``name`` in ``group``."""
    targets = _targets(group)
    target = targets.get(name)
    if target is None:
        raise UnknownAdapter(group.removeprefix("ordercore."), name, targets)
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = _INSTALL_HINTS.get(name)
        message = f"the {name!r} adapter needs a package that is not installed ({exc.name})"
        raise UnknownAdapter(
            group.removeprefix("ordercore."),
            f"{name} ({message}; {hint or 'see its docs'})",
            targets,
        ) from exc
    obj = module
    for part in attribute.split(".") if attribute else ():
        obj = getattr(obj, part)
    return obj


def storage_name_for_url(url: str) -> str:
    """The storage adapter name a URL selects: ``postgresql+psycopg://`` -> ``postgresql``."""
    scheme, separator, _ = url.partition("://")
    if not separator or not scheme:
        raise UnknownAdapter("storage", "<a URL without a scheme>", _targets("ordercore.storage"))
    return scheme.split("+", 1)[0].lower()
