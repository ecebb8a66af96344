"""``command/1`` (center -> kiosk) and ``command-result/1`` (kiosk -> center).

A command names one of ``COMMANDS`` with its typed arguments; unknown keys, unknown commands and
wrong arguments are refused, never executed. Every command carries ``expires_at`` no later than
``MAX_COMMAND_LIFETIME`` ahead: the kiosk remembers request ids for longer than that, so a command
replayed after its id was forgotten is always already expired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, Self, get_args

from contract.errors import ContractError
from contract.message import Message
from contract.schema import parse_dataclass, to_data
from contract.wire import REQUEST_ID_HINT, REQUEST_ID_PATTERN, now_iso, parse_time

#: the longest a command may wait for its kiosk; the kiosk's ledger keeps request ids longer (30 days)
MAX_COMMAND_LIFETIME = timedelta(days=7)
#: largest blob (screenshot PNG, log archive) a kiosk publishes on ``{kiosk}/blob/{request_id}``
MAX_BLOB_BYTES = 4 * 1024 * 1024
_TEXT = {"max_len": 300, "text": True}
_REQUEST_ID = {"pattern": REQUEST_ID_PATTERN, "pattern_hint": REQUEST_ID_HINT}


@dataclass(frozen=True)
class NoArgs:
    """Commands without arguments still refuse unexpected keys (a typo is not silently ignored)."""


@dataclass(frozen=True)
class SetNoticeArgs:
    #: shown on the home screen; "" clears it
    text_vi: str = field(metadata=_TEXT)
    text_en: str = field(default="", metadata=_TEXT)


@dataclass(frozen=True)
class UploadLogsArgs:
    #: the last ``max_kb`` kilobytes of each log file
    max_kb: int = field(default=256, metadata={"min": 1, "max": 4096})


@dataclass(frozen=True)
class SetServiceModeArgs:
    out_of_service: bool
    reason: str = field(default="", metadata=_TEXT)


CommandName = Literal[
    "reload_config", "print_test_ticket", "set_notice", "screenshot", "upload_logs", "restart_app",
    "set_service_mode",
]
#: command -> the type of its arguments
COMMANDS: dict[str, type] = {
    "reload_config": NoArgs,
    "print_test_ticket": NoArgs,
    "set_notice": SetNoticeArgs,
    "screenshot": NoArgs,
    "upload_logs": UploadLogsArgs,
    "restart_app": NoArgs,
    "set_service_mode": SetServiceModeArgs,
}
#: commands whose result announces a blob published just before it on ``{kiosk}/blob/{request_id}``
BLOB_COMMANDS = frozenset({"screenshot", "upload_logs"})

# -- the reasons an agent words itself ----------------------------------------------------------------
# ``CommandResult.reason`` is English free text for a technician. The few outcomes the agent (and
# ``Command.refusal``) word from fixed text are these constants, shared: a fleet recognises them with
# ``reason_kind`` and says them in its own language, also for an agent that predates ``code`` (below).
# Any other reason (the app's own error, a missing file) is free text, recognised by nobody.
#: the reason of every ``ok`` result
REASON_DONE = "done"
#: a command that was running when the agent stopped: answered, never run again
REASON_INTERRUPTED = "interrupted by an agent restart; not executed again"
#: the start of a reason: the request was not a valid ``command/1`` (the contract's message follows)
REASON_REJECTED = "rejected: "
#: the start of a reason: ``expires_at`` had passed when the kiosk got the command
REASON_EXPIRED = "expired at "
#: the start of a reason: ``expires_at`` lies further ahead than ``MAX_COMMAND_LIFETIME`` (a clock off)
REASON_TOO_FAR_AHEAD = "expires_at "
#: the start of a reason: the kiosk app did not answer its control socket
REASON_APP_UNREACHABLE = "app not reachable: "
ReasonKind = Literal["done", "interrupted", "rejected", "expired", "too_far_ahead", "app_unreachable"]
_REASON_STARTS: tuple[tuple[str, ReasonKind], ...] = (
    (REASON_REJECTED, "rejected"),
    (REASON_EXPIRED, "expired"),
    (REASON_TOO_FAR_AHEAD, "too_far_ahead"),
    (REASON_APP_UNREACHABLE, "app_unreachable"),
)

# -- why an error result failed, for machines (``CommandResult.code``, a minor addition) ---------------
#: the codes agents of this version write: the agent's own outcomes (the reason kinds above and what it
#: cannot do itself), then what the app answered (its error's code or type, mapped by the agent: the
#: app's code never passes through unchecked). A newer agent may write a code not listed here: a fleet
#: reads any code of ``RESULT_CODE_PATTERN`` and falls back to ``reason_kind`` for one it does not know.
ResultCode = Literal[
    # the agent's own outcomes
    "rejected", "expired", "too_far_ahead", "interrupted", "app_unreachable",
    "broker_unreachable", "blob_too_large", "no_log_files", "agent_error",
    # the app's answer
    "app_busy", "app_unsupported", "app_refused", "app_error", "config_refused",
    "printer_paper_out", "printer_cover_open", "printer_offline", "printer_unavailable", "printer_error",
    "personal_data_on_screen",
]
RESULT_CODES: frozenset[str] = frozenset(get_args(ResultCode))
#: what a code may look like (any, known or not, is accepted: results are read leniently)
RESULT_CODE_PATTERN = r"[a-z][a-z0-9_]{0,39}"


def reason_kind(status: str, reason: str) -> ReasonKind | None:
    """Which of the agent's fixed outcomes a result is, or None (free text, or not a result)."""
    if status == "ok":
        return "done" if reason == REASON_DONE else None
    if status != "error":
        return None
    if reason == REASON_INTERRUPTED:
        return "interrupted"
    return next((kind for start, kind in _REASON_STARTS if reason.startswith(start)), None)


