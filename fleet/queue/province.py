"""A center's queue seen from elsewhere: every ``queue-event/1`` the bridge brings (docs/province.md,
"The queue at the province") becomes a row of ``queue_steps`` under that center, so the statistics
(``fleet.queue.stats``: the ``/queue/{center}`` page, its exports, the reports) read the province's
store exactly as they read a center's. One statistics code path; no table of its own.

What a bridged row holds: the step as the contract carries it (kind, time, day, number, service,
counter, the officer's username, ``seq``, ``event_id``) and in ``detail`` the measured fields the
statistics read (``waited_s``, ``served_s``) with the rest of the event. No ticket row (``ticket_id``
NULL: the province calls nobody), no account (``user_id`` NULL: the statistics group a bridged step by
the username), and ``published_at`` set at once: a bridged step is never in this store's outbox.

**A store that runs the center's queue itself stores none of it.** Its own ingest receives its own
events back from its broker; it is the queue's sequencer (``queue_settings.last_seq > 0``: every step
it wrote took a number there), so a bridged copy is its own echo, or a forgery whose ``seq`` would
later collide with the engine's next step. Both are ignored, whatever their ``event_id``. A store that
merely shows the center (the province, even after a manager opened its page there, which creates the
settings row with ``last_seq`` 0) stores them.

Idempotent on ``event_id`` (a redelivery, the bridge's resend, several workers: ``duplicate``). Another
event under a ``seq`` the center already used (its store was rebuilt, or a forgery) is refused as
invalid: the first one stays.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select

from contract.errors import ContractError
from contract.queue import QueueEvent
from contract.schema import to_data
from contract.wire import parse_time
from fleet.store import Scope, Store
from fleet.store.queue_tables import queue_settings, queue_steps

Stored = Literal["stored", "duplicate", "ignored"]
#: the event's fields that are columns of the step; the others go to ``detail``
_COLUMNS = ("event_id", "seq", "kind", "at", "day", "number", "service", "counter", "officer")
ALL = Scope.everything()


def runs_queue(store: Store, center_id: str) -> bool:
    """Whether this store numbers the center's queue events itself (the center's own queue)."""
    with store.db.read() as conn:
        last = conn.execute(
            select(queue_settings.c.last_seq).where(queue_settings.c.center_id == center_id)
        ).scalar_one_or_none()
    return bool(last)


def step_values(center_id: str, event: QueueEvent, received_at: datetime) -> dict[str, Any]:
    data = to_data(event)
    detail = {k: v for k, v in data.items() if k not in _COLUMNS and k != "schema" and v is not None}
    return {
        "center_id": center_id,
        "seq": event.seq,
        "event_id": event.event_id,
        "at": parse_time(event.at, "queue-event.at"),
        "kind": event.kind,
        "ticket_id": None,
        "day": event.day,
        "number": event.number,
        "service": event.service,
        "counter": event.counter,
        "user_id": None,
        "officer": event.officer,
        "detail": detail,
        "published_at": received_at,
    }


def store_event(store: Store, center_id: str, payload: bytes, received_at: datetime) -> tuple[Stored, str]:
    """One bridged ``queue-event/1`` of ``center_id`` (from the topic): stored, a duplicate, or ignored
    (with why). ``NotFoundError``: not one of this store's centers; ``ContractError``: not a valid event,
    or another event under a used ``seq`` (the ingest refuses and counts both)."""
    store.registry.center(ALL, center_id)
    if not payload:
        return "ignored", "empty"
    event = QueueEvent.parse(payload)
    if runs_queue(store, center_id):
        return "ignored", "own_queue"
    values = step_values(center_id, event, received_at)
    with store.db.write() as conn:
        # no conflict target: neither the event_id nor the center's seq may be taken twice
        inserted = conn.execute(
            store.db.insert(queue_steps).values(**values).on_conflict_do_nothing().returning(queue_steps.c.id)
        ).first()
        if inserted is not None:
            return "stored", ""
        same = conn.execute(
            select(queue_steps.c.seq).where(
                queue_steps.c.event_id == event.event_id, queue_steps.c.center_id == center_id
            )
        ).scalar_one_or_none()
    if same == event.seq:
        return "duplicate", ""
    raise ContractError(
        f"queue-event {event.event_id} seq {event.seq} of {center_id}: its id or its seq holds another event"
    )
