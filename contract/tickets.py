"""Queue numbers between kiosks and the center allocator (docs/mqtt.md "Queue numbers", docs/numbering.md).

``ticket-request/1`` (kiosk -> allocator, on the kiosk's own ``ticket/req``) and
``ticket-response/1`` (allocator -> kiosk), ``queue-called/1`` (counters -> allocator) and
``allocator-status/1`` (allocator, retained). Also the rules both sides must agree on: the center's
local day and the split of each service's daily sequence into an online range and offline blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, ClassVar, Literal, Self

from contract.errors import ContractError
from contract.message import Message
from contract.schema import parse_dataclass
from contract.wire import REQUEST_ID_HINT, REQUEST_ID_PATTERN, now_iso

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
#: most tickets in one report request (keeps a payload well under its 64 KB limit)
MAX_REPORT_ITEMS = 200

#: error codes of a ``ticket-response/1`` with ``status: error``
ERR_BAD_REQUEST = "bad_request"
ERR_EXHAUSTED = "exhausted"
ERR_SLOT_CONFLICT = "slot_conflict"
ERR_CONFIG_MISMATCH = "config_mismatch"
#: the service is not in the center's catalog, or its prefix is not the catalog's (no ticket)
ERR_UNKNOWN_SERVICE = "unknown_service"
#: a report refused for now: the kiosk sent more requests than its rate allows (it retries later).
#: An ``allocate`` over the rate or the kiosk's quota is answered ``exhausted`` instead, so the kiosk
#: prints from its own offline block, which no other kiosk can use.
ERR_RATE_LIMITED = "rate_limited"
ERROR_CODES = (
    ERR_BAD_REQUEST, ERR_EXHAUSTED, ERR_SLOT_CONFLICT, ERR_CONFIG_MISMATCH, ERR_UNKNOWN_SERVICE,
    ERR_RATE_LIMITED,
)

SERVICE_PATTERN = r"[A-Z0-9_]{1,16}"
_REQUEST_ID = {"pattern": REQUEST_ID_PATTERN, "pattern_hint": REQUEST_ID_HINT}
_SERVICE = {"pattern": SERVICE_PATTERN, "pattern_hint": "a service code: 1-16 of A-Z, 0-9, _"}
_PREFIX = {"pattern": r"[A-Z]", "pattern_hint": "one capital letter"}
_DAY = {"pattern": r"\d{4}-\d{2}-\d{2}", "pattern_hint": "YYYY-MM-DD"}
_NUMBER = {"pattern": r"[A-Z][0-9]{3,5}", "pattern_hint": "a queue number such as A012"}
_TIME = {"max_len": 40}


def center_zone(name: str = DEFAULT_TIMEZONE) -> tzinfo:
    """The center's time zone; Vietnam has had no DST since 1975, so +07:00 is a safe fallback."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # no tz database on a minimal image
        if name != DEFAULT_TIMEZONE:
            raise ContractError(f"unknown time zone {name!r} and no tz database to look it up") from None
        return timezone(timedelta(hours=7), "ICT")


def center_day(now: datetime, zone: tzinfo) -> str:
    """The center's local day of ``now`` (a naive time is taken as already local)."""
    if now.tzinfo is None:
        return now.date().isoformat()
    return now.astimezone(zone).date().isoformat()


def format_number(prefix: str, seq: int) -> str:
    """B023; four digits and more once the sequence passes 999 (offline blocks of high slots)."""
    return f"{prefix}{seq:03d}"


@dataclass(frozen=True)
class NumberPlan:
    """How a service's daily sequence is split.

    1 .. offline_base-1 are handed out by the allocator in issue order; from ``offline_base`` on, each
    kiosk slot owns ``offline_block`` numbers it may take alone. The ranges are disjoint by
    construction, so an online number and an offline one, or the offline numbers of two slots, can
    never be equal.
    """

    offline_base: int = 800
    offline_block: int = 20

    def __post_init__(self) -> None:
        if not 2 <= self.offline_base <= 9000 or not 1 <= self.offline_block <= 1000:
            raise ContractError(
                f"number plan out of range: offline_base {self.offline_base} (2-9000), "
                f"offline_block {self.offline_block} (1-1000)"
            )

    @property
    def online_max(self) -> int:
        return self.offline_base - 1

    def offline_range(self, slot: int) -> range:
        first = self.offline_base + slot * self.offline_block
        return range(first, first + self.offline_block)

    def slot_of(self, seq: int) -> int | None:
        """The slot whose offline block holds ``seq``; None for an online number."""
        if seq < self.offline_base:
            return None
        return (seq - self.offline_base) // self.offline_block


