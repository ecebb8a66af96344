"""Technician mode (chế độ kỹ thuật): PIN, device status, self-test, test print, out of service.

The PIN (4-8 digits) is stored as an argon2id hash (``[kiosk] technician_pin_hash``, salted, ~64 MiB
and ~0.1 s per try on a small PC; ``main.py kiosk --hash-pin`` makes one). The unsalted
``technician_pin_sha256`` of earlier versions is still read for this release, with a warning at every
start (docs/privacy.md). The check runs on a worker lane (``VerifyPin``), never on the UI thread.

Wrong PINs lock entry, escalating: every ``MAX_WRONG_PINS`` failures in a row lock it for
``LOCKOUT_S`` seconds, doubled at each further lock up to ``MAX_LOCKOUT_S``; only a right PIN resets
it. The count and the lock live in ``<data_dir>/technician-lockout.json`` (0600, written atomically),
so a restart does not reset them. Logins, failures, lock-outs and service-mode changes are audit
events in the journal (``technician_login``, ``technician_login_failed``, ``technician_locked_out``,
``service_mode_changed``), without the PIN, of course.

The menu also says where queue numbers come from (``numbering_lines``: the center's allocator or the
kiosk alone, the last request, what waits to be reported, why offline numbers are blocked), the first
thing to look at when citizens say the numbers are wrong or none came out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from common.errors import ConfigError, MotcuaError
from common.files import write_atomically
from contract.events import EventPayload, TechnicianLockedOut, TechnicianLogin, TechnicianLoginFailed
from kiosk.error_screens import screen_key
from kiosk.flows.base import Effect, Flow, FlowContext

if TYPE_CHECKING:
    from kiosk.config import KioskSection
    from kiosk.numbering import NumberingStatus

log = logging.getLogger(__name__)

MIN_PIN_LENGTH = 4
MAX_PIN_LENGTH = 8
MAX_WRONG_PINS = 5
LOCKOUT_S = 60.0
MAX_LOCKOUT_S = 3600.0
LOCKOUT_FILE = "technician-lockout.json"
#: argon2id parameters below these are refused in the configuration (OWASP's floor: 19 MiB, t=2)
MIN_MEMORY_KIB = 19 * 1024
MIN_TIME_COST = 2

PinScheme = Literal["argon2id", "sha256_legacy"]

#: the allocator's codes that forbid offline numbers, each explained in its own words on screen
BLOCKED_CODES = frozenset({"slot_conflict", "config_mismatch"})
#: why the kiosk's last request got no number, each explained in its own words on screen
REFUSED_REASONS = frozenset({"offline_blocked", "offline_block_used_up", "interrupted"})
#: the allocator's reason is shown as it came, cut to this length
MAX_DETAIL = 200


@dataclass(frozen=True)
class RunSelfTest(Effect):
    pass


@dataclass(frozen=True)
class PrintTestTicket(Effect):
    pass


@dataclass(frozen=True)
class SetServiceMode(Effect):
    out_of_service: bool


@dataclass(frozen=True)
class VerifyPin(Effect):
    """Check a typed PIN against the configured hash (slow on purpose: on a worker lane)."""

    pin: str = field(repr=False)


@dataclass(frozen=True)
class PinCheck:
    ok: bool
    #: seconds entry stays locked after this check (0: not locked)
    locked_for: float = 0.0


@dataclass(frozen=True)
class ScreenLine:
    """One line for the screen to draw: a catalog key and its values, red when something is wrong."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)
    alert: bool = False


def _when(at: datetime, now: datetime) -> str:
    return at.strftime("%H:%M") if at.date() == now.date() else at.strftime("%H:%M %d/%m/%Y")


def numbering_lines(status: NumberingStatus, now: datetime) -> list[ScreenLine]:
    """The technician menu's "queue numbers" section for ``status`` (``now``: the kiosk's time)."""
    if status.mode == "local":
        return [ScreenLine("technician.numbering_local")]
    first, last = status.offline_block or (0, 0)
    lines = [ScreenLine("technician.numbering_center", {"slot": status.slot, "first": first, "last": last})]
    code = status.offline_blocked
    if code is not None:
        if code in BLOCKED_CODES:
            lines.append(ScreenLine(f"technician.numbering_blocked_{code}", {"slot": status.slot}, True))
        else:
            lines.append(ScreenLine("technician.numbering_blocked_other", {"code": code}, True))
        if status.offline_blocked_reason:
            detail = status.offline_blocked_reason[:MAX_DETAIL]
            lines.append(ScreenLine("technician.numbering_blocked_detail", {"reason": detail}, True))
    request = status.last
    if request is None:
        lines.append(ScreenLine("technician.numbering_last_never"))
    else:
        when = _when(request.at, now)
        if request.number is not None:
            source = "offline" if request.source == "offline" else "online"
            values = {"number": request.number, "time": when}
            lines.append(ScreenLine(f"technician.numbering_last_{source}", values))
        elif request.reason in REFUSED_REASONS:
            lines.append(ScreenLine(f"technician.numbering_refused_{request.reason}", {"time": when}, True))
        else:
            values = {"time": when, "code": request.reason or "?"}
            lines.append(ScreenLine("technician.numbering_refused", values, True))
    lines.append(
        ScreenLine(
            "technician.numbering_pending",
            {"count": status.pending_reports or 0, "offline": status.pending_offline or 0},
        )
    )
    conflicts = status.conflicts or 0
    lines.append(ScreenLine("technician.numbering_conflicts", {"count": conflicts}, conflicts > 0))
    return lines


