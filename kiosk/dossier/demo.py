"""A local dossier store (SQLite) for simulate mode and demos, seeded with realistic dossiers.

Dates are seeded relative to a given day so the demo always shows a fresh mix: one overdue, one
waiting for documents, one with a result to collect, and so on. ``set_available(False)`` and
``set_delay(s)`` let the simulator panel show the "system unreachable" and "slow" screens honestly.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from kiosk.dossier.backend import DossierNotFound, LookupUnavailable
from kiosk.dossier.code import DossierCode, parse_dossier_code
from kiosk.dossier.model import DossierDataError, DossierState, DossierStatus, FeeDue, PostDelivery
from kiosk.dossier.visit import (
    Appointment,
    AppointmentNotFound,
    AppointmentQuery,
    DeliveryReceipt,
    DeliveryRequest,
    FeedbackMessage,
    FeedbackReceipt,
    RequestRefused,
)

# The demo store lives on the kiosk: it keeps request numbers, never the address, phone or feedback
# text it was sent (a real province system keeps those; the kiosk must not).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS dossiers (code TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (request_id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE,
                                       number TEXT NOT NULL, fee_vnd INTEGER);
CREATE TABLE IF NOT EXISTS feedback (request_id TEXT PRIMARY KEY, number TEXT NOT NULL,
                                     topic TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS appointments (booking_code TEXT PRIMARY KEY, id_hash TEXT,
                                         service_code TEXT NOT NULL, day TEXT NOT NULL, at TEXT NOT NULL,
                                         procedure_name TEXT NOT NULL);
"""
#: the demo's fee for sending a result by post (the province sets its own)
DEMO_POST_FEE_VND = 30_000

_HCM = "Trung tâm Phục vụ hành chính công phường Bến Thành, TP. Hồ Chí Minh"
_HN = "Bộ phận Một cửa phường Hoàn Kiếm, Hà Nội"
_LD = "Bộ phận Một cửa xã Tân Hội, Lâm Đồng"
_TDM = "Trung tâm Phục vụ hành chính công phường Thủ Dầu Một, TP. Hồ Chí Minh"


