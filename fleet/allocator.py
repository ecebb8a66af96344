"""The center's queue-number allocator: one durable book, answering kiosks over MQTT.

Why it is built this way:
- SQLite in WAL mode with ``synchronous=FULL``: a number is on disk before its answer leaves, so an
  allocator restart (or a power cut) never hands the same number out twice.
- Idempotent by (kiosk, request id): a kiosk that restarted mid-issue re-asks with the id it stored
  before asking and gets the same number back.
- Group commit: requests that arrive together are answered from one transaction (one fsync), which
  keeps the p99 low when every kiosk of the center asks at once.
- The MQTT session is ``common.mqtt.MqttLink`` (paho lives in one module), with session expiry 0:
  requests published while the allocator is away are dropped by the broker, because their kiosks have
  long since printed from their offline blocks and will report those numbers themselves.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Literal

from common.errors import StoreError
from common.mqtt import Backoff, Message, MqttLink, TlsConfig, Will
from contract.errors import ContractError
from contract.tickets import (
    ERR_BAD_REQUEST,
    ERR_CONFIG_MISMATCH,
    ERR_EXHAUSTED,
    ERR_SLOT_CONFLICT,
    AllocatorStatus,
    Conflict,
    NumberPlan,
    QueueCalled,
    ReportItem,
    TicketRequest,
    TicketResponse,
    center_day,
    center_zone,
    format_number,
)
from contract.topics import CenterTopics, parse_topic
from contract.wire import now_iso, salvage_request_id

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
CREATE TABLE IF NOT EXISTS slots (slot INTEGER PRIMARY KEY, kiosk TEXT NOT NULL, bound_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conflicts (
    at TEXT NOT NULL, kiosk TEXT NOT NULL, request_id TEXT, reason TEXT NOT NULL
);
"""

#: status changes a kiosk may report; anything else is ignored (reports can arrive twice or late)
_FORWARD = {("allocated", "printed"), ("allocated", "voided")}


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


