"""``event/1``: what happened at a kiosk, one typed payload per kind, from the kiosk's durable outbox.

Topic ``{kiosk}/event/{kind}``, QoS 1. At-least-once: duplicates carry the same ``event_id``, ``seq``,
``kind`` and payload, so a consumer stores idempotently on ``event_id`` and detects loss as gaps of
``seq`` per (kiosk, ``journal_id``). No payload can name a person: the types below have no field for
a name, an ID number, a birth date, an address or a dossier code.

A kind unknown to this version (added by a newer kiosk) parses as ``UnknownPayload``: stored and
counted, never refused, so a new kiosk version cannot make the fleet drop its events.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self, get_args

from contract.errors import ContractError
from contract.message import Message
from contract.schema import parse_dataclass, to_data
from contract.status import DEVICE_STATE
from contract.wire import now_iso

#: the largest payload of one event (UTF-8 JSON); the envelope adds at most ~300 bytes
MAX_PAYLOAD_BYTES = 8192
KIND_PATTERN = r"[a-z][a-z0-9_]{0,39}"
_SERVICE = {"pattern": r"[A-Z0-9_]{1,16}", "pattern_hint": "a service code"}
_NUMBER = {"pattern": r"[A-Z][0-9]{3,5}", "pattern_hint": "a queue number such as A012"}
_DAY = {"pattern": r"\d{4}-\d{2}-\d{2}", "pattern_hint": "YYYY-MM-DD"}
_CODE = {"pattern": r"[A-Za-z][A-Za-z0-9_]{0,63}", "pattern_hint": "a short code"}
_DEVICE = {"pattern": r"[a-z_]{1,32}", "pattern_hint": "a device name such as printer"}


@dataclass(frozen=True)
class EventPayload:
    """Base of the typed payloads; ``KIND`` is the event kind (and the last topic level)."""

    KIND: ClassVar[str]

    @property
    def kind(self) -> str:
        return self.KIND

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = to_data(self)
        return data

    @classmethod
    def from_data(cls, data: Any) -> Self:
        payload: Self = parse_dataclass(cls, data, f"event.payload ({cls.KIND})", lenient=True)
        return payload


@dataclass(frozen=True)
class TicketIssued(EventPayload):
    KIND: ClassVar[str] = "ticket_issued"
    #: a walk-in's payload is the same as before ``appointment_at`` existed
    OMIT_NONE: ClassVar[bool] = True
    number: str = field(metadata=_NUMBER)
    service: str = field(metadata=_SERVICE)
    priority: bool = False
    #: whether the citizen identified with the ID card (never who)
    identified: bool = False
    day: str = field(default="", metadata={"pattern": r"(\d{4}-\d{2}-\d{2})?"})
    #: the booked time (HH:MM, center time) when the ticket checks in an appointment; None: a walk-in
    appointment_at: str | None = field(
        default=None, metadata={"pattern": r"([01]\d|2[0-3]):[0-5]\d", "pattern_hint": "HH:MM"}
    )


@dataclass(frozen=True)
class TicketVoided(EventPayload):
    """A number that was taken but not printed (printer failure): never handed out again."""

    KIND: ClassVar[str] = "ticket_voided"
    number: str = field(metadata=_NUMBER)
    service: str = field(metadata=_SERVICE)
    reason: str = field(metadata=_CODE)


@dataclass(frozen=True)
class Lookup(EventPayload):
    """A dossier look-up: its outcome, never whose dossier (only the agency part of the code)."""

    KIND: ClassVar[str] = "lookup"
    OMIT_NONE: ClassVar[bool] = True
    outcome: Literal["found", "not_found", "unavailable", "not_a_dossier"]
    source: Literal["camera", "serial", "keyboard"]
    agency_code: str | None = field(default=None, metadata={"pattern": r"[A-Za-z0-9.]{1,40}"})
    status: str | None = field(default=None, metadata={"pattern": r"[a-z_]{1,40}"})
    overdue_days: int | None = field(default=None, metadata={"min": 0, "max": 100_000})
    latency_ms: float | None = field(default=None, metadata={"min": 0})


@dataclass(frozen=True)
class Rating(EventPayload):
    """One counted rating. ``target_id`` names a ticket, counter or officer; for a dossier it is None
    (a dossier code leads to a person; the kind alone is counted)."""

    KIND: ClassVar[str] = "rating"
    level: int = field(metadata={"min": 1, "max": 5})
    scale: Literal[3, 4, 5]
    level_key: str = field(metadata={"pattern": r"[a-z_]{1,32}"})
    target_kind: Literal["center", "ticket", "dossier", "counter", "official"] = "center"
    target_id: str | None = field(default=None, metadata={"pattern": r"[A-Za-z0-9_.:/-]{1,100}"})
    reasons: list[str] = field(default_factory=list, metadata={"max_items": 32})
    criteria: dict[str, int] = field(default_factory=dict, metadata={"max_items": 32})


VisitServiceName = Literal["post_delivery", "fee_qr", "appointment", "feedback"]
VisitOutcome = Literal["requested", "shown", "printed", "checked_in", "sent", "refused", "not_found",
                       "unavailable", "too_early", "too_late"]


@dataclass(frozen=True)
class VisitService(EventPayload):
    """Delivery by post, a fee's payment code, an appointment check-in or feedback: what was done and
    how it ended, never by whom, to which address, or what the feedback said (only its topic)."""

    KIND: ClassVar[str] = "visit_service"
    OMIT_NONE: ClassVar[bool] = True
    service: VisitServiceName
    outcome: VisitOutcome
    topic: str | None = field(default=None, metadata={"pattern": r"[a-z_]{1,32}"})
    #: the agency part of the dossier code, as in ``lookup`` (never the whole code)
    agency_code: str | None = field(default=None, metadata={"pattern": r"[A-Za-z0-9.]{1,40}"})


#: Every ``CardRead.result`` this version's kiosk can send: "ok", or the class name of the error that
#: ended the read (``drivers.card.errors`` and its subclasses in ``drivers.card``, the kiosk's own
#: ``AlteredCardError``). Known so that the center can say each in words (``fleet.web.contract_text``);
#: the field stays a free short code, so an older or newer kiosk's result is still stored and shown as
#: it came. A test keeps this list equal to the card stack's CardError subclasses.
CardReadResult = Literal[
    "ok",
    "CardRemovedError",  # the card left the reader before the read finished
    "CardTimeoutError",  # no card came, or it stopped answering, within the reader's timeout
    "ReaderMissingError",  # the reader is unplugged or pcscd is not running
    "NotIdCardError",  # not a CCCD (a bank card, a transport card...)
    "WrongKeyError",  # the CAN typed or the QR scanned does not open the card
    "BadQrError",  # the QR scanned is not a CCCD's
    "AlteredCardError",  # the card's data does not match its signature
    "ChipAuthenticationError",  # the chip cannot prove it holds the card's key (a clone)
    "SecureMessagingError",  # a protected answer failed its check
    "FileAccessError",  # the card refused to give a file
    "StatusWordError",  # the card answered an error status word
    "MalformedDataError",  # a file from the card does not parse
    "CardProtocolError",  # an answer the protocol does not allow
    "CardError",  # any other failure of the card stack (PC/SC error, no trust store)
]
CARD_READ_RESULTS: frozenset[str] = frozenset(get_args(CardReadResult))


@dataclass(frozen=True)
class CardRead(EventPayload):
    """An ID-card read: outcome, verdict and speed, never anything read from the card."""

    KIND: ClassVar[str] = "card_read"
    #: one of ``CARD_READ_RESULTS`` from this version's kiosk; any short code is read
    result: str = field(metadata=_CODE)
    authenticity: str = field(default="not_checked", metadata={"pattern": r"[a-z_]{1,32}"})
    duration_ms: int = field(default=0, metadata={"min": 0})


@dataclass(frozen=True)
class DeviceFault(EventPayload):
    """A device went into a state other than ok (``problem`` is the state word of health/1)."""

    KIND: ClassVar[str] = "device_fault"
    device: str = field(metadata=_DEVICE)
    problem: str = field(metadata=DEVICE_STATE)
    detail: str = field(default="", metadata={"max_len": 200})


@dataclass(frozen=True)
class DeviceRecovered(EventPayload):
    KIND: ClassVar[str] = "device_recovered"
    device: str = field(metadata=_DEVICE)


@dataclass(frozen=True)
class AppError(EventPayload):
    """An unexpected error in the app (the citizen was sent home); the traceback stays in the log."""

    KIND: ClassVar[str] = "app_error"
    error: str = field(metadata={"pattern": r"[A-Za-z_][A-Za-z0-9_.]{0,99}"})
    screen: str = field(default="", metadata={"pattern": r"[a-z_]{0,32}"})


@dataclass(frozen=True)
class SessionEnded(EventPayload):
    KIND: ClassVar[str] = "session_ended"
    reason: str = field(metadata=_CODE)
    duration_s: float = field(default=0.0, metadata={"min": 0})


@dataclass(frozen=True)
class AppStarted(EventPayload):
    KIND: ClassVar[str] = "app_started"
    version: str = field(metadata={"max_len": 40})
    config_version: int = field(default=0, metadata={"min": 0})


@dataclass(frozen=True)
class TechnicianLogin(EventPayload):
    """Audit: the technician PIN was accepted (never the PIN, never who)."""

    KIND: ClassVar[str] = "technician_login"
    #: the stored form that accepted it: "sha256_legacy" tells the center this kiosk must be re-keyed
    scheme: Literal["argon2id", "sha256_legacy"] = "argon2id"
    #: wrong PINs in a row before this one
    failures_before: int = field(default=0, metadata={"min": 0})


@dataclass(frozen=True)
class TechnicianLoginFailed(EventPayload):
    """Audit: a wrong technician PIN."""

    KIND: ClassVar[str] = "technician_login_failed"
    #: wrong PINs in a row, this one included (kept across restarts)
    failures: int = field(metadata={"min": 1})


@dataclass(frozen=True)
class TechnicianLockedOut(EventPayload):
    """Audit: technician entry is locked after too many wrong PINs (each lock doubles the next)."""

    KIND: ClassVar[str] = "technician_locked_out"
    failures: int = field(metadata={"min": 1})
    lockout_s: float = field(metadata={"min": 0})
    #: locks since the last right PIN
    lockouts: int = field(default=1, metadata={"min": 1})


@dataclass(frozen=True)
class ServiceModeChanged(EventPayload):
    """Audit: the kiosk went out of service or back, and who asked (the technician or the center)."""

    KIND: ClassVar[str] = "service_mode_changed"
    out_of_service: bool
    source: Literal["technician", "center"]


@dataclass(frozen=True)
class OutboxDropped(EventPayload):
    """Written by the journal itself: it reached its bound and these oldest events were deleted unsent."""

    KIND: ClassVar[str] = "outbox_dropped"
    count: int = field(metadata={"min": 1})
    first_seq: int = field(metadata={"min": 1})
    last_seq: int = field(metadata={"min": 1})


@dataclass(frozen=True)
class JournalRecovered(EventPayload):
    """Written by the journal itself: first event of a new journal after the old file was corrupted."""

    KIND: ClassVar[str] = "journal_recovered"
    moved_to: str = field(metadata={"max_len": 200})
    error: str = field(default="", metadata={"max_len": 200})


@dataclass(frozen=True)
class SelfTestStep:
    """One step of a technician's self-test: what was tried, whether it worked, the device's state."""

    step: str = field(metadata={"pattern": r"[a-z_]{1,32}", "pattern_hint": "a step such as printer"})
    ok: bool
    state: str = field(default="", metadata={"pattern": r"[a-z_]{0,32}"})
    detail: str = field(default="", metadata={"max_len": 200})
    duration_ms: int = field(default=0, metadata={"min": 0})


@dataclass(frozen=True)
class SelfTest(EventPayload):
    """A guided self-test (``main.py provision selftest`` or the technician screen): the steps and the
    verdict. A card step says whether a test card was read, never anything read from it."""

    KIND: ClassVar[str] = "self_test"
    result: Literal["pass", "fail"]
    source: Literal["cli", "screen"] = "cli"
    steps: list[SelfTestStep] = field(default_factory=list, metadata={"max_items": 12})
    duration_ms: int = field(default=0, metadata={"min": 0})

    @classmethod
    def from_devices(
        cls, results: dict[str, Any], source: Literal["cli", "screen"], duration_ms: int = 0
    ) -> SelfTest:
        """The technician screen's device verdicts (``{device: {"ok", "state", "error"}}``) as a report."""
        steps = []
        for device, verdict in list(results.items())[:12]:
            entry = verdict if isinstance(verdict, dict) else {}
            state = re.sub(r"[^a-z_]", "_", str(entry.get("state") or "").lower())[:32]
            steps.append(SelfTestStep(re.sub(r"[^a-z_]", "_", device.lower())[:32] or "device",
                                      bool(entry.get("ok")), state, str(entry.get("error") or "")[:200]))
        result: Literal["pass", "fail"] = "pass" if steps and all(s.ok for s in steps) else "fail"
        return cls(result, source, steps, max(0, int(duration_ms)))


