"""The back end's visit operations (delivery by post, feedback, appointments, fees in the status)
against a real local http.server and the real demo store: success, refusal, unavailable."""

from __future__ import annotations

import json
from datetime import date, time
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.dossier import (
    Appointment,
    AppointmentNotFound,
    AppointmentQuery,
    DeliveryReceipt,
    DeliveryRequest,
    DemoDossierStore,
    DossierNotFound,
    FeedbackMessage,
    FeedbackReceipt,
    FeeDue,
    HttpDossierBackend,
    InvalidVisitInput,
    LookupUnavailable,
    Payee,
    PostDelivery,
    RequestRefused,
    VisitBackend,
    parse_dossier_code,
)
from kiosk.dossier.http import LookupRedirectRefused
from kiosk.dossier.visit import id_number_hash, normalize_phone, parse_booking_code
from kiosk.error_screens import screen_key

from .conftest import ProvinceServer, Reply, Tls
from .test_http_backend import STATUS, backend

CODE = parse_dossier_code("000.00.10.H12-260105-0007")
ADDRESS = "Số 12 đường Lê Lợi, phường Bến Thành, TP. Hồ Chí Minh"
PHONE = "0912345678"
ID_NUMBER = "079190001234"
SALT = b"province-booking-salt-2026"
TODAY = date(2026, 1, 5)


def test_status_carries_fee_due_and_post_delivery(province: ProvinceServer) -> None:
    payee = {"bank_bin": "970415", "account": "113366668888", "name": "TTPVHCC"}
    wire = {**STATUS, "fee_due": {"amount_vnd": 75000, "paid": False, "label": "Lệ phí", "payee": payee},
            "post_delivery": {"available": True, "fee_vnd": 30000}}
    province.on(CODE.text, Reply(body=wire))
    status = backend(province).lookup(CODE)
    # No reference from the system: the dossier code is the payment reference.
    expected = FeeDue(75000, False, CODE.text, Payee("970415", "113366668888", "TTPVHCC"), "Lệ phí")
    assert status.fee_due == expected
    assert status.post_delivery == PostDelivery(True, 30000) and status.can_send_by_post
    assert type(status).from_dict(status.to_dict()) == status


@pytest.mark.parametrize("fee_due", [
    {"amount_vnd": "75000", "paid": False},  # a string amount
    {"amount_vnd": 75000.5, "paid": False},
    {"amount_vnd": True, "paid": False},
    {"amount_vnd": 0, "paid": False},
    {"amount_vnd": 75000, "paid": "no"},
    {"amount_vnd": 75000, "paid": False, "payee": {"bank_bin": "12", "account": "1"}},
])
def test_a_malformed_fee_is_an_unusable_status(province: ProvinceServer, fee_due: dict[str, object]) -> None:
    province.on(CODE.text, Reply(body={**STATUS, "fee_due": fee_due}))
    with pytest.raises(LookupUnavailable, match="fee_due"):
        backend(province, retries=0).lookup(CODE)


def delivery_path(code: str = CODE.text) -> str:
    return f"/api/v1/dossiers/{code}/delivery"


def test_delivery_request_success(province: ProvinceServer) -> None:
    province.script[delivery_path()] = [Reply(status=201, body={"request_number": "BD-260105-0042",
                                                                "fee_vnd": 30000})]
    request = DeliveryRequest(CODE, ADDRESS, PHONE)
    receipt = backend(province).request_delivery(request)
    assert receipt == DeliveryReceipt("BD-260105-0042", 30000)
    [seen] = province.requests
    assert seen.method == "POST" and seen.headers["idempotency-key"] == request.request_id
    assert seen.headers["content-type"].startswith("application/json")
    assert json.loads(seen.body) == {"request_id": request.request_id, "address": ADDRESS, "phone": PHONE}
    assert ADDRESS not in repr(request) and PHONE not in repr(request)