@dataclass(frozen=True)
class ReportItem:
    """One ticket as the kiosk knows it, for the allocator's books (never any personal data)."""

    request_id: str = field(metadata=_REQUEST_ID)
    day: str = field(metadata=_DAY)
    service: str = field(metadata=_SERVICE)
    prefix: str = field(metadata=_PREFIX)
    seq: int = field(metadata={"min": 1, "max": 99_999})
    source: Literal["online", "offline"]
    #: "allocated" for an offline number not yet printed or voided
    status: Literal["allocated", "printed", "voided"]
    priority: bool = False
    issued_at: str = field(default="", metadata=_TIME)
    reason: str | None = field(default=None, metadata={"max_len": 64})

    @property
    def number(self) -> str:
        return format_number(self.prefix, self.seq)

    def to_data(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request_id": self.request_id, "day": self.day, "service": self.service, "prefix": self.prefix,
            "seq": self.seq, "number": self.number, "source": self.source, "status": self.status,
            "priority": self.priority, "issued_at": self.issued_at,
        }
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class _RequestFields:
    request_id: str = field(metadata=_REQUEST_ID)
    op: Literal["allocate", "report"]
    slot: int = field(metadata={"min": 0, "max": 999})
    offline_base: int = field(metadata={"min": 2, "max": 9000})
    offline_block: int = field(metadata={"min": 1, "max": 1000})
    sent_at: str = field(default="", metadata=_TIME)
    service: str | None = field(default=None, metadata=_SERVICE)
    prefix: str | None = field(default=None, metadata=_PREFIX)
    priority: bool = False
    day: str = field(default="", metadata={"pattern": r"(\d{4}-\d{2}-\d{2})?", "pattern_hint": "YYYY-MM-DD"})
    tickets: list[dict[str, Any]] | None = field(default=None, metadata={"max_items": MAX_REPORT_ITEMS})


@dataclass(frozen=True)
class TicketRequest(Message):
    """``ticket-request/1``: what a kiosk asks the allocator: ``allocate`` a number, or ``report`` tickets."""

    SCHEMA: ClassVar[str] = "ticket-request/1"
    MAX_BYTES: ClassVar[int] = 64 * 1024

    request_id: str
    op: Literal["allocate", "report"]
    slot: int
    plan: NumberPlan
    service: str = ""
    prefix: str = ""
    priority: bool = False
    day: str = ""  # the kiosk's idea of the center day (informative: the allocator's clock decides)
    tickets: tuple[ReportItem, ...] = ()
    sent_at: str = ""

    @classmethod
    def from_data(cls, data: Any) -> Self:
        body = cls.body_of(data)
        f = parse_dataclass(_RequestFields, body, "ticket-request", lenient=True)
        plan = NumberPlan(f.offline_base, f.offline_block)
        if f.op == "allocate":
            if f.service is None or f.prefix is None:
                raise ContractError("ticket-request: an allocate request needs service and prefix")
            return cls(f.request_id, "allocate", f.slot, plan, service=f.service, prefix=f.prefix,
                       priority=f.priority, day=f.day, sent_at=f.sent_at)
        if f.tickets is None:
            raise ContractError("ticket-request.tickets: a report needs a list of tickets")
        tickets = tuple(
            parse_dataclass(ReportItem, item, f"ticket-request.tickets[{i}]", lenient=True)
            for i, item in enumerate(f.tickets)
        )
        return cls(f.request_id, "report", f.slot, plan, tickets=tickets, sent_at=f.sent_at)

    def to_data(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": self.SCHEMA, "request_id": self.request_id, "op": self.op, "slot": self.slot,
            "offline_base": self.plan.offline_base, "offline_block": self.plan.offline_block,
            "sent_at": self.sent_at or now_iso(),
        }
        if self.op == "allocate":
            out.update(service=self.service, prefix=self.prefix, priority=self.priority, day=self.day)
        else:
            out["tickets"] = [t.to_data() for t in self.tickets]
        return out


@dataclass(frozen=True)
class Conflict:
    request_id: str = field(metadata=_REQUEST_ID)
    reason: str = field(metadata={"max_len": 300})