class AllocatorBook:
    """The durable ticket book of one center; every method runs inside ``transaction``."""

    def __init__(self, path: Path, plan: NumberPlan, zone: tzinfo) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.plan = plan
        self.zone = zone
        self.stats = BookStats()
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

    def transaction(self, work: Callable[[], list[Any]]) -> list[Any]:
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

    def handle(self, kiosk: str, payload: bytes, now: datetime) -> TicketResponse:
        """Answer one request (inside a transaction); refusals are answers too, never exceptions."""
        try:
            request = TicketRequest.parse(payload)
        except ContractError as exc:
            self.stats.refused += 1
            request_id = salvage_request_id(payload, TicketRequest.MAX_BYTES)
            return TicketResponse.refused(request_id, None, ERR_BAD_REQUEST, exc.message, now_iso(now))
        if request.plan != self.plan:
            self.stats.refused += 1
            return TicketResponse.refused(
                request.request_id,
                request.op,
                ERR_CONFIG_MISMATCH,
                f"kiosk plan offline_base/offline_block {request.plan.offline_base}/"
                f"{request.plan.offline_block}, center {self.plan.offline_base}/{self.plan.offline_block}",
                now_iso(now),
            )
        owner = self._bind_slot(kiosk, request.slot, now)
        if owner != kiosk:
            self.stats.refused += 1
            self._conflict(kiosk, request.request_id, f"slot {request.slot} belongs to {owner}", now)
            return TicketResponse.refused(
                request.request_id,
                request.op,
                ERR_SLOT_CONFLICT,
                f"offline slot {request.slot} is bound to kiosk {owner}",
                now_iso(now),
            )
        if request.op == "allocate":
            return self._allocate(kiosk, request, now)
        return self._report(kiosk, request, now)

    def _bind_slot(self, kiosk: str, slot: int, now: datetime) -> str:
        row = self._db.execute("SELECT kiosk FROM slots WHERE slot = ?", (slot,)).fetchone()
        if row is None:
            self._db.execute("INSERT INTO slots VALUES (?, ?, ?)", (slot, kiosk, now_iso(now)))
            log.info("offline slot %d bound to kiosk %s", slot, kiosk)
            return kiosk
        return str(row[0])

    def _conflict(self, kiosk: str, request_id: str | None, reason: str, now: datetime) -> None:
        self.stats.conflicts += 1
        log.error("kiosk %s, request %s: %s", kiosk, request_id, reason)
        self._db.execute(
            "INSERT INTO conflicts VALUES (?, ?, ?, ?)", (now_iso(now), kiosk, request_id, reason)
        )

    def _allocate(self, kiosk: str, request: TicketRequest, now: datetime) -> TicketResponse:
        row = self._db.execute(
            "SELECT rowid, day, service, seq, number, priority FROM tickets "
            "WHERE kiosk = ? AND request_id = ? AND source = 'online'",
            (kiosk, request.request_id),
        ).fetchone()
        if row is not None:
            self.stats.retried += 1
            rowid, day, service, seq, number, priority = row
        else:
            day = center_day(now, self.zone)
            service = request.service
            last = self._db.execute(
                "SELECT last FROM counters WHERE day = ? AND service = ?", (day, service)
            ).fetchone()
            seq = (last[0] if last else 0) + 1
            if seq > self.plan.online_max:
                return TicketResponse.refused(
                    request.request_id,
                    "allocate",
                    ERR_EXHAUSTED,
                    f"service {service}: all {self.plan.online_max} online numbers of {day} issued",
                    now_iso(now),
                )
            number = format_number(request.prefix, seq)
            stamp = now_iso(now)
            self._db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?, ?)", (day, service, seq))
            cursor = self._db.execute(
                "INSERT INTO tickets (day, service, seq, number, kiosk, request_id, priority, source, status,"
                " issued_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'online', 'allocated', ?, ?)",
                (day, service, seq, number, kiosk, request.request_id, int(request.priority), stamp, stamp),
            )
            rowid, priority = cursor.lastrowid, int(request.priority)
            self.stats.allocated += 1
        return TicketResponse.allocated(
            request.request_id,
            day=day,
            service=service,
            seq=seq,
            number=number,
            waiting_ahead=self._waiting_ahead(day, service, rowid, bool(priority)),
            at=now_iso(now),
        )

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

    def _report(self, kiosk: str, request: TicketRequest, now: datetime) -> TicketResponse:
        accepted: list[str] = []
        conflicts: list[Conflict] = []
        stamp = now_iso(now)
        for item in request.tickets:
            problem = self._report_one(kiosk, request.slot, item, stamp)
            if problem is None:
                accepted.append(item.request_id)
            else:
                self._conflict(kiosk, item.request_id, problem, now)
                conflicts.append(Conflict(item.request_id, problem[:300]))
        self.stats.reported += len(accepted)
        return TicketResponse.reported(request.request_id, accepted, conflicts, stamp)

    def _report_one(self, kiosk: str, slot: int, item: ReportItem, stamp: str) -> str | None:
        row = self._db.execute(
            "SELECT day, service, seq, status FROM tickets WHERE kiosk = ? AND request_id = ? AND source = ?",
            (kiosk, item.request_id, item.source),
        ).fetchone()
        if item.source == "online":
            if row is None:
                return f"online number {item.number} of {item.day} was never allocated to this kiosk"
            if (row[0], row[1], row[2]) != (item.day, item.service, item.seq):
                return f"online number {item.number} does not match the allocation {row[1]} {row[2]} {row[0]}"
            self._advance(kiosk, item, row[3], stamp)
            return None
        # An offline number: it must lie in this kiosk's own block.
        if self.plan.slot_of(item.seq) != slot:
            return f"offline number {item.number} lies outside the block of slot {slot}"
        if row is None:
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
                    item.day,
                    item.service,
                    item.seq,
                    item.number,
                    kiosk,
                    item.request_id,
                    int(item.priority),
                    item.status,
                    item.reason,
                    item.issued_at,
                    stamp,
                ),
            )
        else:
            self._advance(kiosk, item, row[3], stamp)
        # The kiosk printed from its block after asking online: the online answer (if the allocator
        # gave one) was never used. It stays in the book as a void with the reason, not as a hole.
        self._db.execute(
            "UPDATE tickets SET status = 'voided', reason = 'superseded_by_offline', updated_at = ? "
            "WHERE kiosk = ? AND request_id = ? AND source = 'online' AND status = 'allocated'",
            (stamp, kiosk, item.request_id),
        )
        return None

    def _advance(self, kiosk: str, item: ReportItem, current: str, stamp: str) -> None:
        if (current, item.status) in _FORWARD:
            self._db.execute(
                "UPDATE tickets SET status = ?, reason = ?, updated_at = ? "
                "WHERE kiosk = ? AND request_id = ? AND source = ?",
                (item.status, item.reason, stamp, kiosk, item.request_id, item.source),
            )

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
                {"printed": 0, "voided": 0, "allocated": 0, "offline": 0, "called": 0, "online_last": 0},
            )
            entry[t["status"]] += 1
            entry["offline"] += t["source"] == "offline"
            entry["called"] += t["called_at"] is not None
            if t["source"] == "online":
                entry["online_last"] = max(entry["online_last"], t["seq"])
                online[t["service"]] = online.get(t["service"], 0) + 1
        for service, entry in out.items():
            entry["online_missing"] = entry["online_last"] - online.get(service, 0)
        return out


