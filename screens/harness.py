"""Drive the kiosk's real window from code: a private Xvfb, real touch events, screenshots.

Used by the UI tests, the benchmarks and technicians who want pictures of every screen. Kivy has one
window per process, so ``boot_kiosk`` is called once per process.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MARKUP = re.compile(r"\[/?[a-z]+(=[^\]]*)?\]")
CATALOG_KEY = re.compile(r"^[a-z_]+\.[a-z_0-9]+$")


def shown_text(text: str) -> str:
    """A label's text as the citizen reads it: markup tags gone, escaped characters back (``esc``)."""
    return MARKUP.sub("", text).replace("&bl;", "[").replace("&br;", "]").replace("&amp;", "&")


@contextmanager
def xvfb(width: int = 800, height: int = 1200) -> Iterator[str]:
    """A private X server for the duration of the block; yields its DISPLAY.

    Xvfb picks a free display number itself (``-displayfd``) and writes it once it accepts clients:
    two test processes starting X servers at once never race for one number.
    """
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd, "rb") as announced:
            ready, _, _ = select.select([announced], [], [], 10)
            number = announced.readline().strip() if ready else b""
        if not number.isdigit():
            raise RuntimeError("Xvfb did not start")
        yield f":{int(number)}"
    finally:
        proc.terminate()
        proc.wait(5)


class KioskDriver:
    def __init__(self, app: Any, runtime: Any, screens_dir: Path) -> None:
        from kivy.base import EventLoop

        self.app = app
        self.runtime = runtime
        self.core = runtime.core
        self.loop = EventLoop
        self.shots: list[Path] = []
        #: touches the citizen made (tap, tap_widget, tap_at): what the tests count per flow
        self.taps = 0
        self.screens_dir = screens_dir
        self._fonts: dict[str, set[int]] = {}

    # -- time ----------------------------------------------------------------------------------------
    def frames(self, count: int = 3) -> None:
        for _ in range(count):
            self.loop.idle()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}; screen={self.core.screen}, "
                    f"state={getattr(self.core.flow, 'state', None)}, texts={self.texts()[:12]}"
                )
            self.loop.idle()
            time.sleep(0.005)
        self.frames(2)

    def wait_state(self, screen: str, state: str | None = None, timeout: float = 15.0) -> None:
        def reached() -> bool:
            flow = self.core.flow
            return self.core.screen == screen and (
                state is None or (flow is not None and flow.state == state)
            )

        self.wait_for(reached, timeout, f"{screen}/{state}")

    # -- looking ---------------------------------------------------------------------------------------
    def visible_widgets(self) -> list[Any]:
        manager = self.app.root.ids.screens
        current = manager.current_screen
        roots = [self.app.root.ids.header, self.app.root.ids.toolbar, self.app.root.ids.notice, current]
        if self.app.show_footer:
            roots.append(self.app.root.ids.footer)
        return [w for root in roots for w in root.walk(restrict=True) if getattr(w, "opacity", 1) > 0]

    def texts(self) -> list[str]:
        return [
            shown_text(w.text)
            for w in self.visible_widgets()
            if isinstance(getattr(w, "text", None), str) and w.text.strip()
        ]

    def find(self, text: str, *, any_state: bool = False) -> Any:
        """The button whose first line is ``text``, else one containing it (enabled unless ``any_state``)."""
        from kivy.uix.button import Button

        buttons = [
            w for w in self.visible_widgets() if isinstance(w, Button) and (any_state or not w.disabled)
        ]
        candidates = [w for w in buttons if shown_text(w.text).split("\n")[0] == text]
        if not candidates:
            candidates = [w for w in buttons if text in shown_text(w.text)]
        if not candidates:
            raise AssertionError(f"no button {text!r} on screen {self.core.screen}: {self.texts()}")
        return candidates[0]

    # -- touching --------------------------------------------------------------------------------------
    def tap_widget(self, widget: Any) -> None:
        from kivy.tests.common import UnitTestTouch
        from kivy.uix.scrollview import ScrollView

        parent = widget.parent
        # Stop at the app's root: above it is the Window, whose parent is itself.
        while parent is not None and parent is not self.app.root and not isinstance(parent, ScrollView):
            if parent.parent is parent:  # the Window (a modal view sits right on it)
                break
            parent = parent.parent
        if isinstance(parent, ScrollView):
            parent.scroll_to(widget, padding=10, animate=False)
            self.frames(2)
        x, y = widget.to_window(*widget.center)
        self.taps += 1
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        self.frames(1)
        touch.touch_up()
        self.frames(3)

    def tap(self, text: str) -> None:
        self.frames(2)  # let pending redraws land first, or the touch may hit a widget being replaced
        self.tap_widget(self.find(text))

    def tap_at(self, x: float, y: float, hold_s: float = 0.0) -> None:
        from kivy.tests.common import UnitTestTouch

        self.taps += 1
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        end = time.monotonic() + hold_s
        while time.monotonic() < end:
            self.loop.idle()
            time.sleep(0.01)
        touch.touch_up()
        self.frames(3)

    # -- checking and recording ------------------------------------------------------------------------------
    def _cmap(self, bold: bool) -> set[int]:
        import kivy
        from fontTools.ttLib import TTFont

        name = "Roboto-Bold.ttf" if bold else "Roboto-Regular.ttf"
        if name not in self._fonts:
            path = Path(kivy.__file__).parent / "data" / "fonts" / name
            self._fonts[name] = set(TTFont(str(path)).getBestCmap())
        return self._fonts[name]

    def check_screen(self) -> None:
        from kiosk.i18n import MISSING_MARK

        missing_mark = MISSING_MARK.format("")[0]
        for widget in self.visible_widgets():
            text = getattr(widget, "text", None)
            if not isinstance(text, str) or not text.strip():
                continue
            shown = shown_text(text)
            assert missing_mark not in shown, f"untranslated key on screen {self.core.screen}: {shown!r}"
            assert not CATALOG_KEY.match(shown.strip()), f"catalog key shown as text: {shown!r}"
            assert getattr(widget, "font_name", "Roboto") == "Roboto", "screens draw with Roboto only"
            cmap = self._cmap(bool(getattr(widget, "bold", False)))
            missing = sorted({c for c in shown if c not in "\n\t" and ord(c) not in cmap})
            assert not missing, f"no glyph for {missing} in {shown!r} (screen {self.core.screen})"

    def shot(self, name: str) -> Path:
        from kivy.core.window import Window

        self.frames(3)
        self.check_screen()
        self.screens_dir.mkdir(parents=True, exist_ok=True)
        target = self.screens_dir / f"{len(self.shots) + 1:02d}-{name}.png"
        produced = Window.screenshot(name=str(self.screens_dir / "window.png"))
        shutil.move(produced, target)
        self.shots.append(target)
        return target

    def reset(self) -> None:
        """Back to the idle home with no session, devices healthy, the tap count at 0."""
        sim = self.runtime.simulator
        sim.printer({"paper": "ok", "cover_open": False, "online": True})
        sim.scanner({"present": True})
        if sim.reader is not None:
            sim.reader.plugged = True
        sim.citizen({"remove": True})
        self.core.set_out_of_service(None)
        self.runtime.poll_devices()  # the screens show device states: make them current
        self.core.end_session("test")
        self.frames(3)
        self.taps = 0


