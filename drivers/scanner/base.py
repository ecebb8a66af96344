"""What every scanner backend shares: the worker thread, callback guarding, presence reporting, and
the one filter every scanned text passes before the app sees it (``normalize_scan``).

Backends implement ``_run(stop_event)`` only. The callback runs on the worker thread (the app marshals
it to the UI); an exception in it is logged and counted, never allowed to kill the worker.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from drivers.scanner.errors import ScannerError

log = logging.getLogger(__name__)

#: Longest scan passed on: receipt and ID-card QRs are a few hundred characters, and the dossier code
#: parser looks at no more than this either (kiosk.dossier.code.MAX_INPUT_CHARS).
MAX_SCAN_CHARS = 2048
#: The only control characters a scan may hold: multi-line receipt QRs use LF or CRLF; TAB separates
#: fields on some receipts.
_ALLOWED_CONTROLS = frozenset("\t\n\r")


class ScanRefused(ScannerError):
    """A scanned code that is not passed on: too long, or holding control characters. No receipt or
    ID card carries either; it is a binary or GS1 symbol, noise on the line, or an attack."""

    code = "scan_refused"


def normalize_scan(text: str) -> str:
    """A scan as the flows may see it, or ``ScanRefused``. Decisions (docs/lookup.md, "Scanned text"):

    - NFC (one code point per Vietnamese letter);
    - format characters (Unicode Cf: zero-width spaces and joiners, bidi marks and overrides, BOM,
      soft hyphen) are *removed*: invisible, they only make a code differ from what it shows;
    - any other control character (Cc: C0 but TAB/CR/LF, DEL, C1) or lone surrogate *refuses* the
      scan: removing it would guess at the text, and ESC/GS sequences are commands, not content;
    - more than MAX_SCAN_CHARS characters refuses it.
    """
    if len(text) > 4 * MAX_SCAN_CHARS:  # refuse before normalising a megabyte
        raise ScanRefused(f"scan of {len(text)} characters is longer than {MAX_SCAN_CHARS}")
    text = "".join(c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c) != "Cf")
    text = unicodedata.normalize("NFC", text)  # a removed joiner may have separated letter and mark
    if len(text) > MAX_SCAN_CHARS:
        raise ScanRefused(f"scan of {len(text)} characters is longer than {MAX_SCAN_CHARS}")
    for ch in text:
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in _ALLOWED_CONTROLS) or category == "Cs":
            raise ScanRefused(f"scan holds the control character U+{ord(ch):04X}")
    return text

ScanSource = Literal["camera", "serial"]


@dataclass(frozen=True)
class ScannerConfig:
    """The ``[devices.scanner]`` section of the kiosk configuration."""

    backend: Literal["simulator", "camera", "serial"] = "simulator"
    #: camera: V4L2 index (``/dev/video0`` is 0) and the decoder (``zxing`` is ~4x faster than ``zbar``)
    device_index: int = field(default=0, metadata={"min": 0, "max": 63})
    decoder: Literal["zxing", "zbar"] = "zxing"
    #: serial/USB-COM line scanner; ``/dev/serial/by-id/...`` survives re-plugging
    device: str = "/dev/ttyACM0"
    baudrate: int = field(default=9600, metadata={"min": 1200, "max": 921600})
    #: simulator: folder that relative paths given to ``show_image`` are resolved in
    image_dir: Path | None = None
    #: camera frames decoded per second
    fps: float = field(default=10.0, metadata={"min": 1, "max": 60})
    #: a code that stays in view is reported once; again only after this long out of view
    repeat_after_s: float = field(default=2.0, metadata={"min": 0, "max": 60})


@dataclass(frozen=True)
class ScanResult:
    """One scanned code: exact text (UTF-8 decoded, NFC), raw bytes, where it came from."""

    text: str
    raw: bytes
    source: ScanSource
    symbology: str
    #: ``time.monotonic()`` when the frame or line was complete (latency measurements)
    seen_at: float = field(default=0.0, compare=False)


OnCode = Callable[[ScanResult], None]
OnPresence = Callable[[bool], None]


class Debouncer:
    """Report a code when it comes into view; not again while it stays (a camera sees it 10x/s)."""

    def __init__(self, repeat_after_s: float) -> None:
        self.repeat_after_s = repeat_after_s
        self._last_seen: dict[str, float] = {}

    def fresh(self, texts: list[str], now: float) -> list[str]:
        new = [t for t in dict.fromkeys(texts) if now - self._last_seen.get(t, -1e18) > self.repeat_after_s]
        for text in texts:
            self._last_seen[text] = now
        if len(self._last_seen) > 64:  # forget codes long out of view
            self._last_seen = {t: s for t, s in self._last_seen.items() if now - s <= self.repeat_after_s}
        return new


class ScannerBase:
    """Worker-thread lifecycle shared by the backends."""

    kind: str = "scanner"

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._on_code: OnCode | None = None
        self._on_presence: OnPresence | None = None
        self._present = False
        self.codes_reported = 0
        self.codes_refused = 0
        self.last_refused: str | None = None
        self.callback_errors = 0
        self.last_error: str | None = None

    # -- public -----------------------------------------------------------------------------------
    def start(self, on_code: OnCode, on_presence: OnPresence | None = None) -> None:
        """Start the worker; ``on_code`` (and ``on_presence``) are called on the worker thread."""
        if self._thread and self._thread.is_alive():
            raise RuntimeError(f"{self.kind} scanner already started")
        self._on_code = on_code
        self._on_presence = on_presence
        self._stop.clear()
        self._thread = threading.Thread(target=self._guarded_run, name=f"scanner-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def present(self) -> bool:
        return self._present

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def self_test(self) -> dict[str, Any]:
        return {
            "backend": self.kind,
            "present": self.present(),
            "running": self.running(),
            "codes_reported": self.codes_reported,
            "codes_refused": self.codes_refused,
            "last_refused": self.last_refused,
            "callback_errors": self.callback_errors,
            "last_error": self.last_error,
            "ok": self.present() and self.last_error is None,
        }

    # -- for backends ------------------------------------------------------------------------------
    def _run(self, stop: threading.Event) -> None:
        raise NotImplementedError

    def _guarded_run(self) -> None:
        try:
            self._run(self._stop)
        except Exception as exc:  # a bug in a backend: say so in health rather than die silently
            log.exception("%s scanner worker died", self.kind)
            self.last_error = f"worker died: {exc!r}"
            self._set_present(False)

    def _emit(self, result: ScanResult) -> None:
        """Pass one scan to the app: normalised, or counted and dropped when refused (never content in
        the log: a refused scan may be someone's ID-card QR)."""
        try:
            text = normalize_scan(result.text)
        except ScanRefused as exc:
            self.codes_refused += 1
            self.last_refused = exc.message
            log.info("%s scanner: scan of %d bytes refused: %s", self.kind, len(result.raw), exc.message)
            return
        if text != result.text:
            result = dataclasses.replace(result, text=text)
        self.codes_reported += 1
        callback = self._on_code
        if callback is None:
            return
        try:
            callback(result)
        except Exception:
            self.callback_errors += 1
            log.exception("scan callback raised; the scanner keeps running")

    def _set_present(self, present: bool) -> None:
        if present == self._present:
            return
        self._present = present
        log.info("%s scanner %s", self.kind, "present" if present else "NOT present")
        if self._on_presence is not None:
            try:
                self._on_presence(present)
            except Exception:
                self.callback_errors += 1
                log.exception("presence callback raised")

    @staticmethod
    def now() -> float:
        return time.monotonic()


def resolve_image(path: str | Path, image_dir: Path | None) -> Path:
    candidate = Path(path)
    if not candidate.is_absolute() and image_dir is not None:
        candidate = image_dir / candidate
    return candidate
