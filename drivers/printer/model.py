"""Plain data the printer layer exchanges with the kiosk: configuration, content, status, reports.

Only the standard library is imported here, so ``import drivers.printer`` stays cheap for the app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from common.errors import ConfigError

Backend = Literal["simulator", "usb", "serial", "network"]
Role = Literal["ticket", "receipt"]
Mode = Literal["raster", "native"]
Paper = Literal["ok", "near_end", "out"]

BACKENDS = ("simulator", "usb", "serial", "network")
ROLES = ("ticket", "receipt")
MODES = ("raster", "native")
PAPER_STATES = ("ok", "near_end", "out")
#: Python-side names of the code pages native mode can encode Vietnamese into.
NATIVE_CODEPAGES = ("cp1258",)

#: Default fixed texts of a ticket (Vietnamese); callers pass their own translated mapping.
DEFAULT_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "your_number": "Số thứ tự của quý khách",
        "waiting": "Đang chờ: {n} người",
        "counter": "Quầy",
        "time": "Thời gian",
        "citizen": "Công dân",
        "scan_qr": "Quét mã để xem lượt và đánh giá",
    }
)


@dataclass(frozen=True)
class PrinterConfig:
    """One ``[devices.printer]`` table of the kiosk's TOML, field for field.

    Defaults suit the simulator so a demo needs no configuration at all.
    """

    backend: Backend = "simulator"
    role: Role = "ticket"
    #: printable dots per line: 576 on 80 mm paper, 384 on 58 mm
    width_dots: int = 576
    mode: Mode = "raster"
    #: native mode only: Python name of the code page ("cp1258")
    codepage: str = "cp1258"
    #: native mode only: the ESC t n table number of that code page; vendors disagree (Epson 52, some 58 mm
    #: Chinese printers 27 or 94), so it is configured, never guessed
    codepage_table: int = 52
    #: native mode only: set by the technician after the code page test page printed correctly
    native_verified: bool = False
    vendor_id: int = 0
    product_id: int = 0
    device: str = "/dev/ttyUSB0"
    baudrate: int = 115200
    host: str = "127.0.0.1"
    port: int = 9100
    #: simulator: where ticket PNGs go
    output_dir: str = "var/printer"
    #: simulator: the PNGs show a citizen's name when one identified: keep only the last this many
    #: (0 = no count bound) and none older than ``output_keep_s`` seconds (0 = no age bound)
    output_keep_last: int = 20
    output_keep_s: float = 1800.0
    #: simulator: 0 = bytes arrive instantly; else the speed of a modelled serial line in baud
    line_baud: int = 0
    #: raise a device event when the paper near-end sensor trips
    near_end_alarm: bool = True
    #: ESC J counts in vertical motion units; 1 dot on 203 dpi printers, 2 on Epson TM-T88 (1/360 inch)
    feed_units_per_dot: int = 1
    #: seconds to wait for a DLE EOT answer before the printer counts as offline
    status_timeout: float = 0.5
    #: centre short raster bands with ESC a 1 to save bytes; turn off for a printer whose test page shows
    #: centred lines flush left (its firmware ignores justification for GS v 0)
    raster_centering: bool = True
    #: QR module size in dots (GS ( k function 167)
    qr_module_dots: int = 6

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse impossible settings at start, naming the key and the fix."""
        key = "devices.printer"
        if self.backend not in BACKENDS:
            raise ConfigError(f"{key}.backend = {self.backend!r}: expected one of {', '.join(BACKENDS)}")
        if self.role not in ROLES:
            raise ConfigError(f"{key}.role = {self.role!r}: expected one of {', '.join(ROLES)}")
        if self.mode not in MODES:
            raise ConfigError(f"{key}.mode = {self.mode!r}: expected one of {', '.join(MODES)}")
        if self.width_dots < 64 or self.width_dots % 8 or self.width_dots > 2048:
            raise ConfigError(f"{key}.width_dots = {self.width_dots}: use 576 (80 mm) or 384 (58 mm)")
        if self.mode == "native":
            if self.codepage not in NATIVE_CODEPAGES:
                raise ConfigError(
                    f"{key}.codepage = {self.codepage!r}: native mode supports {', '.join(NATIVE_CODEPAGES)}"
                )
            if not self.native_verified:
                raise ConfigError(
                    f"{key}.mode = 'native' needs {key}.native_verified = true: print the code page test "
                    "page first and check every Vietnamese letter, or use mode = 'raster'"
                )
        if not 0 <= self.codepage_table <= 255:
            raise ConfigError(f"{key}.codepage_table = {self.codepage_table}: expected 0..255")
        if self.backend == "usb" and not (self.vendor_id and self.product_id):
            raise ConfigError(f"{key}.vendor_id/product_id: set both for backend = 'usb' (see lsusb)")
        if self.baudrate <= 0 or self.line_baud < 0:
            raise ConfigError(f"{key}.baudrate/line_baud: must be positive (line_baud 0 = instant)")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"{key}.port = {self.port}: expected 1..65535")
        if not 1 <= self.feed_units_per_dot <= 8:
            raise ConfigError(f"{key}.feed_units_per_dot = {self.feed_units_per_dot}: expected 1..8")
        if not 1 <= self.qr_module_dots <= 16:
            raise ConfigError(f"{key}.qr_module_dots = {self.qr_module_dots}: expected 1..16")
        if self.output_keep_last < 0 or self.output_keep_s < 0:
            raise ConfigError(f"{key}.output_keep_last/output_keep_s: 0 (no bound) or more")
        if self.status_timeout <= 0:
            raise ConfigError(f"{key}.status_timeout must be > 0 seconds")

    def describe(self) -> str:
        """Name the device for technicians' messages (no secrets in here)."""
        if self.backend == "usb":
            return f"USB printer {self.vendor_id:04x}:{self.product_id:04x}"
        if self.backend == "serial":
            return f"serial printer {self.device} at {self.baudrate} baud"
        if self.backend == "network":
            return f"network printer {self.host}:{self.port}"
        return f"virtual printer ({self.output_dir})"


