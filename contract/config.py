"""What the center decides and may push to its kiosks, and the messages that carry it.

``config/1`` (center -> kiosk, retained, center-wide on ``_center/config/set`` and per kiosk) carries a
``PushedConfig``; ``config-state/1`` (kiosk -> center, retained) says what is applied and the last
refusal. The same dataclasses validate the kiosk's own TOML file (``kiosk.config`` builds on them),
so the fleet checks a push before publishing it with exactly the rules the kiosk applies.

Only the citizen-facing part can be pushed: the service catalog, the rating scale, the timeouts, the
home notice, the default language, the heartbeat, and the visit's settings (``[visit]``: hotline,
appointment check-in window, feedback topics, delivery by post, the center's payee account — never the
appointment salt, a secret of the booking system). Identity, devices and the broker address stay local:
a push can never cut a kiosk off from its center.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from contract.message import Message
from contract.wire import now_iso

Language = Literal["vi", "en"]
#: a name or label a person reads: bounded, no control or format characters
_LABEL = {"max_len": 120, "text": True}
_NOTICE = {"max_len": 300, "text": True}
_COUNTER_RE = re.compile(r"[A-Za-z0-9_-]{1,8}")
_PHOTO = {"pattern": r"[A-Za-z0-9_-]{1,60}\.(png|jpg|jpeg)", "pattern_hint": "a file name such as nam.png"}


@dataclass(frozen=True)
class ServiceArea:
    """A lĩnh vực citizens pick a number for."""

    code: str = field(metadata={"pattern": r"[A-Z0-9_]{1,16}", "pattern_hint": "1-16 of A-Z, 0-9, _"})
    prefix: str = field(metadata={"pattern": r"[A-Z]", "pattern_hint": "one capital letter A-Z"})
    name_vi: str = field(metadata=_LABEL)
    name_en: str = field(metadata=_LABEL)
    counters: list[str] = field(default_factory=list, metadata={"max_items": 50})
    opens: str = field(default="07:30", metadata={"pattern": r"[0-2]\d:[0-5]\d", "pattern_hint": "HH:MM"})
    closes: str = field(default="17:00", metadata={"pattern": r"[0-2]\d:[0-5]\d", "pattern_hint": "HH:MM"})

    def __post_init__(self) -> None:
        for index, counter in enumerate(self.counters):
            if not _COUNTER_RE.fullmatch(counter):
                raise ValueError(f"counters[{index}]: expected a short counter name such as 3 or 3A")


@dataclass(frozen=True, kw_only=True)
class CitizenSettings:
    """The ``[kiosk]`` settings the center may push; the kiosk's file adds its own identity."""

    language: Language = "vi"
    #: seconds without a touch before the session is wiped and the attract screen returns
    idle_timeout_s: float = field(default=60.0, metadata={"min": 5, "max": 600})
    #: seconds a result screen (ticket printed, thanks) stays before returning home
    result_timeout_s: float = field(default=12.0, metadata={"min": 2, "max": 120})
    notice_vi: str = field(default="", metadata=_NOTICE)
    notice_en: str = field(default="", metadata=_NOTICE)
    #: spoken guidance (espeak-ng, offline) on at the start of every visit; the citizen's speaker button
    #: turns it on or off for the visit
    voice: bool = False


@dataclass(frozen=True)
class RatingReason:
    code: str = field(metadata={"pattern": r"[a-z0-9_]{1,32}", "pattern_hint": "lowercase code"})
    label_vi: str = field(default="", metadata=_LABEL)
    label_en: str = field(default="", metadata=_LABEL)


#: Reasons offered after a negative answer (the one default set of the project).
DEFAULT_REASONS: tuple[RatingReason, ...] = (
    RatingReason("long_wait", "Thời gian chờ đến lượt", "Waiting time"),
    RatingReason("time_taken", "Thời gian giải quyết", "Time taken"),
    RatingReason("staff_attitude", "Thái độ phục vụ của cán bộ", "Staff attitude"),
    RatingReason("guidance", "Hướng dẫn chưa rõ ràng", "Guidance was not clear"),
    RatingReason("visits", "Phải đi lại nhiều lần", "Too many visits needed"),
    RatingReason("extra_papers", "Yêu cầu giấy tờ ngoài quy định", "Asked for papers beyond the rules"),
    RatingReason("facilities", "Cơ sở vật chất", "Facilities"),
)


