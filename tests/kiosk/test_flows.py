"""The flows as state machines, through the core, without a window or devices.

Effects are answered by small scripted handlers (the flows' only boundary), the clock is a counter
the test moves. The last test checks that every transition each flow declares was exercised here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher

from common.journal import EventJournal
from drivers.card.errors import BadQrError, CardRemovedError
from drivers.printer.errors import PrinterPaperOutError, PrinterUnavailableError
from kiosk.config import ConfigHolder
from kiosk.core import ATTRACT, HOME, OUT_OF_SERVICE, KioskCore, Route
from kiosk.dossier import DossierNotFound, DossierState, DossierStatus, LookupUnavailable, parse_dossier_code
from kiosk.errors import KioskError
from kiosk.flows.base import Effect, Flow
from kiosk.flows.identify import IdentifyFlow, ReadCard
from kiosk.flows.lookup import LookupDossier, LookupFlow, PrintDossierStatus, RecordRejectedCode
from kiosk.flows.rating import RatingFlow, SubmitRating
from kiosk.flows.technician import (
    PinCheck,
    PrintTestTicket,
    RunSelfTest,
    SetServiceMode,
    TechnicianFlow,
    VerifyPin,
)
from kiosk.flows.ticket import IssuedTicket, IssueTicket, TicketFlow
from kiosk.rating import RatingOutcome
from kiosk.session import Identity
from tests.conftest import demo_config

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
#: the cheapest argon2id the configuration accepts (m=19 MiB, t=2): these tests are about the flow
DEMO_PIN_HASH = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash("2468")
SEEN: set[tuple[str, str, str]] = set()
FLOWS: tuple[type[Flow], ...] = (TicketFlow, IdentifyFlow, LookupFlow, RatingFlow, TechnicianFlow)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Script:
    """Answers effects: ``answers[EffectType]`` is a value, an exception, or a function of the effect."""

    def __init__(self) -> None:
        self.answers: dict[type[Effect], Any] = {}
        self.calls: list[Effect] = []

    def handler(self, effect: Effect) -> Any:
        self.calls.append(effect)
        answer = self.answers[type(effect)]
        if isinstance(answer, BaseException):
            raise answer
        return answer(effect) if callable(answer) else answer


@dataclasses.dataclass
class Harness:
    core: KioskCore
    clock: Clock
    script: Script
    journal: EventJournal

    def events(self) -> list[str]:
        return [e.kind for e in self.journal.pending()]


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    config = demo_config(tmp_path, technician_pin_hash=DEMO_PIN_HASH, idle_timeout_s=60, result_timeout_s=10)
    journal = EventJournal(tmp_path / "events.sqlite")
    script = Script()
    script.answers[RecordRejectedCode] = None
    effects: tuple[type[Effect], ...] = (
        RecordRejectedCode,
        IssueTicket,
        ReadCard,
        LookupDossier,
        PrintDossierStatus,
        SubmitRating,
        RunSelfTest,
        PrintTestTicket,
        SetServiceMode,
    )
    routes: list[Route[Any]] = [Route(kind, script.handler, "test") for kind in effects]

    def verify(effect: VerifyPin) -> PinCheck:
        return core.pin_guard.check(effect.pin, config.kiosk)

    # The PIN is checked by the core's own guard, on the fake clock (tests/kiosk/test_technician.py
    # checks the guard itself: hash, persistence, audit events).
    routes.append(Route(VerifyPin, verify, "test"))
    clock = Clock()
    core = KioskCore(
        ConfigHolder(config),
        journal,
        routes,
        clock=clock,
        synchronous=True,
        wall_clock=lambda: datetime(2026, 11, 23, 9, 30, tzinfo=ZONE),
    )
    harness = Harness(core, clock, script, journal)
    yield harness
    for flow in core.flows:
        _collect(flow)
    journal.close()


def _collect(flow: Flow) -> None:
    for a, b in zip(flow.history, flow.history[1:], strict=False):
        SEEN.add((flow.name, a, b))


def step(h: Harness, action: str, **values: Any) -> Flow:
    flow = h.core.flow
    assert flow is not None
    h.core.act(action, **values)
    h.core.pump()
    _collect(flow)
    return flow


def scan(h: Harness, text: str) -> Flow:
    flow = h.core.flow
    assert flow is not None
    h.core.scanned(text)
    h.core.pump()
    _collect(flow)
    return flow


def ticket(effect: Effect) -> IssuedTicket:
    assert isinstance(effect, IssueTicket)
    return IssuedTicket(
        "A001",
        effect.service_code,
        effect.priority,
        datetime(2026, 11, 23, 9, 30, tzinfo=ZONE),
        ("1", "2"),
        4,
    )


STATUS = DossierStatus(
    code=parse_dossier_code("000.00.10.H12-261120-0001"),
    procedure_name="Đăng ký khai sinh",
    agency="UBND Phường Bến Thành",
    received_on=date(2026, 11, 20),
    due_on=date(2026, 11, 21),
    status=DossierState.IN_PROGRESS,
    current_step="Thẩm định",
)


# -- navigation, session, timeouts ---------------------------------------------------------------------
def test_touch_leaves_attract_and_idle_timeout_wipes_session(h: Harness) -> None:
    assert h.core.screen == ATTRACT
    h.core.touch()
    assert h.core.screen == HOME and h.core.session is not None
    session = h.core.session
    session.identity = Identity("Nguyễn Văn An", date(1950, 1, 1), "genuine")
    identity = session.identity
    h.clock.t += 59
    h.core.tick()
    assert h.core.screen == HOME
    h.clock.t += 1
    h.core.tick()
    assert h.core.screen == ATTRACT and h.core.session is None
    assert identity.full_name == "" and identity.birth_date is None  # wiped, not just dropped
    assert "session_ended" in h.events()
    assert h.journal.pending()[-1].payload["reason"] == "timeout"


def test_busy_state_suspends_idle_timeout_and_result_timeout_returns_home(h: Harness) -> None:
    h.core.synchronous = False  # keep the effect pending: the printer is "working"
    h.core.set_routes([Route(IssueTicket, ticket, "printer")])
    h.core.start("ticket")
    h.core.act("choose", code="HO_TICH")
    flow = h.core.flow
    assert flow is not None and flow.state == "printing"
    h.clock.t += 120
    h.core.tick()  # busy: no timeout
    assert h.core.screen == "ticket"
    h.core.shutdown()


def test_result_timeout_ends_session(h: Harness) -> None:
    h.script.answers[IssueTicket] = ticket
    h.core.start("ticket")
    flow = step(h, "choose", code="HO_TICH")
    assert flow.state == "done"
    h.clock.t += 9
    h.core.tick()
    assert h.core.screen == "ticket"
    h.clock.t += 1
    h.core.tick()
    assert h.core.screen == ATTRACT and h.core.session is None


def test_language_toggle_and_reset_on_new_session(h: Harness) -> None:
    h.core.touch()
    h.core.set_language("en")
    assert h.core.language == "en"
    h.core.end_session("test")
    assert h.core.language == "vi"


# -- ticket --------------------------------------------------------------------------------------------
def test_ticket_choose_print_done(h: Harness) -> None:
    h.script.answers[IssueTicket] = ticket
    h.core.start("ticket")
    flow = step(h, "toggle_priority")
    assert isinstance(flow, TicketFlow) and flow.priority
    flow = step(h, "choose", code="HO_TICH")
    assert isinstance(flow, TicketFlow)
    assert flow.state == "done" and flow.ticket is not None and flow.ticket.number == "A001"
    effect = h.script.calls[0]
    assert isinstance(effect, IssueTicket) and effect.priority and effect.service_code == "HO_TICH"
    step(h, "choose", code="HO_TICH")  # a late second tap issues nothing
    assert len(h.script.calls) == 1


def test_ticket_unknown_or_closed_service_is_ignored(h: Harness) -> None:
    h.core.start("ticket")
    flow = step(h, "choose", code="NO_SUCH")
    assert flow.state == "choose_service" and h.script.calls == []


def test_ticket_paper_out_then_retry(h: Harness) -> None:
    h.script.answers[IssueTicket] = PrinterPaperOutError("out")
    h.core.start("ticket")
    flow = step(h, "choose", code="DAT_DAI")
    assert flow.state == "failed" and flow.error_key == "printer.paper_out"
    h.script.answers[IssueTicket] = ticket
    flow = step(h, "retry")
    assert flow.state == "done"


def test_an_unverified_card_grants_no_priority_by_age(h: Harness) -> None:
    """A birth date from a chip that did not prove genuine (a clone could carry any date) grants nothing;
    the citizen may still ask for priority like anyone else (issue 10, item 5)."""
    h.script.answers[ReadCard] = Identity("Trần Thị Bích Ngọc", date(1940, 5, 2), "not_verified", False)
    h.core.start("ticket")
    h.core.start("identify")
    flow = scan(h, "079140001234|123456789|Trần Thị Bích Ngọc|02051940|Nữ|Phường Bến Thành|01012021")
    assert flow.state == "done"
    h.core.close_flow()
    ticket_flow = h.core.flow
    assert isinstance(ticket_flow, TicketFlow) and not ticket_flow.priority
    h.core.go_home()


def test_elderly_identified_citizen_gets_priority(h: Harness) -> None:
    h.script.answers[ReadCard] = Identity("Trần Thị Bích Ngọc", date(1940, 5, 2), "genuine", True)
    h.script.answers[IssueTicket] = ticket
    h.core.start("ticket")
    h.core.start("identify")
    flow = scan(h, "079140001234|123456789|Trần Thị Bích Ngọc|02051940|Nữ|Phường Bến Thành|01012021")
    assert flow.state == "done"
    h.core.close_flow()
    ticket_flow = h.core.flow
    assert isinstance(ticket_flow, TicketFlow) and ticket_flow.priority
    step(h, "choose", code="HO_TICH")
    request = h.script.calls[-1]
    assert isinstance(request, IssueTicket) and request.citizen_name == "Trần Thị Bích Ngọc"
    assert "Trần" not in repr(request)  # the name never reaches a log line


# -- identify ------------------------------------------------------------------------------------------
def test_identify_failures_and_retry(h: Harness) -> None:
    h.core.start("identify")
    h.script.answers[ReadCard] = BadQrError("bad qr")
    flow = scan(h, "not a card")
    assert flow.state == "failed" and flow.error_key == "card.bad_qr"
    flow = step(h, "retry")
    assert flow.state == "scan_qr"  # wrong keys: scan again
    h.script.answers[ReadCard] = CardRemovedError("lifted")
    flow = scan(h, "079...")
    assert flow.state == "failed" and flow.error_key == "card.removed"
    h.script.answers[ReadCard] = Identity("Lê Hoàng Nam", date(1990, 3, 4), "genuine")
    flow = step(h, "retry")  # same keys, the card read starts over
    assert flow.state == "done" and h.core.session is not None
    assert h.core.session.identity is not None and h.core.session.identity.full_name == "Lê Hoàng Nam"


def test_identify_with_can_keypad(h: Harness) -> None:
    h.core.start("identify")
    for digit in "12a3":
        step(h, "digit", digit=digit)
    flow = step(h, "can")
    assert isinstance(flow, IdentifyFlow)
    assert flow.state == "scan_qr" and flow.error_key == "card.wrong_key" and flow.can_typed == ""
    h.script.answers[ReadCard] = Identity("Phạm Thu Hà", None, "not_checked")
    for digit in "1234567":  # a seventh digit is ignored
        step(h, "digit", digit=digit)
    step(h, "backspace")
    step(h, "digit", digit="9")
    flow = step(h, "can")
    assert flow.state == "done"
    request = h.script.calls[-1]
    assert isinstance(request, ReadCard) and request.can == "123459" and "123459" not in repr(request)


def test_late_card_result_after_leaving_is_wiped(h: Harness) -> None:
    h.core.synchronous = False
    record = Identity("Đỗ Quang Đức", date(1980, 1, 1), "genuine")
    import threading

    release = threading.Event()

    def slow(effect: Effect) -> Identity:
        release.wait(5)
        return record

    h.core.set_routes([Route(ReadCard, slow, "card")])
    h.core.start("identify")
    h.core.scanned("qr")
    h.core.pump()
    h.core.go_home()  # the citizen walks away mid-read
    release.set()
    h.core.shutdown()
    import time

    deadline = time.monotonic() + 5
    while record.full_name and time.monotonic() < deadline:
        h.core.pump()
        time.sleep(0.01)
    assert record.full_name == "" and record.birth_date is None


# -- lookup --------------------------------------------------------------------------------------------
def test_lookup_typed_code_found_and_printed(h: Harness) -> None:
    h.script.answers[LookupDossier] = STATUS
    h.script.answers[PrintDossierStatus] = None
    h.core.start("lookup")
    for char in "000.00.10.H12-261120-0001":
        step(h, "type", char=char)
    flow = step(h, "submit")
    assert isinstance(flow, LookupFlow) and flow.state == "found" and flow.status == STATUS
    flow = step(h, "print")
    assert isinstance(flow, LookupFlow) and flow.state == "found" and flow.printed
    flow = step(h, "again")
    assert flow.state == "scan"


def test_lookup_print_failure_stays_on_status(h: Harness) -> None:
    h.script.answers[LookupDossier] = STATUS
    h.script.answers[PrintDossierStatus] = PrinterPaperOutError("out")
    h.core.start("lookup")
    flow = scan(h, "000.00.10.H12-261120-0001")
    flow = step(h, "print")
    assert isinstance(flow, LookupFlow)
    assert flow.state == "found" and flow.error_key == "printer.paper_out" and not flow.printed


def test_lookup_not_a_dossier_keeps_scanning_and_is_counted(h: Harness) -> None:
    h.core.start("lookup")
    flow = scan(h, "https://example.com/hello")
    assert flow.state == "scan" and flow.error_key == "lookup.not_a_dossier"
    assert h.script.calls == [RecordRejectedCode("camera")]
    h.script.answers[LookupDossier] = STATUS
    h.core.scanned("000.00.10.H12-261120-0001", "serial")
    h.core.pump()
    looked_up = h.script.calls[-1]
    assert isinstance(looked_up, LookupDossier) and looked_up.source == "serial"


def test_lookup_not_found_and_unavailable_are_different(h: Harness) -> None:
    h.script.answers[LookupDossier] = DossierNotFound("nope")
    h.core.start("lookup")
    flow = scan(h, "000.00.10.H12-261120-0002")
    assert flow.state == "not_found" and flow.error_key == "lookup.not_found"
    flow = step(h, "again")
    assert flow.state == "scan"
    h.script.answers[LookupDossier] = LookupUnavailable("down")
    flow = scan(h, "000.00.10.H12-261120-0002")
    assert flow.state == "unavailable" and flow.error_key == "lookup.unavailable"
    h.script.answers[LookupDossier] = STATUS
    flow = step(h, "retry")
    assert flow.state == "found"
    flow = scan(h, "000.00.10.H12-261120-0003")  # a new receipt at the camera starts over
    assert flow.state == "found"
    h.script.answers[LookupDossier] = LookupUnavailable("down")
    flow = scan(h, "000.00.10.H12-261120-0004")
    flow = step(h, "again")
    assert flow.state == "scan"


def test_lookup_typing_bounds(h: Harness) -> None:
    h.core.start("lookup")
    for _ in range(60):
        step(h, "type", char="1")
    flow = h.core.flow
    assert isinstance(flow, LookupFlow) and len(flow.typed) == 40
    step(h, "backspace")
    assert len(flow.typed) == 39
    step(h, "clear")
    assert flow.typed == ""


# -- rating --------------------------------------------------------------------------------------------
def test_rating_one_tap_with_a_ticket_qr_is_sent_at_once(h: Harness) -> None:
    """The ticket's QR says whom the rating is for (the center ties it to the counter and officer):
    a happy face is one tap, nothing more is asked."""
    h.script.answers[SubmitRating] = RatingOutcome(True)
    h.core.start("rating")
    flow = scan(h, "MOTCUA-TICKET:hcm-ben-thanh/2026-11-23/A001")
    flow = step(h, "level", level=4)
    assert flow.state == "thanks"
    effect = h.script.calls[-1]
    assert isinstance(effect, SubmitRating) and effect.target_kind == "ticket"
    h.clock.t += 5  # home after 5 s (HappyOrNot), not the center's 10 s result timeout
    h.core.tick()
    assert h.core.screen == ATTRACT


def test_rating_tap_counts_even_when_the_details_are_left_alone(h: Harness) -> None:
    """Without a QR the officer may be named after the tap; left alone, the tap is sent as it is."""
    h.script.answers[SubmitRating] = RatingOutcome(True)
    h.core.start("rating")
    flow = step(h, "level", level=4)
    assert flow.state == "details" and h.script.calls == []
    h.clock.t += 5
    h.core.tick()
    assert h.core.screen == ATTRACT
    effect = h.script.calls[-1]
    assert isinstance(effect, SubmitRating) and (effect.level, effect.target_kind) == (4, "center")
    assert flow.history[-1] == "sending"  # sent on the way out; the kiosk is already home


def test_rating_tap_counts_when_the_citizen_goes_home(h: Harness) -> None:
    h.script.answers[SubmitRating] = RatingOutcome(True)
    h.core.start("rating")
    step(h, "level", level=1)
    step(h, "toggle_reason", code="time_taken")
    h.core.go_home()
    effect = h.script.calls[-1]
    assert isinstance(effect, SubmitRating) and (effect.level, effect.reasons) == (1, ("time_taken",))


def test_rating_negative_details_after_the_tap_linked_to_ticket(h: Harness) -> None:
    h.script.answers[SubmitRating] = RatingOutcome(True)
    h.core.start("rating")
    flow = scan(h, "MOTCUA-TICKET:hcm-ben-thanh/2026-11-23/A001")
    assert isinstance(flow, RatingFlow) and flow.target_kind == "ticket"
    step(h, "level", level=1)
    assert flow.state == "details" and flow.asks_reasons and not flow.asks_who
    step(h, "back")  # another face
    assert flow.state == "choose_level"
    step(h, "level", level=2)
    step(h, "toggle_reason", code="time_taken")
    step(h, "toggle_reason", code="staff_attitude")
    step(h, "toggle_reason", code="staff_attitude")
    step(h, "toggle_reason", code="not_a_reason")
    flow = step(h, "send")
    assert flow.state == "thanks"
    effect = h.script.calls[-1]
    assert isinstance(effect, SubmitRating)
    assert effect.reasons == ("time_taken",) and effect.target_id == "hcm-ben-thanh/2026-11-23/A001"


def test_rating_scans_the_phone_page_url_of_a_ticket(h: Harness) -> None:
    """The new ticket QR is the queue's phone page: a rating scanned from it is tied to that ticket."""
    h.script.answers[SubmitRating] = RatingOutcome(True)
    h.core.start("rating")
    url = "https://motcua-benthanh.local/q/abcdefghij234567"
    flow = scan(h, url)
    assert isinstance(flow, RatingFlow) and (flow.target_kind, flow.target_id) == ("ticket", url)
    step(h, "level", level=3)
    effect = h.script.calls[-1]
    assert isinstance(effect, SubmitRating) and effect.target_id == url


