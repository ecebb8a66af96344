"""Booked appointments (đặt lịch hẹn): scan the booking's QR, or the ID card's front QR, get a ticket
the queue treats as an appointment (``appointment_at`` on the ticket and its event).

The ID card's QR is reduced at once to the salted hash of its 12-digit number (``[visit]
appointment_salt``, the booking system's); the number, the name and the rest of the text are dropped
before anything is sent. Early and late arrivals: the center sets a window around the booked time;
outside it the citizen is told when to come back, or to take an ordinary ticket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from common.errors import MotcuaError
from kiosk.dossier import Appointment, AppointmentNotFound, AppointmentQuery
from kiosk.dossier.visit import id_number_hash, parse_booking_code
from kiosk.flows.base import Effect, Flow
from kiosk.flows.ticket import IssuedTicket, IssueTicket
from kiosk.flows.visit_event import RecordVisit

_CCCD_QR = re.compile(r"(\d{12})\|[^\n]*")


@dataclass(frozen=True)
class MatchAppointment(Effect):
    query: AppointmentQuery


class AppointmentFlow(Flow):
    name = "appointment"
    initial = "scan"
    TRANSITIONS = frozenset(
        {
            ("scan", "matching"),
            ("matching", "printing"),
            ("matching", "too_early"),
            ("matching", "too_late"),
            ("matching", "not_found"),
            ("matching", "unavailable"),
            ("unavailable", "matching"),
            ("not_found", "scan"),
            ("unavailable", "scan"),
            ("too_early", "scan"),
            ("too_late", "scan"),
            ("printing", "done"),
            ("printing", "failed"),
            ("failed", "printing"),
        }
    )
    BUSY = frozenset({"matching", "printing"})
    RESULT = frozenset({"done", "too_early", "too_late", "not_found", "unavailable", "failed"})
    accepts_scans = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.appointment: Appointment | None = None
        self.ticket: IssuedTicket | None = None
        self._query: AppointmentQuery | None = None
        #: for too_early: from when the citizen may check in (HH:MM)
        self.opens_at: str = ""

    @property
    def card_offered(self) -> bool:
        """The ID card is offered only when the center set the booking system's salt."""
        return bool(self.ctx.config.visit.appointment_salt)

    def on_scan(self, text: str, source: str = "camera") -> list[Effect]:
        if self.state in ("not_found", "unavailable", "too_early", "too_late"):
            self.go("scan")  # another code held to the camera starts again
        if self.state != "scan":
            return []
        today = self.ctx.now().date()
        booking = parse_booking_code(text)
        if booking is not None:
            return self._match(AppointmentQuery(today, booking_code=booking))
        card = _CCCD_QR.fullmatch(text.strip())
        if card is None:
            self.error_key = "appointment.not_a_booking"
            return []
        if not self.card_offered:
            self.error_key = "appointment.card_not_offered"
            return []
        digest = id_number_hash(card.group(1), self.ctx.config.visit.appointment_salt.encode("utf-8"))
        return self._match(AppointmentQuery(today, id_hash=digest))

    def _match(self, query: AppointmentQuery) -> list[Effect]:
        self._query = query
        self.error_key = None
        self.go("matching")
        return [MatchAppointment(query)]

    def do_again(self) -> list[Effect]:
        if self.state in ("not_found", "unavailable", "too_early", "too_late"):
            self.error_key = None
            self.go("scan")
        return []

    def do_retry(self) -> list[Effect]:
        if self.state == "unavailable" and self._query is not None:
            return self._match(self._query)
        if self.state == "failed" and self.appointment is not None:
            self.error_key = None
            self.go("printing")
            return [self._ticket_request(self.appointment)]
        return []

    def _ticket_request(self, appointment: Appointment) -> IssueTicket:
        return IssueTicket(appointment.service_code, False, self.ctx.session.language,
                           appointment_at=appointment.at.strftime("%H:%M"))

    def on_result(self, effect: Effect, result: Any) -> list[Effect]:
        if isinstance(effect, MatchAppointment):
            assert isinstance(result, Appointment)
            return self._arrived(result)
        if isinstance(effect, IssueTicket):
            assert isinstance(result, IssuedTicket)
            self.ticket = result
            self.ctx.session.last_ticket = result.number
            self.go("done")
            return [RecordVisit("appointment", "checked_in")]
        return []

    def _arrived(self, appointment: Appointment) -> list[Effect]:
        """Inside the center's window: the ticket prints at once (no further tap)."""
        self.appointment = appointment
        visit = self.ctx.config.visit
        now = self.ctx.now()
        booked = datetime.combine(appointment.day, appointment.at, tzinfo=now.tzinfo)
        if appointment.service_code not in {s.code for s in self.ctx.config.services}:
            self.fail("unavailable", "appointment.service_unknown")
            return [RecordVisit("appointment", "unavailable")]
        if now < booked - timedelta(minutes=visit.appointment_early_min):
            self.opens_at = (booked - timedelta(minutes=visit.appointment_early_min)).strftime("%H:%M")
            self.fail("too_early", "appointment.too_early")
            return [RecordVisit("appointment", "too_early")]
        if now > booked + timedelta(minutes=visit.appointment_late_min):
            self.fail("too_late", "appointment.too_late")
            return [RecordVisit("appointment", "too_late")]
        self.go("printing")
        return [self._ticket_request(appointment)]

    def on_failure(self, effect: Effect, error: MotcuaError) -> list[Effect]:
        if isinstance(effect, RecordVisit):
            return []
        if isinstance(effect, IssueTicket):
            self.fail("failed", error)
            return []
        if isinstance(error, AppointmentNotFound):
            self.fail("not_found", error)
            return [RecordVisit("appointment", "not_found")]
        self.fail("unavailable", "visit.unavailable")
        return [RecordVisit("appointment", "unavailable")]
