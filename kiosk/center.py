"""What the center decides and may push to its kiosks: the service catalog, the rating scale, and the
citizen-facing settings (timeouts, the home notice, the default language).

One schema serves the kiosk's configuration file (``kiosk.config``) and the configuration the center
pushes over MQTT (``edge_agent.remote_config``). Kept light: importing it loads no driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

Language = Literal["vi", "en"]


@dataclass(frozen=True)
class ServiceArea:
    """A lĩnh vực citizens pick a number for."""

    code: str = field(metadata={"pattern": r"[A-Z0-9_]{1,16}", "pattern_hint": "1-16 of A-Z, 0-9, _"})
    prefix: str = field(metadata={"pattern": r"[A-Z]", "pattern_hint": "one capital letter A-Z"})
    name_vi: str
    name_en: str
    counters: list[str] = field(default_factory=list)
    opens: str = field(default="07:30", metadata={"pattern": r"[0-2]\d:[0-5]\d", "pattern_hint": "HH:MM"})
    closes: str = field(default="17:00", metadata={"pattern": r"[0-2]\d:[0-5]\d", "pattern_hint": "HH:MM"})


@dataclass(frozen=True, kw_only=True)
class CitizenSettings:
    """The ``[kiosk]`` settings the center may push; ``KioskSection`` adds the kiosk's own identity."""

    language: Language = "vi"
    #: seconds without a touch before the session is wiped and the attract screen returns
    idle_timeout_s: float = field(default=60.0, metadata={"min": 5, "max": 600})
    #: seconds a result screen (ticket printed, thanks) stays before returning home
    result_timeout_s: float = field(default=12.0, metadata={"min": 2, "max": 120})
    notice_vi: str = ""
    notice_en: str = ""


@dataclass(frozen=True)
class RatingReason:
    code: str = field(metadata={"pattern": r"[a-z0-9_]{1,32}", "pattern_hint": "lowercase code"})
    label_vi: str = ""
    label_en: str = ""


def _default_reasons() -> list[RatingReason]:
    return [
        RatingReason("staff_attitude", "Thái độ phục vụ của cán bộ", "Staff attitude"),
        RatingReason("time_taken", "Thời gian giải quyết", "Time taken"),
        RatingReason("guidance", "Hướng dẫn chưa rõ ràng", "Guidance was not clear"),
        RatingReason("visits", "Phải đi lại nhiều lần", "Too many visits needed"),
        RatingReason("facilities", "Cơ sở vật chất", "Facilities"),
    ]


@dataclass(frozen=True)
class Official:
    """A receiving officer (cán bộ tiếp nhận) on the center's list, whom a citizen may rate."""

    id: str = field(metadata={"pattern": r"[A-Za-z0-9_.-]{1,32}", "pattern_hint": "a short staff id"})
    name: str
    counter: str = ""
    #: shown only when ``show_official_photos`` is on (off by default: staff consent, privacy)
    photo: Path | None = None


@dataclass(frozen=True)
class RatingSection:
    #: faces on the scale: 4 (default), 3 or 5
    levels: Literal[3, 4, 5] = 4
    #: reasons offered after a negative answer; empty = no follow-up question
    reasons: list[RatingReason] = field(default_factory=_default_reasons)
    #: a second rating of the same target within this many seconds is not counted (double taps)
    repeat_interval_s: float = field(default=5.0, metadata={"min": 0, "max": 3600})
    #: staff a citizen may pick to rate; empty = only counters are offered
    officials: list[Official] = field(default_factory=list)
    show_official_photos: bool = False

    def __post_init__(self) -> None:
        ids = [official.id for official in self.officials]
        if len(ids) != len(set(ids)):
            raise ValueError("officials: each official id must be unique")


#: Top-level keys the center may push; everything else is local to the kiosk (identity, devices).
PUSHABLE_KEYS = ("services", "rating", "version")
PUSHABLE_KIOSK_KEYS = tuple(f.name for f in fields(CitizenSettings))