def test_rating_linked_to_counter_after_the_tap(h: Harness) -> None:
    h.script.answers[SubmitRating] = RatingOutcome(True)
    h.core.start("rating")
    flow = step(h, "counter", counter="4")
    assert isinstance(flow, RatingFlow) and (flow.target_kind, flow.target_id) == ("counter", "4")
    step(h, "counter", counter="99")  # not a counter of this center
    assert flow.target_id == "4"
    step(h, "counter", counter="4")  # tapped again: unlinked
    assert flow.target_kind == "center"
    step(h, "level", level=3)
    step(h, "counter", counter="3")  # chosen after the face: the details are optional and come after
    step(h, "send")
    effect = h.script.calls[-1]
    assert isinstance(effect, SubmitRating) and (effect.target_kind, effect.target_id) == ("counter", "3")


def test_rating_linked_to_an_official(h: Harness) -> None:
    h.script.answers[SubmitRating] = RatingOutcome(True)
    h.core.start("rating")
    flow = step(h, "level", level=4)
    assert isinstance(flow, RatingFlow)
    assert flow.state == "details" and flow.asks_who and not flow.asks_reasons
    step(h, "official", official_id="cb02")
    assert isinstance(flow, RatingFlow) and (flow.target_kind, flow.target_id) == ("official", "cb02")
    step(h, "official", official_id="nobody")
    assert flow.target_id == "cb02"
    step(h, "counter", counter="3")  # one target per rating: the counter replaces the official
    assert (flow.target_kind, flow.target_id) == ("counter", "3")
    step(h, "official", official_id="cb01")
    step(h, "official", official_id="cb01")  # tapped again: unlinked
    assert flow.target_kind == "center"
    step(h, "official", official_id="cb03")
    step(h, "send")
    effect = h.script.calls[-1]
    assert isinstance(effect, SubmitRating) and (effect.target_kind, effect.target_id) == ("official", "cb03")