@dataclass(frozen=True)
class _CommandEnvelope:
    request_id: str = field(metadata=_REQUEST_ID)
    command: str = field(metadata={"pattern": r"[a-z_]{1,40}"})
    expires_at: str = field(metadata={"time": True, "max_len": 40})
    args: dict[str, Any] = field(default_factory=dict, metadata={"max_items": 16})


@dataclass(frozen=True)
class Command(Message):
    SCHEMA: ClassVar[str] = "command/1"
    MAX_BYTES: ClassVar[int] = 16 * 1024
    STRICT: ClassVar[bool] = True

    request_id: str
    command: str
    args: Any  # an instance of COMMANDS[command]
    expires_at: str

    @classmethod
    def build(
        cls, request_id: str, command: str, args: Any = None, *, lifetime: timedelta = timedelta(hours=1),
        now: datetime | None = None,
    ) -> Command:
        """A command expiring ``lifetime`` from now (at most MAX_COMMAND_LIFETIME)."""
        expires = (now or datetime.now(UTC)) + min(lifetime, MAX_COMMAND_LIFETIME)
        data = {"request_id": request_id, "command": command, "expires_at": now_iso(expires),
                "args": to_data(args) if args is not None else {}}
        return cls.from_data({"schema": cls.SCHEMA, **data})

    @classmethod
    def from_data(cls, data: Any) -> Self:
        body = cls.body_of(data)
        envelope = parse_dataclass(_CommandEnvelope, body, "command")
        args_type = COMMANDS.get(envelope.command)
        if args_type is None:
            raise ContractError(f"command.command: unknown command {envelope.command!r}")
        args: Any = parse_dataclass(args_type, envelope.args, "args")
        return cls(envelope.request_id, envelope.command, args, envelope.expires_at)

    @property
    def expires(self) -> datetime:
        return parse_time(self.expires_at, "command.expires_at")

    def refusal(self, now: datetime) -> str | None:
        """Why this command must not run now (expired, or valid for longer than allowed), else None."""
        expires = self.expires
        if expires <= now:
            return f"{REASON_EXPIRED}{self.expires_at}; not executed"
        if expires - now > MAX_COMMAND_LIFETIME + timedelta(minutes=5):  # 5 min of clock skew
            days = MAX_COMMAND_LIFETIME.days
            return f"{REASON_TOO_FAR_AHEAD}{self.expires_at} is more than {days} days ahead"
        return None

    def to_data(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, "request_id": self.request_id, "command": self.command,
                "args": to_data(self.args), "expires_at": self.expires_at}


@dataclass(frozen=True)
class BlobInfo:
    """The ``result`` of a blob command: where the bytes went and how to check them."""

    blob_topic: str = field(metadata={"max_len": 300})
    bytes: int = field(metadata={"min": 0})
    sha256: str = field(metadata={"pattern": r"[0-9a-f]{64}"})
    content_type: Literal["image/png", "application/gzip"]
    #: upload_logs: the log files in the archive
    files: list[str] = field(default_factory=list, metadata={"max_items": 32})


@dataclass(frozen=True)
class CommandResult(Message):
    SCHEMA: ClassVar[str] = "command-result/1"
    MAX_BYTES: ClassVar[int] = 64 * 1024

    #: None when the request was garbage without a valid request id
    request_id: str | None = field(metadata=_REQUEST_ID)
    command: str | None = field(metadata={"pattern": r"[a-z_]{1,40}"})
    status: Literal["ok", "error"]
    #: English text for the console: "done", or why not
    reason: str = field(metadata={"max_len": 2000})
    result: dict[str, Any] = field(default_factory=dict, metadata={"max_items": 64})
    at: str = field(default_factory=now_iso, metadata={"time": True, "max_len": 40})
    #: (minor addition) the request's ``args`` as the kiosk read them, so a fleet that did not send the
    #: command (the province's, the center's: docs/province.md) can show what was asked; None when the
    #: request could not be read, and absent from agents before it
    args: dict[str, Any] | None = field(default=None, metadata={"max_items": 16})
    #: (minor addition) why an error result failed, for machines: one of ``RESULT_CODES`` from this
    #: version's agents (a newer one may add codes; a fleet reads any of the pattern); None on ``ok``,
    #: and absent from agents before it (a fleet then goes by ``reason_kind``)
    code: str | None = field(
        default=None, metadata={"pattern": RESULT_CODE_PATTERN, "pattern_hint": "a lowercase code"}
    )

    def blob(self) -> BlobInfo | None:
        """The blob announced by a successful screenshot or upload_logs, else None."""
        if self.status != "ok" or self.command not in BLOB_COMMANDS:
            return None
        return parse_dataclass(BlobInfo, self.result, "command-result.result", lenient=True)
