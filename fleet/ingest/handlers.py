"""The ingest's hook for other parts of the center (the queue): run code after an event is stored.

    from fleet.ingest import handlers

    def on_ticket(store, center_id, kiosk_id, event):  # event: fleet.store.models.EventRecord
        ...

    handlers.register("ticket_issued", on_ticket)   # or "*" for every kind

Rules a handler can rely on, and must respect:
- It runs in the ingest worker, after ``store.events.insert_event`` committed the event and before the
  MQTT message is acknowledged, on the worker's processing thread: keep it short (one or two store
  calls); a slow handler slows the ingest of every kiosk.
- **At least once.** It is called for a new event, and again for a duplicate of a stored one (the same
  ``event_id``: a replay after a reconnect, or a redelivery after a worker crashed between storing and
  acknowledging). Make it idempotent on ``event.event_id`` (e.g. an ``INSERT ... ON CONFLICT DO
  NOTHING`` keyed on it). ``duplicate`` tells which case it is, for handlers that only count.
- ``center_id`` and ``kiosk_id`` come from the topic and were checked against the registry; the
  payload was parsed by the contract (``contract.events``), so ``event.payload`` has that kind's fields.
- An exception is logged and counted (the worker's ``hook_errors``); the message is still acknowledged,
  because the event is stored. Handlers run in registration order; one failing does not stop the others.
- A handler that takes a keyword argument ``duplicate`` gets it; one with the four positional
  arguments only is called without it.
- Register at import time of the module that owns the handler, and name that module in
  ``fleet.ingest.plugins.HANDLER_MODULES``: every ingest worker (``fleet ingest``, ``fleet serve
  --broker``) imports those modules before it subscribes, so no event is stored without its handlers.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from fleet.store import Store
from fleet.store.models import EventRecord

log = logging.getLogger(__name__)
ALL_KINDS = "*"


class EventHandler(Protocol):
    def __call__(self, store: Store, center_id: str, kiosk_id: str, event: EventRecord, /) -> None: ...


_handlers: dict[str, list[tuple[Callable[..., None], bool]]] = {}
_lock = threading.Lock()


def _takes_duplicate(handler: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is p.VAR_KEYWORD
        or (p.name == "duplicate" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        for p in parameters
    )


def register(kind: str, handler: EventHandler | Callable[..., None]) -> None:
    """Call ``handler`` after every stored event of ``kind`` (``"*"``: every kind)."""
    with _lock:
        _handlers.setdefault(kind, []).append((handler, _takes_duplicate(handler)))


def unregister(kind: str, handler: EventHandler | Callable[..., None]) -> None:
    with _lock:
        _handlers[kind] = [(h, d) for h, d in _handlers.get(kind, []) if h is not handler]


def dispatch(store: Store, center_id: str, kiosk_id: str, event: EventRecord, *, duplicate: bool) -> int:
    """Run the handlers of ``event.kind`` and ``"*"``; returns how many raised (logged here)."""
    with _lock:
        chosen = list(_handlers.get(event.kind, ())) + list(_handlers.get(ALL_KINDS, ()))
    failures = 0
    for handler, wants_flag in chosen:
        try:
            if wants_flag:
                handler(store, center_id, kiosk_id, event, duplicate=duplicate)
            else:
                handler(store, center_id, kiosk_id, event)
        except Exception:
            failures += 1
            log.exception(
                "event handler %s failed on %s %s of %s",
                getattr(handler, "__qualname__", handler),
                event.kind,
                event.event_id,
                kiosk_id,
            )
    return failures
