"""The center's queue-number allocator (docs/numbering.md): a durable book answering kiosks over MQTT.

- ``book``: ``AllocatorBook``, the SQLite book (numbers, reports, calls) and its guards;
- ``policy``: what one kiosk may ask (enrollment registry, catalog, quotas, rate limits);
- ``service``: ``Allocator``, the MQTT service with its supervised worker.
"""

from fleet.allocator.book import UNCONFIRMED, AllocatorBook, AllocatorError, BookStats
from fleet.allocator.policy import Catalog, Limits, Registry
from fleet.allocator.service import Allocator, AllocatorSettings

__all__ = [
    "UNCONFIRMED", "Allocator", "AllocatorBook", "AllocatorError", "AllocatorSettings", "BookStats",
    "Catalog", "Limits", "Registry",
]
