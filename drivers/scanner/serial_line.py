"""Serial (USB-COM) line scanners, and a simulator that is a real pty.

A scanner in COM mode sends each code followed by a suffix (CR by default on most models, LF or CRLF
on others, none on a few); we end a line at CR or LF, or when no byte arrived for ``idle_end_s``.
When the device disappears (USB unplugged: pyserial raises on read) the scanner reports not present
and reopens the same path every second: a ``/dev/serial/by-id/...`` link comes back on re-plug.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import tty
from pathlib import Path
from typing import Any

import serial

from drivers.scanner.base import ScannerBase, ScannerConfig, ScanResult
from drivers.scanner.decode import bytes_to_text
from drivers.scanner.errors import ScannerError

log = logging.getLogger(__name__)

#: Longer lines are noise (a scanner reading a page of text, a wrong baud rate): dropped.
MAX_LINE_BYTES = 4096


class SerialScanner(ScannerBase):
    """Reads codes line by line from ``config.device`` at ``config.baudrate``."""

    kind = "serial"

    def __init__(self, config: ScannerConfig, *, idle_end_s: float = 0.25, reopen_s: float = 1.0) -> None:
        super().__init__()
        self.config = config
        self.idle_end_s = idle_end_s
        self.reopen_s = reopen_s
        self.lines_dropped = 0
        self._port: serial.Serial | None = None

    def _open(self) -> serial.Serial | None:
        try:
            port = serial.Serial(self.config.device, self.config.baudrate, timeout=0.05)
        except (serial.SerialException, OSError) as exc:
            self.last_error = f"cannot open {self.config.device}: {exc}"
            return None
        self.last_error = None
        return port

    def _run(self, stop: threading.Event) -> None:
        buffer = bytearray()
        last_byte_at = 0.0
        #: after an overlong line, the rest of it (up to its terminator) is not a code either
        discarding = False
        while not stop.is_set():
            if self._port is None:
                self._port = self._open()
                if self._port is None:
                    self._set_present(False)
                    stop.wait(self.reopen_s)
                    continue
                self._set_present(True)
            try:
                chunk = self._port.read(max(1, self._port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                log.warning("serial scanner %s lost: %s", self.config.device, exc)
                self.last_error = f"{self.config.device} lost: {exc}"
                self._close_port()
                self._set_present(False)
                buffer.clear()
                continue
            now = self.now()
            if chunk:
                buffer += chunk
                last_byte_at = now
                while True:
                    ends = [i for i in (buffer.find(b"\r"), buffer.find(b"\n")) if i >= 0]
                    if not ends:
                        break
                    end = min(ends)
                    if not discarding:
                        self._line(bytes(buffer[:end]), now)
                    discarding = False
                    del buffer[: end + 1]
                if len(buffer) > MAX_LINE_BYTES:
                    if not discarding:
                        self.lines_dropped += 1
                    discarding = True  # a pty or USB read may split it anywhere
                    buffer.clear()
            elif buffer and now - last_byte_at >= self.idle_end_s:
                if not discarding:
                    self._line(bytes(buffer), now)  # a scanner configured without a suffix
                discarding = False
                buffer.clear()
            elif discarding and now - last_byte_at >= self.idle_end_s:
                discarding = False  # the overlong line ended without a terminator
        self._close_port()
        self._set_present(False)

    def _line(self, raw: bytes, seen_at: float) -> None:
        if not raw.strip():
            return
        if len(raw) > MAX_LINE_BYTES:
            self.lines_dropped += 1
            return
        self._emit(ScanResult(bytes_to_text(raw), raw, "serial", "unknown", seen_at))

    def _close_port(self) -> None:
        if self._port is not None:
            with contextlib.suppress(Exception):
                self._port.close()
            self._port = None

    def self_test(self) -> dict[str, Any]:
        report = super().self_test()
        report.update(device=self.config.device, baudrate=self.config.baudrate,
                      lines_dropped=self.lines_dropped)
        return report


class SerialScannerSimulator:
    """A line scanner on a pty: ``send(text)`` types a code; ``set_present(False)`` unplugs it.

    The reading side opens ``path``, a symlink to the pty's slave end (as udev's by-id links point to
    ttyACM*); unplugging closes the pty and removes the link, re-plugging makes a new pty behind the
    same link.
    """

    def __init__(self, path: Path | None = None, suffix: bytes = b"\r") -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="scanner-pty-")
            path = Path(self._tmp.name) / "ttySCANNER"
        self.path = path
        self.suffix = suffix
        self._master: int | None = None
        self._slave: int | None = None
        self._lock = threading.Lock()
        self.set_present(True)

    def present(self) -> bool:
        return self._master is not None

    def set_present(self, present: bool) -> None:
        with self._lock:
            if present and self._master is None:
                master, slave = os.openpty()
                tty.setraw(slave)  # no echo, no CR->LF translation: bytes arrive as sent
                self._master, self._slave = master, slave
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                self.path.symlink_to(os.ttyname(slave))
            elif not present and self._master is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                for fd in (self._master, self._slave):
                    if fd is not None:
                        os.close(fd)
                self._master = self._slave = None

    def send(self, text: str) -> None:
        """Type ``text`` (UTF-8) followed by the suffix, as the scanner would after a read."""
        self.send_bytes(text.encode("utf-8") + self.suffix)

    def send_bytes(self, data: bytes) -> None:
        with self._lock:
            if self._master is None:
                raise ScannerError("simulated serial scanner is unplugged")
            os.write(self._master, data)

    def close(self) -> None:
        self.set_present(False)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