def check_pin_format(pin: str) -> None:
    if not (pin.isascii() and pin.isdigit() and MIN_PIN_LENGTH <= len(pin) <= MAX_PIN_LENGTH):
        raise ConfigError(f"the technician PIN must be {MIN_PIN_LENGTH} to {MAX_PIN_LENGTH} digits")


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4, 16-byte random salt (RFC 9106 "second")


def hash_pin(pin: str) -> str:
    """The ``technician_pin_hash`` value for ``pin`` (a new random salt every time)."""
    check_pin_format(pin)
    result: str = _hasher().hash(pin)
    return result


def legacy_hash_pin(pin: str) -> str:
    """The deprecated unsalted ``technician_pin_sha256`` form (tests of the migration only)."""
    return "sha256:" + hashlib.sha256(pin.encode()).hexdigest()


def check_pin_hash(value: str) -> None:
    """Refuse an argon2 hash that is not argon2id or is cheaper than our floor (ValueError, which the
    configuration reports under the key)."""
    from argon2 import Type, extract_parameters
    from argon2.exceptions import InvalidHashError

    try:
        params = extract_parameters(value)
    except (InvalidHashError, ValueError) as exc:
        raise ValueError(f"technician_pin_hash: not an argon2 hash ({exc})") from exc
    if params.type is not Type.ID:
        raise ValueError("technician_pin_hash: use argon2id (main.py kiosk --hash-pin)")
    if params.memory_cost < MIN_MEMORY_KIB or params.time_cost < MIN_TIME_COST:
        raise ValueError(
            f"technician_pin_hash: m={params.memory_cost} KiB, t={params.time_cost} is too cheap "
            f"(at least m={MIN_MEMORY_KIB}, t={MIN_TIME_COST}); make a new one with main.py kiosk --hash-pin"
        )


def pin_scheme(kiosk: KioskSection) -> PinScheme | None:
    """Which stored form is used (the new key wins), or None when no PIN is configured."""
    if kiosk.technician_pin_hash:
        return "argon2id"
    if kiosk.technician_pin_sha256:
        return "sha256_legacy"
    return None


def pin_config_warnings(kiosk: KioskSection) -> list[str]:
    """What a technician must fix in the PIN settings (logged at start, printed by --check-config)."""
    if kiosk.technician_pin_sha256 and kiosk.technician_pin_hash:
        return ["kiosk.technician_pin_sha256 is ignored because technician_pin_hash is set: remove it"]
    if kiosk.technician_pin_sha256:
        return [
            "kiosk.technician_pin_sha256 is an unsalted hash of a 4-8 digit PIN, found in well under a "
            "second by anyone who reads the file; it is accepted in this release only: replace it with "
            "technician_pin_hash (main.py kiosk --hash-pin) before the next one, which refuses it"
        ]
    if not kiosk.technician_pin_hash:
        return ["no technician PIN is configured (kiosk.technician_pin_hash): technician mode stays locked"]
    return []


def verify_pin(pin: str, kiosk: KioskSection) -> PinScheme | None:
    """The scheme that accepted ``pin``, or None. Takes ~0.1 s with argon2id (on purpose)."""
    scheme = pin_scheme(kiosk)
    if scheme == "argon2id":
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            _hasher().verify(kiosk.technician_pin_hash, pin)
        except (VerificationError, InvalidHashError):
            return None
        return scheme
    if scheme == "sha256_legacy":
        return scheme if hmac.compare_digest(legacy_hash_pin(pin), kiosk.technician_pin_sha256) else None
    return None


