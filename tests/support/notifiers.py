"""A test-only notifier factory for configs: ``[notifier] factory = "support.notifiers:make"``."""

from __future__ import annotations

from collections.abc import Mapping

from ordercore.ports.notifiers import RecordingNotifier

BUILT: list[tuple[RecordingNotifier, Mapping[str, object]]] = []
"""Every notifier built, with the config it was given."""


def make(config: Mapping[str, object]) -> RecordingNotifier:
    """A RecordingNotifier, remembered in :data:`BUILT` with its config."""
    notifier = RecordingNotifier()
    BUILT.append((notifier, dict(config)))
    return notifier
