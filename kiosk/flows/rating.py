"""Satisfaction rating (đánh giá mức độ hài lòng): one tap on a face, optional details after, thanks.

The tap is the rating. When details can be added (why not satisfied; which counter or officer, when
no ticket QR says it already), they are offered after the tap and are optional: the rating is sent
when the citizen taps "Gửi thêm ý kiến", goes home, or leaves the screen alone for a few seconds.
Holding the ticket's or the receipt's QR to the scanner links the rating to that ticket or dossier
(one rating each; the center ties a ticket to its counter and officer); otherwise it rates the
center. Whether a rating counts (one per ticket, repeats within a few seconds ignored) is decided
by the rating book in the effect handler, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import MotcuaError
from kiosk.dossier import InvalidDossierCode, parse_dossier_code
from kiosk.flows.base import Effect, Flow
from kiosk.rating import RatingOutcome
from kiosk.ticketing import parse_ticket_qr


@dataclass(frozen=True)
class SubmitRating(Effect):
    level: int  # 1 = worst .. N = best on the configured scale
    reasons: tuple[str, ...]
    target_kind: str  # "center" | "ticket" | "dossier"
    target_id: str


class RatingFlow(Flow):
    name = "rating"
    initial = "choose_level"
    TRANSITIONS = frozenset(
        {
            ("choose_level", "details"),
            ("choose_level", "sending"),
            ("details", "sending"),
            ("details", "choose_level"),
            ("sending", "thanks"),
            ("sending", "not_counted"),
            ("sending", "failed"),
        }
    )
    BUSY = frozenset({"sending"})
    #: "details" ends by itself too: left alone, the rating is sent (``on_leave``) and the kiosk goes home
    RESULT = frozenset({"details", "thanks", "not_counted", "failed"})
    accepts_scans = True
    result_timeout_s = 5.0  # HappyOrNot: the next citizen is already there

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.level: int | None = None
        self.reasons: set[str] = set()
        self.target_kind = "center"
        self.target_id = self.ctx.config.kiosk.center_id

    @property
    def scale(self) -> int:
        return self.ctx.config.rating.levels

    def is_negative(self, level: int) -> bool:
        """The lower half of the scale (3 levels: 1; 4 levels: 1-2; 5 levels: 1-2)."""
        return level <= self.scale // 2

    def on_scan(self, text: str, source: str = "camera") -> list[Effect]:
        if self.state not in ("choose_level", "details"):
            return []
        ticket = parse_ticket_qr(text)
        if ticket is not None:
            self.target_kind, self.target_id = "ticket", ticket
            self.error_key = None
            return []
        try:
            code = parse_dossier_code(text)
        except InvalidDossierCode:
            self.error_key = "rating.not_a_target"
            return []
        self.target_kind, self.target_id = "dossier", code.text
        self.error_key = None
        return []

    def do_counter(self, counter: str) -> list[Effect]:
        """Link the rating to the counter that served the citizen (tap again to unlink)."""
        if self.state not in ("choose_level", "details") or counter not in self.counters():
            return []
        if self.target_kind == "counter" and self.target_id == counter:
            self.target_kind, self.target_id = "center", self.ctx.config.kiosk.center_id
        else:
            self.target_kind, self.target_id = "counter", counter
        self.error_key = None
        return []

    def do_official(self, official_id: str) -> list[Effect]:
        """Link the rating to the official who served the citizen (tap again to unlink)."""
        known = {official.id for official in self.ctx.config.rating.officials}
        if self.state not in ("choose_level", "details") or official_id not in known:
            return []
        if self.target_kind == "official" and self.target_id == official_id:
            self.target_kind, self.target_id = "center", self.ctx.config.kiosk.center_id
        else:
            self.target_kind, self.target_id = "official", official_id
        self.error_key = None
        return []

    def counters(self) -> list[str]:
        seen: list[str] = []
        for service in self.ctx.config.services:
            seen += [c for c in service.counters if c not in seen]
        return seen

    @property
    def asks_reasons(self) -> bool:
        return (
            self.level is not None and self.is_negative(self.level) and bool(self.ctx.config.rating.reasons)
        )

    @property
    def asks_who(self) -> bool:
        """Whom to rate is asked only when no ticket or receipt QR said it."""
        return self.target_kind in ("center", "counter", "official") and bool(
            self.ctx.config.rating.officials or self.counters()
        )

    def do_level(self, level: int) -> list[Effect]:
        if self.state != "choose_level" or not 1 <= level <= self.scale:
            return []
        self.level = level
        if self.asks_reasons or self.asks_who:
            self.go("details")
            return []
        return self._send()

    def do_toggle_reason(self, code: str) -> list[Effect]:
        if self.state == "details" and code in {r.code for r in self.ctx.config.rating.reasons}:
            self.reasons ^= {code}
        return []

    def do_back(self) -> list[Effect]:
        """Another face: the details screen's "Quay lại"."""
        if self.state == "details":
            self.reasons.clear()
            self.level = None
            self.go("choose_level")
        return []

    def do_send(self) -> list[Effect]:
        return self._send() if self.state == "details" else []

    def on_leave(self) -> list[Effect]:
        """A face was tapped but the details screen was left (home, timeout): the tap still counts."""
        if self.state == "details" and self.level is not None:
            return self._send()
        return []

    def _send(self) -> list[Effect]:
        assert self.level is not None
        self.go("sending")
        return [SubmitRating(self.level, tuple(sorted(self.reasons)), self.target_kind, self.target_id)]

    def on_result(self, effect: Effect, result: Any) -> list[Effect]:
        assert isinstance(result, RatingOutcome)
        if result.counted:
            self.go("thanks")
        else:
            self.error_key = "rating.not_counted"
            self.go("not_counted")
        return []

    def on_failure(self, effect: Effect, error: MotcuaError) -> list[Effect]:
        self.fail("failed", error)
        return []
