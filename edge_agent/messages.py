"""Topics and payloads of the MQTT contract (docs/mqtt.md), as frozen dataclasses with a schema version.

Everything the agent sends or accepts is built or parsed here, so the document and the code have one
place to agree. Payloads are UTF-8 JSON objects whose ``schema`` field names the type and its version
(``"status/1"``); a consumer rejects a major version it does not know.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from kiosk.errors import KioskError

SCHEMA_STATUS = "status/1"
SCHEMA_HEALTH = "health/1"
SCHEMA_EVENT = "event/1"
SCHEMA_COMMAND = "command/1"
SCHEMA_COMMAND_RESULT = "command-result/1"
SCHEMA_CONFIG = "config/1"
SCHEMA_CONFIG_STATE = "config-state/1"

#: the scope name in the topic where center-wide configuration lives (kiosk ids cannot start with "_")
CENTER_SCOPE = "_center"

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class MessageError(KioskError):
    """A message from the center does not follow docs/mqtt.md; it is rejected, never acted on."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def loads_object(payload: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object or raise MessageError naming what was expected."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MessageError(f"{what}: not UTF-8 JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise MessageError(f"{what}: expected a JSON object")
    return data


@dataclass(frozen=True)
class Topics:
    """Every topic of one kiosk: ``{root}/{center_id}/{kiosk_id}/...``."""

    root: str
    center_id: str
    kiosk_id: str

    @property
    def base(self) -> str:
        return f"{self.root}/{self.center_id}/{self.kiosk_id}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    def event(self, kind: str) -> str:
        return f"{self.base}/event/{kind}"

    @property
    def cmd_req(self) -> str:
        return f"{self.base}/cmd/req"

    @property
    def cmd_res(self) -> str:
        return f"{self.base}/cmd/res"

    @property
    def config_set(self) -> str:
        return f"{self.base}/config/set"

    @property
    def center_config_set(self) -> str:
        return f"{self.root}/{self.center_id}/{CENTER_SCOPE}/config/set"

    @property
    def config_state(self) -> str:
        return f"{self.base}/config/state"

    def blob(self, request_id: str) -> str:
        return f"{self.base}/blob/{request_id}"

    @property
    def ticket_req(self) -> str:
        """Reserved for the queue-number allocator (issue: queue numbers)."""
        return f"{self.base}/ticket/req"

    @property
    def ticket_res(self) -> str:
        return f"{self.base}/ticket/res"


@dataclass(frozen=True)
class Status:
    """Birth (``online``), Will (``offline``/``lost``) and clean stop (``offline``/``shutdown``)."""

    state: Literal["online", "offline"]
    bdseq: int
    boot: int
    reason: Literal["birth", "lost", "shutdown"]
    at: str = field(default_factory=now_iso)
    agent_version: str = ""
    app_version: str | None = None
    config_version: dict[str, int] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> bytes:
        body: dict[str, Any] = {
            "schema": SCHEMA_STATUS,
            "state": self.state,
            "reason": self.reason,
            "bdseq": self.bdseq,
            "boot": self.boot,
            "at": self.at,
        }
        if self.state == "online":
            body.update(
                agent_version=self.agent_version,
                app_version=self.app_version,
                config_version=self.config_version,
                hardware=self.hardware,
            )
        return dumps(body)


def event_payload(
    *, seq: int, event_id: str, kind: str, occurred_at: str, payload_json: str, journal_id: str, replay: bool
) -> bytes:
    """The event envelope; ``payload_json`` is embedded as stored (no decode/encode on the hot path).

    Same bytes as ``dumps`` of the dict, built by hand: this runs once per event.
    """
    return (
        f'{{"schema":"{SCHEMA_EVENT}","event_id":{json.dumps(event_id)},"seq":{int(seq)},'
        f'"journal_id":{json.dumps(journal_id)},"kind":{json.dumps(kind)},'
        f'"occurred_at":{json.dumps(occurred_at)},"replay":{"true" if replay else "false"},'
        f'"payload":{payload_json}}}'
    ).encode()


CommandName = Literal[
    "reload_config",
    "print_test_ticket",
    "set_notice",
    "screenshot",
    "upload_logs",
    "restart_app",
    "set_service_mode",
]
COMMAND_NAMES: tuple[str, ...] = (
    "reload_config",
    "print_test_ticket",
    "set_notice",
    "screenshot",
    "upload_logs",
    "restart_app",
    "set_service_mode",
)


@dataclass(frozen=True)
class CommandRequest:
    request_id: str
    command: str
    args: dict[str, Any]
    expires_at: datetime | None = None

    @classmethod
    def parse(cls, payload: bytes) -> CommandRequest:
        """Check the envelope; the arguments are checked per command by ``edge_agent.commands``."""
        data = loads_object(payload, "command")
        request_id = data.get("request_id")
        if not isinstance(request_id, str) or not REQUEST_ID_RE.fullmatch(request_id):
            raise MessageError("command.request_id: expected 1-64 of A-Z a-z 0-9 . _ : -")
        if data.get("schema") != SCHEMA_COMMAND:
            raise MessageError(f"command.schema: expected {SCHEMA_COMMAND!r}, got {data.get('schema')!r}")
        unknown = sorted(set(data) - {"schema", "request_id", "command", "args", "expires_at"})
        if unknown:
            raise MessageError(f"command.{unknown[0]}: unknown key")
        command = data.get("command")
        if command not in COMMAND_NAMES:
            raise MessageError(f"command.command: unknown command {command!r}")
        args = data.get("args", {})
        if not isinstance(args, dict):
            raise MessageError("command.args: expected an object")
        expires = data.get("expires_at")
        expires_at = None
        if expires is not None:
            try:
                expires_at = datetime.fromisoformat(str(expires))
            except ValueError as exc:
                raise MessageError("command.expires_at: expected an ISO 8601 time") from exc
            if expires_at.tzinfo is None:
                raise MessageError("command.expires_at: needs a time zone (UTC: ...Z or +00:00)")
        return cls(request_id, str(command), args, expires_at)


def salvage_request_id(payload: bytes) -> str | None:
    """The request id of a malformed command, so even a rejection can be matched by the center."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(data, dict):
        request_id = data.get("request_id")
        if isinstance(request_id, str) and REQUEST_ID_RE.fullmatch(request_id):
            return request_id
    return None


@dataclass(frozen=True)
class CommandResult:
    request_id: str | None
    command: str | None
    status: Literal["ok", "error"]
    reason: str
    result: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_COMMAND_RESULT,
            "request_id": self.request_id,
            "command": self.command,
            "status": self.status,
            "reason": self.reason,
            "result": self.result,
            "at": self.at,
        }

    def to_payload(self) -> bytes:
        return dumps(self.to_dict())


@dataclass(frozen=True)
class ConfigPush:
    """One retained configuration message: center-wide or for this kiosk."""

    version: int
    config: dict[str, Any]

    @classmethod
    def parse(cls, payload: bytes, scope: str) -> ConfigPush:
        data = loads_object(payload, f"config ({scope})")
        if data.get("schema") != SCHEMA_CONFIG:
            raise MessageError(f"config ({scope}).schema: expected {SCHEMA_CONFIG!r}")
        unknown = sorted(set(data) - {"schema", "version", "config"})
        if unknown:
            raise MessageError(f"config ({scope}).{unknown[0]}: unknown key")
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise MessageError(f"config ({scope}).version: expected an integer >= 1")
        config = data.get("config")
        if not isinstance(config, dict):
            raise MessageError(f"config ({scope}).config: expected an object")
        return cls(version, config)