def test_rating_not_counted_and_failure(h: Harness) -> None:
    h.script.answers[SubmitRating] = RatingOutcome(False, "duplicate")
    h.core.start("rating")
    flow = scan(h, "000.00.10.H12-261120-0001")
    assert isinstance(flow, RatingFlow) and flow.target_kind == "dossier"
    flow = scan(h, "garbage")
    assert flow.error_key == "rating.not_a_target"
    flow = step(h, "level", level=3)
    assert flow.state == "not_counted"
    h.core.start("rating")
    scan(h, "000.00.10.H12-261120-0001")
    h.script.answers[SubmitRating] = KioskError("disk full")
    flow = step(h, "level", level=4)
    assert flow.state == "failed"


# -- issue 14: one tap, the idle warning, the card given back, the numeric pad -------------------------
def test_one_tap_on_the_idle_home_issues_a_ticket(h: Harness) -> None:
    """The idle screen is the home: the citizen's first touch is the service itself."""
    h.script.answers[IssueTicket] = ticket
    assert h.core.screen == ATTRACT and h.core.session is None
    h.core.start_ticket("HO_TICH")  # what the home's service button does
    h.core.pump()
    flow = h.core.flow
    assert isinstance(flow, TicketFlow) and flow.state == "done" and h.core.session is not None
    effect = h.script.calls[-1]
    assert isinstance(effect, IssueTicket) and (effect.service_code, effect.priority) == ("HO_TICH", False)
    _collect(flow)


