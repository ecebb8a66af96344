"""Registers the queue's hooks with the fleet ingest (named in ``fleet.ingest.plugins.HANDLER_MODULES``):
every ticket a kiosk printed enters the queue, every rating about a ticket is tied to who served it.

The ingest hands over the stored record and the contract's typed event it read it from; the queue's
hooks take the typed event (read again from the record only when the ingest did not hand it over).
Both hooks are batch handlers, which get the typed event.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from contract.errors import ContractError
from contract.events import Event, payload_from_data
from contract.wire import now_iso
from fleet.ingest import handlers
from fleet.queue import hooks
from fleet.store import Store
from fleet.store.models import EventRecord

log = logging.getLogger(__name__)


def _event(record: EventRecord) -> Event | None:
    try:
        payload = payload_from_data(record.kind, record.payload)
    except ContractError as exc:  # stored, but not of this version's shape: the queue skips it
        log.warning("queue: %s event %s skipped: %s", record.kind, record.event_id, exc.message)
        return None
    return Event(
        record.event_id, record.seq, record.journal_id, payload, now_iso(record.occurred_at), record.replay
    )


def _typed(call: handlers.HookCall) -> Event | None:
    if isinstance(call.parsed, Event) and call.parsed.event_id == call.event.event_id:
        return call.parsed
    return _event(call.event)


def on_ticket_issued(store: Store, center_id: str, kiosk_id: str, record: EventRecord) -> None:
    event = _event(record)
    if event is not None:
        hooks.on_ticket_issued(store, center_id, kiosk_id, event)


def on_tickets_issued(store: Store, calls: Sequence[handlers.HookCall]) -> list[bool]:
    """The batch's tickets, every center's, in one write of their queues (``hooks.on_tickets_issued``)."""
    failed = [False] * len(calls)
    chosen: list[int] = []
    printed: list[tuple[str, str, Event]] = []
    for index, call in enumerate(calls):
        event = _typed(call)
        if event is not None:
            chosen.append(index)
            printed.append((call.center_id, call.kiosk_id, event))
    for index, bad in zip(chosen, hooks.on_tickets_issued(store, printed), strict=True):
        failed[index] = bad
    return failed


def on_rating(store: Store, center_id: str, kiosk_id: str, record: EventRecord) -> None:
    event = _event(record)
    if event is not None:
        hooks.on_rating(store, center_id, kiosk_id, event)


def on_ratings(store: Store, calls: Sequence[handlers.HookCall]) -> list[bool]:
    """The batch's ratings, one by one as ``on_rating``, each with the typed event the ingest read."""
    failed = []
    for call in calls:
        try:
            event = _typed(call)
            if event is not None:
                hooks.on_rating(store, call.center_id, call.kiosk_id, event)
            failed.append(False)
        except Exception:
            log.exception("queue: rating %s of %s not tied", call.event.event_id, call.kiosk_id)
            failed.append(True)
    return failed


handlers.register_batch("ticket_issued", on_tickets_issued)
handlers.register_batch("rating", on_ratings)
