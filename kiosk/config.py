"""The kiosk's one configuration file (TOML), validated at start.

The part the center owns (service catalog, rating scale, citizen settings) is ``kiosk.center``.

A wrong key or value stops start-up with a message naming the key and what is expected
(``kiosk.schema``). Device sections map 1:1 onto each driver's own config dataclass. The center may
push an overlay (JSON) of the *pushable* part; ``apply_overlay`` validates it the same way.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from drivers.printer import PrinterConfig
from drivers.scanner import ScannerConfig
from edge_agent.config import AgentConfig
from kiosk.center import (
    PUSHABLE_KEYS,
    PUSHABLE_KIOSK_KEYS,
    CitizenSettings,
    RatingSection,
    ServiceArea,
)
from kiosk.dossier import LookupConfig
from kiosk.errors import ConfigError
from kiosk.schema import parse_dataclass, read_toml, to_data


@dataclass(frozen=True, kw_only=True)
class KioskSection(CitizenSettings):
    id: str = field(metadata={"pattern": r"[a-z0-9][a-z0-9-]{1,62}", "pattern_hint": "lowercase kiosk id"})
    center_id: str = field(metadata={"pattern": r"[a-z0-9][a-z0-9-]{1,62}", "pattern_hint": "lowercase id"})
    center_name: str
    data_dir: Path = Path("var/kiosk")
    timezone: str = "Asia/Ho_Chi_Minh"
    #: technician PIN as ``sha256:<hex>`` (never the PIN itself); see ``main.py kiosk --hash-pin``
    technician_pin_sha256: str = field(
        default="sha256:" + "0" * 64,
        metadata={"pattern": r"sha256:[0-9a-f]{64}", "pattern_hint": "sha256:<64 hex>"},
    )


@dataclass(frozen=True)
class DisplaySection:
    width: int = field(default=1080, metadata={"min": 320, "max": 4096})
    height: int = field(default=1920, metadata={"min": 320, "max": 4096})
    fullscreen: bool = False
    #: window size as a fraction of the design size when not fullscreen (fits a laptop screen)
    window_scale: float = field(default=0.45, metadata={"min": 0.1, "max": 1.0})


@dataclass(frozen=True)
class CardReaderConfig:
    """The contactless ID-card reader (PC/SC). In simulate mode it is vpcd's virtual reader."""

    enabled: bool = True
    backend: Literal["pcsc", "simulator"] = "simulator"
    #: part of the PC/SC reader name to use; the first reader whose name contains it
    reader: str = "Virtual PCD"
    #: folder of CSCA certificates (or an ICAO master list) for passive authentication
    trust_dir: Path | None = None
    timeout_s: float = field(default=10.0, metadata={"min": 1, "max": 60})
    #: vpcd's TCP endpoint the virtual chip plugs into (simulator only)
    vpcd_port: int = field(default=35963, metadata={"min": 1, "max": 65535})


@dataclass(frozen=True)
class DevicesSection:
    printer: PrinterConfig = field(default_factory=PrinterConfig)
    scanner: ScannerConfig = field(default_factory=ScannerConfig)
    card_reader: CardReaderConfig = field(default_factory=CardReaderConfig)
    #: a second printer for longer slips (dossier status); without it they go to the ticket printer
    receipt_printer: PrinterConfig | None = None

    def __post_init__(self) -> None:
        if self.printer.role != "ticket":
            raise ValueError('printer.role: the [devices.printer] is the ticket printer; use role = "ticket"')
        if self.receipt_printer is not None and self.receipt_printer.role != "receipt":
            raise ValueError('receipt_printer.role: expected "receipt"')


@dataclass(frozen=True)
class NumberingSection:
    """Where queue numbers come from (kiosk/numbering.py, docs/numbering.md)."""

    #: "local": this kiosk alone (demo, single kiosk); "center": the center allocator through the agent
    mode: Literal["local", "center"] = "local"
    #: this kiosk's offline slot, unique in the center: it owns offline_block numbers per service and day
    slot: int = field(default=0, metadata={"min": 0, "max": 999})
    #: how long a ticket waits for the allocator before it prints from the offline block
    online_budget_ms: int = field(default=800, metadata={"min": 50, "max": 1800})
    #: first number of the offline blocks; the allocator hands out 1 .. offline_base-1 (same on both)
    offline_base: int = field(default=800, metadata={"min": 2, "max": 9000})
    offline_block: int = field(default=20, metadata={"min": 1, "max": 1000})
    #: how often unreported tickets are sent to the allocator
    sync_interval_s: float = field(default=2.0, metadata={"min": 0.05, "max": 600})


@dataclass(frozen=True)
class KioskConfig:
    kiosk: KioskSection
    display: DisplaySection = field(default_factory=DisplaySection)
    devices: DevicesSection = field(default_factory=DevicesSection)
    services: list[ServiceArea] = field(default_factory=list)
    lookup: LookupConfig = field(default_factory=LookupConfig)
    rating: RatingSection = field(default_factory=RatingSection)
    agent: AgentConfig = field(default_factory=AgentConfig)
    numbering: NumberingSection = field(default_factory=NumberingSection)
    #: version of the configuration, bumped by the center on every push; reported in health
    version: int = 0

    def __post_init__(self) -> None:
        if not self.services:
            raise ValueError("services: at least one [[services]] entry is needed")
        seen_codes: set[str] = set()
        seen_prefixes: set[str] = set()
        for index, service in enumerate(self.services):
            if service.code in seen_codes:
                raise ValueError(f"services[{index}].code: {service.code!r} is used twice")
            if service.prefix in seen_prefixes:
                raise ValueError(f"services[{index}].prefix: {service.prefix!r} is used twice")
            seen_codes.add(service.code)
            seen_prefixes.add(service.prefix)

    def service(self, code: str) -> ServiceArea:
        for service in self.services:
            if service.code == code:
                return service
        raise KeyError(code)


def load_config(path: Path) -> KioskConfig:
    config = parse_dataclass(KioskConfig, read_toml(path))
    data_dir = config.kiosk.data_dir
    if not data_dir.is_absolute():
        # Relative data dirs are relative to the config file, so a config works from any cwd.
        data_dir = (path.parent / data_dir).resolve()
        config = dataclasses.replace(config, kiosk=dataclasses.replace(config.kiosk, data_dir=data_dir))
    overlay = data_dir / "pushed-config.json"
    if overlay.exists():
        config = apply_overlay(config, json.loads(overlay.read_text(encoding="utf-8")))
    return config


def apply_overlay(config: KioskConfig, overlay: dict[str, Any]) -> KioskConfig:
    """Return ``config`` with the center's pushed values applied, or raise ConfigError naming the key."""
    if not isinstance(overlay, dict):
        raise ConfigError("pushed configuration: expected a JSON object")
    allowed = {*PUSHABLE_KEYS, "kiosk"}
    for key in overlay:
        if key not in allowed:
            raise ConfigError(f"{key}: not pushable from the center; pushable: {', '.join(sorted(allowed))}")
    kiosk_overlay = overlay.get("kiosk", {})
    if not isinstance(kiosk_overlay, dict):
        raise ConfigError("kiosk: expected a table")
    for key in kiosk_overlay:
        if key not in PUSHABLE_KIOSK_KEYS:
            raise ConfigError(f"kiosk.{key}: not pushable; pushable: {', '.join(PUSHABLE_KIOSK_KEYS)}")
    merged = to_data(config)
    merged["kiosk"].update(kiosk_overlay)
    for key in PUSHABLE_KEYS:
        if key in overlay:
            merged[key] = overlay[key]
    return parse_dataclass(KioskConfig, merged)
