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
- **A batch handler** (``register_batch(kind, fn)``, ``fn(store, calls) -> failed``) gets every stored
  event of its kind in one batch of the ingest at once, in arrival order, as ``HookCall``s, and
  returns per call whether it failed (it logs that itself; an exception counts them all as failed).
  Same rules otherwise (after the commit, at least once, idempotent); batch handlers run before the
  per-event ones. The queue issues a batch's tickets of every center in one transaction this way,
  where a handler per event took ~15 statements and two transactions per ticket (docs/fleet.md,
  "Where the worker's time went").
- Register at import time of the module that owns the handler, and name that module in
  ``fleet.ingest.plugins.HANDLER_MODULES``: every ingest worker (``fleet ingest``, ``fleet serve
  --broker``) imports those modules before it subscribes, so no event is stored without its handlers.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fleet.store import Store
from fleet.store.models import EventRecord

log = logging.getLogger(__name__)
ALL_KINDS = "*"


class EventHandler(Protocol):
    def __call__(self, store: Store, center_id: str, kiosk_id: str, event: EventRecord, /) -> None: ...


@dataclass(frozen=True)
class HookCall:
    """One stored event for a batch handler; ``parsed``: the contract's event the ingest read it from
    (``contract.events.Event``), so that a handler wanting the typed event need not parse it again."""

    center_id: str
    kiosk_id: str
    event: EventRecord
    duplicate: bool
    parsed: Any = None


BatchHandler = Callable[[Store, Sequence[HookCall]], Sequence[bool]]

_handlers: dict[str, list[tuple[Callable[..., None], bool]]] = {}
_batch_handlers: dict[str, list[BatchHandler]] = {}
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


def register_batch(kind: str, handler: BatchHandler) -> None:
    """Call ``handler`` once per ingest batch with all its stored events of ``kind`` (``"*"``: all)."""
    with _lock:
        _batch_handlers.setdefault(kind, []).append(handler)


def unregister_batch(kind: str, handler: BatchHandler) -> None:
    with _lock:
        _batch_handlers[kind] = [h for h in _batch_handlers.get(kind, []) if h is not handler]


def dispatch_many(store: Store, calls: Sequence[HookCall]) -> list[int]:
    """The handlers of a batch's stored events: batch handlers first (each once, with the calls of its
    kind in order), then the per-event handlers event by event; returns how many failed per call."""
    with _lock:
        batched = [(kind, list(found)) for kind, found in _batch_handlers.items() if found]
    failures = [0] * len(calls)
    for kind, found in batched:
        chosen = [i for i, call in enumerate(calls) if kind in (ALL_KINDS, call.event.kind)]
        if not chosen:
            continue
        for handler in found:
            try:
                failed = list(handler(store, [calls[i] for i in chosen]))
                if len(failed) != len(chosen):
                    raise ValueError(f"{len(failed)} outcomes for {len(chosen)} events")
            except Exception:
                log.exception(
                    "batch event handler %s failed on %d %s events",
                    getattr(handler, "__qualname__", handler), len(chosen), kind,
                )
                failed = [True] * len(chosen)
            for index, bad in zip(chosen, failed, strict=True):
                failures[index] += bool(bad)
    with _lock:
        every = list(_handlers.get(ALL_KINDS, ()))
        by_kind = {
            kind: list(_handlers.get(kind, ())) + every for kind in {call.event.kind for call in calls}
        }
    for index, call in enumerate(calls):
        handlers_of_kind = by_kind[call.event.kind]
        if handlers_of_kind:
            failures[index] += _run(
                store, call.center_id, call.kiosk_id, call.event, call.duplicate, handlers_of_kind
            )
    return failures


def dispatch(store: Store, center_id: str, kiosk_id: str, event: EventRecord, *, duplicate: bool) -> int:
    """Run the handlers of ``event.kind`` and ``"*"``; returns how many raised (logged here)."""
    with _lock:
        chosen = list(_handlers.get(event.kind, ())) + list(_handlers.get(ALL_KINDS, ()))
    return _run(store, center_id, kiosk_id, event, duplicate, chosen)


def _run(
    store: Store,
    center_id: str,
    kiosk_id: str,
    event: EventRecord,
    duplicate: bool,
    chosen: Sequence[tuple[Callable[..., None], bool]],
) -> int:
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
