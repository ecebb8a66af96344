"""QR/barcode scanners: a camera (zxing-cpp or zbar), a serial line scanner, and their simulators.

``open_scanner(config)`` builds the configured backend without starting it; ``start(on_code)`` starts
a worker thread that calls ``on_code(ScanResult)`` on that thread. Importing does no I/O.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from drivers.scanner.base import OnCode, OnPresence, ScannerConfig, ScanResult
from drivers.scanner.camera import SimulatedCamera, V4l2Camera
from drivers.scanner.decode import Decoded, bytes_to_text, make_decoder
from drivers.scanner.errors import ScannerError, ScannerUnavailable
from drivers.scanner.serial_line import SerialScanner, SerialScannerSimulator
from drivers.scanner.sim import SimulatorScanner


@runtime_checkable
class Scanner(Protocol):
    def start(self, on_code: OnCode, on_presence: OnPresence | None = None) -> None: ...

    def stop(self) -> None: ...

    def present(self) -> bool: ...

    def self_test(self) -> dict[str, Any]: ...


def open_scanner(config: ScannerConfig) -> Scanner:
    """The configured backend; a real device that cannot be used raises, never falls back."""
    if config.backend == "simulator":
        return SimulatorScanner(config)
    if config.backend == "serial":
        return SerialScanner(config)
    if config.backend == "camera":
        return V4l2Camera(config)
    raise ScannerUnavailable(f"devices.scanner.backend: unknown backend {config.backend!r}")


__all__ = [
    "Decoded",
    "OnCode",
    "OnPresence",
    "ScanResult",
    "Scanner",
    "ScannerConfig",
    "ScannerError",
    "ScannerUnavailable",
    "SerialScanner",
    "SerialScannerSimulator",
    "SimulatedCamera",
    "SimulatorScanner",
    "V4l2Camera",
    "bytes_to_text",
    "make_decoder",
    "open_scanner",
]
