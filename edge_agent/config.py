"""The ``[agent]`` section of the kiosk's configuration file: how the agent reaches the center.

Every field has a default so a kiosk file may leave the section out; provisioning fills in the broker
address and the certificate paths. Parsed with ``contract.schema.parse_dataclass`` like every other section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from common.mqtt import TlsConfig


@dataclass(frozen=True)
class AgentConfig:
    broker_host: str = "127.0.0.1"
    broker_port: int = field(default=1883, metadata={"min": 1, "max": 65535})
    tls: TlsConfig = field(default_factory=TlsConfig)
    #: "5" (default) or "3.1.1" for brokers without MQTT v5 (no session expiry, no will delay)
    protocol: Literal["5", "3.1.1"] = "5"
    #: namespace root; topics are ``{topic_root}/{center_id}/{kiosk_id}/...`` (docs/mqtt.md)
    topic_root: str = field(default="motcua/v1", metadata={"pattern": r"[a-z0-9/_-]+[a-z0-9]"})
    keepalive_s: int = field(default=30, metadata={"min": 5, "max": 3600})
    session_expiry_s: int = field(default=86400, metadata={"min": 0})
    #: the broker waits this long before publishing the Will, so a quick reconnect does not flap
    will_delay_s: int = field(default=5, metadata={"min": 0, "max": 3600})
    heartbeat_s: float = field(default=30.0, metadata={"min": 1})
    reconnect_min_s: float = field(default=1.0, metadata={"min": 0.1})
    reconnect_max_s: float = field(default=120.0, metadata={"min": 0.1})
    outbox_max_events: int = field(default=200_000, metadata={"min": 100})
    outbox_alarm_ratio: float = field(default=0.8, metadata={"min": 0.1, "max": 1.0})
    #: events handed to paho but not yet acknowledged; bounds duplicates after a connection loss
    publish_window: int = field(default=1000, metadata={"min": 1, "max": 65000})
    #: messages paho keeps in flight on the wire (the rest of the window waits in paho's queue); paho's
    #: default, and faster than a large value in the benchmark (docs/agent.md)
    mqtt_max_inflight: int = field(default=20, metadata={"min": 1, "max": 65535})
    #: how often the agent looks for new events in the journal when idle
    poll_interval_s: float = field(default=0.1, metadata={"min": 0.01, "max": 10})
    #: acknowledged events are deleted in one transaction at most this often (batched commits)
    ack_flush_s: float = field(default=0.05, metadata={"min": 0.001, "max": 10})
    #: timeout of one request to the app's control socket
    app_timeout_s: float = field(default=10.0, metadata={"min": 0.1, "max": 120})
    #: log files ``upload_logs`` may send (scrubbed of ID numbers); relative paths are under data_dir
    log_files: list[Path] = field(default_factory=lambda: [Path("logs/kiosk.log"), Path("logs/agent.log")])
    #: largest file the agent publishes for screenshot/upload_logs
    max_blob_bytes: int = field(default=4 * 1024 * 1024, metadata={"min": 1024, "max": 64 * 1024 * 1024})
    #: the agent renews the kiosk's certificate this long before it ends (or at a third of its life left)
    renew_before_days: float = field(default=30.0, metadata={"min": 0.001, "max": 300})
    #: a renewal without an answer is sent again after this long
    renew_retry_s: float = field(default=600.0, metadata={"min": 1, "max": 86400})

    def __post_init__(self) -> None:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