# -- the MQTT service -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllocatorSettings:
    center_id: str
    db_path: Path
    host: str = "127.0.0.1"
    port: int = 8884
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    topic_root: str = "motcua/v1"
    timezone: str = "Asia/Ho_Chi_Minh"
    plan: NumberPlan = field(default_factory=NumberPlan)
    client_id: str = ""
    #: most messages answered from one transaction
    batch_max: int = 200


@dataclass(frozen=True)
class _Incoming:
    topic: str
    payload: bytes
    qos: int
    generation: int
    mid: int
    response_topic: str | None
    correlation: bytes | None


class Allocator:
    """The allocator service: a worker thread between the MQTT session and the book."""

    def __init__(self, settings: AllocatorSettings, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.topics = CenterTopics(settings.center_id, settings.topic_root)
        self.book = AllocatorBook(settings.db_path, settings.plan, center_zone(settings.timezone))
        self._queue: queue.Queue[_Incoming | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.answered = 0
        will = Will(self.topics.allocator_status, self._status("offline", "lost"))
        self.link = MqttLink(
            client_id=settings.client_id or f"allocator-{settings.center_id}",
            host=settings.host,
            port=settings.port,
            tls=TlsConfig(settings.ca_file, settings.cert_file, settings.key_file),
            session_expiry_s=0,
            backoff=Backoff(0.2, 10.0),
            will=lambda: will,
            on_connected=self._on_connected,
            max_inflight=1000,
        )

    def _status(
        self, state: Literal["online", "offline"], reason: Literal["birth", "shutdown", "lost"]
    ) -> bytes:
        plan = self.settings.plan
        return AllocatorStatus(state, reason, plan.offline_base, plan.offline_block).to_payload()

    def _on_connected(self, generation: int) -> None:
        self.link.publish(self.topics.allocator_status, self._status("online", "birth"), qos=1, retain=True)

    def _on_message(self, message: Message) -> None:
        self._queue.put(
            _Incoming(
                message.topic,
                message.payload,
                message.qos,
                message.generation,
                message.mid,
                message.response_topic,
                message.correlation_data,
            )
        )

    def start(self) -> None:
        self.link.subscribe(self.topics.all_ticket_requests, 1, self._on_message)
        self.link.subscribe(self.topics.queue_called, 1, self._on_message)
        self._thread = threading.Thread(target=self._work, name="allocator", daemon=True)
        self._thread.start()
        self.link.start()

    def wait_connected(self, timeout: float) -> bool:
        return self.link.wait_connected(timeout)

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(10)
        self.link.stop(last=(self.topics.allocator_status, self._status("offline", "shutdown"), True))
        self.book.close()

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.settings.batch_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            try:
                self._answer(batch)
            except AllocatorError as exc:
                # Nothing was committed and nothing is answered: the kiosks print from their blocks.
                log.error("%s", exc.message)
                time.sleep(0.5)

    def _kiosk_of(self, topic: str) -> str | None:
        """The kiosk id of a request topic of this center (the broker's ACL vouches for it)."""
        try:
            ref = parse_topic(topic, self.settings.topic_root)
        except ContractError:
            return None
        if ref.center_id != self.settings.center_id or ref.channel != "ticket/req":
            return None
        return ref.kiosk_id

    def _answer(self, batch: list[_Incoming]) -> None:
        now = self.clock()
        replies: list[tuple[str, bytes, bytes | None]] = []

        def work() -> list[Any]:
            for message in batch:
                if message.topic == self.topics.queue_called:
                    self.book.called(message.payload, now)
                    continue
                kiosk = self._kiosk_of(message.topic)
                if kiosk is None:
                    log.warning("ignored a request on %s", message.topic[:200])
                    continue
                answer = self.book.handle(kiosk, message.payload, now)
                topic = self.topics.kiosk(kiosk).ticket_res
                if message.response_topic and message.response_topic != topic:
                    log.warning(
                        "kiosk %s asked for answers on %s; answering on %s",
                        kiosk,
                        message.response_topic[:200],
                        topic,
                    )
                replies.append((topic, answer.to_payload(), message.correlation))
            return []

        self.book.transaction(work)
        # Durable first, then answered, then acknowledged to the broker.
        for topic, body, correlation in replies:
            self.link.publish(topic, body, qos=1, correlation_data=correlation)
        self.answered += len(replies)
        for message in batch:
            self.link.ack(message.generation, message.mid, message.qos)
