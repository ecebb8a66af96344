"""The simulator backend: a simulated camera and a serial scanner on a pty, behind one ``Scanner``.

``show_image`` goes through the real decoder like a camera frame; ``type_text`` goes through a real
pty and the real ``SerialScanner`` code. ``set_present(False)`` unplugs both: the scanner reports not
present and nothing is read -- there is no silent fallback to anything else.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.scanner.base import OnCode, OnPresence, ScannerConfig
from drivers.scanner.camera import SimulatedCamera
from drivers.scanner.serial_line import SerialScanner, SerialScannerSimulator


class SimulatorScanner:
    """Camera simulator + serial simulator; ``present()`` is True only while both are plugged in."""

    kind = "simulator"

    def __init__(self, config: ScannerConfig) -> None:
        self.config = config
        self.camera = SimulatedCamera(config)
        self.serial_device = SerialScannerSimulator()
        self.serial = SerialScanner(
            dataclasses.replace(config, device=str(self.serial_device.path)), reopen_s=0.2
        )
        self._plugged = True
        self._on_presence: OnPresence | None = None
        self._reported: bool | None = None
        self._presence_lock = threading.Lock()

    def start(self, on_code: OnCode, on_presence: OnPresence | None = None) -> None:
        self._on_presence = on_presence
        self.camera.start(on_code, self._presence_changed)
        self.serial.start(on_code, self._presence_changed)

    def stop(self) -> None:
        self.camera.stop()
        self.serial.stop()

    def close(self) -> None:
        self.stop()
        self.serial_device.close()

    def present(self) -> bool:
        return self._plugged and self.camera.present() and self.serial.present()

    def _presence_changed(self, _present: bool) -> None:
        """Called from either worker; reports the combined presence once per change."""
        with self._presence_lock:
            present = self.present()
            if present == self._reported:
                return
            self._reported = present
        callback: Callable[[bool], None] | None = self._on_presence
        if callback is not None:
            callback(present)

    # -- simulator controls (``main.py sim scanner ...``) ------------------------------------------
    def show_image(self, path: str | Path, hold_s: float = 2.0) -> None:
        self.camera.show_image(path, hold_s)

    def clear(self) -> None:
        self.camera.clear()

    def type_text(self, text: str, wait_s: float = 2.0) -> None:
        """Send a code from the serial scanner; waits until the reader has the port open, because
        pyserial flushes the input buffer on open and a code sent before would be lost."""
        deadline = time.monotonic() + wait_s
        while self.serial.running() and not self.serial.present() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.serial_device.send(text)

    def set_present(self, present: bool) -> None:
        self._plugged = present
        self.camera.set_present(present)
        self.serial_device.set_present(present)

    def self_test(self) -> dict[str, Any]:
        camera, serial_report = self.camera.self_test(), self.serial.self_test()
        return {
            "backend": self.kind,
            "present": self.present(),
            "ok": self.present() and camera["ok"] and serial_report["ok"],
            "camera": camera,
            "serial": serial_report,
        }
