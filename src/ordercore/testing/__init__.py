"""Test kits for ordercore users and adapter authors.

* :class:`StorageContract`: the storage port's contract suite. Every storage adapter,
  ours or a third party's, passes it: mix it into a test class and provide a
  ``make_storage`` fixture (see its docstring).
* :class:`ChannelContract`: the channel port's contract suite, run against an adapter and
  its fake platform (provide ``channel_under_test``).
* :class:`FakeChannel` / :class:`FakePlatform`: an in-memory channel for intake tests.
* :class:`ManualClock`: a clock that moves only when told.
* :class:`RecordingMessenger`: a customer messenger (SMS) that records what it sends.

* :class:`InMemoryEventPublisher` / :class:`EventPublisherContract`: a fake event
  publisher for relay tests, and the suite every event-publisher adapter passes.

These modules import pytest; import them from tests only.
"""

from ordercore.ports.clock import ManualClock
from ordercore.testing.channel_contract import ChannelContract, ChannelControl
from ordercore.testing.channels import FakeChannel, FakePlatform
from ordercore.testing.events import EventPublisherContract, InMemoryEventPublisher
from ordercore.testing.messaging import RecordingMessenger
from ordercore.testing.storage import StorageContract, StorageFactory
from ordercore.testing.storage_model import StorageStateMachine, run_state_machine

__all__ = [
    "ChannelContract",
    "ChannelControl",
    "EventPublisherContract",
    "FakeChannel",
    "FakePlatform",
    "InMemoryEventPublisher",
    "ManualClock",
    "RecordingMessenger",
    "StorageContract",
    "StorageFactory",
    "StorageStateMachine",
    "run_state_machine",
]
