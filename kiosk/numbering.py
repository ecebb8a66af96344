"""Queue numbers from the center allocator, with an offline block so a ticket always prints in time.

``CenterTicketSource`` implements ``kiosk.ticketing.TicketNumberSource`` for ``[numbering] mode =
"center"``. The app never speaks MQTT: it asks the edge agent on ``<data_dir>/agent.sock`` and the
agent's relay (``edge_agent/tickets.py``) asks the allocator (``fleet/allocator/``).

Why no number can be handed out twice (docs/numbering.md has the whole argument):
- The request id is stored (fsync) before the allocator is asked; a kiosk restarted mid-issue asks
  again with the same id and the allocator, idempotent by id, answers the same number, which is then
  voided as interrupted (it was never printed: a number is stored before it goes to the printer).
- Offline numbers come from this kiosk's own block of each service's day (``NumberPlan``): disjoint
  from the allocator's online range and from every other slot's block. The block counter is advanced
  in the same transaction that records the ticket, keyed by the center day, so neither a restart nor a
  day change can reuse one.
- A number stored but neither printed nor voided when the kiosk died is voided as interrupted at the
  next start, never reissued.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from common.errors import MotcuaError
from contract.config import ServiceArea
from contract.errors import ContractError
from contract.tickets import (
    ERR_CONFIG_MISMATCH,
    ERR_EXHAUSTED,
    ERR_SLOT_CONFLICT,
    MAX_REPORT_ITEMS,
    NumberPlan,
    ReportItem,
    TicketRequest,
    TicketResponse,
    center_day,
    center_zone,
    format_number,
)
from contract.wire import now_iso
from kiosk.config import KioskConfig, NumberingSection
from kiosk.ticketing import (
    AllocatedNumber,
    LocalTicketBook,
    NoNumberAvailableError,
    NumberRefusedError,
    TicketingError,
    TicketNumberSource,
)

log = logging.getLogger(__name__)

AGENT_SOCKET = "agent.sock"

#: ask(command, args, timeout_s) -> the relay's answer; raises MotcuaError when there is none
Ask = Callable[[str, dict[str, Any], float], dict[str, Any]]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    request_id TEXT PRIMARY KEY, service TEXT NOT NULL, prefix TEXT NOT NULL, priority INTEGER NOT NULL,
    day TEXT NOT NULL, seq INTEGER, number TEXT, source TEXT CHECK (source IN ('online', 'offline')),
    status TEXT NOT NULL CHECK (status IN ('asking', 'allocated', 'printed', 'voided')),
    reason TEXT, issued_at TEXT NOT NULL, reported TEXT, waiting_ahead INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS tickets_number ON tickets (day, service, seq) WHERE seq IS NOT NULL;
CREATE TABLE IF NOT EXISTS offline_counters (
    day TEXT NOT NULL, service TEXT NOT NULL, last INTEGER NOT NULL, PRIMARY KEY (day, service)
);
"""


#: a ticket the allocator has yet to hear about: asked by a run that died, or a status not acknowledged
_UNREPORTED = "status = 'asking' OR (seq IS NOT NULL AND (reported IS NULL OR reported != status))"


@dataclass(frozen=True)
class LastRequest:
    """The newest request this kiosk settled: where its number came from, or why it got none."""

    #: when it was asked, in the center's time zone
    at: datetime
    #: None: no number was given (``reason`` says why)
    number: str | None
    #: ``online``: the center's allocator; ``offline``: this kiosk's own block (the center did not answer)
    source: Literal["online", "offline"] | None
    #: why there is no number: the code stored with the void (``offline_blocked``, ``slot_conflict``, ...)
    reason: str | None = None


