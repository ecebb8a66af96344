"""The back end's operations beyond the look-up: delivery by post, feedback, booked appointments.

Each is one method of ``VisitBackend``, answered by the demo store (simulate mode) and the HTTP
adapter (mapping in docs/lookup.md). The personal fields (address, phone, feedback text) are in no
``repr``, no log line and no event; the ID number never leaves the kiosk, only its salted hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import date, time
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlsplit

from kiosk.dossier.code import DossierCode
from kiosk.errors import KioskError

#: reasons a back end may give for refusing a request (``{"error": "refused", "reason": ...}``);
#: anything else is shown as ``other``
REFUSAL_REASONS = frozenset({"not_deliverable", "already_requested", "address_outside_area", "too_early",
                             "too_late", "other"})

MAX_ADDRESS = 200
MAX_FEEDBACK = 1000
_PHONE = re.compile(r"0[1-9]\d{8,9}")  # 10 digits (mobile) or 11 (old landlines), leading 0
_BOOKING = re.compile(r"[A-Z0-9][A-Z0-9-]{5,31}")
_BOOKING_KEYS = ("booking", "booking_code", "malichhen", "ma_lich_hen", "code")


class RequestRefused(KioskError):
    """The back end answered and refused (not deliverable, already requested, too early...)."""

    code = "request_refused"

    def __init__(self, message: str, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason if reason in REFUSAL_REASONS else "other"


class AppointmentNotFound(KioskError):
    """No booking matches the code or the ID card (for today at this center)."""

    code = "appointment_not_found"


class InvalidVisitInput(KioskError):
    """What the citizen typed cannot be sent (a phone number of the wrong shape, an empty address)."""

    code = "invalid_visit_input"

    def __init__(self, message: str, field_name: str) -> None:
        super().__init__(message)
        self.field_name = field_name


def new_request_id() -> str:
    """One id per request the citizen makes: sent as ``Idempotency-Key``, so a retry never doubles it."""
    return uuid.uuid4().hex


def normalize_phone(text: str) -> str:
    """``0912 345 678`` / ``+84 912.345.678`` -> ``0912345678``; InvalidVisitInput otherwise (the
    message never quotes the number)."""
    digits = re.sub(r"[\s.\-()]", "", text)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    if not digits.isascii() or not _PHONE.fullmatch(digits):
        raise InvalidVisitInput(f"phone number: expected 10 or 11 digits starting with 0 "
                                f"({len(digits)} characters given)", "phone")
    return digits


def clean_text(text: str, limit: int, field_name: str, *, minimum: int = 1) -> str:
    """NFC, whitespace runs collapsed, no control or format characters, ``minimum..limit`` long."""
    text = unicodedata.normalize("NFC", text)
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") and c not in "\n" for c in text):
        raise InvalidVisitInput(f"{field_name}: control characters", field_name)
    text = " ".join(text.split())
    if not minimum <= len(text) <= limit:
        raise InvalidVisitInput(f"{field_name}: {len(text)} characters, expected {minimum}-{limit}",
                                field_name)
    return text


def parse_booking_code(text: str) -> str | None:
    """The booking code in a booking QR: bare (``LH-260105-0042``) or under a known URL parameter;
    None when the text is not one (a dossier code has dots, an ID card's QR has ``|``)."""
    text = text.strip()
    if text.lower().startswith(("http://", "https://")):
        try:
            query = dict((k.lower(), v) for k, v in parse_qsl(urlsplit(text).query))
        except ValueError:
            return None
        text = next((query[k] for k in _BOOKING_KEYS if k in query), "")
    code = text.upper()
    return code if _BOOKING.fullmatch(code) and not code.isdigit() else None


def id_number_hash(id_number: str, salt: bytes) -> str:
    """HMAC-SHA256 of the 12-digit ID number under the booking system's salt, in hex: what the
    appointment match sends (the number itself never leaves this function)."""
    if not re.fullmatch(r"\d{12}", id_number):
        raise InvalidVisitInput("ID number: expected 12 digits", "id_number")
    if len(salt) < 16:
        raise InvalidVisitInput("visit.appointment_salt: at least 16 bytes", "salt")
    return hmac.new(salt, id_number.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DeliveryRequest:
    code: DossierCode
    address: str = field(repr=False)
    phone: str = field(repr=False)
    request_id: str = field(default_factory=new_request_id)

    def wire(self) -> dict[str, str]:
        return {"request_id": self.request_id, "address": self.address, "phone": self.phone}


@dataclass(frozen=True)
class DeliveryReceipt:
    """The back end's answer: its request number (printed on the slip) and the fee it will charge."""

    request_number: str
    fee_vnd: int | None = None


@dataclass(frozen=True)
class FeedbackMessage:
    topic: str
    text: str = field(repr=False)
    phone: str | None = field(default=None, repr=False)
    request_id: str = field(default_factory=new_request_id)

    def wire(self) -> dict[str, str | None]:
        return {"request_id": self.request_id, "topic": self.topic, "text": self.text, "phone": self.phone}


@dataclass(frozen=True)
class FeedbackReceipt:
    number: str


@dataclass(frozen=True)
class AppointmentQuery:
    """Exactly one of a booking code or the ID number's salted hash, for ``day``."""

    day: date
    booking_code: str | None = None
    id_hash: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.booking_code is None) == (self.id_hash is None):
            raise ValueError("AppointmentQuery: give a booking code or an ID hash, not both or neither")

    def wire(self) -> dict[str, str]:
        key = {"booking_code": self.booking_code} if self.booking_code else {"id_hash": self.id_hash or ""}
        return {"day": self.day.isoformat(), **key}


@dataclass(frozen=True)
class Appointment:
    """A booking for today: which service area and at what time (no name: the kiosk needs none)."""

    booking_code: str
    service_code: str
    day: date
    at: time
    procedure_name: str = ""


@runtime_checkable
class VisitBackend(Protocol):
    """The operations of docs/lookup.md beyond the look-up; safe to call from a worker thread."""

    def request_delivery(self, request: DeliveryRequest) -> DeliveryReceipt: ...

    def send_feedback(self, message: FeedbackMessage) -> FeedbackReceipt: ...

    def match_appointment(self, query: AppointmentQuery) -> Appointment: ...


#: feedback topics the catalogs have labels for (``feedback.topic_<code>``)
FEEDBACK_TOPICS = ("thai_do", "thu_tuc", "thoi_gian", "co_so_vat_chat", "khac")


@dataclass(frozen=True)
class VisitConfig:
    """The ``[visit]`` section: what the center sets for delivery, fees, appointments and feedback."""

    #: the province's hotline for feedback (Bình Dương and most provinces: 1022), on screen and ticket
    hotline: str = field(default="1022", metadata={"pattern": r"[0-9 .+]{3,20}"})
    #: the center's account for fees when the back end names none (VietQR: NAPAS BIN + account)
    payee_bank_bin: str = field(default="", metadata={"pattern": r"(97\d{4})?", "pattern_hint": "970xxx"})
    payee_account: str = field(default="", metadata={"pattern": r"[0-9A-Za-z]{0,19}"})
    payee_name: str = ""
    #: offer delivery by post when the back end allows it for a dossier
    post_delivery: bool = True
    #: the booking system's salt for the ID number's hash (at least 16 characters); empty: booking
    #: QR codes only, the ID card is not offered
    appointment_salt: str = field(default="", repr=False, metadata={"pattern": r"(.{16,200})?"})
    #: check-in window around the booked time; outside it the citizen takes an ordinary ticket
    appointment_early_min: int = field(default=30, metadata={"min": 0, "max": 240})
    appointment_late_min: int = field(default=15, metadata={"min": 0, "max": 240})
    feedback_topics: list[str] = field(default_factory=lambda: list(FEEDBACK_TOPICS))

    def __post_init__(self) -> None:
        if bool(self.payee_bank_bin) != bool(self.payee_account):
            raise ValueError("visit.payee_bank_bin and visit.payee_account: set both or neither")
        unknown = [t for t in self.feedback_topics if t not in FEEDBACK_TOPICS]
        if unknown or not self.feedback_topics:
            raise ValueError(f"visit.feedback_topics: expected some of {', '.join(FEEDBACK_TOPICS)}")