@dataclass(frozen=True)
class Official:
    """A receiving officer (cán bộ tiếp nhận) on the center's list, whom a citizen may rate."""

    id: str = field(metadata={"pattern": r"[A-Za-z0-9_.-]{1,32}", "pattern_hint": "a short staff id"})
    name: str = field(metadata=_LABEL)
    counter: str = field(default="", metadata={"pattern": r"[A-Za-z0-9_-]{0,8}"})
    #: a file name in the kiosk's ``officials`` photo folder (never a path: a push cannot point the
    #: kiosk at any other file); shown only when ``show_official_photos`` is on
    photo: str | None = field(default=None, metadata=_PHOTO)


@dataclass(frozen=True)
class RatingSection:
    #: faces on the scale: 4 (default), 3 or 5
    levels: Literal[3, 4, 5] = 4
    #: reasons offered after a negative answer; empty = no follow-up question
    reasons: list[RatingReason] = field(
        default_factory=lambda: list(DEFAULT_REASONS), metadata={"max_items": 20}
    )
    #: a second rating of the same target within this many seconds is not counted (double taps)
    repeat_interval_s: float = field(default=5.0, metadata={"min": 0, "max": 3600})
    #: staff a citizen may pick to rate; empty = only counters are offered
    officials: list[Official] = field(default_factory=list, metadata={"max_items": 200})
    show_official_photos: bool = False

    def __post_init__(self) -> None:
        ids = [official.id for official in self.officials]
        if len(ids) != len(set(ids)):
            raise ValueError("officials: each official id must be unique")
        codes = [reason.code for reason in self.reasons]
        if len(codes) != len(set(codes)):
            raise ValueError("reasons: each reason code must be unique")


#: feedback topics the kiosk's catalogs have labels for (``feedback.topic_<code>``, docs/visit.md)
FEEDBACK_TOPICS = ("thai_do", "thu_tuc", "thoi_gian", "co_so_vat_chat", "khac")
TOPICS_HINT = "one or more of " + ", ".join(FEEDBACK_TOPICS) + ", each once"


@dataclass(frozen=True, kw_only=True)
class VisitSettings:
    """The ``[visit]`` keys the center may push (docs/visit.md "Configuration"). The kiosk's
    ``VisitConfig`` has the same keys with the same defaults and limits, plus ``appointment_salt``:
    that one is the booking system's secret (with it, a leaked hash of an ID number can be tried
    against all numbers), installed with the kiosk, never sent over MQTT. The payee account is not
    secret: every fee's QR code shows it to the citizen."""

    #: the province's hotline for feedback (most provinces: 1022), on screen and slips
    hotline: str = field(default="1022", metadata={"pattern": r"[0-9 .+]{3,20}", "pattern_hint": "1022"})
    #: check-in window around a booked time; outside it the citizen takes an ordinary ticket
    appointment_early_min: int = field(default=30, metadata={"min": 0, "max": 240})
    appointment_late_min: int = field(default=15, metadata={"min": 0, "max": 240})
    feedback_topics: list[str] = field(
        default_factory=lambda: list(FEEDBACK_TOPICS), metadata={"max_items": len(FEEDBACK_TOPICS)}
    )
    #: offer delivery by post when the back end allows it for a dossier
    post_delivery: bool = True
    #: the center's account for fees when the back end names none (VietQR: NAPAS BIN + account)
    payee_bank_bin: str = field(default="", metadata={"pattern": r"(97\d{4})?", "pattern_hint": "970xxx"})
    payee_account: str = field(default="", metadata={"pattern": r"[0-9A-Za-z]{0,19}"})
    payee_name: str = field(default="", metadata={"max_len": 120, "text": True})

    def __post_init__(self) -> None:
        check_visit(self.feedback_topics, self.payee_bank_bin, self.payee_account)


def check_visit(topics: list[str] | None, bank_bin: str | None, account: str | None) -> None:
    """Known feedback topics, at least one; the payee's bank and account both or neither (None: not
    named by a push, the kiosk keeps its own)."""
    if topics is not None:
        unknown = [t for t in topics if t not in FEEDBACK_TOPICS]
        if unknown or not topics or len(set(topics)) != len(topics):
            raise ValueError(f"feedback_topics: expected {TOPICS_HINT}")
    if (bank_bin is None) != (account is None) or bool(bank_bin) != bool(account):
        raise ValueError("payee_account: the bank (payee_bank_bin) and the account go together")


@dataclass(frozen=True)
class PushedAgent:
    heartbeat_s: float = field(default=30.0, metadata={"min": 5, "max": 3600})


