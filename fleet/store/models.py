"""What the store hands out and takes in: frozen dataclasses, never rows or dicts.

Inputs from kiosks (``StatusReport``, ``HealthReport``, ``EventRecord``...) are plain values the MQTT
ingest builds from the contract's parsed messages; the store does not parse MQTT.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    total: int
    offset: int
    limit: int

    @property
    def number(self) -> int:
        return self.offset // self.limit + 1 if self.limit else 1

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit)) if self.limit else 1


# --- registry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Province:
    id: str
    name: str


@dataclass(frozen=True)
class Center:
    id: str
    province_id: str
    name: str
    province_name: str


@dataclass(frozen=True)
class CenterSummary:
    center: Center
    kiosks: int
    online: int
    offline: int
    unknown: int
    active_alarms: int


@dataclass(frozen=True)
class Kiosk:
    id: str
    center_id: str
    slot: int | None
    label: str
    state: str
    state_reason: str | None
    state_since: datetime | None
    last_seen: datetime | None
    heartbeat_s: int
    bdseq: int | None
    boot: int | None
    agent_version: str | None
    app_version: str | None
    config_center_version: int | None
    config_kiosk_version: int | None
    hardware: dict[str, Any] | None


@dataclass(frozen=True)
class DeviceState:
    kiosk_id: str
    device: str
    state: str
    detail: dict[str, Any] | None
    since: datetime
    updated_at: datetime


@dataclass(frozen=True)
class KioskRow:
    """One line of a center's kiosk list: the kiosk, its devices, its active alarms."""

    kiosk: Kiosk
    devices: tuple[DeviceState, ...]
    active_alarms: int
    worst_severity: str | None


# --- status and health ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusReport:
    """A ``status/1`` message (birth, clean stop, Will) or the center's own verdict ('silent')."""

    state: str  # online | offline
    reason: str  # birth | shutdown | lost | silent | heartbeat
    bdseq: int | None
    boot: int | None = None
    at: datetime | None = None
    agent_version: str | None = None
    app_version: str | None = None
    config_versions: dict[str, int] | None = None
    hardware: dict[str, Any] | None = None


@dataclass(frozen=True)
class StatusOutcome:
    applied: bool
    changed: bool  # the kiosk's state changed (online <-> offline), not only its bdseq
    previous_state: str
    state: str


@dataclass(frozen=True)
class StatusChange:
    id: int
    kiosk_id: str
    state: str
    reason: str
    bdseq: int | None
    boot: int | None
    at: datetime | None
    received_at: datetime
    applied: bool


@dataclass(frozen=True)
class HealthReport:
    at: datetime
    bdseq: int | None
    devices: dict[str, dict[str, Any]]
    cpu_percent: float | None = None
    memory_used_percent: float | None = None
    disk_used_percent: float | None = None
    temperature_c: float | None = None
    outbox_pending: int | None = None
    app_up: bool | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], at: datetime) -> HealthReport:
        """Map an already validated ``health/1`` dict onto the columns the store keeps."""

        def number(value: Any) -> float | None:
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        memory = payload.get("memory") or {}
        disk = payload.get("disk") or {}
        outbox = payload.get("outbox") or {}
        app = payload.get("app") or {}
        pending = outbox.get("pending")
        devices = {
            name: dict(info)
            for name, info in (payload.get("devices") or {}).items()
            if isinstance(info, dict) and isinstance(info.get("state"), str)
        }
        return cls(
            at=at,
            bdseq=payload.get("bdseq"),
            devices=devices,
            cpu_percent=number(payload.get("cpu_percent")),
            memory_used_percent=number(memory.get("used_percent")),
            disk_used_percent=number(disk.get("used_percent")),
            temperature_c=number(payload.get("temperature_c")),
            outbox_pending=pending if isinstance(pending, int) else None,
            app_up=None if "state" not in app else app.get("state") == "up",
            payload=payload,
        )


@dataclass(frozen=True)
class DeviceChange:
    device: str
    old_state: str | None  # None: first report of this device
    new_state: str


@dataclass(frozen=True)
class HealthOutcome:
    device_changes: tuple[DeviceChange, ...]
    status: StatusOutcome | None  # set when the heartbeat brought a 'silent' kiosk back online
    kiosk_state: str = ""  # the kiosk's state and bdseq once the heartbeat is applied
    kiosk_bdseq: int | None = None


@dataclass(frozen=True)
class HealthHour:
    kiosk_id: str
    hour: datetime
    samples: int
    cpu_avg: float | None
    cpu_max: float | None
    memory_avg: float | None
    memory_max: float | None
    disk_max: float | None
    temperature_avg: float | None
    temperature_max: float | None
    outbox_pending_max: int | None
    app_down_samples: int


