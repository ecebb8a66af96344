"""Technician mode (chế độ kỹ thuật): PIN, device status, self-test, test print, out of service."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.errors import MotcuaError
from kiosk.error_screens import screen_key
from kiosk.flows.base import Effect, Flow, FlowContext

MAX_PIN_LENGTH = 8
MAX_WRONG_PINS = 5
LOCKOUT_S = 60.0


@dataclass(frozen=True)
class RunSelfTest(Effect):
    pass


@dataclass(frozen=True)
class PrintTestTicket(Effect):
    pass


@dataclass(frozen=True)
class SetServiceMode(Effect):
    out_of_service: bool


def hash_pin(pin: str) -> str:
    return "sha256:" + hashlib.sha256(pin.encode()).hexdigest()


@dataclass
class PinGuard:
    """Counts wrong PINs across technician visits (it outlives a flow) and locks entry for a while."""

    clock: Callable[[], float] = time.monotonic
    wrong: int = 0
    locked_until: float = 0.0

    def locked_for(self) -> float:
        return max(0.0, self.locked_until - self.clock())

    def record(self, ok: bool) -> None:
        if ok:
            self.wrong = 0
            return
        self.wrong += 1
        if self.wrong >= MAX_WRONG_PINS:
            self.locked_until = self.clock() + LOCKOUT_S
            self.wrong = 0


class TechnicianFlow(Flow):
    name = "technician"
    initial = "pin"
    TRANSITIONS = frozenset(
        {
            ("pin", "menu"),
            ("menu", "testing"),
            ("testing", "menu"),
            ("menu", "printing"),
            ("printing", "menu"),
        }
    )
    BUSY = frozenset({"testing", "printing"})

    def __init__(self, ctx: FlowContext, guard: PinGuard) -> None:
        super().__init__(ctx)
        self.guard = guard
        self.pin = ""
        self.self_test: dict[str, Any] | None = None
        self.message_key: str | None = None

    def do_digit(self, digit: str) -> list[Effect]:
        if self.state == "pin" and digit.isdigit() and len(digit) == 1 and len(self.pin) < MAX_PIN_LENGTH:
            self.pin += digit
            self.error_key = None
        return []

    def do_backspace(self) -> list[Effect]:
        self.pin = self.pin[:-1]
        return []

    def do_enter(self) -> list[Effect]:
        if self.state != "pin":
            return []
        if self.guard.locked_for() > 0:
            self.pin = ""
            self.error_key = "technician.locked"
            return []
        expected = self.ctx.config.kiosk.technician_pin_sha256
        ok = hmac.compare_digest(hash_pin(self.pin), expected)
        self.pin = ""
        self.guard.record(ok)
        if ok:
            self.error_key = None
            self.go("menu")
        else:
            self.error_key = "technician.locked" if self.guard.locked_for() > 0 else "technician.wrong_pin"
        return []

    def do_self_test(self) -> list[Effect]:
        if self.state != "menu":
            return []
        self.go("testing")
        return [RunSelfTest()]

    def do_test_print(self) -> list[Effect]:
        if self.state != "menu":
            return []
        self.go("printing")
        return [PrintTestTicket()]

    def do_service_mode(self, out_of_service: bool) -> list[Effect]:
        return [SetServiceMode(out_of_service)] if self.state == "menu" else []

    def on_result(self, effect: Effect, result: Any) -> list[Effect]:
        if isinstance(effect, RunSelfTest):
            self.self_test = result
            self.go("menu")
        elif isinstance(effect, PrintTestTicket):
            self.message_key = "technician.test_passed"
            self.go("menu")
        return []

    def on_failure(self, effect: Effect, error: MotcuaError) -> list[Effect]:
        self.error_key = screen_key(error)
        if self.state in self.BUSY:
            self.go("menu")
        return []
