"""The queue-number contract between kiosks and the center allocator (docs/mqtt.md, "Queue numbers").

Shared by both sides so they agree in one place: topics, payload schemas, the center's local day and
the split of each service's daily sequence into an online range (allocator) and per-kiosk offline
blocks (kiosk alone, when the center cannot be reached). Pure functions, no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from kiosk.errors import KioskError

SCHEMA_REQUEST = "ticket-request/1"
SCHEMA_RESPONSE = "ticket-response/1"
SCHEMA_CALLED = "queue-called/1"
SCHEMA_ALLOCATOR_STATUS = "allocator-status/1"

#: the scope name of center-wide topics (kiosk ids cannot start with "_")
CENTER_SCOPE = "_center"
DEFAULT_ROOT = "motcua/v1"
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
SERVICE_RE = re.compile(r"[A-Z0-9_]{1,16}")
PREFIX_RE = re.compile(r"[A-Z]")
DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
KIOSK_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")

OPS = ("allocate", "report")
SOURCES = ("online", "offline")
#: statuses a kiosk reports; "allocated" for an offline number not yet printed or voided
REPORT_STATUSES = ("allocated", "printed", "voided")
#: most tickets in one report request (keeps a payload well under 64 KB)
MAX_REPORT_ITEMS = 200

#: error codes of a ``ticket-response/1`` with ``status: error``
ERR_BAD_REQUEST = "bad_request"
ERR_EXHAUSTED = "exhausted"
ERR_SLOT_CONFLICT = "slot_conflict"
ERR_CONFIG_MISMATCH = "config_mismatch"


class ProtocolError(KioskError):
    """A ticket message does not follow the contract; it is refused, never acted on."""


def center_zone(name: str = DEFAULT_TIMEZONE) -> tzinfo:
    """The center's time zone; Vietnam has had no DST since 1975, so +07:00 is a safe fallback."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # no tz database on a minimal image
        if name != DEFAULT_TIMEZONE:
            raise ProtocolError(f"unknown time zone {name!r} and no tz database to look it up") from None
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
            raise ProtocolError(
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


# -- topics --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketTopics:
    root: str
    center_id: str

    def request(self, kiosk_id: str) -> str:
        return f"{self.root}/{self.center_id}/{kiosk_id}/ticket/req"

    def response(self, kiosk_id: str) -> str:
        return f"{self.root}/{self.center_id}/{kiosk_id}/ticket/res"

    @property
    def all_requests(self) -> str:
        return f"{self.root}/{self.center_id}/+/ticket/req"

    @property
    def called(self) -> str:
        return f"{self.root}/{self.center_id}/{CENTER_SCOPE}/queue/called"

    @property
    def allocator_status(self) -> str:
        return f"{self.root}/{self.center_id}/{CENTER_SCOPE}/allocator/status"

    def kiosk_of(self, topic: str) -> str | None:
        """The kiosk id of a request topic of this center (the broker's ACL vouches for it)."""
        parts = topic.split("/")
        root_parts = self.root.split("/")
        n = len(root_parts)
        if (
            len(parts) == n + 4
            and parts[:n] == root_parts
            and parts[n] == self.center_id
            and parts[n + 2 :] == ["ticket", "req"]
            and KIOSK_RE.fullmatch(parts[n + 1])
        ):
            return parts[n + 1]
        return None


# -- payloads ------------------------------------------------------------------------------------------


def now_iso(clock: datetime | None = None) -> str:
    return (clock or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")


def dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def loads(payload: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"{what}: not UTF-8 JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ProtocolError(f"{what}: expected a JSON object")
    return data


def _str(data: dict[str, Any], key: str, pattern: re.Pattern[str], what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ProtocolError(f"{what}.{key}: expected {pattern.pattern}, got {value!r}")
    return value


def _int(data: dict[str, Any], key: str, what: str, low: int, high: int) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProtocolError(f"{what}.{key}: expected an integer {low}-{high}, got {value!r}")
    return value


@dataclass(frozen=True)
class ReportItem:
    """One ticket as the kiosk knows it, for the allocator's books (never any personal data)."""

    request_id: str
    day: str
    service: str
    prefix: str
    seq: int
    source: str
    status: str
    priority: bool
    issued_at: str
    reason: str | None = None

    @property
    def number(self) -> str:
        return format_number(self.prefix, self.seq)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "day": self.day,
            "service": self.service,
            "prefix": self.prefix,
            "seq": self.seq,
            "number": self.number,
            "source": self.source,
            "status": self.status,
            "priority": self.priority,
            "issued_at": self.issued_at,
        }
        if self.reason:
            out["reason"] = self.reason
        return out

    @classmethod
    def parse(cls, data: Any, what: str) -> ReportItem:
        if not isinstance(data, dict):
            raise ProtocolError(f"{what}: expected an object")
        source, status = data.get("source"), data.get("status")
        if source not in SOURCES:
            raise ProtocolError(f"{what}.source: expected one of {SOURCES}, got {source!r}")
        if status not in REPORT_STATUSES:
            raise ProtocolError(f"{what}.status: expected one of {REPORT_STATUSES}, got {status!r}")
        reason = data.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 64):
            raise ProtocolError(f"{what}.reason: expected a string of at most 64 characters")
        issued_at = data.get("issued_at")
        if not isinstance(issued_at, str) or len(issued_at) > 40:
            raise ProtocolError(f"{what}.issued_at: expected an ISO time")
        return cls(
            request_id=_str(data, "request_id", REQUEST_ID_RE, what),
            day=_str(data, "day", DAY_RE, what),
            service=_str(data, "service", SERVICE_RE, what),
            prefix=_str(data, "prefix", PREFIX_RE, what),
            seq=_int(data, "seq", what, 1, 99_999),
            source=str(source),
            status=str(status),
            priority=bool(data.get("priority", False)),
            issued_at=issued_at,
            reason=reason,
        )


@dataclass(frozen=True)
class TicketRequest:
    """``ticket-request/1``: what a kiosk asks the allocator."""

    request_id: str
    op: str
    slot: int
    plan: NumberPlan
    service: str = ""
    prefix: str = ""
    priority: bool = False
    day: str = ""  # the kiosk's idea of the center day (informative: the allocator's clock decides)
    tickets: tuple[ReportItem, ...] = ()
    sent_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA_REQUEST,
            "request_id": self.request_id,
            "op": self.op,
            "slot": self.slot,
            "offline_base": self.plan.offline_base,
            "offline_block": self.plan.offline_block,
            "sent_at": self.sent_at or now_iso(),
        }
        if self.op == "allocate":
            out.update(service=self.service, prefix=self.prefix, priority=self.priority, day=self.day)
        else:
            out["tickets"] = [t.to_dict() for t in self.tickets]
        return out

    @classmethod
    def parse(cls, payload: bytes) -> TicketRequest:
        data = loads(payload, "ticket request")
        if data.get("schema") != SCHEMA_REQUEST:
            raise ProtocolError(f"ticket request: schema {data.get('schema')!r}, expected {SCHEMA_REQUEST}")
        op = data.get("op")
        if op not in OPS:
            raise ProtocolError(f"ticket request.op: expected one of {OPS}, got {op!r}")
        what = "ticket request"
        try:
            plan = NumberPlan(
                _int(data, "offline_base", what, 2, 9000), _int(data, "offline_block", what, 1, 1000)
            )
        except ProtocolError:
            raise
        request_id = _str(data, "request_id", REQUEST_ID_RE, what)
        slot = _int(data, "slot", what, 0, 999)
        if op == "allocate":
            day = data.get("day", "")
            if not isinstance(day, str) or (day and not DAY_RE.fullmatch(day)):
                raise ProtocolError(f"{what}.day: expected YYYY-MM-DD")
            return cls(
                request_id,
                "allocate",
                slot,
                plan,
                service=_str(data, "service", SERVICE_RE, what),
                prefix=_str(data, "prefix", PREFIX_RE, what),
                priority=bool(data.get("priority", False)),
                day=day,
                sent_at=str(data.get("sent_at", "")),
            )
        items = data.get("tickets")
        if not isinstance(items, list) or len(items) > MAX_REPORT_ITEMS:
            raise ProtocolError(f"{what}.tickets: expected a list of at most {MAX_REPORT_ITEMS}")
        tickets = tuple(ReportItem.parse(item, f"{what}.tickets[{i}]") for i, item in enumerate(items))
        return cls(request_id, "report", slot, plan, tickets=tickets, sent_at=str(data.get("sent_at", "")))


def salvage_request_id(payload: bytes) -> str | None:
    """The request id of a message that failed validation, so the refusal can still be matched."""
    try:
        value = json.loads(payload.decode("utf-8")).get("request_id")
    except Exception:
        return None
    return value if isinstance(value, str) and REQUEST_ID_RE.fullmatch(value) else None
