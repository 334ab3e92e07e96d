"""The fake ZTO-style courier for the tests: the package's courier simulator.

``ordercore replay-incident`` runs against the same server, so it lives in
:mod:`ordercore_adapters.couriers.simulator`; see its docstring for the protocol and the
faults it injects.
"""

from __future__ import annotations

from ordercore_adapters.couriers.simulator import (
    APP_KEY,
    APP_SECRET,
    CourierOrder,
    FakeCourierServer,
    digest,
)

__all__ = ["APP_KEY", "APP_SECRET", "CourierOrder", "FakeCourierServer", "digest"]
