"""The in-memory FakeCourier passes the courier port's contract suite."""

from __future__ import annotations

import pytest

from ordercore.testing.couriers import CourierContract, FakeCourier


class TestFakeCourier(CourierContract):
    """ordercore.testing's fake courier."""

    @pytest.fixture
    def courier(self) -> FakeCourier:
        return FakeCourier("fake")