def test_delivery_refused_not_found_and_unavailable(province: ProvinceServer) -> None:
    refusal = {"error": "refused", "reason": "not_deliverable"}
    province.script[delivery_path()] = [Reply(status=422, body=refusal)]
    with pytest.raises(RequestRefused) as refused:
        backend(province).request_delivery(DeliveryRequest(CODE, ADDRESS, PHONE))
    assert refused.value.reason == "not_deliverable" and screen_key(refused.value) == "visit.refused"
    assert len(province.requests) == 1  # a refusal is an answer: not asked again
    province.script[delivery_path()] = [Reply(status=409, body={"error": "refused", "reason": "made-up"})]
    with pytest.raises(RequestRefused) as other:
        backend(province).request_delivery(DeliveryRequest(CODE, ADDRESS, PHONE))
    assert other.value.reason == "other"
    province.script[delivery_path()] = [Reply(status=404, body={"error": "not_found"})]
    with pytest.raises(DossierNotFound):
        backend(province).request_delivery(DeliveryRequest(CODE, ADDRESS, PHONE))
    province.script[delivery_path()] = [Reply(status=503)]
    province.requests.clear()
    request = DeliveryRequest(CODE, ADDRESS, PHONE)
    with pytest.raises(LookupUnavailable, match="after 3 attempts"):
        backend(province).request_delivery(request)
    # Every retry is the same request to the system: one idempotency key.
    assert [r.headers["idempotency-key"] for r in province.requests] == [request.request_id] * 3
    province.script[delivery_path()] = [Reply(status=201, body={"request_number": "BD 1; DROP"})]
    with pytest.raises(LookupUnavailable, match="request_number"):
        backend(province).request_delivery(request)
    province.script[delivery_path()] = [Reply(status=201, body={"request_number": "BD-1", "fee_vnd": -5})]
    with pytest.raises(LookupUnavailable, match="fee_vnd"):
        backend(province).request_delivery(request)


def test_a_redirected_post_is_not_followed(province: ProvinceServer) -> None:
    province.script[delivery_path()] = [Reply(status=307, headers={"Location": "/api/v2/x"})]
    with pytest.raises(LookupRedirectRefused, match="POST"):
        backend(province).request_delivery(DeliveryRequest(CODE, ADDRESS, PHONE))
    assert len(province.requests) == 1


def test_unreachable_system_is_unavailable(closed_port: int) -> None:
    http = HttpDossierBackend(f"http://127.0.0.1:{closed_port}/api", timeout_s=0.3, retries=1,
                              backoff_s=0.01, allow_insecure_http=True)
    with pytest.raises(LookupUnavailable, match="cannot connect"):
        http.send_feedback(FeedbackMessage("thai_do", "Cán bộ hướng dẫn tận tình"))
    with pytest.raises(LookupUnavailable):
        http.match_appointment(AppointmentQuery(TODAY, booking_code="LH-260105-0001"))


def test_feedback_success_and_refusal(province: ProvinceServer) -> None:
    province.script["/api/v1/feedback"] = [Reply(status=201, body={"feedback_number": "PA-0007"})]
    message = FeedbackMessage("thu_tuc", "Thủ tục còn rườm rà", PHONE)
    assert backend(province).send_feedback(message).number == "PA-0007"
    assert json.loads(province.requests[0].body) == {"request_id": message.request_id, "topic": "thu_tuc",
                                                     "text": "Thủ tục còn rườm rà", "phone": PHONE}
    province.script["/api/v1/feedback"] = [Reply(status=422, body={"error": "refused", "reason": "other"})]
    with pytest.raises(RequestRefused):
        backend(province).send_feedback(message)
    province.script["/api/v1/feedback"] = [Reply(status=200, body="[]")]
    with pytest.raises(LookupUnavailable):
        backend(province, retries=0).send_feedback(message)


def test_appointment_by_booking_code_and_by_id_hash(province: ProvinceServer) -> None:
    answer = {"booking_code": "LH-260105-0001", "service_code": "HO_TICH", "day": "2026-01-05",
              "time": "09:30", "procedure_name": "Đăng ký khai sinh"}
    province.script["/api/v1/appointments/match"] = [Reply(body=answer)]
    found = backend(province).match_appointment(AppointmentQuery(TODAY, booking_code="LH-260105-0001"))
    assert found == Appointment("LH-260105-0001", "HO_TICH", TODAY, time(9, 30), "Đăng ký khai sinh")
    digest = id_number_hash(ID_NUMBER, SALT)
    backend(province).match_appointment(AppointmentQuery(TODAY, id_hash=digest))
    sent = province.requests[-1]
    assert json.loads(sent.body) == {"day": "2026-01-05", "id_hash": digest}
    # The number itself is nowhere in what was sent (path, headers, body).
    assert ID_NUMBER not in sent.path + json.dumps(sent.headers) + sent.body.decode()
    province.script["/api/v1/appointments/match"] = [Reply(status=404, body={"error": "not_found"})]
    with pytest.raises(AppointmentNotFound):
        backend(province).match_appointment(AppointmentQuery(TODAY, id_hash=digest))
    province.script["/api/v1/appointments/match"] = [Reply(body={**answer, "day": "2026-01-06"})]
    with pytest.raises(LookupUnavailable, match="another day"):
        backend(province).match_appointment(AppointmentQuery(TODAY, booking_code="LH-260105-0001"))
    province.script["/api/v1/appointments/match"] = [Reply(body={**answer, "service_code": "ho tich"})]
    with pytest.raises(LookupUnavailable):
        backend(province).match_appointment(AppointmentQuery(TODAY, booking_code="LH-260105-0001"))


