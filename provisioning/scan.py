"""Reading a code from a serial (USB-COM) scanner before the kiosk app runs: pyserial directly, one line.

A line scanner sends the decoded text and a CR (or LF); STX/ETX framing, if the scanner adds it, is
dropped. Used by ``provision enroll --scan --scanner-port DEV`` when the app's control socket is not there
(a bare PC); when the app runs, its own scanner is asked over the control socket instead.
"""

from __future__ import annotations

import time

from common.errors import DeviceUnavailableError


def read_serial_line(port: str, *, baudrate: int = 9600, timeout_s: float = 120.0) -> str:
    """The first complete line read on ``port`` within ``timeout_s``, or "" when none came."""
    try:
        import serial
    except ImportError as exc:  # pragma: no cover - pyserial is pinned
        raise DeviceUnavailableError(f"pyserial missing: {exc}") from exc
    try:
        line = serial.Serial(port, baudrate=baudrate, timeout=0.2)
    except (OSError, ValueError) as exc:
        raise DeviceUnavailableError(f"scanner port {port}: {exc}") from exc
    buffer = b""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            buffer += line.read(4096)
            for separator in (b"\r", b"\n"):
                if separator in buffer:
                    text, _, _ = buffer.partition(separator)
                    text = text.strip(b"\x02\x03 \t\r\n")
                    if text:
                        return text.decode("utf-8", errors="replace")
                    buffer = buffer[len(text) + 1 :]
    finally:
        line.close()
    return ""
