"""The queue at the counters on the contract (docs/mqtt.md "The queue at the counters", docs/queue.md).

``queue-event/1`` (the center's queue -> province through the bridge, on ``_center/queue/event``): one
message per step of a ticket's life (issued, called, recalled, serving, done, no_show, transferred,
left, rated) and of a counter's (opened, break, resumed, closed), numbered per center by ``seq``.
``queue-stats/1`` (retained, ``_center/queue/stats``): per service, tickets waiting, counters open and
the expected wait, which the allocator puts into its answers (``expected_wait_min``).

Also the phone page's token: ``phone_token`` is an HMAC of (center, day, number) under the center's
phone key, so a kiosk that holds the key computes the same token offline as the center does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from contract.errors import ContractError
from contract.message import Message
from contract.wire import now_iso

TICKET_KINDS = (
    "issued",
    "called",
    "recalled",
    "serving",
    "done",
    "no_show",
    "transferred",
    "left",
    "rated",
)
COUNTER_KINDS = ("counter_opened", "counter_break", "counter_resumed", "counter_closed")
QUEUE_EVENT_KINDS = TICKET_KINDS + COUNTER_KINDS
QueueEventKind = Literal[
    "issued",
    "called",
    "recalled",
    "serving",
    "done",
    "no_show",
    "transferred",
    "left",
    "rated",
    "counter_opened",
    "counter_break",
    "counter_resumed",
    "counter_closed",
]

_SERVICE = {"pattern": r"[A-Z0-9_]{1,16}", "pattern_hint": "a service code"}
_NUMBER = {"pattern": r"[A-Z][0-9]{3,5}", "pattern_hint": "a queue number such as A012"}
_DAY = {"pattern": r"\d{4}-\d{2}-\d{2}", "pattern_hint": "YYYY-MM-DD"}
_COUNTER = {"pattern": r"[A-Za-z0-9_-]{1,8}", "pattern_hint": "a counter such as 3 or 3A"}
_OFFICER = {"pattern": r"[a-z0-9][a-z0-9._-]{2,63}", "pattern_hint": "an officer's username"}
_TIME = {"time": True, "max_len": 40}
_SECONDS = {"min": 0, "max": 10_000_000}


@dataclass(frozen=True)
class QueueEvent(Message):
    """``queue-event/1``: one step at the center's queue. Idempotent on ``event_id``; ``seq`` grows per
    center (gaps mean loss). Ticket steps carry ``day``, ``number``, ``service``; counter steps the
    counter and officer only. Nothing about the citizen: a ticket is a number."""

    SCHEMA: ClassVar[str] = "queue-event/1"
    MAX_BYTES: ClassVar[int] = 4 * 1024
    OMIT_NONE: ClassVar[bool] = True

    event_id: str = field(metadata={"pattern": r"[0-9a-f]{32}", "pattern_hint": "32 hex digits"})
    seq: int = field(metadata={"min": 1})
    kind: QueueEventKind
    at: str = field(metadata=_TIME)
    day: str | None = field(default=None, metadata=_DAY)
    number: str | None = field(default=None, metadata=_NUMBER)
    service: str | None = field(default=None, metadata=_SERVICE)
    priority: bool | None = None
    #: when the ticket was printed (kept across transfers)
    issued_at: str | None = field(default=None, metadata=_TIME)
    #: online (the allocator's range) or offline (a kiosk's block), as the kiosk reported it
    source: Literal["online", "offline"] | None = None
    counter: str | None = field(default=None, metadata=_COUNTER)
    officer: str | None = field(default=None, metadata=_OFFICER)
    #: how many times this ticket has been called, this call included (called, recalled, no_show)
    calls: int | None = field(default=None, metadata={"min": 0, "max": 1000})
    #: called: seconds since the ticket entered this service's queue (issue or transfer)
    waited_s: float | None = field(default=None, metadata=_SECONDS)
    #: done, transferred: seconds at the counter (from the call, or from "serving" when pressed)
    served_s: float | None = field(default=None, metadata=_SECONDS)
    to_service: str | None = field(default=None, metadata=_SERVICE)
    to_counter: str | None = field(default=None, metadata=_COUNTER)
    #: rated: the level on ``scale`` (1 worst) and where it was given
    level: int | None = field(default=None, metadata={"min": 1, "max": 5})
    scale: Literal[3, 4, 5] | None = None
    via: Literal["phone", "kiosk"] | None = None

    def __post_init__(self) -> None:
        if self.kind in TICKET_KINDS and (self.day is None or self.number is None or self.service is None):
            raise ContractError(f"queue-event ({self.kind}): a ticket step needs day, number and service")
        if self.kind in COUNTER_KINDS and self.counter is None:
            raise ContractError(f"queue-event ({self.kind}): a counter step needs the counter")


@dataclass(frozen=True)
class ServiceWait:
    service: str = field(metadata=_SERVICE)
    #: tickets waiting now (today, this service)
    waiting: int = field(metadata={"min": 0})
    #: counters open now (not on a break) that call this service
    open_counters: int = field(metadata={"min": 0})
    #: mean seconds at the counter over the recent services of this service; None: no history yet
    service_s: float | None = field(default=None, metadata=_SECONDS)
    #: seconds the queue advances per person (service_s shared by the open counters); None: unknown
    per_person_s: float | None = field(default=None, metadata=_SECONDS)
    #: what a ticket taken now would wait, in minutes; None: unknown (no history or no counter open)
    expected_wait_min: int | None = field(default=None, metadata={"min": 0, "max": 100_000})


@dataclass(frozen=True)
class QueueStats(Message):
    """``queue-stats/1``, retained on ``_center/queue/stats``: the queue now, per service."""

    SCHEMA: ClassVar[str] = "queue-stats/1"
    MAX_BYTES: ClassVar[int] = 16 * 1024

    day: str = field(metadata=_DAY)
    services: list[ServiceWait] = field(default_factory=list, metadata={"max_items": 40})
    at: str = field(default_factory=now_iso, metadata=_TIME)

    def service(self, code: str) -> ServiceWait | None:
        return next((s for s in self.services if s.service == code), None)


def expected_wait_min(people_ahead: int, per_person_s: float | None) -> int | None:
    """Minutes a ticket with ``people_ahead`` before it should wait; None when the pace is unknown.

    One rule for the queue (phone page, stats) and the allocator (its answer to the kiosk): rounded up
    to the minute, so "about 0 minutes" is only said when nobody waits ahead.
    """
    if per_person_s is None:
        return None
    if people_ahead <= 0:
        return 0
    return max(1, math.ceil(people_ahead * per_person_s / 60.0))


# -- the phone page's token -------------------------------------------------------------------------

PHONE_TOKEN_LEN = 16  # base32 characters: 80 bits
PHONE_KEY_BYTES = 32
_PHONE_LABEL = b"motcua-queue-phone/1"


def phone_token(key: bytes, center_id: str, day: str, number: str) -> str:
    """The unguessable token of one ticket's phone page: HMAC-SHA256 under the center's phone key of
    (center, day, number), 80 bits in lowercase base32. Without the key the token of another number
    cannot be derived from one's own; with it (center and kiosks) it needs no network."""
    if len(key) < 16:
        raise ContractError("phone key: at least 16 bytes")
    message = b"|".join((_PHONE_LABEL, center_id.encode(), day.encode(), number.upper().encode()))
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode().lower()


def phone_url(base_url: str, token: str) -> str:
    """What the ticket's QR carries: ``{base_url}/q/{token}`` (base_url: the center's address as seen
    from the hall's Wi-Fi, e.g. ``https://motcua-benthanh.local``)."""
    return f"{base_url.rstrip('/')}/q/{token}"
