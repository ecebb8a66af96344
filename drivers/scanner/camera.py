"""Camera scanners: grab a frame, decode it, report codes newly in view.

``SimulatedCamera`` is fed with image files (``show_image``): each is placed in a 1280x720 grey frame,
as a webcam would see a receipt held up, and decoded by the same decoder as a real camera.
``V4l2Camera`` is the real capture: a thin backend over OpenCV, which is *not* a dependency of the
project (about 50 MB); without it, opening a real camera says so instead of pretending.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from drivers.scanner.base import Debouncer, ScannerBase, ScannerConfig, ScanResult, resolve_image
from drivers.scanner.decode import Decoded, FrameDecoder, make_decoder
from drivers.scanner.errors import ScannerError, ScannerUnavailable

log = logging.getLogger(__name__)

FRAME_SIZE = (1280, 720)


def camera_frame(image: Image.Image, size: tuple[int, int] = FRAME_SIZE) -> Image.Image:
    """The image as a camera would deliver it: grey, in a frame of ``size``, centred (shrunk to fit)."""
    if image.mode in ("P", "PA", "LA", "RGBA") or "transparency" in image.info:
        # Transparent pixels are paper, not ink: flatten onto white before going grey.
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        image = flat
    grey = image.convert("L")
    if grey.width > size[0] or grey.height > size[1]:
        grey.thumbnail(size)
    frame = Image.new("L", size, 190)
    frame.paste(grey, ((size[0] - grey.width) // 2, (size[1] - grey.height) // 2))
    return frame


class CameraScanner(ScannerBase):
    """Decode loop over ``_grab()``; backends provide the frames."""

    kind = "camera"

    def __init__(self, config: ScannerConfig, decoder: FrameDecoder | None = None) -> None:
        super().__init__()
        self.config = config
        self.decoder = decoder or make_decoder(config.decoder)
        self.frames_decoded = 0
        self.decode_ms_last = 0.0

    def _grab(self, stop: threading.Event) -> Image.Image | None:
        raise NotImplementedError

    def _decode(self, frame: Image.Image) -> list[Decoded]:
        start = self.now()
        found = self.decoder.decode(frame)
        self.decode_ms_last = (self.now() - start) * 1000
        self.frames_decoded += 1
        return found

    def _report(self, found: list[Decoded], debounce: Debouncer, seen_at: float) -> None:
        by_text = {d.text: d for d in found}
        for text in debounce.fresh(list(by_text), seen_at):
            d = by_text[text]
            self._emit(ScanResult(d.text, d.raw, "camera", d.symbology, seen_at))

    def self_test(self) -> dict[str, Any]:
        report = super().self_test()
        report.update(decoder=self.decoder.name, frames_decoded=self.frames_decoded,
                      decode_ms_last=round(self.decode_ms_last, 2))
        report.update(decoder_check=decoder_check(self.decoder))
        report["ok"] = report["ok"] and report["decoder_check"] == "ok"
        return report


def decoder_check(decoder: FrameDecoder) -> str:
    """Decode a Vietnamese QR made by segno (an independent encoder): "ok" or what went wrong."""
    import io

    import segno

    expected = "Kiểm tra máy quét - Đồng hồ 000.00.10.H12-210901-0001"
    buffer = io.BytesIO()
    segno.make(expected, error="m", micro=False).save(buffer, kind="png", scale=4, border=4)
    buffer.seek(0)
    try:
        found = decoder.decode(camera_frame(Image.open(buffer)))
    except ScannerError as exc:
        return f"decoder failed: {exc.message}"
    if [d.text for d in found] != [expected]:
        return f"decoded {[d.text for d in found]!r:.80}, expected the test text"
    return "ok"


class SimulatedCamera(CameraScanner):
    """A camera whose scene is an image file; every shown image is decoded once, as a real frame."""

    def __init__(self, config: ScannerConfig, decoder: FrameDecoder | None = None) -> None:
        super().__init__(config, decoder)
        self._scene_lock = threading.Lock()
        self._scene: Image.Image | None = None
        self._scene_found: list[Decoded] | None = None
        self._scene_until = 0.0
        self._wake = threading.Event()
        self._plugged = True
        self.shown = 0

    def show_image(self, path: str | Path, hold_s: float = 2.0) -> None:
        """Hold the image in front of the camera for ``hold_s`` seconds (the worker decodes it)."""
        file = resolve_image(path, self.config.image_dir)
        try:
            with Image.open(file) as image:
                frame = camera_frame(image)
        except (OSError, UnidentifiedImageError) as exc:
            raise ScannerError(f"simulated camera cannot read image {file}: {exc}") from exc
        with self._scene_lock:
            self._scene = frame
            self._scene_found = None
            self._scene_until = self.now() + hold_s
            self.shown += 1
        self._wake.set()

    def clear(self) -> None:
        """Nothing in front of the camera."""
        with self._scene_lock:
            self._scene = None
            self._scene_found = None
        self._wake.set()

    def set_present(self, present: bool) -> None:
        """Plug or unplug the simulated camera; unplugged, it reports not present and sees nothing."""
        self._plugged = present
        self._wake.set()

    def _run(self, stop: threading.Event) -> None:
        debounce = Debouncer(self.config.repeat_after_s)
        period = 1.0 / self.config.fps
        while not stop.is_set():
            self._set_present(self._plugged)
            if self._plugged:
                with self._scene_lock:
                    scene, found = self._scene, self._scene_found
                    # Expire a scene only once it was decoded: every shown image is at least one frame,
                    # even when this worker was starved of CPU while the image was "held".
                    if found is not None and self.now() > self._scene_until:
                        scene = self._scene = self._scene_found = None
                if scene is not None:
                    seen_at = self.now()
                    if found is None:  # a new scene: decode it like a frame; unchanged frames decode alike
                        found = self._decode(scene)
                        with self._scene_lock:
                            if self._scene is scene:
                                self._scene_found = found
                    self._report(found, debounce, seen_at)
                else:
                    debounce.fresh([], self.now())
            self._wake.wait(period)
            self._wake.clear()
        self._set_present(False)


class V4l2Camera(CameraScanner):
    """A real camera through OpenCV (``opencv-python-headless``), reopened when it disappears."""

    def __init__(self, config: ScannerConfig, decoder: FrameDecoder | None = None) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise ScannerUnavailable(
                "devices.scanner.backend = 'camera' needs opencv-python-headless, which is not "
                "installed; install it or use a serial scanner"
            ) from exc
        super().__init__(config, decoder)
        self._cv2: Any = cv2
        self._capture: Any = None
        #: seconds between attempts to open a missing camera
        self.reopen_s = 2.0

    def _run(self, stop: threading.Event) -> None:
        debounce = Debouncer(self.config.repeat_after_s)
        period = 1.0 / self.config.fps
        while not stop.is_set():
            if self._capture is None:
                capture = self._cv2.VideoCapture(self.config.device_index)
                if not capture.isOpened():
                    self.last_error = f"camera {self.config.device_index} cannot be opened"
                    self._set_present(False)
                    stop.wait(self.reopen_s)
                    continue
                capture.set(self._cv2.CAP_PROP_FRAME_WIDTH, FRAME_SIZE[0])
                capture.set(self._cv2.CAP_PROP_FRAME_HEIGHT, FRAME_SIZE[1])
                self._capture, self.last_error = capture, None
                self._set_present(True)
            ok, bgr = self._capture.read()
            if not ok:
                self._capture.release()
                self._capture = None
                self._set_present(False)
                continue
            seen_at = self.now()
            grey = Image.fromarray(self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2GRAY))
            self._report(self._decode(grey), debounce, seen_at)
            stop.wait(period)
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._set_present(False)