def test_priority_button_opens_a_priority_ticket(h: Harness) -> None:
    h.script.answers[IssueTicket] = ticket
    h.core.start("ticket")
    flow = step(h, "set_priority", on=True)
    assert isinstance(flow, TicketFlow) and flow.priority
    step(h, "choose", code="DAT_DAI")
    effect = h.script.calls[-1]
    assert isinstance(effect, IssueTicket) and effect.priority


def test_idle_warning_counts_down_and_a_touch_continues(h: Harness) -> None:
    h.core.start("lookup")
    h.clock.t += 39
    h.core.tick()
    assert h.core.idle_warning is None
    h.clock.t += 1.5  # 19.5 s left of the 60 s idle timeout
    h.core.tick()
    assert h.core.idle_warning == 20
    h.clock.t += 10
    h.core.tick()
    assert h.core.idle_warning == 10
    h.core.touch()  # "Tiếp tục"
    assert h.core.idle_warning is None and h.core.screen == "lookup"
    h.clock.t += 60
    h.core.tick()
    assert h.core.screen == ATTRACT and h.core.idle_warning is None


def test_card_read_shows_take_back_then_continues_by_itself(h: Harness) -> None:
    h.script.answers[ReadCard] = Identity("Vũ Thị Hồng Nhung", date(1948, 3, 8), "genuine", True, sex="Nữ")
    h.core.start("ticket")
    h.core.start("identify")
    flow = scan(h, "079...")
    assert flow.state == "done" and h.core.screen == "identify"
    h.clock.t += 4  # the full-screen "Mời quý khách lấy lại thẻ Căn cước", then no extra tap
    h.core.tick()
    assert h.core.screen == "ticket"
    ticket_flow = h.core.flow
    assert isinstance(ticket_flow, TicketFlow) and ticket_flow.priority
    identity = h.core.session.identity if h.core.session else None
    assert identity is not None and identity.honorific_key == "identify.madam"
    assert "Nữ" not in repr(identity)
    h.core.go_home()
    assert identity.sex == "" and identity.full_name == ""


