"""Typed events that carry a number, for tests that follow events through the journal and the broker.

The journal only takes the contract's payloads (no free-form dicts), so the number rides in a field
each kind has: ``numbered(kind, n)`` builds one, ``number_of(kind, payload)`` reads it back from the
published JSON.
"""

from __future__ import annotations

from typing import Any

from contract.events import CardRead, DeviceFault, EventPayload, Lookup, Rating, SessionEnded, TicketIssued

KINDS = ("ticket_issued", "lookup", "rating", "card_read", "device_fault", "session_ended")


def numbered(kind: str, n: int) -> EventPayload:
    if kind == "ticket_issued":
        return TicketIssued(f"A{n % 1000:03d}", f"N{n}")
    if kind == "lookup":
        return Lookup("found", "keyboard", latency_ms=float(n))
    if kind == "rating":
        return Rating(4, 4, "very_satisfied", "counter", str(n))
    if kind == "card_read":
        return CardRead("ok", duration_ms=n)
    if kind == "device_fault":
        return DeviceFault("printer", "paper_out", str(n))
    if kind == "session_ended":
        return SessionEnded("test", float(n))
    raise ValueError(kind)


def number_of(kind: str, payload: dict[str, Any]) -> int:
    if kind == "ticket_issued":
        return int(payload["service"][1:])
    if kind == "lookup":
        return int(payload["latency_ms"])
    if kind == "rating":
        return int(payload["target_id"])
    if kind == "card_read":
        return int(payload["duration_ms"])
    if kind == "device_fault":
        return int(payload["detail"])
    if kind == "session_ended":
        return int(payload["duration_s"])
    raise ValueError(kind)
