"""The in-memory storage adapter: for tests, demos and tiny shops.

Registered as the ``memory`` entry point of ``ordercore.storage``::

    async with OrderCore.open("memory://") as core:
        ...

It implements :class:`ordercore.ports.storage.Storage` and passes the storage contract
suite (:class:`ordercore.testing.StorageContract`). One anyio lock, held by a unit of
work for its whole life, is what makes each stock check and change one atomic step;
an undo log gives the unit its all-or-nothing rollback.
"""

from ._intake import MemoryIntake
from ._inventory import MemoryInventory
from ._orders import MemoryOrders
from ._storage import MemoryStorage, MemoryUnitOfWork

__all__ = ["MemoryIntake", "MemoryInventory", "MemoryOrders", "MemoryStorage", "MemoryUnitOfWork"]
