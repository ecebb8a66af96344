"""The ``[agent]`` section of the kiosk's configuration file: how the agent reaches the center."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TlsConfig:
    ca_file: Path | None = None  # the center's CA; None = plain TCP (local demo only)
    cert_file: Path | None = None  # this kiosk's client certificate (CN = kiosk id)
    key_file: Path | None = None


@dataclass(frozen=True)
class AgentConfig:
    broker_host: str = "127.0.0.1"
    broker_port: int = field(default=1883, metadata={"min": 1, "max": 65535})
    tls: TlsConfig = field(default_factory=TlsConfig)
    keepalive_s: int = field(default=30, metadata={"min": 5, "max": 3600})
    session_expiry_s: int = field(default=86400, metadata={"min": 0})
    heartbeat_s: float = field(default=30.0, metadata={"min": 1})
    reconnect_min_s: float = field(default=1.0, metadata={"min": 0.1})
    reconnect_max_s: float = field(default=120.0, metadata={"min": 1})
    outbox_max_events: int = field(default=200_000, metadata={"min": 100})
    outbox_alarm_ratio: float = field(default=0.8, metadata={"min": 0.1, "max": 1.0})
