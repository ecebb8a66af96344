"""Taking a queue number (lấy số thứ tự): pick a service area, the ticket prints, done."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from common.errors import MotcuaError
from contract.config import ServiceArea
from kiosk.flows.base import Effect, Flow, FlowContext

#: Age from which the ID card's birth date alone grants priority (Luật Người cao tuổi: elderly over 75
#: are served first at public service points).
PRIORITY_AGE = 75


@dataclass(frozen=True)
class IssueTicket(Effect):
    service_code: str
    priority: bool
    language: str = "vi"
    #: printed on the ticket when the citizen identified with the ID card (never logged)
    citizen_name: str | None = field(default=None, repr=False)
    #: the booked time (HH:MM) when the ticket checks in an appointment (kiosk/flows/appointment.py)
    appointment_at: str | None = None


@dataclass(frozen=True)
class IssuedTicket:
    number: str  # e.g. "B023"; priority tickets carry their own marking on paper and screen
    service_code: str
    priority: bool
    issued_at: datetime
    counters: tuple[str, ...]
    waiting_ahead: int | None  # None when the kiosk cannot know (no center allocator)
    #: the service's names as printed: the screen shows them even if a push removes the service
    service_name_vi: str = ""
    service_name_en: str = ""
    #: minutes this ticket should wait (the center's estimate); None: unknown, nothing said about minutes
    expected_wait_min: int | None = None
    #: False when the printer could not print it: the number is valid and shown on the screen instead
    printed: bool = True

    def service_name(self, language: str) -> str:
        name = self.service_name_vi if language == "vi" else self.service_name_en
        return name or self.service_name_vi or self.service_code


def waiting_text(tr: Callable[..., str], ahead: int | None, minutes: int | None) -> str:
    """ "Trước quý khách còn N người, dự kiến chờ khoảng M phút" on screen and ticket; the minutes only
    when the center estimated them, nothing when the count is unknown (offline number)."""
    if ahead is None:
        return ""
    if minutes is None:
        return tr("ticket.waiting_ahead", count=ahead)
    return tr("ticket.waiting_with_time", count=ahead, minutes=minutes)


def is_open(service: ServiceArea, now: datetime) -> bool:
    opens = time.fromisoformat(service.opens)
    closes = time.fromisoformat(service.closes)
    return opens <= now.time().replace(tzinfo=None) <= closes


class TicketFlow(Flow):
    name = "ticket"
    initial = "choose_service"
    TRANSITIONS = frozenset(
        {
            ("choose_service", "printing"),
            ("printing", "done"),
            ("printing", "failed"),
            ("failed", "printing"),
        }
    )
    BUSY = frozenset({"printing"})
    RESULT = frozenset({"done", "failed"})

    def __init__(self, ctx: FlowContext) -> None:
        super().__init__(ctx)
        self.priority = False
        self.service_code: str | None = None
        self.ticket: IssuedTicket | None = None
        self.refresh_identity()

    def refresh_identity(self) -> None:
        """Called again after the citizen identified with the ID card: the elderly get priority, when the
        card proved genuine (a birth date from an unverified chip grants nothing by itself; the citizen
        can still ask for priority as anyone can)."""
        identity = self.ctx.session.identity
        if identity is not None and identity.birth_date_trusted:
            age = identity.age_on(self.ctx.now().date())
            if age is not None and age >= PRIORITY_AGE:
                self.priority = True

    def open_services(self) -> list[ServiceArea]:
        now = self.ctx.now()
        return [s for s in self.ctx.config.services if is_open(s, now)]

    def do_set_priority(self, on: bool) -> list[Effect]:
        """The home screen's big "Tôi thuộc đối tượng ưu tiên" button opens the flow with this."""
        if self.state == "choose_service":
            self.priority = bool(on)
        return []

    def do_toggle_priority(self) -> list[Effect]:
        if self.state != "choose_service":
            return []
        self.priority = not self.priority
        return []

    def do_choose(self, code: str) -> list[Effect]:
        if self.state != "choose_service":
            return []  # a second tap while printing must not issue a second number
        if code not in {s.code for s in self.open_services()}:
            return []
        self.service_code = code
        self.go("printing")
        return [self._request()]

    def do_retry(self) -> list[Effect]:
        if self.state != "failed" or self.service_code is None:
            return []
        self.error_key = None
        self.go("printing")
        return [self._request()]

    def _request(self) -> IssueTicket:
        assert self.service_code is not None
        session = self.ctx.session
        name = session.identity.full_name if session.identity is not None else None
        return IssueTicket(self.service_code, self.priority, session.language, name)

    def on_result(self, effect: Effect, result: Any) -> list[Effect]:
        assert isinstance(effect, IssueTicket) and isinstance(result, IssuedTicket)
        self.ticket = result
        self.ctx.session.last_ticket = result.number
        self.go("done")
        return []

    def on_failure(self, effect: Effect, error: MotcuaError) -> list[Effect]:
        self.fail("failed", error)
        return []