@dataclass(frozen=True)
class UnknownPayload(EventPayload):
    """A kind this version does not know (a newer kiosk's addition): kept as it came."""

    KIND: ClassVar[str] = ""
    unknown_kind: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.unknown_kind

    def to_data(self) -> dict[str, Any]:
        return dict(self.data)


#: every kind this version knows -> its payload type
EVENT_PAYLOADS: dict[str, type[EventPayload]] = {
    cls.KIND: cls
    for cls in (
        TicketIssued, TicketVoided, Lookup, Rating, CardRead, DeviceFault, DeviceRecovered, AppError,
        SessionEnded, AppStarted, OutboxDropped, JournalRecovered, TechnicianLogin, TechnicianLoginFailed,
        TechnicianLockedOut, ServiceModeChanged, SelfTest, VisitService,
    )
}
EVENT_KINDS = frozenset(EVENT_PAYLOADS)


def payload_from_data(kind: str, data: Any) -> EventPayload:
    """The typed payload of ``kind`` (``UnknownPayload`` for a kind this version does not know)."""
    cls = EVENT_PAYLOADS.get(kind)
    if cls is None:
        if not isinstance(data, dict):
            raise ContractError(f"event.payload ({kind[:40]}): expected a JSON object")
        return UnknownPayload(kind, data)
    return cls.from_data(data)