def check_services(services: list[ServiceArea]) -> None:
    """Codes and prefixes unique: a prefix names a queue, two services cannot share numbers."""
    for attr in ("code", "prefix"):
        seen: set[str] = set()
        for index, service in enumerate(services):
            value = getattr(service, attr)
            if value in seen:
                raise ValueError(f"services[{index}].{attr}: {value!r} is used twice")
            seen.add(value)


def _patch_of(cls: type, name: str) -> type:
    """A dataclass with ``cls``'s fields and limits, each optional (None = keep the kiosk's value):
    a push names only what it changes, checked by the same limits as the full table."""
    hints = typing.get_type_hints(cls)
    patch = dataclasses.make_dataclass(
        name,
        [(f.name, hints[f.name] | None, field(default=None, metadata=f.metadata)) for f in fields(cls)],
        frozen=True,
    )
    patch.__module__ = __name__
    return patch


CitizenSettingsPatch = _patch_of(CitizenSettings, "CitizenSettingsPatch")
PushedAgentPatch = _patch_of(PushedAgent, "PushedAgentPatch")
VisitSettingsPatch = _patch_of(VisitSettings, "VisitSettingsPatch")


@dataclass(frozen=True)
class PushedConfig:
    """One scope's pushed values. Absent keys keep the kiosk's own value: ``services`` replaces the whole
    list, ``rating`` the whole table; ``kiosk``, ``agent`` and ``visit`` change only the keys they name."""

    services: list[ServiceArea] | None = field(default=None, metadata={"max_items": 40})
    kiosk: CitizenSettingsPatch | None = None  # type: ignore[valid-type]
    rating: RatingSection | None = None
    agent: PushedAgentPatch | None = None  # type: ignore[valid-type]
    visit: VisitSettingsPatch | None = None  # type: ignore[valid-type]

    def __post_init__(self) -> None:
        if self.services is not None:
            if not self.services:
                raise ValueError("services: at least one service is needed")
            check_services(self.services)
        if self.visit is not None:
            visit: Any = self.visit
            try:
                check_visit(visit.feedback_topics, visit.payee_bank_bin, visit.payee_account)
            except ValueError as exc:
                raise ValueError(f"visit.{exc}") from exc

    def to_overlay(self) -> dict[str, Any]:
        """The pushed keys only, as plain data (what the kiosk merges over its own file)."""
        from contract.schema import to_data

        out: dict[str, Any] = {}
        for name in ("services", "rating"):
            value = getattr(self, name)
            if value is not None:
                out[name] = to_data(value)
        for name in ("kiosk", "agent", "visit"):
            patch = getattr(self, name)
            if patch is not None:
                values = {k: v for k, v in to_data(patch).items() if v is not None}
                if values:
                    out[name] = values
        return out


#: keys of ``[kiosk]`` the center may push
PUSHABLE_KIOSK_KEYS = tuple(f.name for f in fields(CitizenSettings))
#: keys of ``[visit]`` the center may push (not ``appointment_salt``: a secret)
PUSHABLE_VISIT_KEYS = tuple(f.name for f in fields(VisitSettings))


def merge_scopes(center: dict[str, Any], kiosk: dict[str, Any]) -> dict[str, Any]:
    """Center-wide values overlaid by the kiosk's: tables merge key by key, lists are replaced."""
    merged: dict[str, Any] = json.loads(json.dumps(center))
    for key, value in kiosk.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "rating":
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class ConfigPush(Message):
    """``config/1``: one retained configuration message, center-wide or for one kiosk."""

    SCHEMA: ClassVar[str] = "config/1"
    MAX_BYTES: ClassVar[int] = 256 * 1024
    STRICT: ClassVar[bool] = True

    #: per scope, increasing; the same again is a no-op, a lower one is refused
    version: int = field(metadata={"min": 1, "max": 2**53})
    config: PushedConfig


@dataclass(frozen=True)
class Refusal:
    scope: Literal["center", "kiosk"]
    version: int | None
    reason: str = field(metadata={"max_len": 2000})
    at: str = field(default_factory=now_iso, metadata={"time": True, "max_len": 40})


@dataclass(frozen=True)
class ConfigState(Message):
    """``config-state/1``: what a kiosk applied, whether the app still has to load it, the last refusal."""

    SCHEMA: ClassVar[str] = "config-state/1"
    MAX_BYTES: ClassVar[int] = 8 * 1024

    versions: dict[str, int] = field(metadata={"max_items": 4})
    app_pending: bool = False
    last_refused: Refusal | None = None
    at: str = field(default_factory=now_iso, metadata={"time": True, "max_len": 40})
