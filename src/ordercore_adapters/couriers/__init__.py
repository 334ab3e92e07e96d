"""Courier adapters and the courier failover chain.

* :class:`HttpCourier`: a ZTO-style open API (signed JSON over HTTPS), registered under
  the ``ordercore.couriers`` entry point as ``zto``;
* :func:`courier_chain`: primary -> backup couriers, each behind its own resilience
  pipeline (timeout, breaker, retry, bulkhead). See docs/couriers.md.
"""

from __future__ import annotations

from .http_courier import HttpCourier, data_digest
from .resilient import COURIER_POLICY, CourierChain, courier_chain, courier_classifier

__all__ = [
    "COURIER_POLICY",
    "CourierChain",
    "HttpCourier",
    "courier_chain",
    "courier_classifier",
    "data_digest",
]