def boot_kiosk(config: Any, display: str, screens_dir: Path) -> KioskDriver:
    """Open the kiosk window for ``config`` on ``display``; frames are then driven by the caller."""
    data_dir = config.kiosk.data_dir
    os.environ["DISPLAY"] = display
    os.environ["KIVY_HOME"] = str(data_dir / "kivy")
    os.environ["KIVY_NO_ARGS"] = "1"
    os.environ["KIVY_NO_CONSOLELOG"] = "1"
    os.environ["KIVY_LOG_MODE"] = "PYTHON"
    os.environ["MESA_SHADER_CACHE_DIR"] = str(data_dir / "mesa")
    from screens.cli import prepare_kivy

    prepare_kivy(config.display, data_dir)
    from kivy.clock import Clock

    from kiosk.runtime import KioskRuntime
    from screens.app import KioskApp

    runtime = KioskRuntime(config)
    app = KioskApp(runtime.core, design_size=(config.display.width, config.display.height))
    app.device_states = runtime.handlers.device_states
    app.totals = runtime.totals
    app.numbering = runtime.numbering
    runtime.screenshot = lambda: app.screenshot(data_dir / "shot.png")
    runtime.start(ui_call=lambda fn: Clock.schedule_once(lambda _dt: fn(), 0))
    app._run_prepare()  # builds the app and opens the window without entering Kivy's loop
    driver = KioskDriver(app, runtime, screens_dir)
    driver.frames(5)
    return driver


def shut_down(driver: KioskDriver) -> None:
    driver.app.stop()
    driver.frames(2)
    driver.runtime.stop()