# --- events --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRecord:
    event_id: str
    journal_id: str
    seq: int
    kind: str
    occurred_at: datetime
    payload: dict[str, Any]
    replay: bool = False


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    center_id: str
    kiosk_id: str
    journal_id: str
    seq: int
    kind: str
    occurred_at: datetime
    received_at: datetime
    replay: bool
    payload: dict[str, Any]


@dataclass(frozen=True)
class EventGap:
    id: int
    kiosk_id: str
    journal_id: str
    first_seq: int
    last_seq: int
    detected_at: datetime
    closed_at: datetime | None
    closed_reason: str | None

    @property
    def missing(self) -> int:
        return self.last_seq - self.first_seq + 1


@dataclass(frozen=True)
class EventOutcome:
    inserted: bool  # False: a duplicate of an event already stored (at-least-once delivery)
    opened: tuple[EventGap, ...] = ()  # gaps this event revealed
    filled: bool = False  # this late event filled (part of) a known gap
    out_of_order: bool = False  # an unseen seq at or below the journal's highest, in no known gap


# --- alarms, commands, configuration -------------------------------------------------------------


@dataclass(frozen=True)
class Alarm:
    id: int
    center_id: str
    kiosk_id: str | None  # None: an alarm of the center itself (its allocator)
    type: str
    device: str | None
    severity: str
    active: bool
    detail: dict[str, Any] | None
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    acknowledged_by: int | None
    acknowledged_by_name: str | None
    acknowledged_at: datetime | None
    last_reminded_at: datetime | None
    reminders: int


@dataclass(frozen=True)
class Command:
    id: int
    center_id: str
    kiosk_id: str
    request_id: str
    command: str
    args: dict[str, Any]
    requested_by: int | None
    requested_by_name: str | None
    requested_at: datetime | None
    expires_at: datetime | None
    sent_at: datetime | None
    status: str
    result_reason: str | None
    result: dict[str, Any] | None
    result_at: datetime | None
    #: another fleet's command (its result as the kiosk reported it; requested_by is None)
    sent_elsewhere: bool = False
    #: why an error result failed, as the kiosk's agent coded it (``CommandResult.code``); None from
    #: agents before codes, for ok results and for this fleet's own reasons
    result_code: str | None = None


@dataclass(frozen=True)
class ConfigPush:
    id: int
    center_id: str
    target: str
    version: int
    body: dict[str, Any]
    pushed_by: int | None
    pushed_at: datetime


@dataclass(frozen=True)
class ConfigState:
    kiosk_id: str
    center_version: int | None
    kiosk_version: int | None
    app_pending: bool
    last_refused: dict[str, Any] | None
    at: datetime | None
    received_at: datetime


@dataclass(frozen=True)
class NotificationRoute:
    id: int
    center_id: str
    kind: str
    target: str
    min_severity: str
    active: bool
    created_at: datetime


# --- people --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    province_id: str | None
    center_id: str | None
    active: bool
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class Session:
    id: str
    user: User
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    address: str | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    user_id: int | None
    username: str | None
    action: str
    object_type: str | None
    object_id: str | None
    province_id: str | None
    center_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    address: str | None


@dataclass(frozen=True)
class Change:
    id: int
    at: datetime
    center_id: str
    kiosk_id: str | None
    topic: str


# --- ingest, notifications, blobs (phase 2) ------------------------------------------------------


@dataclass(frozen=True)
class WorkerStatus:
    """One ingest worker as it last reported itself (``stats``: counters, queue, lag)."""

    id: str
    host: str
    pid: int
    started_at: datetime
    updated_at: datetime
    stopped_at: datetime | None
    stats: dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """What the ingest refused, per (center, kiosk) as the topic named them and per reason."""

    id: int
    center_id: str
    kiosk_id: str
    reason: str
    count: int
    first_at: datetime
    last_at: datetime
    detail: str | None


@dataclass(frozen=True)
class Blob:
    kiosk_id: str
    request_id: str
    center_id: str
    size: int
    sha256: str
    received_at: datetime
    data: builtins.bytes = b""


@dataclass(frozen=True)
class Delivery:
    """One notification to send: the route, what happened, and the alarm as it is now."""

    id: int
    attempts: int
    kind: str  # email | webhook
    target: str
    event: str  # raised | reminder | cleared
    number: int
    center_name: str
    kiosk_label: str | None
    alarm: Alarm


@dataclass(frozen=True)
class DeliveryRow:
    """A notification as the routes page lists it."""

    id: int
    route_id: int
    kind: str
    target: str
    event: str
    alarm_id: int
    alarm_type: str
    kiosk_id: str | None
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime
    last_error: str | None
