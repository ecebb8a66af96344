"""``status/1``: a kiosk's birth (online), its Will (offline, lost) and its clean stop (offline, shutdown).

Retained on ``{kiosk}/status``. The status with the highest ``bdseq`` wins: an offline whose ``bdseq``
is lower than the last online is a late Will of an earlier connection and must be ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from contract.message import Message
from contract.wire import now_iso

#: one word per device state (docs/mqtt.md): printers, card reader, scanner; "unknown" when the app is down
DEVICE_STATE = {"pattern": r"[a-z_]{1,32}", "pattern_hint": "a device state such as ok, paper_out"}
_TIME = {"time": True, "max_len": 40}
_SHORT = {"max_len": 200}


@dataclass(frozen=True)
class Hardware:
    """What the birth says about the box: read once per connection."""

    machine: str = field(default="", metadata=_SHORT)
    os: str = field(default="", metadata=_SHORT)
    python: str = field(default="", metadata=_SHORT)
    cpu_count: int = field(default=0, metadata={"min": 0, "max": 4096})
    memory_bytes: int = field(default=0, metadata={"min": 0})
    disk_bytes: int = field(default=0, metadata={"min": 0})
    #: device -> state word, as the app reported it at birth
    devices: dict[str, str] = field(default_factory=dict, metadata={"max_items": 16})


@dataclass(frozen=True)
class Status(Message):
    SCHEMA: ClassVar[str] = "status/1"
    MAX_BYTES: ClassVar[int] = 16 * 1024

    state: Literal["online", "offline"]
    reason: Literal["birth", "lost", "shutdown"]
    #: grows by one per connection attempt of the agent (Sparkplug's bdSeq): the highest wins
    bdseq: int = field(metadata={"min": 0})
    #: grows by one per agent start
    boot: int = field(metadata={"min": 0})
    at: str = field(default_factory=now_iso, metadata=_TIME)
    agent_version: str = field(default="", metadata=_SHORT)
    #: None when the app is not running
    app_version: str | None = field(default=None, metadata=_SHORT)
    #: scope -> applied version of pushed configuration ("center", "kiosk")
    config_version: dict[str, int] = field(default_factory=dict, metadata={"max_items": 4})
    hardware: Hardware | None = None

    def to_data(self) -> dict[str, Any]:
        body = super().to_data()
        if self.state == "offline":  # a Will or a clean stop says only who and when
            for key in ("agent_version", "app_version", "config_version", "hardware"):
                body.pop(key, None)
        return body