def payload_json(payload: EventPayload) -> str:
    """The payload as the journal stores it and the envelope embeds it (sorted keys, UTF-8)."""
    text = json.dumps(payload.to_data(), ensure_ascii=False, sort_keys=True, allow_nan=False)
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"event.payload ({payload.KIND}): larger than {MAX_PAYLOAD_BYTES} bytes")
    return text


@dataclass(frozen=True)
class _Envelope:
    event_id: str = field(metadata={"pattern": r"[0-9a-f]{32}", "pattern_hint": "32 hex digits (uuid4)"})
    seq: int = field(metadata={"min": 1})
    journal_id: str = field(metadata={"pattern": r"[0-9a-f]{1,64}"})
    kind: str = field(metadata={"pattern": KIND_PATTERN})
    occurred_at: str = field(metadata={"time": True, "max_len": 40})
    payload: dict[str, Any] = field(metadata={"max_items": 64})
    replay: bool = False


@dataclass(frozen=True)
class Event(Message):
    SCHEMA: ClassVar[str] = "event/1"
    MAX_BYTES: ClassVar[int] = MAX_PAYLOAD_BYTES + 1024

    event_id: str
    seq: int
    journal_id: str
    payload: EventPayload
    occurred_at: str = field(default_factory=now_iso)
    #: the agent had handed this event to the broker before (it may have arrived already)
    replay: bool = False

    @property
    def kind(self) -> str:
        return self.payload.kind

    @classmethod
    def from_data(cls, data: Any) -> Self:
        body = cls.body_of(data)
        envelope = parse_dataclass(_Envelope, body, "event", lenient=True)
        payload = payload_from_data(envelope.kind, envelope.payload)
        return cls(envelope.event_id, envelope.seq, envelope.journal_id, payload, envelope.occurred_at,
                   envelope.replay)

    def to_data(self) -> dict[str, Any]:
        return {
            "schema": self.SCHEMA, "event_id": self.event_id, "seq": self.seq, "journal_id": self.journal_id,
            "kind": self.kind, "occurred_at": self.occurred_at, "replay": self.replay,
            "payload": self.payload.to_data(),
        }


def event_payload_bytes(
    *, seq: int, event_id: str, kind: str, occurred_at: str, payload_json: str, journal_id: str, replay: bool
) -> bytes:
    """The ``event/1`` payload with the stored payload JSON embedded as it is (no decode/encode on the
    agent's hot path). The same JSON as ``Event.to_payload`` (checked by tests), built by hand."""
    return (
        f'{{"schema":"{Event.SCHEMA}","event_id":{json.dumps(event_id)},"seq":{int(seq)},'
        f'"journal_id":{json.dumps(journal_id)},"kind":{json.dumps(kind)},'
        f'"occurred_at":{json.dumps(occurred_at)},"replay":{"true" if replay else "false"},'
        f'"payload":{payload_json}}}'
    ).encode()
