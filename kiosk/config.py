"""The kiosk's one configuration file (TOML), validated at start.

The part the center owns (service catalog, rating scale, citizen settings) is the contract's
(``contract.config``): the fleet validates a push with the same dataclasses before it publishes it.

A wrong key or value stops start-up with a message naming the key and what is expected
(``contract.schema``). Device sections map 1:1 onto each driver's own config dataclass. The center may
push an overlay (JSON) of the *pushable* part; ``apply_overlay`` validates it the same way. The
``[agent]`` section belongs to the edge agent, which validates it itself (``main.py agent``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from common.errors import ConfigError
from contract.config import (
    CitizenSettings,
    Official,
    PushedConfig,
    RatingSection,
    ServiceArea,
    check_services,
)
from contract.errors import SchemaError
from contract.schema import parse_dataclass, read_toml, to_data
from drivers.printer import PrinterConfig
from drivers.scanner import ScannerConfig
from kiosk.dossier import LookupConfig
from kiosk.dossier.visit import VisitConfig


@dataclass(frozen=True, kw_only=True)
class KioskSection(CitizenSettings):
    id: str = field(metadata={"pattern": r"[a-z0-9][a-z0-9-]{1,62}", "pattern_hint": "lowercase kiosk id"})
    center_id: str = field(metadata={"pattern": r"[a-z0-9][a-z0-9-]{1,62}", "pattern_hint": "lowercase id"})
    center_name: str
    data_dir: Path = Path("var/kiosk")
    timezone: str = "Asia/Ho_Chi_Minh"
    #: technician PIN as an argon2id hash (salted, slow; never the PIN itself): ``main.py kiosk --hash-pin``
    #: makes one. Empty: no PIN, technician mode stays locked.
    technician_pin_hash: str = field(
        default="",
        metadata={
            "pattern": r"(\$argon2id\$v=19\$m=\d{1,8},t=\d{1,4},p=\d{1,3}"
            r"\$[A-Za-z0-9+/]{16,}\$[A-Za-z0-9+/]{16,})?",
            "pattern_hint": "$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash> (main.py kiosk --hash-pin)",
        },
    )
    #: the agency code of this center's receipts (``000.00.10.H12``): the look-up's numeric pad fills
    #: it and the separators, so a citizen types only the digits (date and number); empty: none
    dossier_agency: str = field(
        default="",
        metadata={"pattern": r"([A-Z0-9]{1,8}(\.[A-Z0-9]{1,8}){0,5})?", "pattern_hint": "e.g. 000.00.10.H12"},
    )
    #: DEPRECATED (unsalted SHA-256 of the PIN, ``sha256:<hex>``): read in this release with a warning
    #: at every start, refused by the next; ignored when ``technician_pin_hash`` is set
    technician_pin_sha256: str = field(
        default="",
        metadata={"pattern": r"(sha256:[0-9a-f]{64})?", "pattern_hint": "sha256:<64 hex> (deprecated)"},
    )

    def __post_init__(self) -> None:
        if self.technician_pin_hash:
            from kiosk.flows.technician import check_pin_hash

            check_pin_hash(self.technician_pin_hash)


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
class QueueSection:
    """The center's phone page of the queue (docs/queue.md): when both are set, the ticket's QR is the
    page of that number, computed offline from the center's phone key (HMAC only)."""

    #: the center's address as seen from the hall's Wi-Fi, e.g. ``https://motcua-benthanh.local``
    phone_base_url: str = field(
        default="", metadata={"pattern": r"(https?://[A-Za-z0-9.:-]{1,60})?", "pattern_hint": "https://host"}
    )
    #: file holding the phone key in hex (``main.py fleet queue phone-key --center ID``); a secret,
    #: installed with the kiosk, never pushed; relative paths are relative to the config file
    phone_key_file: Path | None = None

    @property
    def phone_page(self) -> bool:
        return bool(self.phone_base_url) and self.phone_key_file is not None

    def phone_key(self) -> bytes:
        """The key, or ConfigError naming the file (read when a ticket is printed: the file may be
        installed after start-up)."""
        assert self.phone_key_file is not None
        try:
            key = bytes.fromhex(self.phone_key_file.read_text(encoding="utf-8").strip())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"queue.phone_key_file {self.phone_key_file}: {exc}") from exc
        if len(key) < 16:
            raise ConfigError(
                f"queue.phone_key_file {self.phone_key_file}: at least 16 bytes (32 hex digits)"
            )
        return key


