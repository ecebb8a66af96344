"""What a look-up returns: the status of one dossier, as plain data the status screen renders.

Only what the citizen's own receipt already shows plus the progress of the dossier: no applicant name,
address or ID number ever enters this structure, so it can be printed, logged and cached safely.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from kiosk.dossier.code import DossierCode, InvalidDossierCode, parse_dossier_code
from kiosk.payments.vietqr import VietQrError, VietQrPayment


class DossierState(enum.Enum):
    """Dossier statuses as one-stop systems name them; ``value`` is the wire code (docs/lookup.md)."""

    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    AWAITING_DOCUMENTS = "awaiting_documents"
    RESULT_READY = "result_ready"
    RETURNED = "returned"
    REJECTED = "rejected"

    @property
    def label_vi(self) -> str:
        return _LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _LABELS[self][1]

    def label(self, lang: str) -> str:
        return self.label_vi if lang == "vi" else self.label_en

    @property
    def agency_owes_result(self) -> bool:
        """The legal clock runs only while the agency still owes the result.

        While it waits for documents from the citizen the time is not counted (the due date is moved
        when the documents arrive), and a dossier with a result or a refusal is no longer late.
        """
        return self in (DossierState.RECEIVED, DossierState.IN_PROGRESS)


_LABELS: dict[DossierState, tuple[str, str]] = {
    DossierState.RECEIVED: ("Đã tiếp nhận", "Received"),
    DossierState.IN_PROGRESS: ("Đang xử lý", "In progress"),
    DossierState.AWAITING_DOCUMENTS: ("Chờ bổ sung hồ sơ", "Awaiting more documents"),
    DossierState.RESULT_READY: ("Đã có kết quả", "Result ready"),
    DossierState.RETURNED: ("Đã trả kết quả", "Result returned"),
    DossierState.REJECTED: ("Từ chối", "Rejected"),
}

#: Field labels for the status screen and the printed status (Vietnamese, English).
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "code": ("Mã hồ sơ", "Dossier code"),
    "procedure_name": ("Thủ tục", "Procedure"),
    "agency": ("Cơ quan đang xử lý", "Handled by"),
    "received_on": ("Ngày tiếp nhận", "Received on"),
    "due_on": ("Ngày hẹn trả kết quả", "Result due on"),
    "status": ("Trạng thái", "Status"),
    "current_step": ("Bước hiện tại", "Current step"),
    "timeline": ("Quá trình xử lý", "History"),
    "collect_at": ("Nơi nhận kết quả", "Where to collect the result"),
    "fees": ("Phí, lệ phí", "Fees and charges"),
}


def overdue_label(days: int, lang: str) -> str:
    """``Quá hạn (trễ 3 ngày)`` / ``Overdue (3 days late)``."""
    if lang == "vi":
        return f"Quá hạn (trễ {days} ngày)"
    return f"Overdue ({days} day{'s' if days != 1 else ''} late)"


class DossierDataError(ValueError):
    """A status record is missing a field or has one of the wrong type (the source is at fault)."""


@dataclass(frozen=True)
class Payee:
    """The bank account a fee is paid into (the center's, or the agency's the province names)."""

    bank_bin: str
    account: str
    name: str = ""

    def __post_init__(self) -> None:
        VietQrPayment(self.bank_bin, self.account)  # one rule for BIN and account: the QR's

    def to_dict(self) -> dict[str, str]:
        return {"bank_bin": self.bank_bin, "account": self.account, "name": self.name}


@dataclass(frozen=True)
class FeeDue:
    """A fee (phí, lệ phí) the back end reports for a dossier; ``paid`` comes back on the next look-up.

    ``payee`` None: the kiosk's configured account (``[visit.payee]``). ``reference`` is what the
    transfer's content must say for the agency to match it (the dossier code when it fits in 25
    characters, else the back end names a shorter one).
    """

    amount_vnd: int
    paid: bool
    reference: str
    payee: Payee | None = None
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"amount_vnd": self.amount_vnd, "paid": self.paid, "reference": self.reference,
                "payee": self.payee.to_dict() if self.payee else None, "label": self.label}


@dataclass(frozen=True)
class PostDelivery:
    """Whether the result may be sent by post (chuyển trả kết quả qua bưu điện), and its fee if any."""

    available: bool
    fee_vnd: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"available": self.available, "fee_vnd": self.fee_vnd}


def amount_vnd(value: Any, key: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**13:
        raise DossierDataError(f"{key}: expected whole đồng (an integer), got {value!r:.40}")
    return value


def _fee_from_dict(data: Any, code: DossierCode) -> FeeDue | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise DossierDataError("fee_due: expected an object or null")
    amount = amount_vnd(data.get("amount_vnd"), "fee_due.amount_vnd")
    assert amount is not None
    if amount == 0:
        raise DossierDataError("fee_due.amount_vnd: a fee of 0 đồng is no fee (send null)")
    paid = data.get("paid")
    if not isinstance(paid, bool):
        raise DossierDataError(f"fee_due.paid: expected true or false, got {paid!r:.20}")
    reference = data.get("reference") or code.text
    label = data.get("label") or ""
    raw_payee = data.get("payee")
    if not isinstance(reference, str) or not isinstance(label, str):
        raise DossierDataError("fee_due.reference, fee_due.label: expected strings")
    payee = None
    if raw_payee is not None:
        if not isinstance(raw_payee, dict) or not all(
            isinstance(raw_payee.get(k, ""), str) for k in ("bank_bin", "account", "name")
        ):
            raise DossierDataError("fee_due.payee: expected {bank_bin, account, name}")
        try:
            payee = Payee(raw_payee.get("bank_bin", ""), raw_payee.get("account", ""),
                          raw_payee.get("name", ""))
        except VietQrError as exc:
            raise DossierDataError(f"fee_due.payee: {exc.message}") from exc
    return FeeDue(amount, paid, reference, payee, label)


def _post_from_dict(data: Any) -> PostDelivery | None:
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("available"), bool):
        raise DossierDataError("post_delivery: expected {available: bool, fee_vnd: int | null}")
    fee = amount_vnd(data.get("fee_vnd"), "post_delivery.fee_vnd", optional=True)
    return PostDelivery(data["available"], fee)


@dataclass(frozen=True)
class DossierStatus:
    """One dossier's status. ``timeline`` is oldest first: ``((date, text), ...)``."""

    code: DossierCode
    procedure_name: str
    agency: str
    received_on: date
    due_on: date
    status: DossierState
    current_step: str
    timeline: tuple[tuple[date, str], ...] = field(default=())
    collect_at: str = ""
    fees: str | None = None
    #: a fee the back end says is due (and whether it is paid); None: none reported
    fee_due: FeeDue | None = None
    #: whether the result can be sent by post; None: the back end does not say (not offered)
    post_delivery: PostDelivery | None = None

    @property
    def can_send_by_post(self) -> bool:
        """Offer delivery by post: the back end allows it and there is (or soon will be) a result."""
        return (
            self.post_delivery is not None
            and self.post_delivery.available
            and self.status not in (DossierState.RETURNED, DossierState.REJECTED)
        )

    def overdue_days(self, today: date) -> int:
        """Calendar days past the due date while the agency still owes the result, else 0."""
        if not self.status.agency_owes_result:
            return 0
        return max(0, (today - self.due_on).days)

    def to_dict(self) -> dict[str, Any]:
        """The wire form (docs/lookup.md): what the HTTP back end sends and the demo store keeps."""
        return {
            "code": self.code.text,
            "procedure_name": self.procedure_name,
            "agency": self.agency,
            "received_on": self.received_on.isoformat(),
            "due_on": self.due_on.isoformat(),
            "status": self.status.value,
            "current_step": self.current_step,
            "timeline": [{"date": d.isoformat(), "text": t} for d, t in self.timeline],
            "collect_at": self.collect_at,
            "fees": self.fees,
            **({"fee_due": self.fee_due.to_dict()} if self.fee_due else {}),
            **({"post_delivery": self.post_delivery.to_dict()} if self.post_delivery else {}),
        }

    @classmethod
    def from_dict(cls, data: Any) -> DossierStatus:
        """Validate the wire form; raises ``DossierDataError`` naming the first bad field."""
        if not isinstance(data, dict):
            raise DossierDataError(f"expected an object, got {type(data).__name__}")

        def text(key: str, *, required: bool = True) -> str:
            value = data.get(key)
            if value is None and not required:
                return ""
            if not isinstance(value, str) or (required and not value.strip()):
                raise DossierDataError(f"{key}: expected a non-empty string, got {value!r:.40}")
            return value

        def day(key: str, value: Any) -> date:
            if not isinstance(value, str):
                raise DossierDataError(f"{key}: expected a date YYYY-MM-DD, got {value!r:.40}")
            try:
                return date.fromisoformat(value[:10])
            except ValueError as exc:
                raise DossierDataError(f"{key}: expected a date YYYY-MM-DD, got {value!r:.40}") from exc

        try:
            code = parse_dossier_code(text("code"))
        except InvalidDossierCode as exc:
            raise DossierDataError(f"code: {exc.message}") from exc
        try:
            state = DossierState(data.get("status"))
        except ValueError as exc:
            raise DossierDataError(f"status: unknown value {data.get('status')!r:.40}") from exc
        raw_timeline = data.get("timeline") or []
        if not isinstance(raw_timeline, list):
            raise DossierDataError("timeline: expected a list")
        timeline = []
        for index, entry in enumerate(raw_timeline):
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
                raise DossierDataError(f"timeline[{index}]: expected {{date, text}}")
            timeline.append((day(f"timeline[{index}].date", entry.get("date")), entry["text"]))
        fees = data.get("fees")
        if fees is not None and not isinstance(fees, str):
            raise DossierDataError(f"fees: expected a string or null, got {fees!r:.40}")
        return cls(
            code=code,
            procedure_name=text("procedure_name"),
            agency=text("agency"),
            received_on=day("received_on", data.get("received_on")),
            due_on=day("due_on", data.get("due_on")),
            status=state,
            current_step=text("current_step", required=False),
            timeline=tuple(sorted(timeline, key=lambda item: item[0])),
            collect_at=text("collect_at", required=False),
            fees=fees or None,
            fee_due=_fee_from_dict(data.get("fee_due"), code),
            post_delivery=_post_from_dict(data.get("post_delivery")),
        )

    def summary_lines(self, today: date, lang: str = "vi") -> list[tuple[str, str]]:
        """(label, value) pairs in screen order, for the status screen and the printed status."""
        i = 0 if lang == "vi" else 1
        lines = [
            (FIELD_LABELS["code"][i], self.code.text),
            (FIELD_LABELS["procedure_name"][i], self.procedure_name),
            (FIELD_LABELS["status"][i], self.status.label(lang)),
            (FIELD_LABELS["received_on"][i], f"{self.received_on:%d/%m/%Y}"),
            (FIELD_LABELS["due_on"][i], f"{self.due_on:%d/%m/%Y}"),
        ]
        late = self.overdue_days(today)
        if late:
            lines.append(("", overdue_label(late, lang)))
        if self.current_step:
            lines.append((FIELD_LABELS["current_step"][i], self.current_step))
        lines.append((FIELD_LABELS["agency"][i], self.agency))
        if self.collect_at:
            lines.append((FIELD_LABELS["collect_at"][i], self.collect_at))
        if self.fees:
            lines.append((FIELD_LABELS["fees"][i], self.fees))
        return lines