def test_lookup_numeric_pad_fills_agency_and_dashes(h: Harness) -> None:
    h.script.answers[LookupDossier] = STATUS
    h.core.start("lookup")
    flow = h.core.flow
    assert isinstance(flow, LookupFlow) and not flow.letters  # the demo center has an agency code
    for digit in "2611200001":
        step(h, "digit", digit=digit)
    assert flow.typed == "000.00.10.H12-261120-0001"
    step(h, "backspace")
    step(h, "digit", digit="1")
    step(h, "digit", digit="x")  # not a digit: ignored
    assert flow.typed == "000.00.10.H12-261120-0001"
    step(h, "submit")
    assert flow.state == "found"
    step(h, "again")
    for digit in "261120":
        step(h, "digit", digit=digit)
    assert flow.typed == "000.00.10.H12-261120-"
    step(h, "backspace")  # the dash the pad put in goes with the digit before it
    assert flow.typed == "000.00.10.H12-26112"
    for _ in range(5):
        step(h, "backspace")
    assert flow.typed == ""  # nothing the citizen typed is left: the field is empty again
    step(h, "letters", on=True)
    assert flow.letters


# -- technician ----------------------------------------------------------------------------------------
def test_technician_pin_menu_self_test_print_service_mode(h: Harness) -> None:
    h.script.answers[RunSelfTest] = {"printer": {"ok": True}}
    h.script.answers[PrintTestTicket] = None
    h.script.answers[SetServiceMode] = lambda e: h.core.set_out_of_service(
        "technician" if e.out_of_service else None
    )
    h.core.start("technician")
    for digit in "2468":
        step(h, "digit", digit=digit)
    flow = step(h, "enter")
    assert isinstance(flow, TechnicianFlow) and flow.state == "menu"
    flow = step(h, "self_test")
    assert isinstance(flow, TechnicianFlow)
    assert flow.state == "menu" and flow.self_test == {"printer": {"ok": True}}
    flow = step(h, "test_print")
    assert isinstance(flow, TechnicianFlow)
    assert flow.state == "menu" and flow.message_key == "technician.test_passed"
    step(h, "service_mode", out_of_service=True)
    assert h.core.out_of_service_reason == "technician"
    h.core.go_home()  # leaving technician mode while out of service shows the notice
    assert h.core.screen == OUT_OF_SERVICE
    h.core.start("ticket")  # citizens cannot start anything
    assert h.core.screen == OUT_OF_SERVICE
    h.core.set_out_of_service(None)
    assert h.core.screen == ATTRACT


