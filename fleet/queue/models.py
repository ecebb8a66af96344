"""What the queue hands out: frozen dataclasses, never rows (docs/queue.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common.errors import ConflictError


class QueueError(ConflictError):
    """A step that does not fit the ticket's or the counter's state. ``key`` is the catalog key the
    counter app shows (``queue.error.*``); the message is English, for logs and the JSON answer."""

    code = "queue_conflict"

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class QueueSettings:
    center_id: str
    priority_mode: str  # first | interleave
    priority_every: int  # interleave: one priority ticket in every N calls of a counter
    pulling: str  # shared | strict
    max_recalls: int  # "Vắng mặt" once a ticket has been recalled this many times
    target_wait_min: int  # the share of waits over this is a statistic
    recent_calls: int  # how many calls the hall display lists
    notice_vi: str
    notice_en: str
    phone_key: bytes
    appointment_early: str = "wait"  # wait: before its time a booked ticket waits like a walk-in; hold
    appointment_ahead_min: int = 5  # a booked ticket is due (called first) this long before its time
    appointment_late_min: int = 15  # printed later than its time + this: a walk-in


@dataclass(frozen=True)
class Service:
    code: str
    prefix: str
    name_vi: str
    name_en: str
    position: int = 0

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_vi


@dataclass(frozen=True)
class Counter:
    code: str
    name: str
    services: tuple[str, ...]
    position: int = 0


@dataclass(frozen=True)
class Printed:
    """A ticket a kiosk printed, as it enters the queue (``Queue.issue`` / ``issue_many``)."""

    number: str
    service: str
    priority: bool = False
    day: str | None = None  # None: the center's day of ``issued_at``
    issued_at: datetime | None = None  # None: now
    kiosk_id: str | None = None
    source: str | None = None  # "online" / "offline" (the number's block)
    appointment_at: datetime | None = None  # aware: the booked time it checks in


@dataclass(frozen=True)
class Ticket:
    id: int
    center_id: str
    day: str
    number: str
    service: str
    first_service: str
    priority: bool
    source: str | None
    kiosk_id: str | None
    token: str
    issued_at: datetime
    queued_at: datetime
    state: str
    target_counter: str | None
    assigned_counter: str | None
    counter: str | None
    user_id: int | None
    calls: int
    called_at: datetime | None
    serving_at: datetime | None
    finished_at: datetime | None
    #: the booked time of an appointment that was honoured (None: a walk-in, or a booking printed
    #: beyond the center's tolerance)
    appointment_at: datetime | None = None

    @property
    def booked(self) -> bool:
        """Called and timed as an appointment: booked, and still in the service it was booked for (a
        transfer elsewhere makes it a transferred ticket like any other, ordered by its issue time)."""
        return self.appointment_at is not None and self.service == self.first_service


@dataclass(frozen=True)
class CounterSession:
    id: int
    center_id: str
    counter: str
    user_id: int
    username: str
    display_name: str
    services: tuple[str, ...]
    state: str  # open | break | closed
    opened_at: datetime
    break_since: datetime | None
    ticket: Ticket | None  # called or being served now
    since_priority: int


@dataclass(frozen=True)
class Step:
    id: int
    seq: int
    event_id: str
    center_id: str
    at: datetime
    kind: str
    ticket_id: int | None
    day: str | None
    number: str | None
    service: str | None
    counter: str | None
    user_id: int | None
    officer: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def is_call(self) -> bool:
        return self.kind in ("called", "recalled")


@dataclass(frozen=True)
class Pace:
    """How fast a service's queue moves now (``contract.queue.ServiceWait`` is its wire form)."""

    service: str
    waiting: int
    open_counters: int
    service_s: float | None  # mean seconds at the counter, recent history; None: too little history
    per_person_s: float | None  # service_s shared by the open counters; None: unknown


@dataclass(frozen=True)
class Position:
    ticket: Ticket
    ahead: int | None  # people before this ticket (None unless waiting)
    expected_wait_min: int | None  # None: unknown (no history or no counter open), said as such
    pace: Pace | None


@dataclass(frozen=True)
class CounterState:
    """One counter on the hall display: its latest call today and whether anyone is there."""

    counter: str
    name: str
    state: str  # open | break | closed
    number: str | None
    service: str | None
    called_step: int | None
    called_at: datetime | None


@dataclass(frozen=True)
class Board:
    center_id: str
    day: str
    counters: tuple[CounterState, ...]
    recent: tuple[Step, ...]  # the latest calls, newest first
    waiting: dict[str, int]  # service -> tickets waiting
    services: tuple[Service, ...]
    notice_vi: str
    notice_en: str
    last_step: int


@dataclass(frozen=True)
class StatRow:
    """One group of the statistics (a counter, an officer, a service, an hour or a day)."""

    key: str
    label: str
    arrivals: int = 0
    called: int = 0
    served: int = 0
    no_shows: int = 0
    left: int = 0
    transfers: int = 0
    recalls: int = 0
    wait_n: int = 0
    wait_sum_s: float = 0.0
    wait_max_s: float = 0.0
    wait_over_target: int = 0
    service_n: int = 0
    service_sum_s: float = 0.0
    service_max_s: float = 0.0
    appointments: int = 0  # arrivals that check in a booked appointment (honoured)
    appointments_late: int = 0  # booked, printed beyond the tolerance: counted with the walk-ins
    appt_wait_n: int = 0
    appt_wait_sum_s: float = 0.0
    appt_wait_max_s: float = 0.0

    @property
    def walk_ins(self) -> int:
        return self.arrivals - self.appointments

    @property
    def appt_wait_avg_s(self) -> float | None:
        return self.appt_wait_sum_s / self.appt_wait_n if self.appt_wait_n else None

    @property
    def walkin_wait_avg_s(self) -> float | None:
        n = self.wait_n - self.appt_wait_n
        return (self.wait_sum_s - self.appt_wait_sum_s) / n if n else None

    @property
    def wait_avg_s(self) -> float | None:
        return self.wait_sum_s / self.wait_n if self.wait_n else None

    @property
    def over_target_share(self) -> float | None:
        return self.wait_over_target / self.wait_n if self.wait_n else None

    @property
    def service_avg_s(self) -> float | None:
        return self.service_sum_s / self.service_n if self.service_n else None


@dataclass(frozen=True)
class RatingSummary:
    """Ratings of one officer or counter, as managers see them: aggregates only, never one by one."""

    key: str
    label: str
    count: int
    average: float | None  # on a 0..100 scale (level-1)/(scale-1), so 3-, 4- and 5-level scales mix
    satisfied_share: float | None  # share of ratings in the upper half of their scale
    by_via: dict[str, int]