def _demo_rows(today: date) -> list[DossierStatus]:
    """The seeded dossiers; codes carry their received date as the circular requires."""

    def make(
        agency: str,
        received_ago: int,
        seq: str,
        procedure: str,
        handler: str,
        due_after: int,
        state: DossierState,
        step: str,
        steps: list[tuple[int, str]],
        collect_at: str,
        fees: str | None = None,
    ) -> DossierStatus:
        received = today - timedelta(days=received_ago)
        code = DossierCode(agency, received, seq)
        timeline = tuple((received + timedelta(days=d), text) for d, text in steps)
        return DossierStatus(
            code, procedure, handler, received, received + timedelta(days=due_after), state, step,
            timeline, collect_at, fees,
        )

    received_step = (0, "Bộ phận Một cửa đã tiếp nhận hồ sơ")
    counter = "Quầy số 3, Bộ phận Một cửa"
    rows = [
        make("000.00.10.H12", 1, "0012", "Đăng ký khai sinh", _HCM, 2, DossierState.RECEIVED,
             "Chờ chuyển công chức tư pháp - hộ tịch", [received_step], counter),
        make("000.00.10.H12", 3, "0007", "Đăng ký kết hôn", _HCM, 5, DossierState.IN_PROGRESS,
             "Công chức tư pháp - hộ tịch đang thẩm định",
             [received_step, (1, "Chuyển công chức tư pháp - hộ tịch")], counter),
        make("000.00.10.H12", 9, "0003", "Cấp bản sao trích lục hộ tịch", _HCM, 3, DossierState.IN_PROGRESS,
             "Chờ lãnh đạo UBND phường ký", [received_step, (1, "Đã thẩm định"), (2, "Trình ký")],
             counter, "8.000 đồng/bản"),
        make("000.31.25.H29", 20, "0041", "Đăng ký biến động đất đai", _TDM, 10,
             DossierState.AWAITING_DOCUMENTS, "Chờ bổ sung: bản sao hợp đồng chuyển nhượng có chứng thực",
             [received_step, (4, "Văn phòng đăng ký đất đai kiểm tra"), (6, "Yêu cầu bổ sung hồ sơ")],
             "Quầy số 7, Trung tâm Phục vụ hành chính công"),
        make("000.31.25.H29", 25, "0102", "Cấp giấy phép xây dựng nhà ở riêng lẻ", _TDM, 15,
             DossierState.RESULT_READY, "Đã có kết quả, mời nhận tại quầy",
             [received_step, (5, "Phòng Kinh tế - Hạ tầng thẩm định"), (13, "Lãnh đạo ký duyệt"),
              (14, "Chuyển kết quả về Bộ phận Một cửa")],
             "Quầy số 7, Trung tâm Phục vụ hành chính công", "75.000 đồng"),
        make("000.00.01.H26", 6, "0215", "Đăng ký thành lập hộ kinh doanh", _HN, 3, DossierState.RETURNED,
             "Đã trả kết quả",
             [received_step, (2, "Cấp giấy chứng nhận"), (3, "Đã trả kết quả cho công dân")],
             "Quầy số 2, Bộ phận Một cửa phường Hoàn Kiếm", "100.000 đồng"),
        make("000.00.01.H26", 4, "0230", "Chứng thực bản sao từ bản chính", _HN, 1, DossierState.REJECTED,
             "Từ chối: bản chính bị tẩy xóa, sửa chữa", [received_step, (1, "Từ chối tiếp nhận")],
             "Quầy số 2, Bộ phận Một cửa phường Hoàn Kiếm"),
        make("000.20.35.H35", 15, "000087", "Đăng ký biến động đất đai", _LD, 20, DossierState.IN_PROGRESS,
             "Chi nhánh Văn phòng đăng ký đất đai đang xử lý",
             [received_step, (3, "Chuyển Chi nhánh Văn phòng đăng ký đất đai")],
             "Bộ phận Một cửa xã Tân Hội; hoặc nhận qua bưu điện"),
        make("000.20.35.H35", 12, "000091", "Cấp đổi giấy phép lái xe", _LD, 5, DossierState.RESULT_READY,
             "Đã có kết quả", [received_step, (4, "Phòng Cảnh sát giao thông cấp giấy phép lái xe")],
             "Nhận kết quả qua bưu điện", "135.000 đồng"),
        make("G22.35", 2, "0001234", "Cấp đổi giấy phép lái xe", "Cổng Dịch vụ công quốc gia", 5,
             DossierState.IN_PROGRESS, "Đang xử lý trực tuyến", [(0, "Tiếp nhận hồ sơ trực tuyến")],
             "Nhận kết quả qua bưu điện", "135.000 đồng"),
        make("000.00.10.H12", 40, "0099", "Đăng ký khai sinh", _HCM, 3, DossierState.RETURNED,
             "Đã trả kết quả", [received_step, (1, "Đã ký"), (2, "Đã trả kết quả")], counter),
    ]
    glossary = DossierStatus(
        parse_dossier_code("000.00.10.H12-210901-0001"), "Đăng ký khai sinh", _HCM,
        date(2021, 9, 1), date(2021, 9, 3), DossierState.RETURNED, "Đã trả kết quả",
        ((date(2021, 9, 1), "Bộ phận Một cửa đã tiếp nhận hồ sơ"), (date(2021, 9, 3), "Đã trả kết quả")),
        counter,
    )
    # Fees due and delivery by post on some of them (the wire form of docs/lookup.md).
    extras = {
        "0102": (FeeDue(75_000, False, "", label="Lệ phí cấp giấy phép xây dựng"),
                 PostDelivery(True, DEMO_POST_FEE_VND)),
        "0215": (FeeDue(100_000, True, "", label="Lệ phí đăng ký hộ kinh doanh"), None),
        "000091": (FeeDue(135_000, False, "", label="Lệ phí cấp đổi giấy phép lái xe"),
                   PostDelivery(True, DEMO_POST_FEE_VND)),
        "000087": (None, PostDelivery(True, DEMO_POST_FEE_VND)),
        "0003": (FeeDue(8_000, False, "", label="Phí cấp bản sao trích lục"), PostDelivery(False)),
    }
    for index, row in enumerate(rows):
        fee, post = extras.get(row.code.sequence, (None, None))
        if fee is not None:
            fee = dataclasses.replace(fee, reference=row.code.text if len(row.code.text) <= 25 else
                                      f"HS{row.code.received_on:%y%m%d}{row.code.sequence}")
        rows[index] = dataclasses.replace(row, fee_due=fee, post_delivery=post)
    return [glossary, *rows]


def demo_appointments(today: date) -> list[Appointment]:
    """Bookings for today, by booking code (the booking QR's text)."""
    return [
        Appointment(f"LH-{today:%y%m%d}-0001", "HO_TICH", today, clock_time(9, 30), "Đăng ký khai sinh"),
        Appointment(f"LH-{today:%y%m%d}-0002", "DAT_DAI", today, clock_time(14, 0),
                    "Đăng ký biến động đất đai"),
    ]