@dataclass(frozen=True)
class NumberingStatus:
    """Where this kiosk's queue numbers come from, for the technician screen: counts and codes only
    (a ticket row holds no personal data, and none is copied here)."""

    mode: Literal["local", "center"]
    #: the rest is the center mode's (None in local mode)
    slot: int | None = None
    #: first and last sequence of this kiosk's offline block, the same for every service and day
    offline_block: tuple[int, int] | None = None
    last: LastRequest | None = None
    #: tickets whose latest status the allocator has not acknowledged yet
    pending_reports: int | None = None
    #: of those, numbers this kiosk issued offline: the center's queue does not know them yet
    pending_offline: int | None = None
    #: reported tickets the allocator answered as conflicts since the app started (kept in memory)
    conflicts: int | None = None
    #: the allocator's code when it forbade offline numbers (``slot_conflict``, ``config_mismatch``)
    offline_blocked: str | None = None
    #: the allocator's own words for it (English, as it sent them)
    offline_blocked_reason: str | None = None


def numbering_status(source: TicketNumberSource) -> NumberingStatus:
    """What the technician screen shows of ``source`` (the runtime's ticket source)."""
    if isinstance(source, CenterTicketSource):
        return source.status()
    return NumberingStatus("local")


def agent_ask(socket_path: Path) -> Ask:
    """Ask the agent's relay over its control socket (``common.ipc``)."""
    from common import ipc

    def ask(cmd: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        return ipc.call(socket_path, cmd, args, timeout=timeout_s)  # a torn reply: ipc.BadReplyError

    return ask


class CenterTicketSource:
    """Numbers unique across the center; printed within the budget even when the center is away."""

    def __init__(
        self,
        path: Path,
        *,
        kiosk_id: str,
        numbering: NumberingSection,
        ask: Ask,
        timezone: str = "Asia/Ho_Chi_Minh",
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.kiosk_id = kiosk_id
        self.numbering = numbering
        self.plan = NumberPlan(numbering.offline_base, numbering.offline_block)
        self.block = self.plan.offline_range(numbering.slot)
        self.zone = center_zone(timezone)
        self.ask = ask
        #: (code, the allocator's reason) once it said our slot or plan is wrong: no offline numbers
        #: from then on, until the app restarts; None = allowed
        self._blocked: tuple[str, str] | None = None
        self.conflicts = 0
        self._lock = threading.Lock()
        self._active: set[str] = set()  # request ids being asked by this process right now
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            # A number stored by a previous run but never confirmed nor voided: it may or may not be on
            # paper. Never reissue it; the allocator hears it as voided ("interrupted").
            interrupted = self._db.execute(
                "UPDATE tickets SET status = 'voided', reason = 'interrupted' WHERE status = 'allocated'"
            ).rowcount
        except sqlite3.Error as exc:
            raise TicketingError(f"ticket store {path}: {exc}") from exc
        if interrupted:
            log.warning("%d queue number(s) interrupted by a restart were voided", interrupted)

    # -- TicketNumberSource -----------------------------------------------------------------------

    def allocate(self, service: ServiceArea, priority: bool, now: datetime) -> AllocatedNumber:
        started = time.monotonic()
        budget_s = self.numbering.online_budget_ms / 1000
        day = center_day(now, self.zone)
        request_id = f"{self.kiosk_id}-{uuid.uuid4().hex[:20]}"
        with self._lock:  # before the row exists, so the reconcile loop never takes it for interrupted
            self._active.add(request_id)
        self._execute(
            "INSERT INTO tickets (request_id, service, prefix, priority, day, status, issued_at) "
            "VALUES (?, ?, ?, ?, ?, 'asking', ?)",
            (request_id, service.code, service.prefix, int(priority), day, now_iso(now)),
        )
        try:
            request = TicketRequest(
                request_id, "allocate", self.numbering.slot, self.plan,
                service=service.code, prefix=service.prefix, priority=priority, day=day,
            )
            answer = self._ask_allocator(request, budget_s - (time.monotonic() - started))
            if answer is not None and answer.status == "ok":
                return self._online(request_id, answer)
            if answer is not None:
                self._refused(request_id, answer)
            return self._offline(request_id, service, day)
        finally:
            with self._lock:
                self._active.discard(request_id)
            self._wake.set()

    def confirm(self, allocated: AllocatedNumber) -> None:
        self._set_status(allocated, "printed", None)

    def void(self, allocated: AllocatedNumber, reason: str) -> None:
        self._set_status(allocated, "voided", reason[:64])

    def issued_today(self, now: datetime) -> int:
        row = self._query(
            "SELECT COUNT(*) FROM tickets WHERE day = ? AND status = 'printed'", (center_day(now, self.zone),)
        )
        return int(row[0][0])

    # -- the three ways a number is decided ---------------------------------------------------------

    def _request(
        self, cmd: str, request: TicketRequest, timeout_s: float, slack_s: float = 0.5
    ) -> TicketResponse | None:
        """The allocator's answer through the agent's relay, or None when there is none usable.

        The relay waits ``timeout_s``; the socket ``slack_s`` longer, so the relay's own "no answer"
        arrives before the socket gives up."""
        try:
            args = {"request": request.to_data(), "timeout_ms": round(timeout_s * 1000)}
            answer = self.ask(cmd, args, timeout_s + slack_s)
            return TicketResponse.from_data(answer)
        except MotcuaError as exc:
            log.info("allocator not reached (%s)", exc.message)
        except ContractError as exc:
            log.error("unusable answer from the allocator: %s", exc.message)
        return None

    def _ask_allocator(self, request: TicketRequest, budget_s: float) -> TicketResponse | None:
        """The allocator's answer, or None when there is none within the budget."""
        if budget_s <= 0.01:
            return None
        return self._request("ticket.allocate", request, budget_s, slack_s=0.2)

    def _online(self, request_id: str, answer: TicketResponse) -> AllocatedNumber:
        day, seq, number = answer.day, answer.seq, answer.number
        if day is None or seq is None or number is None:
            raise TicketingError("allocator answer without a number")
        waiting_ahead = answer.waiting_ahead
        if seq >= self.plan.offline_base:
            raise TicketingError(f"allocator answered {number}, inside the offline blocks: plans differ")
        self._execute(
            "UPDATE tickets SET day = ?, seq = ?, number = ?, source = 'online', status = 'allocated', "
            "reported = 'allocated', waiting_ahead = ? WHERE request_id = ?",
            (day, seq, number, waiting_ahead, request_id),
        )
        return AllocatedNumber(number, day, waiting_ahead, answer.expected_wait_min)

    def _refused(self, request_id: str, answer: TicketResponse) -> None:
        """The allocator answered with an error: some errors forbid the offline block too."""
        code, reason = str(answer.error), answer.reason or ""
        if code in (ERR_SLOT_CONFLICT, ERR_CONFIG_MISMATCH):
            self._block_offline(code, reason)
        elif code != ERR_EXHAUSTED:
            log.error("allocator refused a request: %s %s", code, reason)
        if code != ERR_EXHAUSTED:
            self._execute(
                "UPDATE tickets SET status = 'voided', reason = ?, reported = 'voided' WHERE request_id = ?",
                (code[:64], request_id),
            )
            raise NumberRefusedError(f"allocator refused: {code}: {reason}")

    @property
    def offline_blocked(self) -> str | None:
        """Why offline numbers are refused (``code: reason``, for logs and health); None = allowed."""
        return None if self._blocked is None else f"{self._blocked[0]}: {self._blocked[1]}"

    def _block_offline(self, code: str, reason: str) -> None:
        # Our block may overlap another kiosk's: printing from it could duplicate a number.
        if self._blocked != (code, reason):
            self._blocked = (code, reason)
            log.error("allocator refused our numbering (%s: %s): no offline numbers", code, reason)

    def _offline(self, request_id: str, service: ServiceArea, day: str) -> AllocatedNumber:
        if self.offline_blocked is not None:
            self._execute(
                "UPDATE tickets SET status = 'voided', reason = 'offline_blocked', reported = 'voided' "
                "WHERE request_id = ?",
                (request_id,),
            )
            raise NoNumberAvailableError(
                f"center unreachable and offline numbers refused ({self.offline_blocked})"
            )
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    row = self._db.execute(
                        "SELECT last FROM offline_counters WHERE day = ? AND service = ?", (day, service.code)
                    ).fetchone()
                    seq = max(row[0] + 1 if row else 0, self.block.start)
                    if seq >= self.block.stop:
                        self._db.execute(
                            "UPDATE tickets SET status = 'voided', reason = 'offline_block_used_up', "
                            "reported = 'voided' WHERE request_id = ?",
                            (request_id,),
                        )
                        self._db.execute("COMMIT")
                        raise NoNumberAvailableError(
                            f"center unreachable, offline block of {service.code} for {day} used up"
                        )
                    number = format_number(service.prefix, seq)
                    self._db.execute(
                        "INSERT OR REPLACE INTO offline_counters VALUES (?, ?, ?)", (day, service.code, seq)
                    )
                    self._db.execute(
                        "UPDATE tickets SET day = ?, seq = ?, number = ?, source = 'offline', "
                        "status = 'allocated' WHERE request_id = ?",
                        (day, seq, number, request_id),
                    )
                    self._db.execute("COMMIT")
                except sqlite3.Error:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise TicketingError(f"ticket store: {exc}") from exc
        log.info("offline number %s (%s, %s)", number, service.code, day)
        return AllocatedNumber(number, day, None)

    # -- reconcile: tell the allocator what happened ------------------------------------------------

    def start(self) -> None:
        """Start the background reconcile loop (interrupted requests, printed/voided/offline reports)."""
        self._thread = threading.Thread(target=self._sync_loop, name="ticket-sync", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _sync_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync_once()
            except MotcuaError as exc:
                log.warning("ticket reconcile: %s", exc.message)
            except Exception:
                log.exception("ticket reconcile failed")
            self._wake.wait(self.numbering.sync_interval_s)
            self._wake.clear()

    def sync_once(self, timeout_s: float = 2.0) -> bool:
        """One round: resolve interrupted requests, then report. True when nothing is left to send."""
        self._resolve_interrupted(timeout_s)
        while True:
            rows = self._query(
                "SELECT request_id, day, service, prefix, seq, source, status, priority, issued_at, reason "
                "FROM tickets WHERE seq IS NOT NULL AND status != 'asking' "
                "AND (reported IS NULL OR reported != status) ORDER BY rowid LIMIT ?",
                (MAX_REPORT_ITEMS,),
            )
            if not rows:
                return self.pending_reports() == 0
            items = tuple(
                ReportItem(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9]) for r in rows
            )
            request = TicketRequest(
                f"{self.kiosk_id}-r{uuid.uuid4().hex[:16]}", "report", self.numbering.slot, self.plan,
                tickets=items,
            )
            answer = self._request("ticket.report", request, timeout_s)
            if answer is None:
                return False
            if answer.status != "ok":
                if answer.error in (ERR_SLOT_CONFLICT, ERR_CONFIG_MISMATCH):
                    self._block_offline(answer.error, answer.reason or "")
                log.error("allocator refused a report: %s %s", answer.error, answer.reason)
                return False
            sent = {item.request_id: item.status for item in items}
            for conflict in answer.conflicts or []:
                self.conflicts += 1
                log.error("allocator: %s", conflict.reason)
            conflicted = [c.request_id for c in answer.conflicts or []]
            settled = [*(answer.accepted or []), *conflicted]
            with self._lock:
                self._db.executemany(
                    "UPDATE tickets SET reported = ? WHERE request_id = ?",
                    [(sent[rid], rid) for rid in settled if rid in sent],
                )

    def _resolve_interrupted(self, timeout_s: float) -> None:
        """Requests asked by a run that died: ask again with the same id, then void the answer."""
        with self._lock:  # one snapshot: a live request is in _active from before its row exists
            rows = [
                row for row in self._db.execute(
                    "SELECT request_id, service, prefix, priority, day FROM tickets WHERE status = 'asking'"
                )
                if row[0] not in self._active
            ]
        for request_id, service, prefix, priority, day in rows:
            request = TicketRequest(
                request_id, "allocate", self.numbering.slot, self.plan,
                service=service, prefix=prefix, priority=bool(priority), day=day,
            )
            answer = self._request("ticket.allocate", request, timeout_s)
            if answer is None:
                return  # still away; next round
            if answer.status == "ok" and answer.seq is not None:
                self._execute(
                    "UPDATE tickets SET day = ?, seq = ?, number = ?, source = 'online', status = 'voided', "
                    "reason = 'interrupted', reported = 'allocated' "
                    "WHERE request_id = ? AND status = 'asking'",
                    (answer.day, answer.seq, answer.number, request_id),
                )
                log.warning("request %s interrupted by a restart: %s voided", request_id, answer.number)
            else:
                self._execute(
                    "UPDATE tickets SET status = 'voided', reason = 'interrupted', reported = 'voided' "
                    "WHERE request_id = ? AND status = 'asking'",
                    (request_id,),
                )

    def pending_reports(self) -> int:
        row = self._query(f"SELECT COUNT(*) FROM tickets WHERE {_UNREPORTED}", ())
        return int(row[0][0])

    def status(self) -> NumberingStatus:
        """The numbering state for the technician screen (``numbering_status``)."""
        pending = self._query(
            f"SELECT COUNT(*), COALESCE(SUM(source = 'offline'), 0) FROM tickets WHERE {_UNREPORTED}", ()
        )[0]
        newest = self._query(
            "SELECT issued_at, number, source, reason FROM tickets WHERE status != 'asking' "
            "ORDER BY rowid DESC LIMIT 1",
            (),
        )
        last = None
        if newest:
            issued_at, number, source, reason = newest[0]
            at = datetime.fromisoformat(issued_at).astimezone(self.zone)
            last = LastRequest(at, number, source, None if number is not None else reason)
        blocked = self._blocked
        return NumberingStatus(
            "center",
            slot=self.numbering.slot,
            offline_block=(self.block.start, self.block.stop - 1),
            last=last,
            pending_reports=int(pending[0]),
            pending_offline=int(pending[1]),
            conflicts=self.conflicts,
            offline_blocked=None if blocked is None else blocked[0],
            offline_blocked_reason=None if blocked is None else blocked[1],
        )

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            self._db.close()

    # -- storage helpers ---------------------------------------------------------------------------

    def _set_status(self, allocated: AllocatedNumber, status: str, reason: str | None) -> None:
        self._execute(
            "UPDATE tickets SET status = ?, reason = ? WHERE day = ? AND number = ? AND status = 'allocated'",
            (status, reason, allocated.day, allocated.number),
        )
        self._wake.set()

    def _execute(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            try:
                self._db.execute(sql, params)
            except sqlite3.Error as exc:
                raise TicketingError(f"ticket store: {exc}") from exc

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._db.execute(sql, params))
            except sqlite3.Error as exc:
                raise TicketingError(f"ticket store: {exc}") from exc

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket this kiosk knows, for tests and the technician screen (no personal data)."""
        with self._lock:
            cursor = self._db.execute("SELECT * FROM tickets ORDER BY rowid")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def open_ticket_source(config: KioskConfig) -> LocalTicketBook | CenterTicketSource:
    """The number source ``[numbering] mode`` asks for (``local`` keeps the demo free of any broker)."""
    data_dir = config.kiosk.data_dir
    if config.numbering.mode == "local":
        return LocalTicketBook(data_dir / "tickets.sqlite")
    return CenterTicketSource(
        data_dir / "center-tickets.sqlite",
        kiosk_id=config.kiosk.id,
        numbering=config.numbering,
        ask=agent_ask(data_dir / AGENT_SOCKET),
        timezone=config.kiosk.timezone,
    )
