"""Identifying with the chip ID card: keys from the card's front QR (or the CAN), then the chip.

Used as a step inside other flows (the ticket flow puts the citizen's name on the ticket and grants
priority to the elderly). Personal data goes only into the session, which wipes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from common.errors import MotcuaError
from kiosk.flows.base import Effect, Flow
from kiosk.session import Identity


@dataclass(frozen=True)
class ReadCard(Effect):
    """Read DG1/DG13/SOD with keys from ``cccd_qr`` (the card's front QR text) or ``can``."""

    cccd_qr: str | None = field(default=None, repr=False)  # holds name and ID number: never logged
    can: str | None = field(default=None, repr=False)


CAN_PATTERN = re.compile(r"\d{6}")


class IdentifyFlow(Flow):
    name = "identify"
    initial = "scan_qr"
    TRANSITIONS = frozenset(
        {
            ("scan_qr", "reading"),
            ("reading", "done"),
            ("reading", "failed"),
            ("failed", "scan_qr"),
            ("failed", "reading"),
        }
    )
    BUSY = frozenset({"reading"})
    RESULT = frozenset({"done"})
    accepts_scans = True
    #: "done" is the full-screen "Mời quý khách lấy lại thẻ Căn cước" (with a chime): long enough to
    #: take the card, then the ticket screen comes back by itself (no extra tap)
    result_timeout_s = 4.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_request: ReadCard | None = None
        self.can_typed = ""

    def on_scan(self, text: str, source: str = "camera") -> list[Effect]:
        if self.state not in ("scan_qr", "failed"):
            return []
        self.error_key = None
        return self._read(ReadCard(cccd_qr=text))

    def do_digit(self, digit: str) -> list[Effect]:
        """The CAN keypad: six digits printed on the card's front, for when the QR cannot be read."""
        if self.state == "scan_qr" and digit.isdigit() and len(digit) == 1 and len(self.can_typed) < 6:
            self.can_typed += digit
            self.error_key = None
        return []

    def do_backspace(self) -> list[Effect]:
        self.can_typed = self.can_typed[:-1]
        return []

    def do_can(self, can: str | None = None) -> list[Effect]:
        if self.state != "scan_qr":
            return []
        can = self.can_typed if can is None else can
        self.can_typed = ""
        if not CAN_PATTERN.fullmatch(can):
            self.error_key = "card.wrong_key"
            return []
        return self._read(ReadCard(can=can))

    def do_retry(self) -> list[Effect]:
        """Place the card again: same keys, the read starts over (no half identity is kept)."""
        if self.state != "failed" or self._last_request is None:
            return []
        if self.error_key in ("card.bad_qr", "card.wrong_key"):
            self.error_key = None
            self.go("scan_qr")  # the keys themselves were wrong: scan the QR again
            return []
        self.error_key = None
        return self._read(ReadCard(cccd_qr=self._last_request.cccd_qr, can=self._last_request.can))

    def _read(self, request: ReadCard) -> list[Effect]:
        self._last_request = request
        self.go("reading")
        return [request]

    def on_result(self, effect: Effect, result: Any) -> list[Effect]:
        assert isinstance(result, Identity)
        if self.ctx.session.identity is not None:
            self.ctx.session.identity.wipe()
        self.ctx.session.identity = result
        self._last_request = None  # the QR text holds personal data too
        self.go("done")
        return []

    def on_failure(self, effect: Effect, error: MotcuaError) -> list[Effect]:
        self.fail("failed", error)
        return []
