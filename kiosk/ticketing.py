"""Queue numbers issued by this kiosk alone (the center allocator of the queue-number issue will sit
behind the same ``TicketNumberSource`` interface).

A number is the service's prefix + a per-service, per-day sequence (B023), the day being the
center's local day. State lives in SQLite with fsync on commit, so a restart mid-issue never hands
out a number twice: the counter is advanced in the same transaction that records the ticket.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from contract.config import ServiceArea
from contract.queue import phone_token, phone_url
from kiosk.config import QueueSection
from kiosk.errors import KioskError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (day TEXT, service TEXT, last INTEGER, PRIMARY KEY (day, service));
CREATE TABLE IF NOT EXISTS tickets (
    number TEXT, day TEXT, service TEXT, priority INTEGER, issued_at TEXT,
    status TEXT CHECK (status IN ('allocated', 'printed', 'voided')), reason TEXT,
    PRIMARY KEY (day, number)
);
"""


class TicketingError(KioskError):
    """The kiosk's ticket store failed, or a number cannot be given."""

    code = "ticketing"


class NumberRefusedError(TicketingError):
    """The allocator refused to give a number (and the kiosk must not print from its block)."""

    code = "number_refused"


class NoNumberAvailableError(TicketingError):
    """The center cannot be reached and no offline number may be used (block used up, or refused)."""

    code = "no_number_available"


@dataclass(frozen=True)
class AllocatedNumber:
    number: str
    day: str
    waiting_ahead: int | None
    #: the allocator's expected wait in minutes; None: unknown (no pace yet, offline): say nothing
    expected_wait_min: int | None = None


class TicketNumberSource(Protocol):
    def allocate(self, service: ServiceArea, priority: bool, now: datetime) -> AllocatedNumber: ...
    def confirm(self, allocated: AllocatedNumber) -> None: ...
    def void(self, allocated: AllocatedNumber, reason: str) -> None: ...
    def issued_today(self, now: datetime) -> int: ...


class LocalTicketBook:
    """Numbers unique on this kiosk, durable across restarts."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def allocate(self, service: ServiceArea, priority: bool, now: datetime) -> AllocatedNumber:
        day = now.date().isoformat()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                row = self._db.execute(
                    "SELECT last FROM counters WHERE day = ? AND service = ?", (day, service.code)
                ).fetchone()
                sequence = (row[0] if row else 0) + 1
                if sequence > 999:
                    raise TicketingError(f"service {service.code}: 999 numbers issued today, no more")
                number = f"{service.prefix}{sequence:03d}"
                self._db.execute(
                    "INSERT OR REPLACE INTO counters (day, service, last) VALUES (?, ?, ?)",
                    (day, service.code, sequence),
                )
                self._db.execute(
                    "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, 'allocated', NULL)",
                    (number, day, service.code, int(priority), now.isoformat()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        # The kiosk alone cannot know how many have been served; the center allocator can.
        return AllocatedNumber(number, day, None)

    def _set_status(self, allocated: AllocatedNumber, status: str, reason: str | None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE tickets SET status = ?, reason = ? WHERE day = ? AND number = ?",
                (status, reason, allocated.day, allocated.number),
            )

    def confirm(self, allocated: AllocatedNumber) -> None:
        self._set_status(allocated, "printed", None)

    def void(self, allocated: AllocatedNumber, reason: str) -> None:
        self._set_status(allocated, "voided", reason)

    def issued_today(self, now: datetime) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM tickets WHERE day = ? AND status = 'printed'", (now.date().isoformat(),)
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


#: What the ticket's QR carries: enough to link a rating to it later, nothing personal.
TICKET_QR_PREFIX = "MOTCUA-TICKET:"


def ticket_qr(center_id: str, day: str, number: str) -> str:
    return f"{TICKET_QR_PREFIX}{center_id}/{day}/{number}"


#: the queue's phone page of one ticket (``contract.queue.phone_url``): ``https://host/q/<token>``
PHONE_URL = re.compile(r"https?://[A-Za-z0-9.:-]{1,60}/q/[a-z2-7]{16}")


def ticket_qr_text(queue: QueueSection, center_id: str, day: str, number: str) -> str:
    """What the ticket's QR carries: the phone page of that number when the kiosk holds the center's
    phone key (computed offline: an HMAC), else the rating link ``MOTCUA-TICKET:center/day/number``."""
    if queue.phone_page:
        token = phone_token(queue.phone_key(), center_id, day, number)
        return phone_url(queue.phone_base_url, token)
    return ticket_qr(center_id, day, number)


def parse_ticket_qr(text: str) -> str | None:
    """The ticket a QR names, as the rating's ``target_id``: ``center/day/number`` of the kiosk's own
    QR, or the phone page's URL (the center ties that to its ticket), or None when it is neither."""
    text = text.strip()
    if PHONE_URL.fullmatch(text.rstrip("/")):
        return text.rstrip("/")
    if not text.startswith(TICKET_QR_PREFIX):
        return None
    parts = text[len(TICKET_QR_PREFIX) :].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return "/".join(parts)
