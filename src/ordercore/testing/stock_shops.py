"""A fake shop for stock-push tests: a FakeChannel that takes pushes and sells.

:class:`FakeStockShop` implements :class:`~ordercore.ports.channels.StockPushPort` and
:class:`~ordercore.ports.channels.ListingPort` in memory. Like a marketplace it sells
against what it lists (:meth:`FakeStockShop.buy`), and it can fail the next pushes
(a transport failure) or refuse given listings (a platform refusal).
"""

from __future__ import annotations

from collections.abc import Mapping

from ordercore.errors import ChannelUnavailable
from ordercore.ports.clock import SystemClock
from ordercore.testing.channels import FakeChannel, FakePlatform

__all__ = ["FakeStockShop"]


class FakeStockShop(FakeChannel):
    """A FakeChannel whose listings take stock pushes and sell against what they show."""

    kind = "fake-stock"

    def __init__(self, name: str, platform: FakePlatform | None = None) -> None:
        super().__init__(name, platform or FakePlatform(SystemClock()))
        self.quantity: dict[str, int] = {}
        """Listed quantity per listing id."""
        self.listed: dict[str, bool] = {}
        self.sold: dict[str, int] = {}
        self.pushes: list[dict[str, int]] = []
        """Every push_stock call's quantities, in order."""
        self.refuse: dict[str, str] = {}
        """Listing id -> the error the platform answers for it."""
        self.fail_pushes = 0
        """The next this many push_stock calls raise ChannelUnavailable."""

    async def push_stock(self, quantities: Mapping[str, int]) -> Mapping[str, str | None]:
        """Set listed quantities (absolute); refused listings are answered, not set."""
        if self.fail_pushes > 0:
            self.fail_pushes -= 1
            raise ChannelUnavailable(f"fake shop {self.name!r}: push failed (injected)")
        self.pushes.append(dict(quantities))
        answers: dict[str, str | None] = {}
        for listing, quantity in quantities.items():
            answers[listing] = self.refuse.get(listing)
            if answers[listing] is None:
                self.quantity[listing] = quantity
                self.listed.setdefault(listing, True)
                self.sold.setdefault(listing, 0)
        return answers

    async def set_listed(self, listings: Mapping[str, bool]) -> Mapping[str, str | None]:
        """Put listings up or take them down."""
        self.listed.update(listings)
        return dict.fromkeys(listings)

    def buy(self, listing: str, quantity: int = 1) -> bool:
        """A buyer's order: accepted (and the listing decremented) only while it shows enough."""
        if not self.listed.get(listing, False) or self.quantity.get(listing, 0) < quantity:
            return False
        self.quantity[listing] -= quantity
        self.sold[listing] += quantity
        return True

    def shows(self, listing: str) -> int:
        """What buyers see: the quantity while listed, else 0."""
        return self.quantity.get(listing, 0) if self.listed.get(listing, False) else 0
