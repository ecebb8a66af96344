"""The allocator's durable book: one SQLite file, one transaction for each group of requests.

Why it is built this way:
- SQLite in WAL mode with ``synchronous=FULL``: a number is on disk before its answer leaves, so an
  allocator restart (or a power cut) never hands the same number out twice.
- Idempotent by (kiosk, request id): a kiosk that restarted mid-issue re-asks with the id it stored
  before asking and gets the same number back.
- Every request passes the guards of ``policy`` first (enrollment, plan, rate, catalog, quota), so one
  kiosk cannot break numbering for the others; every refusal is an answer, never an exception.
- ``guarded`` runs one message inside a savepoint: whatever one message raises undoes only its own
  work, and the rest of its group is still committed and answered.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, TypeVar

from common.errors import StoreError
from common.ratelimit import RateLimiter
from contract.errors import ContractError
from contract.queue import expected_wait_min
from contract.tickets import (
    ERR_BAD_REQUEST,
    ERR_CONFIG_MISMATCH,
    ERR_EXHAUSTED,
    ERR_RATE_LIMITED,
    ERR_SLOT_CONFLICT,
    ERR_UNKNOWN_SERVICE,
    Conflict,
    NumberPlan,
    QueueCalled,
    ReportItem,
    TicketRequest,
    TicketResponse,
    center_day,
    format_number,
)
from contract.wire import now_iso, salvage_request_id
from fleet.allocator.policy import Catalog, Limits, Registry, RegistryUnavailable

T = TypeVar("T")
#: (day, service) -> seconds the queue advances per person, or None when unknown (the queue's stats)
Pace = Callable[[str, str], float | None]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    day TEXT NOT NULL, service TEXT NOT NULL, last INTEGER NOT NULL, PRIMARY KEY (day, service)
);
CREATE TABLE IF NOT EXISTS tickets (
    day TEXT NOT NULL, service TEXT NOT NULL, seq INTEGER NOT NULL, number TEXT NOT NULL,
    kiosk TEXT NOT NULL, request_id TEXT NOT NULL, priority INTEGER NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('online', 'offline')),
    status TEXT NOT NULL CHECK (status IN ('allocated', 'printed', 'voided')),
    reason TEXT, issued_at TEXT NOT NULL, updated_at TEXT NOT NULL, called_at TEXT, counter TEXT,
    PRIMARY KEY (day, service, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS tickets_request ON tickets (kiosk, request_id, source);
CREATE INDEX IF NOT EXISTS tickets_quota ON tickets (kiosk, day, service, source);
CREATE INDEX IF NOT EXISTS tickets_open ON tickets (status, issued_at);
CREATE TABLE IF NOT EXISTS slots (slot INTEGER PRIMARY KEY, kiosk TEXT NOT NULL, bound_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS slots_kiosk ON slots (kiosk);
CREATE TABLE IF NOT EXISTS prefixes (
    day TEXT NOT NULL, service TEXT NOT NULL, prefix TEXT NOT NULL, PRIMARY KEY (day, service),
    UNIQUE (day, prefix)
);
CREATE TABLE IF NOT EXISTS conflicts (
    at TEXT NOT NULL, kiosk TEXT NOT NULL, request_id TEXT, reason TEXT NOT NULL
);
"""

#: status changes a kiosk may report; anything else is ignored (reports can arrive twice or late)
_FORWARD = {("allocated", "printed"), ("allocated", "voided")}
#: the reason of an online number voided because nobody confirmed it in time (``Limits``)
UNCONFIRMED = "unconfirmed"
#: longest conflict reason in an answer: 200 conflicts must fit the answer's 64 KiB
_CONFLICT_CHARS = 160


class AllocatorError(StoreError):
    """The allocator's store failed (disk, corruption); the message says what to check."""

    code = "allocator_store"


@dataclass
class BookStats:
    allocated: int = 0
    retried: int = 0
    reported: int = 0
    conflicts: int = 0
    refused: int = 0
    called: int = 0
    rate_limited: int = 0
    over_quota: int = 0
    expired: int = 0


