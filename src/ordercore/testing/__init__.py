"""Test kits for ordercore users and adapter authors.

* :class:`StorageContract`: the storage port's contract suite. Every storage adapter,
  ours or a third party's, passes it: mix it into a test class and provide a
  ``make_storage`` fixture (see its docstring).
* :class:`ChannelContract`: the channel port's contract suite, run against an adapter and
  its fake platform (provide ``channel_under_test``).
* :class:`FakeChannel` / :class:`FakePlatform`: an in-memory channel for intake tests.
* :class:`ManualClock`: a clock that moves only when told.

These modules import pytest; import them from tests only.
"""

from ordercore.ports.clock import ManualClock
from ordercore.testing.channel_contract import ChannelContract, ChannelControl
from ordercore.testing.channels import FakeChannel, FakePlatform
from ordercore.testing.storage import StorageContract, StorageFactory
from ordercore.testing.storage_model import StorageStateMachine, run_state_machine

__all__ = [
    "ChannelContract",
    "ChannelControl",
    "FakeChannel",
    "FakePlatform",
    "ManualClock",
    "StorageContract",
    "StorageFactory",
    "StorageStateMachine",
    "run_state_machine",
]