@dataclass(frozen=True)
class TicketContent:
    """What one queue ticket shows; ``labels`` holds the already-translated fixed texts."""

    center_name: str
    service_name: str
    number: str
    counters: Sequence[str]
    issued_at: datetime
    #: people ahead in this queue; negative when unknown (offline), then the line is left out
    waiting_ahead: int | None  # None: not known (no center allocator, or issued offline): not printed
    citizen_name: str | None = field(default=None, repr=False)  # personal data: never in a repr
    priority_label: str | None = None
    qr_data: str | None = None
    footer: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: DEFAULT_LABELS)
    #: where to go, said as a sentence: ``lead`` (e.g. "…khi gọi số B001,") then ``counter_text`` in bold
    #: capitals-sized type ("mời đến Quầy số 3"); without ``counter_text`` the "Quầy: 3" line is printed
    lead: str = ""
    counter_text: str | None = None
    #: lines after the counter, centred (people ahead and expected wait, validity, hotline)
    notes: Sequence[str] = ()

    def label(self, key: str) -> str:
        """A fixed text from ``labels``, falling back to the Vietnamese default."""
        return self.labels.get(key, DEFAULT_LABELS.get(key, key))


@dataclass(frozen=True)
class DocumentContent:
    """A generic slip (dossier status, technician test page): a title, label/value lines, optional QR."""

    title: str
    lines: Sequence[tuple[str, str]] = ()
    qr_data: str | None = None
    footer: str = ""


@dataclass(frozen=True)
class PrinterStatus:
    """The printer's answer to DLE EOT 1, 2 and 4 (or its silence: ``online`` False)."""

    online: bool
    paper: Paper = "ok"
    cover_open: bool = False

    @property
    def problem(self) -> str | None:
        """The reason a print cannot happen now, as a short code; None when printing is possible."""
        if self.paper == "out":
            return "paper_out"
        if self.cover_open:
            return "cover_open"
        if not self.online:
            return "offline"
        return None


@dataclass(frozen=True)
class PrintReport:
    """What one print cost: bytes on the wire and wall time of the call (render, status checks, send)."""

    bytes_sent: int
    seconds: float
    status_after: PrinterStatus = field(default_factory=lambda: PrinterStatus(online=True))
    png: Path | None = None
