"""``health/1``: the heartbeat of a kiosk, every ``heartbeat_s`` and right after each birth (QoS 0).

Only technical facts: no personal data can be expressed here (free text is limited to error
messages of devices and the link, which never carry personal data by the rules of docs/mqtt.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from contract.message import Message
from contract.status import DEVICE_STATE
from contract.wire import now_iso

_ERROR = {"max_len": 300}
_PERCENT = {"min": 0, "max": 100}


@dataclass(frozen=True)
class MemoryHealth:
    used_percent: float = field(default=0.0, metadata=_PERCENT)
    agent_rss_bytes: int = field(default=0, metadata={"min": 0})


@dataclass(frozen=True)
class DiskHealth:
    used_percent: float = field(default=0.0, metadata=_PERCENT)
    free_bytes: int = field(default=0, metadata={"min": 0})


@dataclass(frozen=True)
class NumberingHealth:
    """Where queue numbers come from and what is still to report to the allocator (counts only)."""

    OMIT_NONE: ClassVar[bool] = True

    mode: Literal["local", "center"] = "local"
    pending_reports: int | None = field(default=None, metadata={"min": 0})
    #: why offline numbers are refused, if they are (the allocator said the slot or plan is wrong)
    offline_blocked: str | None = field(default=None, metadata=_ERROR)


@dataclass(frozen=True)
class AppHealth:
    OMIT_NONE: ClassVar[bool] = True
    state: Literal["up", "down"]
    version: str | None = field(default=None, metadata={"max_len": 40})
    uptime_s: float | None = field(default=None, metadata={"min": 0})
    screen: str | None = field(default=None, metadata={"pattern": r"[a-z_]{1,32}"})
    out_of_service: bool | None = None
    config_version: int | None = field(default=None, metadata={"min": 0})
    numbering: NumberingHealth | None = None
    #: why the app is down (``state: down``)
    error: str | None = field(default=None, metadata=_ERROR)


@dataclass(frozen=True)
class DeviceHealth:
    """One device: its state word, and what the app knows besides (model, the error that opened it)."""

    OMIT_NONE: ClassVar[bool] = True

    state: str = field(metadata=DEVICE_STATE)
    model: str | None = field(default=None, metadata={"max_len": 80})
    error: str | None = field(default=None, metadata=_ERROR)


@dataclass(frozen=True)
class OutboxHealth:
    OMIT_NONE: ClassVar[bool] = True
    pending: int = field(metadata={"min": 0})
    max: int = field(metadata={"min": 1})
    fill_ratio: float = field(metadata={"min": 0, "max": 1})
    alarm: bool = False
    oldest_age_s: float | None = None
    oldest_seq: int | None = field(default=None, metadata={"min": 0})
    dropped_total: int = field(default=0, metadata={"min": 0})
    journal_id: str = field(default="", metadata={"pattern": r"[0-9a-f]{0,64}"})
    #: the file a corrupted journal was moved to, when that happened
    recovered_from: str | None = field(default=None, metadata={"max_len": 200})


@dataclass(frozen=True)
class LinkHealth:
    connected: bool
    connects: int = field(default=0, metadata={"min": 0})
    last_error: str = field(default="", metadata=_ERROR)
    refused_events: int = field(default=0, metadata={"min": 0})
    #: messages from the center whose handling raised (answered or dropped, never retried forever)
    handler_errors: int = field(default=0, metadata={"min": 0})


#: the devices every kiosk reports (``unknown`` while the app is down); others appear when present
DEVICE_NAMES = ("printer", "card_reader", "scanner")
OPTIONAL_DEVICE_NAMES = ("receipt_printer",)


@dataclass(frozen=True)
class Health(Message):
    SCHEMA: ClassVar[str] = "health/1"
    MAX_BYTES: ClassVar[int] = 32 * 1024

    bdseq: int = field(metadata={"min": 0})
    boot: int = field(metadata={"min": 0})
    app: AppHealth
    outbox: OutboxHealth
    link: LinkHealth
    at: str = field(default_factory=now_iso, metadata={"time": True, "max_len": 40})
    uptime_s: float = field(default=0.0, metadata={"min": 0})
    agent_uptime_s: float = field(default=0.0, metadata={"min": 0})
    cpu_percent: float = field(default=0.0, metadata={"min": 0, "max": 100_000})
    agent_cpu_percent: float = field(default=0.0, metadata={"min": 0, "max": 100_000})
    memory: MemoryHealth = field(default_factory=MemoryHealth)
    disk: DiskHealth = field(default_factory=DiskHealth)
    #: the hottest sensor; None where the board has none
    temperature_c: float | None = field(default=None, metadata={"min": -100, "max": 200})
    devices: dict[str, DeviceHealth] = field(default_factory=dict, metadata={"max_items": 16})
    config_version: dict[str, int] = field(default_factory=dict, metadata={"max_items": 4})
    #: outbox_near_full, app_down, and ``<device>_<state>`` for every device state other than ok/unknown
    alarms: list[str] = field(default_factory=list, metadata={"max_items": 32})
    #: (1.1) when the kiosk's client certificate expires (its notAfter, UTC): the center warns before a
    #: kiosk is locked out of the broker; None when the agent cannot read its certificate
    cert_not_after: str | None = field(default=None, metadata={"time": True, "max_len": 40})


def health_alarms(app: AppHealth, devices: dict[str, DeviceHealth], outbox: OutboxHealth) -> list[str]:
    """The alarm words of a heartbeat: one rule, used by the agent that sends and any consumer."""
    alarms = []
    if outbox.alarm:
        alarms.append("outbox_near_full")
    if app.state == "down":
        alarms.append("app_down")
    quiet = ("ok", "unknown", "disabled")
    alarms += [f"{name}_{d.state}" for name, d in devices.items() if d.state not in quiet]
    return alarms
