"""WMS stock feed adapters (the ``ordercore.warehouses`` entry point group)."""

from __future__ import annotations

from ordercore_adapters.warehouses.http_wms import HttpWmsFeed

__all__ = ["HttpWmsFeed"]
