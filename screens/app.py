"""The Kivy application: one window, the frame from ``kv/kiosk.kv``, a screen per flow.

The app only renders ``KioskCore`` state and forwards taps. Device and network work never runs here:
the core's worker lanes do it and ``core.pump`` (on the Kivy clock) brings results back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.modalview import ModalView
from kivy.uix.screenmanager import NoTransition, ScreenManager

from kiosk.core import ATTRACT, HOME, KioskCore
from kiosk.i18n import Translator, catalog
from kiosk.numbering import NumberingStatus
from kiosk.voice import VoiceGuide
from screens.cli import FIRST_FRAME_MESSAGE
from screens.views import SCREENS, FlowScreen
from screens.visit_views import VISIT_SCREENS
from screens.widgets import GREEN, WARM_PANEL, BigButton, Text

log = logging.getLogger(__name__)

KV_DIR = Path(__file__).with_name("kv")
#: seconds of pressing the center's name that open technician mode (hidden from citizens)
TECHNICIAN_LONG_PRESS_S = 3.0


#: (flow, state) where the footer's "Quay lại" is a step back inside the flow, not out of it
STEP_BACK = {
    ("rating", "details"),
    ("delivery", "consent"),
    ("delivery", "phone"),
    ("delivery", "confirm"),
    ("feedback", "text"),
    ("feedback", "phone"),
}


class CenterName(Label):
    """The header's center name; a long press opens the technician PIN pad."""

    def on_touch_down(self, touch: Any) -> bool:
        if self.collide_point(*touch.pos):
            app = App.get_running_app()
            touch.ud["technician"] = Clock.schedule_once(
                lambda _dt: app.start("technician"), TECHNICIAN_LONG_PRESS_S
            )
            return True
        return bool(super().on_touch_down(touch))

    def on_touch_up(self, touch: Any) -> bool:
        event = touch.ud.pop("technician", None)
        if event is not None:
            event.cancel()
        return bool(super().on_touch_up(touch))


class KioskRoot(BoxLayout):
    pass