@dataclass(frozen=True)
class TicketResponse(Message):
    """``ticket-response/1``: a number (``allocate``), what was taken into the books (``report``), or an
    error with its code. Build with ``allocated``, ``reported`` or ``refused``."""

    SCHEMA: ClassVar[str] = "ticket-response/1"
    MAX_BYTES: ClassVar[int] = 64 * 1024
    OMIT_NONE: ClassVar[bool] = True  # an answer carries the fields of its op only

    request_id: str | None = field(metadata=_REQUEST_ID)
    op: Literal["allocate", "report"] | None
    status: Literal["ok", "error"]
    at: str = field(default_factory=now_iso, metadata=_TIME)
    # allocate
    day: str | None = field(default=None, metadata=_DAY)
    service: str | None = field(default=None, metadata=_SERVICE)
    seq: int | None = field(default=None, metadata={"min": 1, "max": 99_999})
    number: str | None = field(default=None, metadata=_NUMBER)
    #: tickets of the same service and day issued before this one, neither voided nor called
    waiting_ahead: int | None = field(default=None, metadata={"min": 0})
    #: minutes this ticket should wait (``contract.queue.expected_wait_min``); absent while the pace of
    #: the service is not known yet (no ticket served today)
    expected_wait_min: int | None = field(default=None, metadata={"min": 0, "max": 1440})
    # report
    accepted: list[str] | None = field(default=None, metadata={"max_items": MAX_REPORT_ITEMS})
    conflicts: list[Conflict] | None = field(default=None, metadata={"max_items": MAX_REPORT_ITEMS})
    # error
    error: str | None = field(default=None, metadata={"pattern": r"[a-z_]{1,32}"})
    reason: str | None = field(default=None, metadata={"max_len": 500})

    @classmethod
    def allocated(
        cls, request_id: str, *, day: str, service: str, seq: int, number: str, waiting_ahead: int,
        expected_wait_min: int | None = None, at: str | None = None,
    ) -> TicketResponse:
        return cls(request_id, "allocate", "ok", at or now_iso(), day=day, service=service, seq=seq,
                   number=number, waiting_ahead=waiting_ahead, expected_wait_min=expected_wait_min)

    @classmethod
    def reported(
        cls, request_id: str, accepted: list[str], conflicts: list[Conflict], at: str | None = None
    ) -> TicketResponse:
        return cls(request_id, "report", "ok", at or now_iso(), accepted=accepted, conflicts=conflicts)

    @classmethod
    def refused(
        cls, request_id: str | None, op: Literal["allocate", "report"] | None, error: str, reason: str,
        at: str | None = None,
    ) -> TicketResponse:
        return cls(request_id, op, "error", at or now_iso(), error=error, reason=reason[:500])


@dataclass(frozen=True)
class QueueCalled(Message):
    """``queue-called/1``: a counter called a number (it no longer waits)."""

    SCHEMA: ClassVar[str] = "queue-called/1"
    MAX_BYTES: ClassVar[int] = 4 * 1024

    service: str = field(metadata=_SERVICE)
    number: str = field(metadata=_NUMBER)
    counter: str | None = field(default=None, metadata={"pattern": r"[A-Za-z0-9_-]{1,8}"})
    #: default: the allocator's current day
    day: str | None = field(default=None, metadata=_DAY)


@dataclass(frozen=True)
class AllocatorHealth:
    """What the allocator's supervisor sees (minor addition to ``allocator-status/1``; all optional)."""

    OMIT_NONE: ClassVar[bool] = True

    #: the request worker is alive (the supervisor restarts it when it is not)
    worker_alive: bool = True
    worker_restarts: int = field(default=0, metadata={"min": 0})
    #: messages whose handling raised (each answered ``bad_request`` when someone could be answered)
    message_errors: int = field(default=0, metadata={"min": 0})
    #: batches not committed because the book failed (disk, lock); the kiosks printed offline
    store_errors: int = field(default=0, metadata={"min": 0})
    answered: int = field(default=0, metadata={"min": 0})
    refused: int = field(default=0, metadata={"min": 0})
    rate_limited: int = field(default=0, metadata={"min": 0})
    #: unconfirmed online numbers that stopped counting as waiting (``unconfirmed`` voids)
    expired: int = field(default=0, metadata={"min": 0})
    #: services in the center's catalog; None: no catalog known (prefixes pinned per day instead)
    catalog_services: int | None = field(default=None, metadata={"min": 0})
    #: generation of the enrolled-kiosks registry in use; None: enrollment not checked
    registry_generation: int | None = field(default=None, metadata={"min": 0})
    #: why the registry is not in use when one is configured ("" when fine)
    registry_problem: str = field(default="", metadata={"max_len": 300})
    #: the day of the queue's stats the answers' expected wait comes from; None: no stats
    queue_stats_day: str | None = field(default=None, metadata=_DAY)


@dataclass(frozen=True)
class AllocatorStatus(Message):
    """``allocator-status/1``, retained: online after every connect, offline as its Will and on a clean
    stop. While it says offline, kiosks print from their blocks without waiting."""

    SCHEMA: ClassVar[str] = "allocator-status/1"
    MAX_BYTES: ClassVar[int] = 4 * 1024
    OMIT_NONE: ClassVar[bool] = True  # the Will carries no health

    state: Literal["online", "offline"]
    reason: Literal["birth", "shutdown", "lost"]
    offline_base: int = field(default=800, metadata={"min": 2, "max": 9000})
    offline_block: int = field(default=20, metadata={"min": 1, "max": 1000})
    at: str = field(default_factory=now_iso, metadata=_TIME)
    #: while online: republished (same state and reason) whenever it changes
    health: AllocatorHealth | None = None