class PinGuard:
    """Counts wrong PINs across technician visits and restarts, and locks entry, escalating.

    ``clock`` is wall-clock time (``time.time``) when ``state_file`` is set, so a lock survives a
    reboot; a lock that lies further ahead than ``MAX_LOCKOUT_S`` (the clock was set back) is cut to it.
    ``record`` gets the audit events (the runtime passes the journal's append).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        state_file: Path | None = None,
        record: Callable[[EventPayload], None] = lambda payload: None,
    ) -> None:
        self.clock = clock
        self.state_file = state_file
        self.record = record
        self._lock = threading.Lock()
        #: wrong PINs in a row since the last right one
        self.wrong = 0
        #: lock-outs since the last right PIN (each doubles the next)
        self.lockouts = 0
        self.locked_until = 0.0
        self._load()

    # -- persistence ---------------------------------------------------------------------------------
    def _load(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            self.wrong = max(0, int(data["wrong"]))
            self.lockouts = max(0, int(data["lockouts"]))
            self.locked_until = float(data["locked_until"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # A damaged file must not unlock a kiosk under attack: assume the longest lock.
            log.error("technician lock-out file unusable (%s): locking technician entry", type(exc).__name__)
            self.wrong, self.lockouts = 0, 1
            self.locked_until = self.clock() + MAX_LOCKOUT_S
            self._save()
            return
        self.locked_until = min(self.locked_until, self.clock() + MAX_LOCKOUT_S)

    def _save(self) -> None:
        if self.state_file is None:
            return
        data = {"wrong": self.wrong, "lockouts": self.lockouts, "locked_until": self.locked_until}
        try:
            self.state_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomically(self.state_file, json.dumps(data).encode())
        except OSError as exc:
            log.error("technician lock-out not saved: %s", exc)

    # -- the guard -----------------------------------------------------------------------------------
    def locked_for(self) -> float:
        with self._lock:
            return max(0.0, self.locked_until - self.clock())

    def lockout_duration(self, lockouts: int) -> float:
        """How long the ``lockouts``-th lock lasts: 60 s, 120 s, 240 s, ... at most an hour."""
        return float(min(MAX_LOCKOUT_S, LOCKOUT_S * 2 ** max(0, lockouts - 1)))

    def check(self, pin: str, kiosk: KioskSection) -> PinCheck:
        """Verify ``pin`` (slow), count it, lock when due, persist, and record what happened."""
        with self._lock:
            left = self.locked_until - self.clock()
            if left > 0:
                return PinCheck(False, left)
        scheme = verify_pin(pin, kiosk)  # outside the lock: the screen can ask locked_for meanwhile
        events: list[EventPayload] = []
        with self._lock:
            if scheme is not None:
                events.append(TechnicianLogin(scheme, self.wrong))
                self.wrong = self.lockouts = 0
                self.locked_until = 0.0
            else:
                self.wrong += 1
                events.append(TechnicianLoginFailed(self.wrong))
                if self.wrong % MAX_WRONG_PINS == 0:
                    self.lockouts += 1
                    duration = self.lockout_duration(self.lockouts)
                    self.locked_until = self.clock() + duration
                    events.append(TechnicianLockedOut(self.wrong, duration, self.lockouts))
            self._save()
            result = PinCheck(scheme is not None, max(0.0, self.locked_until - self.clock()))
        for event in events:
            self.record(event)
        if scheme is None:
            log.warning("technician PIN refused (%d wrong in a row)", self.wrong)
        else:
            log.info("technician logged in (%s)", scheme)
        return result


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
        #: a VerifyPin is on its way: the keypad waits for its answer
        self.checking = False
        self.self_test: dict[str, Any] | None = None
        self.message_key: str | None = None

    def do_digit(self, digit: str) -> list[Effect]:
        if (
            self.state == "pin"
            and not self.checking
            and digit.isdigit()
            and len(digit) == 1
            and len(self.pin) < MAX_PIN_LENGTH
        ):
            self.pin += digit
            self.error_key = None
        return []

    def do_backspace(self) -> list[Effect]:
        if not self.checking:
            self.pin = self.pin[:-1]
        return []

    def do_enter(self) -> list[Effect]:
        if self.state != "pin" or self.checking:
            return []
        if self.guard.locked_for() > 0:
            self.pin = ""
            self.error_key = "technician.locked"
            return []
        pin, self.pin = self.pin, ""
        self.checking = True
        return [VerifyPin(pin)]

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
        if isinstance(effect, VerifyPin):
            assert isinstance(result, PinCheck)
            self.checking = False
            if result.ok:
                self.error_key = None
                self.go("menu")
            else:
                self.error_key = "technician.locked" if result.locked_for > 0 else "technician.wrong_pin"
        elif isinstance(effect, RunSelfTest):
            self.self_test = result
            self.go("menu")
        elif isinstance(effect, PrintTestTicket):
            self.message_key = "technician.test_passed"
            self.go("menu")
        return []

    def on_failure(self, effect: Effect, error: MotcuaError) -> list[Effect]:
        if isinstance(effect, VerifyPin):
            self.checking = False
        self.error_key = screen_key(error)
        if self.state in self.BUSY:
            self.go("menu")
        return []