class KioskApp(App):
    u = NumericProperty(0.5)  # window height / design height
    language = StringProperty("vi")
    center_name = StringProperty("")
    clock_text = StringProperty("")
    notice_text = StringProperty("")
    show_footer = BooleanProperty(False)
    large_text = BooleanProperty(False)
    voice_on = BooleanProperty(False)

    def __init__(
        self,
        core: KioskCore,
        *,
        design_size: tuple[int, int] = (1080, 1920),
        on_stop_hooks: list[Callable[[], None]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.title = "Một Cửa Kiosk"
        self.core = core
        self.design_size = design_size
        self.center_name = core.config.kiosk.center_name
        self.language = core.language
        self._translator = Translator(core.language)
        self._on_stop_hooks = on_stop_hooks or []
        self._intervals: list[Any] = []  # Kivy ClockEvents of build(), cancelled in on_stop
        #: set by the embedding code: device states, totals and numbering for the technician screen
        self.device_states: Callable[[], dict[str, str]] = lambda: {}
        self.totals: Callable[[], dict[str, int]] = lambda: {"tickets": 0, "ratings": 0, "lookups": 0}
        self.numbering: Callable[[], NumberingStatus] = lambda: NumberingStatus("local")
        self._rendered: tuple[str, str, str] | None = None
        #: the spoken guidance; the embedding code may give one with its own speaker (tests)
        self.voice: VoiceGuide | None = None
        self._idle_view: ModalView | None = None
        self._idle_text: Text | None = None

    # -- building --------------------------------------------------------------------------------
    def build(self) -> KioskRoot:
        Builder.load_file(str(KV_DIR / "kiosk.kv"))
        self._fit()
        Window.bind(size=lambda *_: self._fit())
        Window.bind(on_touch_down=lambda *_: self.core.touch())
        root = KioskRoot()
        manager: ScreenManager = root.ids.screens
        manager.transition = NoTransition()
        for name, cls in {**SCREENS, **VISIT_SCREENS}.items():
            manager.add_widget(cls(name=name))
        if self.voice is None:
            from drivers.voice import Speaker

            self.voice = VoiceGuide(Speaker(), self.core.submit)
        self.core.subscribe(self.refresh)
        # cancelled in on_stop: a tick after the app stopped would evaluate kv rules bound to ``app``,
        # which no longer resolves (seen: the 1 s clock firing while a test harness shut the window)
        self._intervals = [
            Clock.schedule_interval(self.core.pump, 0.05),
            Clock.schedule_interval(self._show_idle_warning, 0.25),
            Clock.schedule_interval(self.core.tick, 0.5),
            Clock.schedule_interval(self._tick_clock, 1.0),
        ]
        self._tick_clock()
        self.root = root
        self.refresh()
        # Scheduled callbacks run after the frame is drawn: this marks the first interactive frame
        # (bench/kiosk_bench.py measures cold start up to this line).
        Clock.schedule_once(lambda _dt: log.info(FIRST_FRAME_MESSAGE), 0)
        return root

    def _fit(self) -> None:
        self.u = Window.height / self.design_size[1]

    def _tick_clock(self, *_: Any) -> None:
        self.clock_text = self.core.now().strftime("%H:%M")

    def on_stop(self) -> None:
        for event in self._intervals:
            event.cancel()
        for hook in self._on_stop_hooks:
            try:
                hook()
            except Exception:
                log.exception("stop hook failed")

    # -- translation -----------------------------------------------------------------------------
    def tr(self, key: str, **values: Any) -> str:
        return self._translator(key, **values)

    def tr_text(self, key: str, language: str) -> str:
        """kv binding helper: re-evaluated when ``language`` changes."""
        return Translator(language)(key)

    def has_text(self, key: str) -> bool:
        return key in catalog(self.language)

    # -- rendering -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Draw the core's current screen (called by the core after every change)."""
        core = self.core
        if core.language != self.language:
            self.language = core.language
            self._translator = Translator(core.language)
        self.notice_text = core.notice.get(self.language, "")
        self.large_text = core.large_text
        self.voice_on = core.voice_on
        self.show_footer = core.screen not in (ATTRACT, HOME, "out_of_service") and not self._full_screen()
        root = self.root
        if root is None:
            return
        manager: ScreenManager = root.ids.screens
        # The idle home is the home: the same screen, so the first tap reaches its buttons.
        name = HOME if core.screen == ATTRACT else core.screen
        switched = manager.current != name
        if switched:
            previous = manager.current_screen
            manager.current = name
            if isinstance(previous, FlowScreen):
                # A screen left behind keeps its widgets (and a citizen's name) in memory: drop them.
                previous.clear()
        screen = manager.get_screen(name)
        assert isinstance(screen, FlowScreen)
        if switched:
            # Each screen keeps its scroll position: without this the technician menu opened where the
            # last technician left it (at "Thoát", below the devices and the numbering).
            screen.ids.scroll.scroll_y = 1
        try:
            screen.render(self)
        except Exception:
            log.exception("rendering %s failed", core.screen)
            if core.screen != HOME:
                core.go_home()
            return
        if self.voice is not None:
            self.voice.on_change(core)

    def _full_screen(self) -> bool:
        """End screens that carry their own one button (or none): no Quay lại that invites a second go."""
        flow = self.core.flow
        state = flow.state if flow is not None else None
        return (self.core.screen, state) in (
            ("ticket", "done"),
            ("ticket", "printing"),
            ("identify", "done"),
            ("identify", "reading"),
            ("rating", "thanks"),
            ("rating", "not_counted"),
            ("rating", "sending"),
            ("appointment", "done"),
            ("appointment", "printing"),
        )

    def _show_idle_warning(self, *_: Any) -> None:
        """The "Tự động về trang chủ sau 20 giây" warning over the screen, with "Tiếp tục"."""
        seconds = self.core.idle_warning
        if seconds is None:
            if self._idle_view is not None:
                self._idle_view.dismiss()
                self._idle_view = None
            return
        text = self.tr("common.idle_warning", seconds=seconds)
        if self._idle_view is None:
            view = ModalView(size_hint=(0.86, None), height=self.u * 620, auto_dismiss=False)
            view.background = ""
            view.background_color = WARM_PANEL
            box = BoxLayout(orientation="vertical", padding=self.u * 40, spacing=self.u * 30)
            self._idle_text = Text(text, size=52, bold=True)
            box.add_widget(self._idle_text)
            box.add_widget(Text(self.tr("common.idle_question"), size=44))
            box.add_widget(BigButton(self.tr("common.continue"), self.core.touch, color=GREEN, size=56))
            view.add_widget(box)
            view.open(animation=False)
            self._idle_view = view
        elif self._idle_text is not None:
            self._idle_text.text = text

    # -- taps (kv and screens call these) ----------------------------------------------------------
    def start(self, flow: str, **args: Any) -> None:
        """Open a flow; delivery and payment take the dossier's ``status=`` (docs/visit.md)."""
        self.core.start(flow, **args)

    def after_draw(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the frame being built is on the screen (the fee's QR "shown")."""
        Clock.schedule_once(lambda _dt: action(), 0)

    def act(self, action: str, **values: Any) -> None:
        self.core.act(action, **values)

    def home(self) -> None:
        self.core.go_home()

    def finish(self) -> None:
        """ "Hoàn tất": the visit is over (a ticket in hand); the next citizen finds the home."""
        self.core.end_session("finished")

    def quick_ticket(self, service_code: str, priority: bool = False) -> None:
        self.core.start_ticket(service_code, priority=priority)

    def priority_ticket(self) -> None:
        self.core.start("ticket")
        self.core.act("set_priority", on=True)

    def id_card_ticket(self) -> None:
        self.core.start("ticket")
        self.core.start("identify")

    def toggle_voice(self) -> None:
        self.core.toggle_voice()

    def toggle_large_text(self) -> None:
        self.core.toggle_large_text()

    def back(self) -> None:
        flow = self.core.flow
        if flow is not None and (flow.name, flow.state) in STEP_BACK:
            self.core.act("decline" if flow.state == "consent" else "back")
        elif len(self.core.flows) > 1:
            self.core.close_flow()
        else:
            self.core.go_home()

    def toggle_language(self) -> None:
        self.core.set_language("en" if self.core.language == "vi" else "vi")

    def screenshot(self, path: Path) -> Path:
        """Save exactly what the window shows now as a PNG (technician command and tests)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        assert self.root is not None
        self.root.export_to_png(str(path))
        return path