def test_technician_print_failure_returns_to_menu(h: Harness) -> None:
    h.script.answers[PrintTestTicket] = PrinterUnavailableError("no printer")
    h.core.start("technician")
    for digit in "2468":
        step(h, "digit", digit=digit)
    step(h, "enter")
    flow = step(h, "test_print")
    assert flow.state == "menu" and flow.error_key == "printer.error"


def test_technician_wrong_pins_lock_out(h: Harness) -> None:
    h.core.start("technician")
    for _ in range(5):
        step(h, "digit", digit="1")
        flow = step(h, "enter")
    assert flow.state == "pin" and flow.error_key == "technician.locked"
    for digit in "2468":
        step(h, "digit", digit=digit)
    flow = step(h, "enter")
    assert flow.state == "pin" and flow.error_key == "technician.locked"  # even the right PIN waits
    h.clock.t += 61
    h.core.start("technician")  # the lock outlives the flow; after it, the right PIN works
    for digit in "2468":
        step(h, "digit", digit=digit)
    flow = step(h, "enter")
    assert flow.state == "menu"


# -- unexpected errors ---------------------------------------------------------------------------------
def test_unexpected_error_in_handler_returns_home_and_is_recorded(h: Harness) -> None:
    h.script.answers[IssueTicket] = RuntimeError("bug")
    h.core.start("ticket")
    h.core.act("choose", code="HO_TICH")
    h.core.pump()
    assert h.core.screen == HOME
    assert "app_error" in h.events()


def test_unknown_action_is_an_error_not_a_crash(h: Harness) -> None:
    h.core.start("ticket")
    h.core.act("fly")
    assert h.core.screen == HOME and "app_error" in h.events()


# -- must stay last: every declared transition was exercised above ---------------------------------------
def test_every_declared_transition_was_exercised() -> None:
    declared = {(f.name, a, b) for f in FLOWS for a, b in f.TRANSITIONS}
    missing = sorted(declared - SEEN)
    undeclared = sorted(SEEN - declared)
    assert not undeclared, f"transitions taken but not declared: {undeclared}"
    assert not missing, f"declared transitions never exercised: {missing}"
