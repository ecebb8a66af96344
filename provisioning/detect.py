"""Hardware detection (``main.py provision detect``): what is plugged into this PC, what each thing
probably is and why, and the ``[devices]`` configuration that follows. The technician confirms or edits.

Looked at: PC/SC readers (pyscard), serial ports with their USB VID:PID (pyserial), USB printers by
vendor (pyusb), cameras (V4L2 in sysfs), and network printers **only at the addresses the technician
gives** (``--printer-address HOST[:PORT]``): nothing here scans a network. The drivers are not used
(provisioning does not import them): the libraries directly, so detection works before the kiosk does.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: USB vendors of receipt printers (VID -> name)
PRINTER_VENDORS = {
    0x04B8: "Epson",
    0x0519: "Star Micronics",
    0x1504: "Bixolon",
    0x1D90: "Citizen",
    0x0DD4: "Custom",
    0x0FE6: "ICS/Xprinter",
    0x1FC9: "Xprinter (NXP)",
    0x0416: "Winbond (58 mm printers)",
    0x28E9: "GD32 printers",
    0x154F: "SNBC",
    0x20D1: "Rongta",
    0x0483: "STMicro (Xprinter, HPRT)",
}
#: USB vendors of barcode scanners
SCANNER_VENDORS = {
    0x0C2E: "Honeywell (Metrologic)",
    0x05E0: "Zebra (Symbol)",
    0x05F9: "Datalogic",
    0x1EAB: "Newland",
    0x2DD6: "Newland",
    0x1A86: None,
    0x27DD: "Mindeo",
    0x0536: "Hand Held Products",
    0x34EB: "Sunmi",
    0x26F1: "Zebex",
    0x2009: "Inateck",
}
#: USB-to-serial chips: the device behind them could be either
SERIAL_ADAPTERS = {0x0403: "FTDI", 0x067B: "Prolific", 0x1A86: "WCH CH340", 0x10C4: "Silicon Labs CP210x"}
#: VID:PID known exactly
KNOWN = {
    (0x0C2E, 0x0B61): ("scanner", "Honeywell Voyager 1450g (USB serial)"),
    (0x0C2E, 0x0CAA): ("scanner", "Honeywell Xenon 1900 (USB serial)"),
    (0x05E0, 0x1701): ("scanner", "Zebra DS2208 (USB CDC)"),
    (0x1EAB, 0x1D06): ("scanner", "Newland HR22 (USB CDC)"),
    (0x04B8, 0x0E15): ("printer", "Epson TM-T20II"),
    (0x04B8, 0x0202): ("printer", "Epson TM-T88 series"),
    (0x0519, 0x0003): ("printer", "Star TSP100"),
}


@dataclass(frozen=True)
class Found:
    kind: str  # reader | serial | usb | camera | network
    name: str
    role: str  # card_reader | scanner | printer | camera | unknown
    why: str
    details: dict[str, Any] = field(default_factory=dict)


def guess_usb(vid: int | None, pid: int | None, text: str = "", *, is_serial: bool) -> tuple[str, str]:
    """(role, why) for a USB device from its VID:PID and description."""
    if vid is None:
        return "unknown", "no USB ids (a built-in port): set the role by hand"
    ident = f"{vid:04x}:{(pid or 0):04x}"
    if (vid, pid) in KNOWN:
        role, model = KNOWN[(vid, pid or 0)]
        return role, f"{ident} is a {model}"
    lowered = text.lower()
    for word, role in (
        ("scan", "scanner"),
        ("barcode", "scanner"),
        ("printer", "printer"),
        ("pos", "printer"),
    ):
        if word in lowered:
            return role, f"{ident}: its description says {word!r} ({text[:60]})"
    if SCANNER_VENDORS.get(vid):
        return "scanner", f"{ident}: vendor {SCANNER_VENDORS[vid]} makes scanners"
    if vid in PRINTER_VENDORS:
        return "printer", f"{ident}: vendor {PRINTER_VENDORS[vid]} makes receipt printers"
    if is_serial and vid in SERIAL_ADAPTERS:
        return (
            "unknown",
            f"{ident}: a {SERIAL_ADAPTERS[vid]} USB-serial adapter; a printer or a scanner behind it",
        )
    return "unknown", f"{ident}: vendor not known to us"


def pcsc_readers() -> tuple[list[Found], str]:
    try:
        from smartcard.System import readers
    except ImportError as exc:
        return [], f"pyscard missing: {exc}"
    try:
        names = [str(r) for r in readers()]
    except Exception as exc:  # pcscd not running: pyscard raises its own EstablishContextException
        return [], f"PC/SC not available ({type(exc).__name__}: {exc}); is pcscd running?"
    found = []
    for name in names:
        virtual = "virtual" in name.lower()
        found.append(
            Found(
                "reader",
                name,
                "card_reader",
                "PC/SC reader" + (" (the simulator's virtual reader)" if virtual else ""),
                {"reader": name.rsplit(" ", 2)[0] if name[-2:].isdigit() else name},
            )
        )
    return found, ""


def serial_ports(extra: list[str]) -> tuple[list[Found], str]:
    try:
        from serial.tools import list_ports
    except ImportError as exc:
        return [], f"pyserial missing: {exc}"
    found = []
    seen = set()
    for port in list_ports.comports():
        seen.add(port.device)
        text = " ".join(x for x in (port.manufacturer, port.product, port.description) if x and x != "n/a")
        role, why = guess_usb(port.vid, port.pid, text, is_serial=True)
        if port.vid is None and port.device.startswith("/dev/ttyS"):
            continue  # the motherboard's legacy UARTs: always listed, nothing plugged in as a rule
        found.append(
            Found(
                "serial",
                port.device,
                role,
                why,
                {"vid": port.vid, "pid": port.pid, "serial_number": port.serial_number, "text": text},
            )
        )
    for device in extra:  # ports the technician named (a pty, a by-id path)
        if device not in seen:
            exists = Path(device).exists()
            found.append(
                Found(
                    "serial",
                    device,
                    "scanner" if exists else "unknown",
                    "named by the technician" + ("" if exists else " (does not exist)"),
                    {},
                )
            )
    return found, ""


def usb_printers() -> tuple[list[Found], str]:
    try:
        import usb.core
    except ImportError as exc:
        return [], f"pyusb missing: {exc}"
    try:
        devices = list(usb.core.find(find_all=True))
    except Exception as exc:  # usb.core.NoBackendError without libusb
        return [], f"USB not readable ({type(exc).__name__}: {exc})"
    found = []
    for dev in devices:
        vid, pid = int(dev.idVendor), int(dev.idProduct)
        printer_class = False
        try:
            for cfg in dev:
                for intf in cfg:
                    printer_class = printer_class or intf.bInterfaceClass == 7
        except Exception:  # a device that does not let us read its configuration
            pass
        if not printer_class and vid not in PRINTER_VENDORS:
            continue
        why = f"{vid:04x}:{pid:04x}: " + (
            "USB printer class" if printer_class else f"vendor {PRINTER_VENDORS[vid]}"
        )
        found.append(
            Found("usb", f"{vid:04x}:{pid:04x}", "printer", why, {"vendor_id": vid, "product_id": pid})
        )
    return found, ""


def cameras(sysfs: Path = Path("/sys/class/video4linux")) -> tuple[list[Found], str]:
    found = []
    try:
        entries = sorted(sysfs.iterdir())
    except OSError:
        return [], "no V4L2 devices"
    for entry in entries:
        if not entry.name.startswith("video"):
            continue
        try:
            name = (entry / "name").read_text().strip()
            index = int((entry / "index").read_text().strip() or 0)
        except (OSError, ValueError):
            name, index = entry.name, 0
        if index != 0:
            continue  # metadata nodes of the same camera
        found.append(
            Found(
                "camera",
                f"/dev/{entry.name}",
                "camera",
                f"V4L2 camera {name!r}",
                {"device_index": int(entry.name[5:] or 0)},
            )
        )
    return found, ""


def network_printers(addresses: list[str], timeout_s: float = 1.0) -> list[Found]:
    """Only the addresses given: a TCP connect to each (raw ESC/POS port 9100 by default)."""
    found = []
    for address in addresses:
        host, _, port_text = address.rpartition(":") if address.count(":") == 1 else (address, "", "")
        host = host or address
        port = int(port_text) if port_text.isdigit() else 9100
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                ok = True
        except OSError as exc:
            ok, reason = False, str(exc)
        found.append(
            Found(
                "network",
                f"{host}:{port}",
                "printer" if ok else "unknown",
                "answers on its raw printing port" if ok else f"does not answer: {reason}",
                {"host": host, "port": port, "reachable": ok},
            )
        )
    return found


@dataclass
class Detection:
    found: list[Found] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def proposal(self) -> dict[str, Any]:
        """The ``[devices]`` tables these findings suggest (the technician confirms or edits them)."""
        devices: dict[str, Any] = {}
        printers = [f for f in self.found if f.role == "printer"]
        scanners = [f for f in self.found if f.role == "scanner"]
        readers = [f for f in self.found if f.role == "card_reader"]
        cams = [f for f in self.found if f.role == "camera"]
        if printers:
            p = printers[0]
            if p.kind == "usb":
                devices["printer"] = {
                    "backend": "usb",
                    "vendor_id": p.details["vendor_id"],
                    "product_id": p.details["product_id"],
                }
            elif p.kind == "network":
                devices["printer"] = {
                    "backend": "network",
                    "host": p.details["host"],
                    "port": p.details["port"],
                }
            else:
                devices["printer"] = {"backend": "serial", "device": p.name, "baudrate": 115200}
        else:
            devices["printer"] = {"backend": "simulator"}
        if scanners:
            devices["scanner"] = {"backend": "serial", "device": scanners[0].name, "baudrate": 9600}
        elif cams:
            devices["scanner"] = {"backend": "camera", "device_index": cams[0].details["device_index"]}
        else:
            devices["scanner"] = {"backend": "simulator"}
        real = [r for r in readers if "virtual" not in r.name.lower()]
        if real:
            devices["card_reader"] = {"enabled": True, "backend": "pcsc", "reader": real[0].details["reader"]}
        elif readers:
            devices["card_reader"] = {
                "enabled": True,
                "backend": "simulator",
                "reader": readers[0].details["reader"],
            }
        else:
            devices["card_reader"] = {"enabled": False}
        return devices


def detect(printer_addresses: list[str] | None = None, serial_extra: list[str] | None = None) -> Detection:
    result = Detection()
    for key, (items, note) in (
        ("readers", pcsc_readers()),
        ("serial", serial_ports(serial_extra or [])),
        ("usb", usb_printers()),
        ("cameras", cameras()),
    ):
        result.found += items
        if note:
            result.notes[key] = note
    result.found += network_printers(printer_addresses or [])
    return result
