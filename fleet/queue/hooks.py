"""What the fleet ingest calls after it stored a kiosk's event (``fleet/ingest/handlers.py:
register(kind, handler)``, docs/queue.md "Where tickets come from"):

    register("ticket_issued", fleet.queue.hooks.on_ticket_issued)
    register("rating", fleet.queue.hooks.on_rating)

Each takes ``(store, center_id, kiosk_id, event)`` with ``event`` the parsed ``contract.events.Event``
(the ids come from the topic, already checked against the registry). Both are idempotent: the ingest
may call them again for a redelivered event. Online and offline numbers alike enter the queue here,
when their kiosk reports them, ordered by the time they were printed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, time

from contract.events import Event, Rating, TicketIssued
from contract.wire import parse_time
from fleet.queue.engine import Queue
from fleet.queue.models import Printed, QueueError, Ticket
from fleet.store import Store

log = logging.getLogger(__name__)
_queues: dict[int, Queue] = {}


def queue_of(store: Store) -> Queue:
    """One engine per store (the engine holds no state of its own but its listeners)."""
    found = _queues.get(id(store))
    if found is None or found.store is not store:
        found = _queues[id(store)] = Queue(store)
    return found


def _offline(number: str) -> str | None:
    """Offline numbers lie at or above the allocator's offline base (default 800, docs/numbering.md)."""
    digits = number[1:]
    return None if not digits.isdigit() else ("offline" if int(digits) >= 800 else "online")


def _printed(queue: Queue, kiosk_id: str, event: Event) -> Printed | None:
    payload = event.payload
    if not isinstance(payload, TicketIssued):
        return None
    printed: datetime = parse_time(event.occurred_at, "event.occurred_at")
    day = payload.day or queue.today(printed)
    return Printed(
        payload.number,
        payload.service,
        priority=payload.priority,
        day=day,
        issued_at=printed,
        kiosk_id=kiosk_id,
        source=_offline(payload.number),
        appointment_at=_booked(queue, day, payload.appointment_at),
    )


def on_ticket_issued(store: Store, center_id: str, kiosk_id: str, event: Event) -> Ticket | None:
    queue = queue_of(store)
    printed = _printed(queue, kiosk_id, event)
    if printed is None:
        return None
    ticket, new = queue.issue_many(center_id, [printed])[0]
    if not new:
        log.debug("ticket %s of %s already in the queue", printed.number, center_id)
    return ticket


def on_tickets_issued(store: Store, printed: Sequence[tuple[str, str, Event]]) -> list[bool]:
    """Tickets of an ingest batch (center id, kiosk id, event), in order, in one write of their
    centers' queues (``Queue.issue_centers``); if that fails, center by center, then one by one, so
    that only a ticket that fails is lost. Per ticket: whether it failed (logged here)."""
    queue = queue_of(store)
    failed = [False] * len(printed)
    wanted: dict[str, list[tuple[int, Printed]]] = {}
    for index, (center_id, kiosk_id, event) in enumerate(printed):
        try:
            one = _printed(queue, kiosk_id, event)
        except Exception:
            log.exception("queue: ticket event %s of %s not read", event.event_id, center_id)
            failed[index] = True
            continue
        if one is not None:
            wanted.setdefault(center_id, []).append((index, one))
    if not wanted:
        return failed
    try:
        queue.issue_centers({center_id: [one for _, one in ones] for center_id, ones in wanted.items()})
        return failed
    except Exception:  # one bad ticket must not lose the others: center by center, then one by one
        log.warning("queue: the tickets of %d centers together failed; center by center", len(wanted))
    for center_id, ones in wanted.items():
        try:
            queue.issue_many(center_id, [one for _, one in ones])
            continue
        except Exception:
            log.warning("queue: %d tickets of %s together failed; one by one", len(ones), center_id)
        for index, one in ones:
            try:
                queue.issue_many(center_id, [one])
            except Exception:
                log.exception("queue: ticket %s of %s not issued", one.number[:20], center_id)
                failed[index] = True
    return failed


def _booked(queue: Queue, day: str, at: str | None) -> datetime | None:
    """The booked ``HH:MM`` (center time, checked by the contract) on the ticket's day, aware."""
    if not at:
        return None
    hour, minute = (int(part) for part in at.split(":"))
    try:
        return datetime.combine(date.fromisoformat(day), time(hour, minute), queue.zone)
    except ValueError:  # a day of the right shape that is no date: queued as a walk-in, said in the log
        log.warning("ticket of day %r: booked time %s ignored", day[:10], at)
        return None


def on_rating(store: Store, center_id: str, kiosk_id: str, event: Event) -> bool:
    """A rating made at a kiosk about a ticket (its QR scanned: ``target_id`` ``CENTER/DAY/NUMBER``, or
    the phone page's URL) is tied to the counter and officer who served that ticket, like the phone's."""
    payload = event.payload
    if not isinstance(payload, Rating) or payload.target_kind != "ticket" or not payload.target_id:
        return False
    queue = queue_of(store)
    ticket = _ticket_of(queue, center_id, payload.target_id)
    if ticket is None:
        log.info("rating of unknown ticket %s at %s", payload.target_id[:60], center_id)
        return False
    try:
        return queue.rate(
            ticket,
            payload.level,
            payload.scale,
            "kiosk",
            reasons=payload.reasons,
            event_id=event.event_id,
            at=parse_time(event.occurred_at, "event.occurred_at"),
        )
    except QueueError as exc:
        log.info("rating of %s not tied to a service: %s", ticket.number, exc.message)
        return False


def _ticket_of(queue: Queue, center_id: str, ref: str) -> Ticket | None:
    if "/q/" in ref:  # the phone page's URL from the new QR
        ticket = queue.by_token(ref.rsplit("/q/", 1)[1].strip("/"))
        return ticket if ticket is not None and ticket.center_id == center_id else None
    parts = ref.strip().split("/")
    if len(parts) != 3 or parts[0].lower() != center_id:
        return None
    return queue.find(center_id, parts[1], parts[2].upper())
