"""The visit's flows (delivery by post, fee QR, appointment check-in, feedback) as state machines,
through the core, with scripted effect handlers and a clock the test moves. The last test checks that
every transition these flows declare was exercised here and none other was taken."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from common.journal import EventJournal
from common.privacy import SESSION_VALUES
from drivers.printer.errors import PrinterPaperOutError
from kiosk.config import ConfigHolder, KioskConfig
from kiosk.core import HOME, KioskCore, Route
from kiosk.dossier import (
    Appointment,
    AppointmentNotFound,
    DeliveryReceipt,
    DossierNotFound,
    DossierState,
    DossierStatus,
    FeedbackReceipt,
    FeeDue,
    LookupUnavailable,
    Payee,
    PostDelivery,
    RequestRefused,
    parse_dossier_code,
)
from kiosk.flows.appointment import AppointmentFlow, MatchAppointment
from kiosk.flows.base import Effect, Flow
from kiosk.flows.delivery import PostDeliveryFlow, PrintDeliverySlip, RequestDelivery
from kiosk.flows.feedback import FeedbackFlow, SendFeedback
from kiosk.flows.lookup import LookupDossier
from kiosk.flows.payment import FeePaymentFlow, PrintFeeQr
from kiosk.flows.ticket import IssuedTicket, IssueTicket
from kiosk.flows.visit import VISIT_FLOW_TYPES
from kiosk.flows.visit_event import RecordVisit
from kiosk.payments import parse_vietqr
from tests.conftest import demo_config

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=ZONE)
SEEN: set[tuple[str, str, str]] = set()
ADDRESS = "Số 12 đường Lê Lợi, phường Bến Thành, TP. Hồ Chí Minh"
CARD_ADDRESS = "Thôn Phú Mỹ, xã Tân Hội, tỉnh Lâm Đồng"
ID_NUMBER = "068190001234"
CARD_QR = f"{ID_NUMBER}|250123456|Trần Thị Bích Ngọc|15031990|Nữ|{CARD_ADDRESS}|01062021"
PHONE = "0912345678"
FEEDBACK = "Cán bộ quầy 3 hướng dẫn rất tận tình, cảm ơn chị Hoa"
CODE = parse_dossier_code("000.31.25.H29-261106-0102")
STATUS = DossierStatus(
    code=CODE, procedure_name="Cấp giấy phép xây dựng nhà ở riêng lẻ", agency="UBND phường Thủ Dầu Một",
    received_on=date(2026, 11, 6), due_on=date(2026, 11, 21), status=DossierState.RESULT_READY,
    current_step="Đã có kết quả", fee_due=FeeDue(75_000, False, CODE.text, label="Lệ phí cấp phép"),
    post_delivery=PostDelivery(True, 30_000),
)
BOOKING = "LH-261123-0001"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Script:
    def __init__(self) -> None:
        self.answers: dict[type[Effect], Any] = {RecordVisit: None}
        self.calls: list[Effect] = []

    def handler(self, effect: Effect) -> Any:
        self.calls.append(effect)
        answer = self.answers[type(effect)]
        if isinstance(answer, BaseException):
            raise answer
        return answer(effect) if callable(answer) else answer

    def of(self, kind: type[Effect]) -> list[Any]:
        return [c for c in self.calls if isinstance(c, kind)]


@dataclasses.dataclass
class H:
    core: KioskCore
    script: Script
    clock: Clock
    journal: EventJournal
    now: list[datetime]

    def start(self, name: str, **args: Any) -> Flow:
        self.core.start(name, **args)
        assert self.core.flow is not None
        return self.core.flow

    def act(self, action: str, **values: Any) -> Flow:
        flow = self.core.flow
        assert flow is not None
        self.core.act(action, **values)
        self.core.pump()
        _collect(flow)
        return flow

    def scan(self, text: str) -> Flow:
        flow = self.core.flow
        assert flow is not None
        self.core.scanned(text)
        self.core.pump()
        _collect(flow)
        return flow


def _collect(flow: Flow) -> None:
    for a, b in zip(flow.history, flow.history[1:], strict=False):
        SEEN.add((flow.name, a, b))


def make_harness(tmp_path: Path, config: KioskConfig | None = None) -> H:
    config = config or demo_config(tmp_path, idle_timeout_s=60, result_timeout_s=10)
    journal = EventJournal(tmp_path / "events.sqlite")
    script = Script()
    kinds = (RequestDelivery, PrintDeliverySlip, RecordVisit, PrintFeeQr, MatchAppointment, IssueTicket,
             SendFeedback, LookupDossier)
    now = [NOW]
    core = KioskCore(ConfigHolder(config), journal, [Route(k, script.handler, "test") for k in kinds],
                     clock=Clock(), synchronous=True, wall_clock=lambda: now[0])
    return H(core, script, core.clock, journal, now)  # type: ignore[arg-type]


@pytest.fixture
def h(tmp_path: Path) -> Iterator[H]:
    harness = make_harness(tmp_path)
    yield harness
    for flow in harness.core.flows:
        _collect(flow)
    harness.journal.close()


def visits(h: H) -> list[tuple[str, str]]:
    return [(e.service, e.outcome) for e in h.script.of(RecordVisit)]


# -- delivery by post ----------------------------------------------------------------------------------
def start_delivery_from_lookup(h: H) -> PostDeliveryFlow:
    h.script.answers[LookupDossier] = STATUS
    h.start("lookup")
    h.scan(CODE.text)
    flow = h.start("delivery", status=STATUS)
    assert isinstance(flow, PostDeliveryFlow) and [f.name for f in h.core.flows] == ["lookup", "delivery"]
    return flow


def test_delivery_with_a_typed_address(h: H) -> None:
    flow = start_delivery_from_lookup(h)
    h.script.answers[RequestDelivery] = DeliveryReceipt("BD-261123-0001", 30_000)
    h.script.answers[PrintDeliverySlip] = None
    h.act("next")
    assert flow.state == "address" and flow.error_key == "delivery.address_invalid"
    h.act("set_address", text="  " + ADDRESS.replace(", ", ",   ") + " ")
    h.act("next")
    assert flow.state == "phone" and flow.address == ADDRESS  # whitespace runs collapsed
    assert SESSION_VALUES.search(f"log line with {ADDRESS}")  # held: logs redact it, the journal refuses it
    h.act("set_phone", text="0912")
    h.act("next")
    assert flow.state == "phone" and flow.error_key == "visit.phone_invalid"
    h.act("back")
    assert flow.state == "address"
    h.act("next")
    h.act("set_phone", text="+84 912 345 678")
    h.act("next")
    assert flow.state == "confirm" and flow.phone == PHONE and flow.fee_vnd == 30_000
    h.act("back")
    h.act("next")
    h.act("send")
    [sent] = h.script.of(RequestDelivery)
    assert sent.request.address == ADDRESS and sent.request.phone == PHONE and sent.request.code == CODE
    assert ADDRESS not in repr(sent) and PHONE not in repr(sent)
    assert flow.state == "done" and flow.receipt == DeliveryReceipt("BD-261123-0001", 30_000)
    # Sent: the kiosk keeps nothing of the address or the phone.
    assert flow.address == "" and flow.phone == "" and not SESSION_VALUES.search(ADDRESS)
    assert visits(h) == [("post_delivery", "requested")]
    assert h.script.of(RecordVisit)[0].agency_code == "000.31.25.H29"
    h.act("print")
    assert flow.state == "done" and flow.printed
    [slip] = h.script.of(PrintDeliverySlip)
    assert slip.receipt.request_number == "BD-261123-0001"
    h.core.close_flow()
    assert h.core.flow is not None and h.core.flow.name == "lookup"  # back to the dossier


def test_delivery_address_from_the_card_only_after_consent(h: H) -> None:
    flow = start_delivery_from_lookup(h)
    h.scan(CARD_QR)  # before consent: a card's QR is not read at all
    assert flow.address == "" and flow.state == "address"
    h.act("use_card")
    assert flow.state == "consent"
    h.scan(CARD_QR)  # still not: consent is a tap, not a scan
    assert flow.address == ""
    h.act("decline")
    assert flow.state == "address" and flow.address == ""
    h.act("use_card")
    h.act("consent")
    assert flow.state == "scan_card"
    h.scan("000.00.10.H12-210901-0001")
    assert flow.state == "scan_card" and flow.error_key == "card.bad_qr"
    h.scan(CARD_QR)
    assert flow.state == "address" and flow.address == CARD_ADDRESS and flow.address_from_card
    # Nothing else of the card stays: not the number, not the name.
    assert ID_NUMBER not in repr(vars(flow)) and "Bích Ngọc" not in repr(vars(flow))
    h.act("set_address", text=CARD_ADDRESS.replace("Thôn Phú Mỹ", "Số 5 thôn Phú Mỹ"))  # editable
    assert flow.address.startswith("Số 5")
    h.act("use_card")
    h.act("consent")
    h.act("decline")  # changed their mind at the camera
    assert flow.state == "address"


def test_delivery_refusals_and_unavailable(h: H) -> None:
    flow = start_delivery_from_lookup(h)
    for action, value in (("set_address", ADDRESS), ("next", None), ("set_phone", PHONE), ("next", None)):
        h.act(action, **({"text": value} if value else {}))
    h.script.answers[RequestDelivery] = LookupUnavailable("down")
    h.act("send")
    assert flow.state == "unavailable" and flow.error_key == "visit.unavailable"
    assert flow.address == ADDRESS  # kept for "Thử lại" only
    h.script.answers[RequestDelivery] = RequestRefused("no", "already_requested")
    h.act("retry")
    first, second = h.script.of(RequestDelivery)
    assert first.request.request_id == second.request.request_id  # a retry is the same request
    assert flow.state == "refused" and flow.error_key == "delivery.already_requested"
    assert flow.address == ""
    assert visits(h) == [("post_delivery", "unavailable"), ("post_delivery", "refused")]
    flow2 = start_delivery_from_lookup(h)
    for action, value in (("set_address", ADDRESS), ("next", None), ("set_phone", PHONE), ("next", None)):
        h.act(action, **({"text": value} if value else {}))
    h.script.answers[RequestDelivery] = DossierNotFound("gone")
    h.act("send")
    assert flow2.state == "refused" and flow2.error_key == "lookup.not_found"


def test_delivery_is_not_started_for_a_dossier_that_cannot_be_sent(h: H) -> None:
    h.core.touch()
    h.core.start("delivery", status=dataclasses.replace(STATUS, post_delivery=None))
    assert h.core.screen == HOME and h.core.flow is None  # a programming error: home, recorded
    assert "app_error" in [e.kind for e in h.journal.pending()]


def test_a_slip_that_cannot_print_says_why(h: H) -> None:
    flow = start_delivery_from_lookup(h)
    for action, value in (("set_address", ADDRESS), ("next", None), ("set_phone", PHONE), ("next", None)):
        h.act(action, **({"text": value} if value else {}))
    h.script.answers[RequestDelivery] = DeliveryReceipt("BD-1")
    h.script.answers[PrintDeliverySlip] = PrinterPaperOutError("paper out")
    h.act("send")
    h.act("print")
    assert flow.state == "done" and flow.error_key == "printer.paper_out" and not flow.printed


def test_the_visit_ending_wipes_what_was_typed(h: H) -> None:
    flow = start_delivery_from_lookup(h)
    h.act("set_address", text=ADDRESS)
    h.act("next")
    h.act("set_phone", text=PHONE)
    h.core.end_session("timeout")
    assert flow.address == "" and flow.phone == "" and not SESSION_VALUES.search(ADDRESS + PHONE)


# -- fee payment QR --------------------------------------------------------------------------------------
def test_fee_qr_shown_and_printed(h: H) -> None:
    h.script.answers[PrintFeeQr] = None
    flow = h.start("payment", status=STATUS)
    assert isinstance(flow, FeePaymentFlow) and flow.state == "show" and flow.payload is not None
    qr = parse_vietqr(flow.payload)
    visit = h.core.config.visit
    assert (qr.payment.bank_bin, qr.payment.account) == (visit.payee_bank_bin, visit.payee_account)
    assert qr.payment.amount_vnd == 75_000 and qr.payment.reference == CODE.text and qr.initiation == "12"
    h.act("shown")
    h.act("shown")
    assert visits(h) == [("fee_qr", "shown")]  # once per code shown
    h.act("print")
    assert flow.state == "show" and flow.printed and visits(h)[-1] == ("fee_qr", "printed")
    h.script.answers[PrintFeeQr] = PrinterPaperOutError("out")
    h.act("print")
    assert flow.state == "show" and flow.error_key == "printer.paper_out"


def test_fee_qr_uses_the_backends_payee_and_refuses_what_no_qr_can_carry(h: H) -> None:
    fee = FeeDue(8_000, False, "HS0102", Payee("970436", "0071000123456"))
    flow = h.start("payment", status=dataclasses.replace(STATUS, fee_due=fee))
    assert isinstance(flow, FeePaymentFlow) and flow.payload is not None
    assert parse_vietqr(flow.payload).payment.bank_bin == "970436"
    paid = dataclasses.replace(STATUS, fee_due=FeeDue(75_000, True, CODE.text))
    assert h.start("payment", status=paid).state == "paid"
    long_ref = dataclasses.replace(STATUS, fee_due=FeeDue(75_000, False, "000.20.35.H35-261119-000091"))
    flow = h.start("payment", status=long_ref)
    assert flow.state == "unavailable" and flow.error_key == "payment.qr_unavailable"
    h.act("print")
    assert h.script.of(PrintFeeQr) == []


def test_fee_qr_without_any_account_says_pay_at_the_counter(tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    config = dataclasses.replace(config, visit=dataclasses.replace(config.visit, payee_bank_bin="",
                                                                   payee_account=""))
    h = make_harness(tmp_path, config)
    flow = h.start("payment", status=STATUS)
    _collect(flow)
    assert flow.state == "unavailable" and flow.error_key == "payment.no_account"


# -- appointments ----------------------------------------------------------------------------------------
def booked(at: time, service: str = "HO_TICH") -> Appointment:
    return Appointment(BOOKING, service, NOW.date(), at, "Đăng ký khai sinh")


def issued(effect: IssueTicket) -> IssuedTicket:
    return IssuedTicket("A021", effect.service_code, effect.priority, NOW, ("1",), None)


def test_appointment_check_in_by_booking_qr_prints_at_once(h: H) -> None:
    h.script.answers[MatchAppointment] = booked(time(9, 45))
    h.script.answers[IssueTicket] = issued
    flow = h.start("appointment")
    h.scan("not a booking")
    assert flow.state == "scan" and flow.error_key == "appointment.not_a_booking"
    h.scan(f"https://dichvucong.example.vn/lich-hen?maLichHen={BOOKING.lower()}")
    [match] = h.script.of(MatchAppointment)
    assert match.query.booking_code == BOOKING and match.query.day == NOW.date()
    [ticket] = h.script.of(IssueTicket)
    assert ticket.appointment_at == "09:45" and ticket.service_code == "HO_TICH" and not ticket.priority
    assert flow.state == "done" and isinstance(flow, AppointmentFlow) and flow.ticket is not None
    assert h.core.session is not None and h.core.session.last_ticket == "A021"
    assert visits(h) == [("appointment", "checked_in")]


def test_appointment_by_id_card_sends_only_the_salted_hash(h: H) -> None:
    h.script.answers[MatchAppointment] = booked(time(9, 30))
    h.script.answers[IssueTicket] = PrinterPaperOutError("out")
    flow = h.start("appointment")
    h.scan(CARD_QR)
    [match] = h.script.of(MatchAppointment)
    assert match.query.booking_code is None and match.query.id_hash is not None
    assert len(match.query.id_hash) == 64 and ID_NUMBER not in repr(match) + match.query.id_hash
    assert ID_NUMBER not in repr(vars(flow))
    assert flow.state == "failed" and flow.error_key == "printer.paper_out"
    h.script.answers[IssueTicket] = issued
    h.act("retry")
    assert flow.state == "done"


def test_appointment_by_card_needs_the_centers_salt(tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    config = dataclasses.replace(config, visit=dataclasses.replace(config.visit, appointment_salt=""))
    h = make_harness(tmp_path, config)
    flow = h.start("appointment")
    h.scan(CARD_QR)
    assert flow.state == "scan" and flow.error_key == "appointment.card_not_offered"
    assert not isinstance(flow, AppointmentFlow) or not flow.card_offered


@pytest.mark.parametrize(("at", "state", "key"), [
    (time(11, 0), "too_early", "appointment.too_early"),  # window opens 30 min before: 10:30
    (time(9, 0), "too_late", "appointment.too_late"),  # closes 15 min after: 09:15
])
def test_early_and_late_arrivals(h: H, at: time, state: str, key: str) -> None:
    h.script.answers[MatchAppointment] = booked(at)
    flow = h.start("appointment")
    h.scan(BOOKING)
    assert flow.state == state and flow.error_key == key and h.script.of(IssueTicket) == []
    if state == "too_early":
        assert isinstance(flow, AppointmentFlow) and flow.opens_at == "10:30"
    h.act("again")
    assert flow.state == "scan"
    h.scan(BOOKING)
    h.scan(BOOKING)  # a new scan on the result starts again
    assert flow.state == state and visits(h)[-1] == ("appointment", state)


def test_appointment_not_found_unavailable_and_unknown_service(h: H) -> None:
    flow = h.start("appointment")
    h.script.answers[MatchAppointment] = AppointmentNotFound("none")
    h.scan(BOOKING)
    assert flow.state == "not_found" and flow.error_key == "appointment.not_found"
    h.act("again")
    h.script.answers[MatchAppointment] = LookupUnavailable("down")
    h.scan(BOOKING)
    assert flow.state == "unavailable" and flow.error_key == "visit.unavailable"
    h.script.answers[MatchAppointment] = booked(time(9, 30), service="NO_SUCH")
    h.act("retry")
    assert flow.state == "unavailable" and flow.error_key == "appointment.service_unknown"
    h.act("again")
    assert flow.state == "scan"
    h.script.answers[MatchAppointment] = AppointmentNotFound("none")
    h.scan(BOOKING)
    h.scan(BOOKING)
    h.script.answers[MatchAppointment] = LookupUnavailable("down")
    h.act("again")
    h.scan(BOOKING)
    h.scan(BOOKING)
    assert flow.state == "unavailable"


# -- feedback -------------------------------------------------------------------------------------------
def test_feedback_topic_text_phone_and_thanks(h: H) -> None:
    h.script.answers[SendFeedback] = FeedbackReceipt("PA-0001")
    flow = h.start("feedback")
    assert isinstance(flow, FeedbackFlow) and flow.hotline == "1022" and "thai_do" in flow.topics
    h.act("topic", code="no_such_topic")
    assert flow.state == "topic"
    h.act("topic", code="thai_do")
    h.act("back")
    h.act("topic", code="thai_do")
    h.act("next")
    assert flow.state == "text" and flow.error_key == "feedback.text_invalid"
    h.act("set_text", text=FEEDBACK)
    h.act("next")
    assert flow.state == "phone"
    h.act("back")
    h.act("next")
    h.act("set_phone", text="123")
    h.act("send")
    assert flow.state == "phone" and flow.error_key == "visit.phone_invalid"
    h.act("set_phone", text=PHONE)
    h.act("send")
    [sent] = h.script.of(SendFeedback)
    assert sent.message.text == FEEDBACK and sent.message.phone == PHONE and sent.message.topic == "thai_do"
    assert FEEDBACK not in repr(sent) and PHONE not in repr(sent)
    assert flow.state == "thanks" and flow.text == "" and not SESSION_VALUES.search(FEEDBACK)
    [event] = h.script.of(RecordVisit)
    assert (event.service, event.outcome, event.topic) == ("feedback", "sent", "thai_do")


def test_feedback_without_phone_refused_and_unavailable(h: H) -> None:
    flow = h.start("feedback")
    h.act("topic", code="khac")
    h.act("set_text", text="Nên có thêm ghế chờ")
    h.act("next")
    h.script.answers[SendFeedback] = LookupUnavailable("down")
    h.act("send")
    assert flow.state == "unavailable" and h.script.of(SendFeedback)[0].message.phone is None
    h.script.answers[SendFeedback] = RequestRefused("no")
    h.act("retry")
    assert flow.state == "refused" and flow.error_key == "visit.refused"
    assert isinstance(flow, FeedbackFlow) and flow.text == ""


def test_every_declared_transition_was_exercised() -> None:
    declared = {(f.name, a, b) for f in VISIT_FLOW_TYPES for a, b in f.TRANSITIONS}
    missing = sorted(declared - SEEN)
    undeclared = sorted(t for t in SEEN - declared if t[0] in {f.name for f in VISIT_FLOW_TYPES})
    assert not undeclared, f"transitions taken but not declared: {undeclared}"
    assert not missing, f"declared transitions never exercised: {missing}"


def test_every_catalog_key_the_visit_uses_exists_in_both_languages() -> None:
    """``fail(state, "key")`` and ``tr("key")`` are not all seen by test_i18n's patterns: check the
    visit's modules' literals against both catalogs."""
    import re

    from kiosk.i18n import catalog

    root = Path(__file__).resolve().parents[2]
    modules = [root / "kiosk" / "flows" / f"{name}.py" for name in ("delivery", "payment", "appointment",
                                                                    "feedback")]
    modules += [root / "kiosk" / "visit_effects.py", root / "kiosk" / "error_screens.py"]
    pattern = re.compile(r"""["']((?:visit|delivery|payment|appointment|feedback|card|lookup|printer)"""
                         r"""\.[a-z_]+)["']""")
    used = {key for path in modules for key in pattern.findall(path.read_text(encoding="utf-8"))}
    assert len(used) > 20
    from kiosk.dossier.visit import FEEDBACK_TOPICS

    used |= {f"feedback.topic_{topic}" for topic in FEEDBACK_TOPICS}  # the screens build these
    for language in ("vi", "en"):
        missing = sorted(used - set(catalog(language)))
        assert missing == [], (language, missing)
