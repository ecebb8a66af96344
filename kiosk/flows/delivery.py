"""Results by post (nhận kết quả qua bưu điện): address, phone, fee, request, printed slip.

Runs on top of the look-up for a dossier whose result the back end allows to send. The address is
typed, or taken from the ID card's place of residence (the card's front QR) only after the citizen
agreed on screen; it stays editable. Address and phone live in ``HeldValues`` (never logged, never in
an event), are sent once, and are wiped as soon as the back end answered, or when the visit ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from common.errors import MotcuaError
from drivers.card.errors import BadQrError
from kiosk.dossier import DeliveryReceipt, DeliveryRequest, DossierNotFound, DossierStatus, RequestRefused
from kiosk.dossier.visit import MAX_ADDRESS, InvalidVisitInput, clean_text, normalize_phone
from kiosk.error_screens import screen_key
from kiosk.flows.base import Effect, Flow, FlowContext
from kiosk.flows.personal import HeldValues, PhoneEntry
from kiosk.flows.visit_event import RecordVisit


@dataclass(frozen=True)
class RequestDelivery(Effect):
    request: DeliveryRequest


@dataclass(frozen=True)
class PrintDeliverySlip(Effect):
    """The slip: request number, dossier code, fee; never the address or the phone number."""

    status: DossierStatus
    receipt: DeliveryReceipt
    language: str = "vi"


def residence_from_cccd_qr(text: str) -> str:
    """The place of residence on an ID card's front QR (``id|old id|name|birth|sex|residence|issued``).
    Only that field is returned; the rest of the text is dropped by the caller at once."""
    parts = text.strip().split("|")
    if len(parts) < 7 or not re.fullmatch(r"\d{12}", parts[0]):
        raise BadQrError("not an ID card's front QR (expected 7 fields, a 12-digit number first)")
    try:
        return clean_text(parts[5], MAX_ADDRESS, "address", minimum=5)
    except InvalidVisitInput as exc:
        raise BadQrError("ID card QR: no usable place of residence") from exc


#: refusal reasons with their own message (the others show visit.refused)
_REFUSAL_KEYS = {
    "not_deliverable": "delivery.not_deliverable",
    "already_requested": "delivery.already_requested",
    "address_outside_area": "delivery.outside_area",
}


class PostDeliveryFlow(PhoneEntry, Flow):
    name = "delivery"
    initial = "address"
    ON_TOP = True
    TRANSITIONS = frozenset(
        {
            ("address", "consent"),
            ("consent", "address"),  # declined
            ("consent", "scan_card"),
            ("scan_card", "address"),  # read, or the citizen types instead
            ("address", "phone"),
            ("phone", "address"),
            ("phone", "confirm"),
            ("confirm", "phone"),
            ("confirm", "sending"),
            ("sending", "done"),
            ("sending", "refused"),
            ("sending", "unavailable"),
            ("unavailable", "sending"),
            ("done", "printing"),
            ("printing", "done"),
        }
    )
    BUSY = frozenset({"sending", "printing"})
    RESULT = frozenset({"done", "refused", "unavailable"})
    accepts_scans = True

    def __init__(self, ctx: FlowContext, status: DossierStatus) -> None:
        super().__init__(ctx)
        if not status.can_send_by_post or not ctx.config.visit.post_delivery:
            raise ValueError(f"dossier {status.code.agency}: delivery by post is not offered")
        self.status = status
        self.fee_vnd = status.post_delivery.fee_vnd if status.post_delivery else None
        self._held = HeldValues(ctx.session)
        #: whether the address on screen came from the card (shown with "from your ID card, check it")
        self.address_from_card = False
        self.receipt: DeliveryReceipt | None = None
        self.printed = False
        self._request: DeliveryRequest | None = None
        ctx.session.hold(self)  # the pending request holds the address too

    def wipe(self) -> None:
        self._forget()

    @property
    def address(self) -> str:
        return self._held.get("address")

    # -- address -------------------------------------------------------------------------------
    def do_set_address(self, text: str) -> list[Effect]:
        """The address field's text (typed, or the card's address edited)."""
        if self.state == "address":
            self._held.set("address", text[: MAX_ADDRESS + 50])
            self.error_key = None
        return []

    def do_use_card(self) -> list[Effect]:
        """Ask before anything is read from the card."""
        if self.state == "address":
            self.error_key = None
            self.go("consent")
        return []

    def do_consent(self) -> list[Effect]:
        if self.state == "consent":
            self.go("scan_card")
        return []

    def do_decline(self) -> list[Effect]:
        if self.state in ("consent", "scan_card"):
            self.go("address")
        return []

    def on_scan(self, text: str, source: str = "camera") -> list[Effect]:
        if self.state != "scan_card":
            return []  # only after consent is a card's QR read at all
        try:
            residence = residence_from_cccd_qr(text)
        except BadQrError as exc:
            self.error_key = screen_key(exc)
            return []
        self._held.set("address", residence)
        self.address_from_card = True
        self.error_key = None
        self.go("address")
        return []

    # -- phone, confirm, send ------------------------------------------------------------------
    def do_next(self) -> list[Effect]:
        try:
            if self.state == "address":
                self._held.set("address", clean_text(self.address, MAX_ADDRESS, "address", minimum=10))
                self.error_key = None
                self.go("phone")
            elif self.state == "phone":
                self._held.set("phone", normalize_phone(self.phone))
                self.error_key = None
                self.go("confirm")
        except InvalidVisitInput as exc:
            invalid = "delivery.address_invalid" if exc.field_name == "address" else "visit.phone_invalid"
            self.error_key = invalid
        return []

    def do_back(self) -> list[Effect]:
        if self.state == "phone":
            self.go("address")
        elif self.state == "confirm":
            self.go("phone")
        return []

    def do_send(self) -> list[Effect]:
        if self.state != "confirm":
            return []
        self._request = DeliveryRequest(self.status.code, self.address, self.phone)
        self.go("sending")
        return [RequestDelivery(self._request)]

    def do_retry(self) -> list[Effect]:
        if self.state != "unavailable" or self._request is None:
            return []
        self.error_key = None
        self.go("sending")
        return [RequestDelivery(self._request)]  # the same request id: never a second request

    def do_print(self) -> list[Effect]:
        if self.state != "done" or self.receipt is None:
            return []
        self.go("printing")
        return [PrintDeliverySlip(self.status, self.receipt, self.ctx.session.language)]

    # -- results -------------------------------------------------------------------------------
    def _forget(self) -> None:
        """The back end has the address (or refused it): the kiosk keeps nothing of it."""
        self._held.wipe()
        self._request = None
        self.address_from_card = False

    def on_result(self, effect: Effect, result: Any) -> list[Effect]:
        if isinstance(effect, RecordVisit):
            return []
        if isinstance(effect, RequestDelivery):
            assert isinstance(result, DeliveryReceipt)
            self.receipt = result
            if result.fee_vnd is not None:
                self.fee_vnd = result.fee_vnd
            self._forget()
            self.go("done")
            return [RecordVisit("post_delivery", "requested", agency_code=self.status.code.agency)]
        if isinstance(effect, PrintDeliverySlip):
            self.printed = True
            self.go("done")
        return []

    def on_failure(self, effect: Effect, error: MotcuaError) -> list[Effect]:
        if isinstance(effect, RecordVisit):
            return []
        if isinstance(effect, PrintDeliverySlip):
            self.error_key = screen_key(error)
            self.go("done")
            return []
        agency = self.status.code.agency
        if isinstance(error, RequestRefused | DossierNotFound):
            self._forget()
            key = _REFUSAL_KEYS.get(error.reason, "visit.refused") if isinstance(error, RequestRefused) \
                else "lookup.not_found"
            self.fail("refused", key)
            return [RecordVisit("post_delivery", "refused", agency_code=agency)]
        self.fail("unavailable", "visit.unavailable")  # the request is kept for "Thử lại" only
        return [RecordVisit("post_delivery", "unavailable", agency_code=agency)]