def test_both_backends_are_visit_backends(tmp_path: Path, province: ProvinceServer) -> None:
    assert isinstance(backend(province), VisitBackend)
    assert isinstance(DemoDossierStore(tmp_path / "d.sqlite"), VisitBackend)


def test_demo_store_operations(tmp_path: Path) -> None:
    store = DemoDossierStore(tmp_path / "demo.sqlite")
    codes = {c.sequence: c for c in store.seed(TODAY)}
    deliverable, returned = codes["0102"], codes["0215"]
    request = DeliveryRequest(deliverable, ADDRESS, PHONE)
    receipt = store.request_delivery(request)
    assert receipt.request_number.startswith("BD-") and receipt.fee_vnd == 30000
    assert store.request_delivery(request) == receipt  # the same request retried
    with pytest.raises(RequestRefused) as again:
        store.request_delivery(DeliveryRequest(deliverable, ADDRESS, PHONE))
    assert again.value.reason == "already_requested"
    with pytest.raises(RequestRefused) as refused:
        store.request_delivery(DeliveryRequest(returned, ADDRESS, PHONE))
    assert refused.value.reason == "not_deliverable"
    with pytest.raises(DossierNotFound):
        unknown = parse_dossier_code("000.00.10.H12-260105-9999")
        store.request_delivery(DeliveryRequest(unknown, ADDRESS, PHONE))
    feedback = store.send_feedback(FeedbackMessage("co_so_vat_chat", "Thiếu ghế chờ", PHONE))
    assert feedback.number.startswith("PA-")
    booked = store.match_appointment(AppointmentQuery(TODAY, booking_code=f"LH-{TODAY:%y%m%d}-0001"))
    assert booked.service_code == "HO_TICH" and booked.at == time(9, 30)
    store.add_appointment(Appointment("LH-260105-0099", "CHUNG_THUC", TODAY, time(10, 0)),
                          id_number_hash(ID_NUMBER, SALT))
    assert store.match_appointment(AppointmentQuery(TODAY, id_hash=id_number_hash(ID_NUMBER, SALT))
                                   ).booking_code == "LH-260105-0099"
    with pytest.raises(AppointmentNotFound):
        store.match_appointment(AppointmentQuery(date(2026, 1, 6), booking_code="LH-260105-0099"))
    store.set_available(False)
    with pytest.raises(LookupUnavailable):
        store.send_feedback(FeedbackMessage("khac", "x"))
    with pytest.raises(LookupUnavailable):
        store.request_delivery(DeliveryRequest(codes["000087"], ADDRESS, PHONE))
    with pytest.raises(LookupUnavailable):
        store.match_appointment(AppointmentQuery(TODAY, booking_code="LH-260105-0099"))
    store.close()
    # The demo store is on the kiosk: what the citizen typed was never written to it.
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (ADDRESS, PHONE, "Thiếu ghế chờ", ID_NUMBER):
        assert secret.encode() not in raw


def test_demo_bookings_exist_for_the_centers_today_whatever_the_machines_zone(tmp_path: Path) -> None:
    """Regression: seeded with the machine's date (UTC here), the store must still answer the kiosk,
    which asks with the center's date (UTC+7: the next day from 17:00 UTC)."""
    store = DemoDossierStore(tmp_path / "demo.sqlite")
    store.seed(TODAY)
    tomorrow = date(2026, 1, 6)
    found = store.match_appointment(AppointmentQuery(tomorrow, booking_code="LH-260106-0001"))
    assert found.day == tomorrow and found.at == time(9, 30)


def test_demo_payment_state_comes_back_on_the_next_lookup(tmp_path: Path) -> None:
    store = DemoDossierStore(tmp_path / "demo.sqlite")
    code = {c.sequence: c for c in store.seed(TODAY)}["0102"]
    fee = store.lookup(code).fee_due
    assert fee is not None and not fee.paid and fee.amount_vnd == 75000 and fee.reference == code.text
    store.mark_paid(code)
    paid = store.lookup(code).fee_due
    assert paid is not None and paid.paid


