"""The real-camera backend's capture loop, with a stand-in for OpenCV (no camera and no OpenCV here):
open failures, frames decoded by the real decoder, a camera that disappears and comes back."""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Iterator

import pytest
from PIL import Image

from drivers.scanner import ScannerConfig, ScanResult, V4l2Camera
from drivers.scanner.camera import camera_frame

from .conftest import segno_image, wait_for


class FakeCapture:
    """cv2.VideoCapture as seen by the loop: isOpened, set, read -> (ok, frame), release."""

    def __init__(self, world: FakeCameraWorld) -> None:
        self.world = world
        self.opened = world.plugged
        world.opens += 1

    def isOpened(self) -> bool:
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        return True

    def read(self) -> tuple[bool, Image.Image | None]:
        if not self.world.plugged:
            return False, None
        return True, self.world.scene

    def release(self) -> None:
        self.world.releases += 1


class GreyMat(bytearray):
    """What cv2.cvtColor returns for a grey frame, as far as PIL's fromarray looks: a buffer with an
    array interface (numpy is not installed here)."""

    def __init__(self, image: Image.Image) -> None:
        super().__init__(image.convert("L").tobytes())
        self.__array_interface__ = {"shape": (image.height, image.width), "typestr": "|u1", "version": 3}


class FakeCameraWorld:
    def __init__(self) -> None:
        self.plugged = False
        self.scene = Image.new("RGB", (1280, 720), (120, 120, 120))
        self.opens = 0
        self.releases = 0

    def module(self) -> types.ModuleType:
        cv2 = types.ModuleType("cv2")
        cv2.VideoCapture = lambda index: FakeCapture(self)  # type: ignore[attr-defined]
        cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT = 3, 4  # type: ignore[attr-defined]
        cv2.COLOR_BGR2GRAY = 6  # type: ignore[attr-defined]
        cv2.cvtColor = lambda frame, code: GreyMat(frame)  # type: ignore[attr-defined]
        return cv2


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCameraWorld]:
    world = FakeCameraWorld()
    monkeypatch.setitem(sys.modules, "cv2", world.module())
    yield world


def test_capture_loop_reopens_and_decodes(world: FakeCameraWorld) -> None:
    camera = V4l2Camera(ScannerConfig(backend="camera", fps=60, repeat_after_s=0.2))
    camera.reopen_s = 0.05
    got: list[ScanResult] = []
    presence: list[bool] = []
    camera.start(got.append, presence.append)
    try:
        assert wait_for(lambda: world.opens >= 1)
        assert not camera.present()
        assert "cannot be opened" in (camera.self_test()["last_error"] or "")
        world.plugged = True
        assert wait_for(camera.present)
        world.scene = camera_frame(segno_image("Mã hồ sơ: 000.00.10.H12-210901-0001")).convert("RGB")
        assert wait_for(lambda: len(got) == 1)
        assert got[0].text == "Mã hồ sơ: 000.00.10.H12-210901-0001" and got[0].source == "camera"
        threading.Event().wait(0.1)
        assert len(got) == 1  # still in view: reported once although decoded every frame
        assert camera.frames_decoded > 2
        world.plugged = False  # USB camera pulled out
        assert wait_for(lambda: not camera.present())
        world.plugged = True
        assert wait_for(camera.present)
        assert wait_for(lambda: presence[-3:] == [True, False, True]), presence  # told from its own thread
        assert camera.callback_errors == 0
    finally:
        camera.stop()
    assert world.releases >= 1