@dataclass(frozen=True)
class KioskConfig:
    kiosk: KioskSection
    display: DisplaySection = field(default_factory=DisplaySection)
    devices: DevicesSection = field(default_factory=DevicesSection)
    services: list[ServiceArea] = field(default_factory=list)
    lookup: LookupConfig = field(default_factory=LookupConfig)
    rating: RatingSection = field(default_factory=RatingSection)
    numbering: NumberingSection = field(default_factory=NumberingSection)
    #: delivery by post, fees by QR, appointments, feedback (docs/visit.md)
    visit: VisitConfig = field(default_factory=VisitConfig)
    queue: QueueSection = field(default_factory=QueueSection)
    #: the edge agent's section of the same file; the agent validates it (``main.py agent``)
    agent: dict[str, Any] = field(default_factory=dict)
    #: version of the configuration, bumped by the center on every push; reported in health
    version: int = 0

    def __post_init__(self) -> None:
        if not self.services:
            raise ValueError("services: at least one [[services]] entry is needed")
        check_services(self.services)

    def official_photo(self, official: Official) -> Path | None:
        """An officer's photo, from the kiosk's own ``<data_dir>/officials`` folder: the center names a
        file there, never a path, so a push cannot make the screen show any other file."""
        if official.photo is None:
            return None
        path = self.kiosk.data_dir / "officials" / official.photo
        return path if path.is_file() else None

    def service(self, code: str) -> ServiceArea:
        for service in self.services:
            if service.code == code:
                return service
        raise KeyError(code)


def load_config(path: Path, *, with_pushed: bool = True) -> KioskConfig:
    """The kiosk's file (and, unless ``with_pushed`` is off, the center's pushed overlay on top), or
    ConfigError naming the key."""
    try:
        config = parse_dataclass(KioskConfig, read_toml(path))
    except SchemaError as exc:
        raise ConfigError(exc.message) from exc
    data_dir = config.kiosk.data_dir
    if not data_dir.is_absolute():
        # Relative data dirs are relative to the config file, so a config works from any cwd.
        data_dir = (path.parent / data_dir).resolve()
        config = dataclasses.replace(config, kiosk=dataclasses.replace(config.kiosk, data_dir=data_dir))
    key_file = config.queue.phone_key_file
    if key_file is not None and not key_file.is_absolute():
        queue = dataclasses.replace(config.queue, phone_key_file=(path.parent / key_file).resolve())
        config = dataclasses.replace(config, queue=queue)
    return apply_pushed(config) if with_pushed else config


def apply_pushed(config: KioskConfig) -> KioskConfig:
    """``config`` (the kiosk's own file) with the overlay the agent last wrote, if there is one."""
    overlay = config.kiosk.data_dir / OVERLAY_NAME
    if not overlay.exists():
        return config
    try:
        data = json.loads(overlay.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"pushed configuration {overlay}: {exc}") from exc
    return apply_overlay(config, data)


#: where the agent writes the center's configuration for the app (``edge_agent.remote_config``)
OVERLAY_NAME = "pushed-config.json"


def apply_overlay(config: KioskConfig, overlay: Any) -> KioskConfig:
    """``config`` (the kiosk's own file) with the center's pushed values, or ConfigError naming the key.

    The overlay is a ``PushedConfig`` (checked by the contract) plus the ``version`` it came with. It is
    always applied to the file's values, never on top of an earlier overlay: a key the center no longer
    pushes falls back to the kiosk's own value.
    """
    if not isinstance(overlay, dict):
        raise ConfigError("pushed configuration: expected a JSON object")
    body = dict(overlay)
    version = body.pop("version", config.version)
    try:
        pushed = parse_dataclass(PushedConfig, body)
        merged = to_data(config)
        changes = pushed.to_overlay()
        merged["kiosk"].update(changes.get("kiosk", {}))
        merged["visit"].update(changes.get("visit", {}))  # key by key; the salt is never pushed
        for key in ("services", "rating"):
            if key in changes:
                merged[key] = changes[key]
        merged["version"] = version
        return parse_dataclass(KioskConfig, merged)
    except SchemaError as exc:
        raise ConfigError(exc.message) from exc


ConfigListener = Callable[[KioskConfig, KioskConfig], None]


class ConfigHolder:
    """The one current configuration of the running app, with change notification.

    Everything derived from the configuration either reads ``current`` when it needs it (flows,
    timeouts, the service list) or subscribes (the rating book, the home notice), so a push from the
    center takes effect without a restart. ``replace`` runs on the UI thread.
    """

    def __init__(self, config: KioskConfig) -> None:
        self._current = config
        self._listeners: list[ConfigListener] = []

    @property
    def current(self) -> KioskConfig:
        return self._current

    def subscribe(self, listener: ConfigListener) -> None:
        """``listener(old, new)`` after every replacement."""
        self._listeners.append(listener)

    def replace(self, new: KioskConfig) -> None:
        old, self._current = self._current, new
        for listener in list(self._listeners):
            listener(old, new)
