"""Wires to real printers, opened through python-escpos; library errors become ours here.

python-escpos is imported lazily and contained (:func:`escpos_printer`): on import its capabilities
module calls ``logging.basicConfig()`` (which would hijack the app's logging) and makes a fresh temp
dir on every import (``mkdtemp()`` is evaluated even when ESCPOS_CAPABILITIES_PICKLE_DIR is set).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from .errors import PrinterError, PrinterUnavailableError
from .model import PrinterConfig

log = logging.getLogger(__name__)
_import_lock = threading.Lock()
NETWORK_WRITE_TIMEOUT = 10.0  # seconds; a ticket is ~12 KB, which any live printer takes in well under 1 s


class Transport(Protocol):
    """The smallest raw interface a printer needs: bytes out, status bytes back."""

    def write(self, data: bytes) -> None: ...

    def read(self, count: int, timeout: float) -> bytes: ...

    def drain(self) -> bytes: ...

    def reopen(self) -> None: ...

    def close(self) -> None: ...


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "motcua-kiosk" / "escpos"


def escpos_printer() -> ModuleType:
    """``escpos.printer``, imported once with its import-time side effects contained.

    Its capabilities pickle is kept in one per-user cache (published atomically, so parallel
    processes never read a half-written pickle) instead of a new temp dir per process, which also
    saves ~0.25 s of YAML parsing on every start after the first.
    """
    with _import_lock:
        loaded = sys.modules.get("escpos.printer")
        if loaded is not None:
            return loaded
        root = logging.getLogger()
        sentinel = None
        if not root.handlers:
            sentinel = logging.NullHandler()  # basicConfig() does nothing when root has a handler
            root.addHandler(sentinel)
        private = Path(tempfile.mkdtemp(prefix="motcua-escpos-"))
        shared = _cache_dir()
        import platform

        name = f"{platform.python_version()}.capabilities.pickle"
        real_mkdtemp = tempfile.mkdtemp
        try:
            if (shared / name).is_file():
                shutil.copy2(shared / name, private / name)
            tempfile.mkdtemp = lambda *a, **k: str(private)  # type: ignore[assignment]
            import escpos.printer as module
        finally:
            tempfile.mkdtemp = real_mkdtemp
            if sentinel is not None:
                root.removeHandler(sentinel)
        try:
            if (private / name).is_file() and not (shared / name).is_file():
                shared.mkdir(parents=True, exist_ok=True)
                tmp = shared / f".{name}.{os.getpid()}"
                shutil.copy2(private / name, tmp)
                os.replace(tmp, shared / name)
        except OSError as exc:  # a read-only home only costs the YAML parse next time
            log.debug("escpos capabilities cache not written: %s", exc)
        shutil.rmtree(private, ignore_errors=True)
        return module


class _EscposTransport:
    """Common part: python-escpos opens the device and translates "not found"."""

    def __init__(self, device: Any, config: PrinterConfig) -> None:
        self._device = device
        self._config = config

    def write(self, data: bytes) -> None:
        try:
            self._device._raw(data)
        except Exception as exc:  # pyserial, pyusb and socket errors have no common base
            raise PrinterError(f"{self._config.describe()}: write failed: {exc}") from exc

    def reopen(self) -> None:
        """Connect again after the printer went away (power cycle, cable, network)."""
        self.close()
        try:
            self._device.open()
        except Exception as exc:
            raise PrinterUnavailableError(f"cannot reopen {self._config.describe()}: {exc}") from exc

    def close(self) -> None:
        try:
            self._device.close()
        except Exception as exc:
            log.debug("closing %s: %s", self._config.describe(), exc)


class NetworkTransport(_EscposTransport):
    """Raw TCP (port 9100) through ``escpos.printer.Network``."""

    @property
    def _sock(self) -> socket.socket:
        sock = self._device.device
        if not isinstance(sock, socket.socket):  # escpos sets None after a failed open
            raise PrinterError(f"{self._config.describe()}: not connected")
        return sock

    def read(self, count: int, timeout: float) -> bytes:
        out = b""
        deadline = time.monotonic() + timeout
        while len(out) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(count - len(out))
            except TimeoutError:
                break
            except OSError as exc:
                raise PrinterError(f"{self._config.describe()}: read failed: {exc}") from exc
            if not chunk:
                raise PrinterError(f"{self._config.describe()}: connection closed by the printer")
            out += chunk
        return out

    def write(self, data: bytes) -> None:
        # A printer that stopped reading (paper out, buffer full) must not hang the kiosk in sendall().
        self._sock.settimeout(NETWORK_WRITE_TIMEOUT)
        super().write(data)

    def drain(self) -> bytes:
        self._sock.setblocking(False)
        stale = b""
        try:
            while chunk := self._sock.recv(4096):
                stale += chunk
        except (BlockingIOError, OSError):
            pass
        finally:
            self._sock.settimeout(NETWORK_WRITE_TIMEOUT)
        return stale


class SerialTransport(_EscposTransport):
    """RS-232 or USB-serial through ``escpos.printer.Serial`` (pyserial).

    Reads go to pyserial directly: escpos' ``_read()`` asks for 16 bytes and so always waits out the
    whole timeout for a 1-byte status answer.
    """

    def write(self, data: bytes) -> None:
        # Twice the line time plus slack: a printer holding CTS low (paper out) must not hang the kiosk.
        self._device.device.write_timeout = len(data) * 20 / self._config.baudrate + 2.0
        super().write(data)
        try:
            self._device.device.flush()  # returns when the bytes left the UART: honest print timing
        except Exception as exc:
            raise PrinterError(f"{self._config.describe()}: write failed: {exc}") from exc

    def read(self, count: int, timeout: float) -> bytes:
        port = self._device.device
        port.timeout = timeout
        try:
            return bytes(port.read(count))
        except Exception as exc:
            raise PrinterError(f"{self._config.describe()}: read failed: {exc}") from exc

    def drain(self) -> bytes:
        port = self._device.device
        waiting = port.in_waiting
        return bytes(port.read(waiting)) if waiting else b""


class UsbTransport(_EscposTransport):
    """USB printer class device through ``escpos.printer.Usb`` (pyusb, libusb-1.0)."""

    def read(self, count: int, timeout: float) -> bytes:
        out = b""
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            try:
                out += bytes(self._device._read())
            except Exception:  # usb.core.USBTimeoutError: no answer yet
                time.sleep(0.01)
        return out

    def drain(self) -> bytes:
        return b""


def open_transport(config: PrinterConfig) -> Transport:
    """Open the configured real device; raise PrinterUnavailableError naming it when that fails."""
    printer = escpos_printer()
    from escpos.exceptions import DeviceNotFoundError

    timeout = config.status_timeout
    try:
        if config.backend == "network":
            device = printer.Network(config.host, port=config.port, timeout=max(timeout, 5.0))
            device.open()
            return NetworkTransport(device, config)
        if config.backend == "serial":
            device = printer.Serial(config.device, baudrate=config.baudrate, timeout=timeout)
            device.open()
            return SerialTransport(device, config)
        if config.backend == "usb":
            device = printer.Usb(config.vendor_id, config.product_id, timeout=int(timeout * 1000))
            device.open()
            return UsbTransport(device, config)
    except DeviceNotFoundError as exc:
        raise PrinterUnavailableError(f"cannot open {config.describe()}: {exc}") from exc
    except Exception as exc:  # USBNotFoundError, permission errors, missing libusb
        reason = f"{type(exc).__name__}: {exc}"
        raise PrinterUnavailableError(f"cannot open {config.describe()}: {reason}") from exc
    raise PrinterUnavailableError(f"backend {config.backend!r} has no real transport")