class DemoDossierStore:
    """``DossierBackend`` over one SQLite file; thread-safe (the app looks up from a worker)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._available = True
        self._delay_s = 0.0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5)
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise LookupUnavailable(f"cannot open demo dossier store {path}: {exc}") from exc

    def seed(self, today: date | None = None) -> list[DossierCode]:
        """(Re)write the demo dossiers, dated relative to ``today``; returns their codes."""
        today = today or date.today()
        rows = _demo_rows(today)
        for row in rows:
            self.put(row)
        with self._lock:
            self._db.execute("DELETE FROM deliveries")
            self._db.execute("DELETE FROM appointments")
        # The store is seeded with the machine's date; the kiosk asks for the center's (Asia/Ho_Chi_Minh
        # is UTC+7): bookings for the days either side too, so the demo's "today" always has some.
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            for appointment in demo_appointments(day):
                self.add_appointment(appointment)
        return [row.code for row in rows]

    def add_appointment(self, appointment: Appointment, id_hash: str | None = None) -> None:
        """A booking (``id_hash``: the booking system's salted hash of the citizen's ID number)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO appointments VALUES (?, ?, ?, ?, ?, ?)",
                (appointment.booking_code, id_hash, appointment.service_code, appointment.day.isoformat(),
                 appointment.at.strftime("%H:%M"), appointment.procedure_name),
            )

    def mark_paid(self, code: DossierCode) -> None:
        """The simulator's "the citizen paid": the next look-up reports the fee as paid."""
        status = self.lookup(code)
        if status.fee_due is not None:
            self.put(dataclasses.replace(status, fee_due=dataclasses.replace(status.fee_due, paid=True)))

    def put(self, status: DossierStatus) -> None:
        text = json.dumps(status.to_dict(), ensure_ascii=False)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO dossiers (code, data) VALUES (?, ?)",
                             (status.code.text, text))

    def codes(self) -> list[DossierCode]:
        with self._lock:
            rows = self._db.execute("SELECT code FROM dossiers ORDER BY code").fetchall()
        return [parse_dossier_code(r[0]) for r in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM dossiers").fetchone()[0])

    def set_available(self, available: bool) -> None:
        """Simulate the province system going down (``False``) and coming back."""
        self._available = available

    def set_delay(self, seconds: float) -> None:
        """Simulate a slow province system: every look-up waits this long first."""
        self._delay_s = max(0.0, seconds)

    def lookup(self, code: DossierCode) -> DossierStatus:
        if self._delay_s:
            time.sleep(self._delay_s)
        if not self._available:
            raise LookupUnavailable("demo dossier store is set unavailable (simulated outage)")
        try:
            with self._lock:
                row = self._db.execute("SELECT data FROM dossiers WHERE code = ?", (code.text,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise LookupUnavailable(f"demo dossier store {self.path}: {exc}") from exc
        if row is None:
            raise DossierNotFound(f"no dossier {code.text} in the demo store")
        try:
            return DossierStatus.from_dict(json.loads(row[0]))
        except (ValueError, DossierDataError) as exc:
            raise LookupUnavailable(f"demo dossier store row {code.text} is corrupt: {exc}") from exc

    # -- the visit's operations (kiosk.dossier.visit.VisitBackend) ------------------------------
    def _answering(self) -> None:
        if self._delay_s:
            time.sleep(self._delay_s)
        if not self._available:
            raise LookupUnavailable("demo dossier store is set unavailable (simulated outage)")

    def request_delivery(self, request: DeliveryRequest) -> DeliveryReceipt:
        status = self.lookup(request.code)  # the same availability and not-found answers
        if not status.can_send_by_post:
            raise RequestRefused(f"dossier {request.code.text} cannot be sent by post", "not_deliverable")
        assert status.post_delivery is not None
        with self._lock:
            again = self._db.execute("SELECT number, fee_vnd, request_id FROM deliveries WHERE code = ?",
                                     (request.code.text,)).fetchone()
            if again is not None:
                if again[2] == request.request_id:  # the same request retried: the same answer
                    return DeliveryReceipt(again[0], again[1])
                raise RequestRefused(f"dossier {request.code.text} already has a delivery request",
                                     "already_requested")
            count = self._db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
            number = f"BD-{date.today():%y%m%d}-{count + 1:04d}"
            self._db.execute("INSERT INTO deliveries VALUES (?, ?, ?, ?)",
                             (request.request_id, request.code.text, number, status.post_delivery.fee_vnd))
        return DeliveryReceipt(number, status.post_delivery.fee_vnd)

    def send_feedback(self, message: FeedbackMessage) -> FeedbackReceipt:
        self._answering()
        with self._lock:
            again = self._db.execute("SELECT number FROM feedback WHERE request_id = ?",
                                     (message.request_id,)).fetchone()
            if again is not None:
                return FeedbackReceipt(again[0])
            count = self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
            number = f"PA-{date.today():%y%m%d}-{count + 1:04d}"
            self._db.execute("INSERT INTO feedback VALUES (?, ?, ?)",
                             (message.request_id, number, message.topic))
        return FeedbackReceipt(number)

    def match_appointment(self, query: AppointmentQuery) -> Appointment:
        self._answering()
        by_code = query.booking_code is not None
        where = "booking_code = ?" if by_code else "id_hash = ?"
        with self._lock:
            row = self._db.execute(
                "SELECT booking_code, service_code, day, at, procedure_name FROM appointments "
                f"WHERE {where} AND day = ?",
                (query.booking_code if by_code else query.id_hash, query.day.isoformat()),
            ).fetchone()
        if row is None:
            raise AppointmentNotFound("no booking for this code or card today in the demo store")
        return Appointment(row[0], row[1], date.fromisoformat(row[2]),
                           datetime.strptime(row[3], "%H:%M").time(), row[4])

    def close(self) -> None:
        with self._lock:
            self._db.close()
