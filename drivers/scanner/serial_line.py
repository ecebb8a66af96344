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
_STX, _ETX = b"\x02", b"\x03"


class LineFramer:
    """Bytes from a line scanner -> lines (no I/O here, so it is tested and fuzzed on its own).

    A line ends at CR or LF (CRLF gives an empty line, which is skipped), or when no byte came for
    ``idle_end_s`` (scanners set to no suffix). A line over MAX_LINE_BYTES is dropped whole, up to its
    end, however the reads split it. Scanners set to STX/ETX framing send ``STX code ETX``: the two
    framing bytes are removed here, so they do not make the code look like one with control bytes.
    """

    def __init__(self, idle_end_s: float = 0.25, max_line: int = MAX_LINE_BYTES) -> None:
        self.idle_end_s = idle_end_s
        self.max_line = max_line
        self.lines_dropped = 0
        self._buffer = bytearray()
        self._last_byte_at = 0.0
        #: after an overlong line, the rest of it (up to its terminator) is not a code either
        self._discarding = False

    def feed(self, chunk: bytes, now: float) -> list[bytes]:
        """Bytes just read at ``now``; returns the lines they completed."""
        lines: list[bytes] = []
        if not chunk:
            return self.idle(now)
        self._buffer += chunk
        self._last_byte_at = now
        while True:
            ends = [i for i in (self._buffer.find(b"\r"), self._buffer.find(b"\n")) if i >= 0]
            if not ends:
                break
            end = min(ends)
            if not self._discarding:
                self._keep(bytes(self._buffer[:end]), lines)
            self._discarding = False
            del self._buffer[: end + 1]
        if len(self._buffer) > self.max_line:
            if not self._discarding:
                self.lines_dropped += 1
            self._discarding = True  # a pty or USB read may split it anywhere
            self._buffer.clear()
        return lines

    def idle(self, now: float) -> list[bytes]:
        """Nothing was read at ``now``: a pending line ends after ``idle_end_s`` of silence."""
        lines: list[bytes] = []
        if now - self._last_byte_at < self.idle_end_s:
            return lines
        if self._buffer and not self._discarding:
            self._keep(bytes(self._buffer), lines)  # a scanner configured without a suffix
        self._buffer.clear()
        self._discarding = False  # an overlong line that ended without a terminator
        return lines

    def reset(self) -> None:
        """The port was lost: what was half-read belongs to no line."""
        self._buffer.clear()
        self._discarding = False

    def _keep(self, line: bytes, lines: list[bytes]) -> None:
        if len(line) > self.max_line:
            self.lines_dropped += 1
            return
        if line.startswith(_STX):
            line = line[1:]
            if line.endswith(_ETX):
                line = line[:-1]
        if line.strip():
            lines.append(line)


class SerialScanner(ScannerBase):
    """Reads codes line by line from ``config.device`` at ``config.baudrate``."""

    kind = "serial"

    def __init__(self, config: ScannerConfig, *, idle_end_s: float = 0.25, reopen_s: float = 1.0) -> None:
        super().__init__()
        self.config = config
        self.idle_end_s = idle_end_s
        self.reopen_s = reopen_s
        self._framer = LineFramer(idle_end_s)
        self._port: serial.Serial | None = None

    def _open(self) -> serial.Serial | None:
        try:
            port = serial.Serial(self.config.device, self.config.baudrate, timeout=0.05)
        except (serial.SerialException, OSError) as exc:
            self.last_error = f"cannot open {self.config.device}: {exc}"
            return None
        self.last_error = None
        return port

    @property
    def lines_dropped(self) -> int:
        return self._framer.lines_dropped

    def _run(self, stop: threading.Event) -> None:
        framer = self._framer
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
                framer.reset()
                continue
            now = self.now()
            for line in framer.feed(chunk, now):
                self._emit(ScanResult(bytes_to_text(line), line, "serial", "unknown", now))
        self._close_port()
        self._set_present(False)

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