class AllocatorBook:
    """The durable ticket book of one center; every method but the readers runs inside ``transaction``.

    ``registry`` None: enrollment is not checked and a slot is bound to the first kiosk that uses it
    (one slot per kiosk). ``catalog`` None or empty: a service's prefix is pinned by its first ticket
    of the day. ``pace`` gives the expected wait of each answer (None: the answers carry none).
    """

    def __init__(
        self,
        path: Path,
        plan: NumberPlan,
        zone: tzinfo,
        *,
        limits: Limits | None = None,
        registry: Registry | None = None,
        catalog: Catalog | None = None,
        pace: Pace | None = None,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.plan = plan
        self.zone = zone
        self.limits = limits or Limits()
        self.registry = registry
        self.catalog = catalog or Catalog()
        self.pace = pace
        self.stats = BookStats()
        self._rate = RateLimiter(self.limits.burst, self.limits.rate_per_s)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise AllocatorError(f"allocator database {path}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- one transaction for a group of messages ---------------------------------------------------

    def transaction(self, work: Callable[[], list[T]]) -> list[T]:
        """Run ``work`` in one write transaction: all of its answers are durable together, or none."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    results = work()
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise AllocatorError(f"allocator database: {exc}") from exc
        return results

    def guarded(self, work: Callable[[], T]) -> T | Exception:
        """``work()`` inside a savepoint of the current transaction. What it raises (a bug, input no
        one foresaw) undoes its own changes only and is returned, so the caller answers that message
        and goes on with the others. A database error still aborts the whole transaction."""
        self._db.execute("SAVEPOINT message")
        try:
            result = work()
        except sqlite3.Error:
            raise
        except Exception as exc:
            self._db.execute("ROLLBACK TO message")
            self._db.execute("RELEASE message")
            return exc
        self._db.execute("RELEASE message")
        return result

    def handle(self, kiosk: str, payload: bytes, now: datetime) -> TicketResponse:
        """Answer one request (inside a transaction); refusals are answers too, never exceptions."""
        at = now_iso(now)
        try:
            request = TicketRequest.parse(payload)
        except ContractError as exc:
            self.stats.refused += 1
            request_id = salvage_request_id(payload, TicketRequest.MAX_BYTES)
            return TicketResponse.refused(request_id, None, ERR_BAD_REQUEST, exc.message, at)
        refusal = self._guard(kiosk, request, now)
        if refusal is not None:
            self.stats.refused += 1
            return refusal
        if request.op == "allocate":
            return self._allocate(kiosk, request, now)
        return self._report(kiosk, request, now)

    # -- the guards (policy.py says why each exists) -------------------------------------------------

    def _guard(self, kiosk: str, request: TicketRequest, now: datetime) -> TicketResponse | None:
        """The refusal of a request that may not go further, or None. The rate first: a kiosk that
        floods the allocator costs it no write (conflicts are stored) once over its rate."""
        at = now_iso(now)
        if not self._rate.allow(kiosk, now.timestamp()):
            self.stats.rate_limited += 1
            reason = (f"kiosk {kiosk}: more than {self.limits.burst} requests at "
                      f"{self.limits.rate_per_s:g}/s; try again later")
            log.warning("%s", reason)
            code = ERR_EXHAUSTED if request.op == "allocate" else ERR_RATE_LIMITED
            return TicketResponse.refused(request.request_id, request.op, code, reason, at)
        if self.registry is not None:
            try:
                problem = self.registry.refusal(kiosk, request.slot)
            except RegistryUnavailable as exc:
                # Nobody can be checked: no online number, the kiosks print from their own blocks.
                return TicketResponse.refused(
                    request.request_id, request.op, ERR_EXHAUSTED,
                    f"the center's registry of enrolled kiosks cannot be read: {exc}", at,
                )
            if problem is not None:
                self._conflict(kiosk, request.request_id, problem, now)
                return TicketResponse.refused(request.request_id, request.op, ERR_SLOT_CONFLICT, problem, at)
        if request.plan != self.plan:
            return TicketResponse.refused(
                request.request_id,
                request.op,
                ERR_CONFIG_MISMATCH,
                f"kiosk plan offline_base/offline_block {request.plan.offline_base}/"
                f"{request.plan.offline_block}, center {self.plan.offline_base}/{self.plan.offline_block}",
                at,
            )
        if self.registry is None:
            taken = self._slot_problem(kiosk, request.slot, now)
            if taken is not None:
                self._conflict(kiosk, request.request_id, taken, now)
                return TicketResponse.refused(request.request_id, request.op, ERR_SLOT_CONFLICT, taken, at)
        return None

    def _slot_problem(self, kiosk: str, slot: int, now: datetime) -> str | None:
        """Without a registry: the first kiosk to use a slot owns it, and a kiosk binds one slot only
        (one identity used to bind all 1,000 and lock every other kiosk out)."""
        row = self._db.execute("SELECT kiosk FROM slots WHERE slot = ?", (slot,)).fetchone()
        if row is not None:
            return None if row[0] == kiosk else f"offline slot {slot} is bound to kiosk {row[0]}"
        held = self._db.execute("SELECT slot FROM slots WHERE kiosk = ? LIMIT 1", (kiosk,)).fetchone()
        if held is not None:
            return f"kiosk {kiosk} holds offline slot {held[0]} already, not {slot}"
        self._db.execute("INSERT INTO slots VALUES (?, ?, ?)", (slot, kiosk, now_iso(now)))
        log.info("offline slot %d bound to kiosk %s", slot, kiosk)
        return None

    def release_slot(self, slot: int) -> str | None:
        """Unbind a slot (a kiosk moved or replaced, without a registry); the kiosk it was bound to."""
        def work() -> list[str | None]:
            row = self._db.execute("SELECT kiosk FROM slots WHERE slot = ?", (slot,)).fetchone()
            self._db.execute("DELETE FROM slots WHERE slot = ?", (slot,))
            return [None if row is None else str(row[0])]

        return self.transaction(work)[0]

    def _service_problem(self, day: str, service: str, prefix: str) -> str | None:
        """Why (service, prefix) cannot be numbered today: not in the catalog, or another prefix. Without
        a catalog the first ticket of the day pins the pair (two services sharing a prefix would print
        the same numbers for different queues)."""
        catalog = self.catalog.services()
        if catalog:
            if service not in catalog:
                return f"service {service} is not in the center's catalog"
            if catalog[service] != prefix:
                return f"service {service} has prefix {catalog[service]} in the catalog, not {prefix}"
            return None
        row = self._db.execute(
            "SELECT service, prefix FROM prefixes WHERE day = ? AND (service = ? OR prefix = ?)",
            (day, service, prefix),
        ).fetchall()
        for pinned_service, pinned_prefix in row:
            if (pinned_service, pinned_prefix) != (service, prefix):
                return (f"service {service} with prefix {prefix}: today {pinned_service} has prefix "
                        f"{pinned_prefix}")
        if not row:
            self._db.execute("INSERT INTO prefixes VALUES (?, ?, ?)", (day, service, prefix))
        return None

    def _conflict(self, kiosk: str, request_id: str | None, reason: str, now: datetime) -> None:
        self.stats.conflicts += 1
        log.error("kiosk %s, request %s: %s", kiosk, request_id, reason)
        self._db.execute(
            "INSERT INTO conflicts VALUES (?, ?, ?, ?)", (now_iso(now), kiosk, request_id, reason)
        )

    # -- allocate ------------------------------------------------------------------------------------

    def _allocate(self, kiosk: str, request: TicketRequest, now: datetime) -> TicketResponse:
        row = self._db.execute(
            "SELECT rowid, day, service, seq, number, priority FROM tickets "
            "WHERE kiosk = ? AND request_id = ? AND source = 'online'",
            (kiosk, request.request_id),
        ).fetchone()
        if row is not None:
            # A retry gets its number back, whatever changed since (catalog, quota).
            self.stats.retried += 1
            rowid, day, service, seq, number, priority = row
        else:
            day = center_day(now, self.zone)
            service = request.service
            at = now_iso(now)
            problem = self._service_problem(day, service, request.prefix)
            if problem is not None:
                self.stats.refused += 1
                return TicketResponse.refused(
                    request.request_id, "allocate", ERR_UNKNOWN_SERVICE, problem, at
                )
            quota = self.limits.quota(self.plan.online_max)
            taken = self._db.execute(
                "SELECT COUNT(*) FROM tickets "
                "WHERE kiosk = ? AND day = ? AND service = ? AND source = 'online'",
                (kiosk, day, service),
            ).fetchone()[0]
            if taken >= quota:
                self.stats.over_quota += 1
                return TicketResponse.refused(
                    request.request_id, "allocate", ERR_EXHAUSTED,
                    f"kiosk {kiosk}: its quota of {quota} online numbers of {service} on {day} is used",
                    at,
                )
            last = self._db.execute(
                "SELECT last FROM counters WHERE day = ? AND service = ?", (day, service)
            ).fetchone()
            seq = (last[0] if last else 0) + 1
            if seq > self.plan.online_max:
                return TicketResponse.refused(
                    request.request_id, "allocate", ERR_EXHAUSTED,
                    f"service {service}: all {self.plan.online_max} online numbers of {day} issued", at,
                )
            number = format_number(request.prefix, seq)
            self._db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?, ?)", (day, service, seq))
            cursor = self._db.execute(
                "INSERT INTO tickets (day, service, seq, number, kiosk, request_id, priority, source, status,"
                " issued_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'online', 'allocated', ?, ?)",
                (day, service, seq, number, kiosk, request.request_id, int(request.priority), at, at),
            )
            rowid, priority = cursor.lastrowid, int(request.priority)
            self.stats.allocated += 1
        waiting = self._waiting_ahead(day, service, rowid, bool(priority))
        return TicketResponse.allocated(
            request.request_id, day=day, service=service, seq=seq, number=number, waiting_ahead=waiting,
            expected_wait_min=self._expected_wait(day, service, waiting), at=now_iso(now),
        )

    def _expected_wait(self, day: str, service: str, waiting_ahead: int) -> int | None:
        if self.pace is None:
            return None
        minutes = expected_wait_min(waiting_ahead, self.pace(day, service))
        return None if minutes is None else min(minutes, 1440)  # the answer's limit: a day

    def _waiting_ahead(self, day: str, service: str, rowid: int, priority: bool) -> int:
        """Tickets of the service issued before this one, neither called nor voided.

        A priority ticket is served before ordinary ones, so only priority tickets wait ahead of it.
        """
        sql = (
            "SELECT COUNT(*) FROM tickets WHERE day = ? AND service = ? AND rowid < ? "
            "AND status != 'voided' AND called_at IS NULL"
        )
        if priority:
            sql += " AND priority = 1"
        return int(self._db.execute(sql, (day, service, rowid)).fetchone()[0])

    def expire_unconfirmed(self, now: datetime) -> int:
        """Online numbers allocated longer than ``unconfirmed_ttl_s`` ago and neither printed nor voided
        stop counting as waiting: voided ``unconfirmed`` (inside a transaction). A late "printed" report
        still brings such a number back (it was on paper after all)."""
        cutoff = now_iso(now - timedelta(seconds=self.limits.unconfirmed_ttl_s))
        cursor = self._db.execute(
            "UPDATE tickets SET status = 'voided', reason = ?, updated_at = ? "
            "WHERE status = 'allocated' AND source = 'online' AND issued_at < ?",
            (UNCONFIRMED, now_iso(now), cutoff),
        )
        self.stats.expired += cursor.rowcount
        if cursor.rowcount:
            log.info("%d online numbers never confirmed: no longer counted as waiting", cursor.rowcount)
        return cursor.rowcount

    # -- report --------------------------------------------------------------------------------------

    def _report(self, kiosk: str, request: TicketRequest, now: datetime) -> TicketResponse:
        accepted: list[str] = []
        conflicts: list[Conflict] = []
        stamp = now_iso(now)
        today = datetime.fromisoformat(center_day(now, self.zone)).date()
        for item in request.tickets:
            problem = self._report_one(kiosk, request.slot, item, stamp, today)
            if problem is None:
                accepted.append(item.request_id)
            else:
                self._conflict(kiosk, item.request_id, problem, now)
                conflicts.append(Conflict(item.request_id, problem[:_CONFLICT_CHARS]))
        self.stats.reported += len(accepted)
        return TicketResponse.reported(request.request_id, accepted, conflicts, stamp)

    def _report_one(
        self, kiosk: str, slot: int, item: ReportItem, stamp: str, today: Any
    ) -> str | None:
        row = self._db.execute(
            "SELECT day, service, seq, status, reason FROM tickets "
            "WHERE kiosk = ? AND request_id = ? AND source = ?",
            (kiosk, item.request_id, item.source),
        ).fetchone()
        if item.source == "online":
            if row is None:
                return f"online number {item.number} of {item.day} was never allocated to this kiosk"
            if (row[0], row[1], row[2]) != (item.day, item.service, item.seq):
                return f"online number {item.number} does not match the allocation {row[1]} {row[2]} {row[0]}"
            self._advance(kiosk, item, row[3], row[4], stamp)
            return None
        # An offline number: it must lie in this kiosk's own block, on a day near the allocator's.
        if self.plan.slot_of(item.seq) != slot:
            return f"offline number {item.number} lies outside the block of slot {slot}"
        if row is None:
            try:
                distance = abs((datetime.fromisoformat(item.day).date() - today).days)
            except ValueError:
                return f"offline number {item.number}: {item.day} is not a day"
            if distance > self.limits.report_days:
                return (f"offline number {item.number} of {item.day}: "
                        f"more than {self.limits.report_days} days away")
            problem = self._service_problem(item.day, item.service, item.prefix)
            if problem is not None:
                return f"offline number {item.number}: {problem}"
            taken = self._db.execute(
                "SELECT kiosk, request_id FROM tickets WHERE day = ? AND service = ? AND seq = ?",
                (item.day, item.service, item.seq),
            ).fetchone()
            if taken is not None:
                return f"DUPLICATE offline number {item.number} of {item.day}: already {taken[0]}/{taken[1]}"
            self._db.execute(
                "INSERT INTO tickets (day, service, seq, number, kiosk, request_id, priority, source, status,"
                " reason, issued_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'offline', ?, ?, ?, ?)",
                (
                    item.day, item.service, item.seq, item.number, kiosk, item.request_id,
                    int(item.priority), item.status, item.reason, item.issued_at, stamp,
                ),
            )
        else:
            self._advance(kiosk, item, row[3], row[4], stamp)
        # The kiosk printed from its block after asking online: the online answer (if the allocator
        # gave one) was never used. It stays in the book as a void with the reason, not as a hole.
        self._db.execute(
            "UPDATE tickets SET status = 'voided', reason = 'superseded_by_offline', updated_at = ? "
            "WHERE kiosk = ? AND request_id = ? AND source = 'online' "
            "AND (status = 'allocated' OR (status = 'voided' AND reason = ?))",
            (stamp, kiosk, item.request_id, UNCONFIRMED),
        )
        return None

    def _advance(self, kiosk: str, item: ReportItem, current: str, reason: str | None, stamp: str) -> None:
        revived = current == "voided" and reason == UNCONFIRMED and item.status == "printed"
        if (current, item.status) in _FORWARD or revived:
            self._db.execute(
                "UPDATE tickets SET status = ?, reason = ?, updated_at = ? "
                "WHERE kiosk = ? AND request_id = ? AND source = ?",
                (item.status, item.reason, stamp, kiosk, item.request_id, item.source),
            )

    # -- counters ------------------------------------------------------------------------------------

    def called(self, payload: bytes, now: datetime) -> bool:
        """A counter called a number: it no longer waits (``queue-called/1``)."""
        try:
            call = QueueCalled.parse(payload)
        except ContractError as exc:
            log.warning("refused: %s", exc.message)
            self.stats.refused += 1
            return False
        day = call.day or center_day(now, self.zone)
        service, number = call.service, call.number
        cursor = self._db.execute(
            "UPDATE tickets SET called_at = ?, counter = ? WHERE day = ? AND service = ? AND number = ? "
            "AND called_at IS NULL",
            (now_iso(now), call.counter, day, service, number),
        )
        self.stats.called += cursor.rowcount
        return cursor.rowcount > 0

    # -- reading the book (CLI, tests, dashboards) ---------------------------------------------------

    def tickets(self, day: str) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._db.execute(
                "SELECT day, service, seq, number, kiosk, request_id, priority, source, status, reason, "
                "called_at FROM tickets WHERE day = ? ORDER BY service, seq",
                (day,),
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def conflicts(self) -> list[tuple[str, str, str | None, str]]:
        with self._lock:
            return list(self._db.execute("SELECT at, kiosk, request_id, reason FROM conflicts"))

    def summary(self, day: str) -> dict[str, dict[str, int]]:
        """Per service: tickets by status and source, waiting, and online numbers missing from the book."""
        out: dict[str, dict[str, int]] = {}
        online: dict[str, int] = {}
        for t in self.tickets(day):
            entry = out.setdefault(
                t["service"],
                {"printed": 0, "voided": 0, "allocated": 0, "offline": 0, "called": 0, "online_last": 0,
                 "unconfirmed": 0},
            )
            entry[t["status"]] += 1
            entry["offline"] += t["source"] == "offline"
            entry["called"] += t["called_at"] is not None
            entry["unconfirmed"] += t["reason"] == UNCONFIRMED
            if t["source"] == "online":
                entry["online_last"] = max(entry["online_last"], t["seq"])
                online[t["service"]] = online.get(t["service"], 0) + 1
        for service, entry in out.items():
            entry["online_missing"] = entry["online_last"] - online.get(service, 0)
        return out
