"""Dossier look-up (tra cứu hồ sơ): scan the receipt QR or type the code, see the status, print it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import MotcuaError
from kiosk.dossier import DossierCode, DossierNotFound, DossierStatus, InvalidDossierCode, parse_dossier_code
from kiosk.error_screens import screen_key
from kiosk.flows.base import Effect, Flow

#: longest code a citizen may type; real codes are ~30 characters
MAX_TYPED = 40


@dataclass(frozen=True)
class LookupDossier(Effect):
    code: DossierCode
    source: str = "keyboard"  # camera | serial | keyboard: which input citizens use


@dataclass(frozen=True)
class RecordRejectedCode(Effect):
    """A scanned or typed text that is not a dossier code: counted, never stored."""

    source: str


@dataclass(frozen=True)
class PrintDossierStatus(Effect):
    status: DossierStatus
    language: str = "vi"


class LookupFlow(Flow):
    name = "lookup"
    initial = "scan"
    TRANSITIONS = frozenset(
        {
            ("scan", "searching"),
            ("searching", "found"),
            ("searching", "not_found"),
            ("searching", "unavailable"),
            ("not_found", "scan"),
            ("unavailable", "scan"),
            ("unavailable", "searching"),
            ("found", "printing"),
            ("printing", "found"),
            ("found", "scan"),
        }
    )
    BUSY = frozenset({"searching", "printing"})
    RESULT = frozenset({"found", "not_found", "unavailable"})
    accepts_scans = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.typed = ""
        self.code: DossierCode | None = None
        self.status: DossierStatus | None = None
        self.printed = False
        self.source = "keyboard"
        #: the full keyboard instead of the numeric pad (a code of another agency)
        self.letters = not self.ctx.config.kiosk.dossier_agency

    # -- input ---------------------------------------------------------------------------------
    def on_scan(self, text: str, source: str = "camera") -> list[Effect]:
        if self.state in ("not_found", "unavailable", "found"):
            self.go("scan")  # a new receipt held to the camera starts a new look-up
        if self.state != "scan":
            return []
        return self._submit(text, source)

    def do_type(self, char: str) -> list[Effect]:
        if self.state == "scan" and len(self.typed) < MAX_TYPED and len(char) == 1:
            self.typed += char.upper()
            self.error_key = None
        return []

    def do_digit(self, digit: str) -> list[Effect]:
        """The numeric pad: the center's agency code and the dashes are filled in, so
        ``000.00.10.H12-210901-0001`` is 10 digits to type, not 25 characters."""
        if self.state != "scan" or len(digit) != 1 or not digit.isdigit() or len(self.typed) >= MAX_TYPED:
            return []
        agency = self.ctx.config.kiosk.dossier_agency
        if not self.typed and agency:
            self.typed = f"{agency}-"
        self.typed += digit
        if agency and self.typed.startswith(f"{agency}-"):
            rest = self.typed[len(agency) + 1 :]
            if len(rest) == 6:  # YYMMDD done: the dash before the sequence
                self.typed += "-"
        self.error_key = None
        return []

    def do_letters(self, on: bool) -> list[Effect]:
        self.letters = bool(on)
        return []

    def do_backspace(self) -> list[Effect]:
        agency = self.ctx.config.kiosk.dossier_agency
        prefix = f"{agency}-" if agency else ""
        if prefix and self.typed.endswith("-") and len(self.typed) > len(prefix):
            self.typed = self.typed[:-2]  # a filled-in dash goes with the digit before it
        else:
            self.typed = self.typed[:-1]
        if prefix and self.typed == prefix:
            self.typed = ""  # only what the pad filled in is left
        return []

    def do_clear(self) -> list[Effect]:
        self.typed = ""
        self.error_key = None
        return []

    def do_submit(self) -> list[Effect]:
        if self.state != "scan":
            return []
        return self._submit(self.typed, "keyboard")

    def do_again(self) -> list[Effect]:
        """Back to scanning after a result (not found, unavailable, or to look up another)."""
        if self.state in ("not_found", "unavailable", "found"):
            self.go("scan")
            self.status = None
            self.printed = False
            self.typed = ""  # "Nhập lại mã": an empty field, not the last code to edit
        return []

    def do_retry(self) -> list[Effect]:
        if self.state != "unavailable" or self.code is None:
            return []
        self.go("searching")
        return [LookupDossier(self.code, self.source)]

    def do_print(self) -> list[Effect]:
        if self.state != "found" or self.status is None:
            return []
        self.go("printing")
        return [PrintDossierStatus(self.status, self.ctx.session.language)]

    def _submit(self, text: str, source: str) -> list[Effect]:
        try:
            self.code = parse_dossier_code(text)
        except InvalidDossierCode as exc:
            self.error_key = screen_key(exc)
            return [RecordRejectedCode(source)]
        self.error_key = None
        self.source = source
        self.go("searching")
        return [LookupDossier(self.code, source)]

    # -- results -------------------------------------------------------------------------------
    def on_result(self, effect: Effect, result: Any) -> list[Effect]:
        if isinstance(effect, RecordRejectedCode):
            return []
        if isinstance(effect, LookupDossier):
            assert isinstance(result, DossierStatus)
            self.status = result
            self.printed = False
            self.go("found")
        elif isinstance(effect, PrintDossierStatus):
            self.printed = True
            self.go("found")
        return []

    def on_failure(self, effect: Effect, error: MotcuaError) -> list[Effect]:
        if isinstance(effect, RecordRejectedCode):
            return []  # counting failed; the citizen's screen is not affected
        if isinstance(effect, PrintDossierStatus):
            self.error_key = screen_key(error)
            self.go("found")
        elif isinstance(error, DossierNotFound):
            self.fail("not_found", error)
        else:
            self.fail("unavailable", "lookup.unavailable")
        return []
