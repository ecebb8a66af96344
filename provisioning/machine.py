"""What a kiosk PC says about itself at enrollment: serial, vendor, product, host name, MAC addresses.

Read from sysfs (``/sys/class/dmi/id``: the serial needs root), never from the network. The serial is
what the center's allowlist and the replacement history name.
"""

from __future__ import annotations

import socket
from pathlib import Path

from contract.enrollment import MachineInfo

DMI = Path("/sys/class/dmi/id")
NET = Path("/sys/class/net")


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""
    printable = "".join(c for c in text if 0x20 <= ord(c) < 0x7F)
    return (
        ""
        if printable.lower() in ("", "none", "default string", "to be filled by o.e.m.")
        else printable[:128]
    )


def machine_info(serial: str | None = None, dmi: Path = DMI, net: Path = NET) -> MachineInfo:
    macs: list[str] = []
    try:
        interfaces = sorted(net.iterdir())
    except OSError:
        interfaces = []
    for interface in interfaces:
        if interface.name == "lo":
            continue
        mac = _read(interface / "address")
        if mac and mac != "00:00:00:00:00:00" and len(macs) < 8:
            macs.append(mac)
    found = serial if serial is not None else _read(dmi / "product_serial") or _read(dmi / "board_serial")
    if not found:
        found = _read(Path("/etc/machine-id"))  # no DMI serial (VM, board without one): the OS's id
    return MachineInfo(
        serial=found[:128],
        vendor=_read(dmi / "sys_vendor"),
        product=_read(dmi / "product_name"),
        hostname=socket.gethostname()[:128],
        macs=macs,
    )