def test_input_helpers() -> None:
    assert normalize_phone("0912 345 678") == normalize_phone("+84 912.345.678") == "0912345678"
    for bad in ("12345", "09123456789012", "０９１２３４５６７８", "0012345678", "abc"):
        with pytest.raises(InvalidVisitInput) as error:
            normalize_phone(bad)
        assert bad not in error.value.message
    assert parse_booking_code("lh-260105-0001") == "LH-260105-0001"
    url = "https://dichvucong.example.vn/lich-hen?maLichHen=LH-260105-0001"
    assert parse_booking_code(url) == "LH-260105-0001"
    assert parse_booking_code("000.00.10.H12-210901-0001") is None  # a dossier code
    assert parse_booking_code(f"{ID_NUMBER}||Nguyễn Văn A|01011990|Nam|Hà Nội|01012021") is None
    assert parse_booking_code("123456789012") is None  # a bare ID number is no booking
    digest = id_number_hash(ID_NUMBER, SALT)
    assert len(digest) == 64 and digest != id_number_hash(ID_NUMBER, SALT + b"x")
    with pytest.raises(InvalidVisitInput):
        id_number_hash(ID_NUMBER, b"short")


def test_requests_go_over_verified_https(province_tls: ProvinceServer, tls: Tls) -> None:
    province_tls.script["/api/v1/feedback"] = [Reply(status=201, body={"feedback_number": "PA-1"})]
    trusted = HttpDossierBackend(province_tls.base_url, timeout_s=1, retries=0, ssl_context=tls.client)
    assert trusted.send_feedback(FeedbackMessage("khac", "Cảm ơn")).number == "PA-1"
    # The system trust store does not know the test CA: the address or text is never sent.
    untrusted = HttpDossierBackend(province_tls.base_url, timeout_s=1, retries=0)
    with pytest.raises(LookupUnavailable, match="certificate"):
        untrusted.request_delivery(DeliveryRequest(CODE, ADDRESS, PHONE))
    assert [r.method for r in province_tls.requests] == ["POST"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 .-+()84abc\u00a0"), max_size=24))
def test_a_normalised_phone_is_the_digits_typed(text: str) -> None:
    try:
        phone = normalize_phone(text)
    except InvalidVisitInput:
        return
    digits = "".join(c for c in text if c.isdigit())
    assert phone.isascii() and phone.isdigit() and len(phone) in (10, 11)
    assert phone[1:] == digits[-(len(phone) - 1):]  # only a leading 0 may stand for +84 / 84


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80),
                 st.builds("https://x.vn/lh?maLichHen={}".format, st.text(max_size=40))))
def test_a_booking_code_is_never_invented(text: str) -> None:
    code = parse_booking_code(text)
    assert code is None or code in unquote_plus(text).upper()  # a URL's parameter is read decoded


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**14, 10**14) | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=8,
)
ANSWER_KEYS = st.sampled_from(["request_number", "fee_vnd", "feedback_number", "booking_code", "service_code",
                               "day", "time", "procedure_name", "error", "reason"])


# One server for all examples: each example sets every route's answer before it asks.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=st.sampled_from([200, 201, 404, 409, 422, 400]),
       body=st.one_of(JSON_VALUES, st.dictionaries(ANSWER_KEYS, JSON_VALUES, max_size=6)))
def test_any_answer_is_a_result_or_a_documented_error(
    province: ProvinceServer, status: int, body: Any
) -> None:
    """Whatever the system answers, each operation returns its result or one of its documented errors."""
    province.script["/api/v1/dossiers/000.00.10.H12-260105-0007/delivery"] = [Reply(status=status, body=body)]
    province.script["/api/v1/feedback"] = [Reply(status=status, body=body)]
    province.script["/api/v1/appointments/match"] = [Reply(status=status, body=body)]
    http = backend(province, retries=0)
    documented = (DossierNotFound, AppointmentNotFound, RequestRefused, LookupUnavailable)
    calls = (
        lambda: http.request_delivery(DeliveryRequest(CODE, ADDRESS, PHONE)),
        lambda: http.send_feedback(FeedbackMessage("khac", "x y z")),
        lambda: http.match_appointment(AppointmentQuery(TODAY, booking_code="LH-260105-0001")),
    )
    for call in calls:
        try:
            result = call()
        except documented:
            continue
        assert isinstance(result, DeliveryReceipt | FeedbackReceipt | Appointment)
