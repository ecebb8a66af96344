"""The kiosk's core: which screen is up, the citizen's session, flows, and the work they ask for.

Everything here runs on the UI thread except effect handlers, which run on per-device worker lanes
(one thread each, so a device is never driven by two threads). Workers never touch flows or widgets:
they put outcomes on a queue that ``pump()`` drains on the UI thread. Nothing here imports Kivy, so
the whole citizen journey is tested without a window.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from common.errors import MotcuaError
from common.journal import EventJournal
from common.privacy import safe_traceback
from contract.events import AppError, EventPayload, SessionEnded
from kiosk.config import ConfigHolder, KioskConfig
from kiosk.flows.base import Effect, Flow, FlowContext
from kiosk.flows.identify import IdentifyFlow
from kiosk.flows.lookup import LookupFlow
from kiosk.flows.rating import RatingFlow
from kiosk.flows.technician import PinGuard, TechnicianFlow
from kiosk.flows.ticket import TicketFlow
from kiosk.flows.visit import VISIT_FLOWS
from kiosk.session import CitizenSession

log = logging.getLogger(__name__)

#: screens that are not flows. ATTRACT is the idle home: the same screen as HOME (services, look-up,
#: rating, all one tap away) while nobody uses the kiosk; the first touch starts a session.
ATTRACT, HOME, OUT_OF_SERVICE = "attract", "home", "out_of_service"
#: seconds before the idle timeout that the "Tự động về trang chủ sau 20 giây" warning shows
IDLE_WARNING_S = 20.0

E = TypeVar("E", bound=Effect)
#: the lane of the journal: events are written (fsync) off the UI thread, in the order they happened
JOURNAL_LANE = "journal"


@dataclass(frozen=True)
class Outcome:
    flow: Flow
    effect: Effect
    result: Any = None
    error: MotcuaError | None = None
    crash: BaseException | None = None


@dataclass(frozen=True)
class Route(Generic[E]):
    """Which handler does an effect, and on which lane (worker thread: "printer", "card", ...)."""

    effect: type[E]
    handler: Callable[[E], Any]
    lane: str


class KioskCore:
    def __init__(
        self,
        config: ConfigHolder,
        journal: EventJournal,
        routes: Iterable[Route[Any]],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] | None = None,
        synchronous: bool = False,
    ) -> None:
        self.settings = config
        self.journal = journal
        self.routes: dict[type[Effect], Route[Any]] = {}
        self.set_routes(routes)
        self.clock = clock
        zone = ZoneInfo(config.current.kiosk.timezone)
        self.now: Callable[[], datetime] = wall_clock or (lambda: datetime.now(zone))
        #: run effects inline (tests of flows without threads); the app uses worker lanes
        self.synchronous = synchronous
        self.language: str = config.current.kiosk.language
        self.screen = ATTRACT
        self.session: CitizenSession | None = None
        self.flows: list[Flow] = []  # a stack: identify runs on top of the ticket flow
        self.out_of_service_reason: str | None = None
        self.notice = {"vi": config.current.kiosk.notice_vi, "en": config.current.kiosk.notice_en}
        #: the citizen's own choices for this visit (reset when it ends): spoken guidance, large text
        self.voice_on: bool = config.current.kiosk.voice
        self.large_text = False
        #: seconds left before the idle timeout while the warning is up, else None
        self.idle_warning: int | None = None
        config.subscribe(self._config_changed)
        self.pin_guard = PinGuard(clock=clock)
        self._last_touch = clock()
        self._state_since = clock()
        self._session_started = clock()
        self._outcomes: queue.Queue[Outcome] = queue.Queue()
        self._lanes: dict[str, ThreadPoolExecutor] = {}
        self._lanes_lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._scans: queue.Queue[tuple[str, str]] = queue.Queue()

    @property
    def config(self) -> KioskConfig:
        """The current configuration (it changes when the center pushes)."""
        return self.settings.current

    def set_routes(self, routes: Iterable[Route[Any]]) -> None:
        self.routes = {route.effect: route for route in routes}

    def _config_changed(self, old: KioskConfig, new: KioskConfig) -> None:
        """A pushed notice shows at once (the last of a push and a set_notice command wins)."""
        before = (old.kiosk.notice_vi, old.kiosk.notice_en)
        after = (new.kiosk.notice_vi, new.kiosk.notice_en)
        if after != before:
            self.notice = {"vi": after[0], "en": after[1] or after[0]}
        self.notify()

    # -- observers -----------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def notify(self) -> None:
        """Tell the screens the state changed (UI thread)."""
        for listener in list(self._listeners):
            try:
                listener()
            except Exception as exc:  # a broken screen must not stop the core
                # Where, never what: a widget's text may be a citizen's name.
                log.error("screen listener failed: %s", safe_traceback(exc))

    # -- navigation ----------------------------------------------------------------------------
    @property
    def flow(self) -> Flow | None:
        return self.flows[-1] if self.flows else None

    @property
    def last_touch(self) -> float:
        """When the screen was last touched (the core's clock): the self-test's touch step reads it."""
        return self._last_touch

    def touch(self) -> None:
        """Any tap: the citizen is still there."""
        self._last_touch = self.clock()
        self.idle_warning = None
        if self.screen == ATTRACT:
            self._begin_session()
            # No redraw: the idle home and the home look the same, and redrawing under the finger
            # would replace the button the citizen is pressing (one tap must reach it).
            self.screen = HOME

    def _begin_session(self) -> None:
        self.session = CitizenSession(language=self.language)
        self._session_started = self.clock()

    def end_session(self, reason: str) -> None:
        """Wipe everything personal and return to the attract screen."""
        if self.session is not None:
            self.session.wipe()
            duration = round(self.clock() - self._session_started, 1)
            self.session = None
            self.record(SessionEnded(reason, duration))
        self._leave_flows()
        self.language = self.config.kiosk.language
        self.voice_on = self.config.kiosk.voice
        self.large_text = False
        self.idle_warning = None
        self.screen = OUT_OF_SERVICE if self.out_of_service_reason else ATTRACT
        self.notify()

    def _leave_flows(self) -> None:
        """Drop every flow, running what each still owes (a rating tapped but not yet sent)."""
        flows, self.flows = list(self.flows), []
        for flow in reversed(flows):
            try:
                effects = flow.on_leave()
            except Exception as exc:
                log.error("leaving %s failed: %s", flow.name, safe_traceback(exc))
                continue
            for effect in effects:
                self._run(flow, effect)  # its outcome is dropped: the flow is gone

    def go_home(self) -> None:
        self._last_touch = self.clock()
        if self.out_of_service_reason:
            self.end_session("out_of_service")
            return
        # Leaving a flow ends its personal data too: an identified citizen who goes home starts over.
        if self.session is not None and self.session.identity is not None:
            self.session.wipe()
        self._leave_flows()
        if self.session is None:
            self._begin_session()
        self.screen = HOME
        self._state_since = self.clock()
        self.notify()

    def start(self, name: str, **args: Any) -> None:
        """Open a flow from the home screen (or the identify step on top of the ticket flow, delivery
        and payment on top of the look-up: ``args`` go to their constructor, e.g. ``status=``)."""
        self.touch()
        if self.out_of_service_reason and name != "technician":
            return
        if self.session is None:
            self._begin_session()
        assert self.session is not None
        ctx = FlowContext(self.settings, self.session, self.now)
        flow: Flow
        if name in VISIT_FLOWS:
            try:
                flow = VISIT_FLOWS[name](ctx, **args)
            except Exception as exc:  # a screen passing the wrong thing: a programming error
                self._crashed(exc)
                return
        elif name == "ticket":
            flow = TicketFlow(ctx)
        elif name == "lookup":
            flow = LookupFlow(ctx)
        elif name == "rating":
            flow = RatingFlow(ctx)
        elif name == "identify":
            flow = IdentifyFlow(ctx)
        elif name == "technician":
            flow = TechnicianFlow(ctx, self.pin_guard)
        else:
            raise ValueError(f"unknown flow {name!r}")  # a programming error: the screens name flows
        if name != "identify" and not flow.ON_TOP:
            self._leave_flows()
        self.flows.append(flow)
        self.screen = name
        self._state_since = self.clock()
        self.notify()

    def start_ticket(self, service_code: str, *, priority: bool = False) -> None:
        """One tap on a service of the home screen: the ticket flow opens and takes the number at once."""
        self.start("ticket")
        flow = self.flow
        if isinstance(flow, TicketFlow):
            if priority:
                flow.priority = True
            self.act("choose", code=service_code)

    def toggle_voice(self) -> None:
        """The citizen's speaker button: spoken guidance on or off for this visit."""
        self.touch()
        self.voice_on = not self.voice_on
        self.notify()

    def toggle_large_text(self) -> None:
        """The "Chữ lớn" button: larger text on every screen for this visit."""
        self.touch()
        self.large_text = not self.large_text
        self.notify()

    def close_flow(self) -> None:
        """Finish the top flow: back to the flow below it (identify → ticket) or home."""
        top = self.flows.pop()
        for effect in top.on_leave():
            self._run(top, effect)
        if self.flows:
            below = self.flows[-1]
            if isinstance(below, TicketFlow):
                below.refresh_identity()
            self.screen = below.name
            self._state_since = self.clock()
            self.notify()
        else:
            self.go_home()

    def set_language(self, language: str) -> None:
        self.touch()
        self.language = language
        if self.session is not None:
            self.session.language = language
        self.notify()

    # -- taps and device results -----------------------------------------------------------------
    def act(self, action: str, **values: Any) -> None:
        """A tap on a flow's screen."""
        self.touch()
        flow = self.flow
        if flow is None:
            return
        before = flow.state
        try:
            effects = flow.act(action, **values)
        except Exception as exc:
            self._crashed(exc)
            return
        self._after_step(flow, before, effects)

    def scanned(self, text: str, source: str = "camera") -> None:
        """A code from the camera or the line scanner (any thread); ``source``: camera | serial."""
        self._scans.put((text, source))

    def _after_step(self, flow: Flow, before: str, effects: list[Effect]) -> None:
        if flow.state != before:
            self._state_since = self.clock()
        for effect in effects:
            self._run(flow, effect)
        self.notify()

    def _run(self, flow: Flow, effect: Effect) -> None:
        route = self.routes.get(type(effect))
        if route is None:
            self._crashed(LookupError(f"no handler for {type(effect).__name__}"))
            return
        self.submit(route.lane, lambda: self._outcomes.put(self._execute(flow, effect, route)))

    def submit(self, lane: str, work: Callable[[], Any]) -> Future[Any]:
        """Run ``work`` on a device's lane (one thread per device, so a device never sees two callers)."""
        if self.synchronous:
            future: Future[Any] = Future()
            try:
                future.set_result(work())
            except BaseException as exc:
                future.set_exception(exc)
            return future
        with self._lanes_lock:
            executor = self._lanes.get(lane)
            if executor is None:
                executor = self._lanes[lane] = ThreadPoolExecutor(1, thread_name_prefix=f"lane-{lane}")
        return executor.submit(work)

    @staticmethod
    def _execute(flow: Flow, effect: Effect, route: Route[Any]) -> Outcome:
        try:
            return Outcome(flow, effect, result=route.handler(effect))
        except MotcuaError as exc:
            # Allowlisted fields only: the message may quote a card, a scan or a back end (a dossier
            # code the province system does not know). Device problems are logged by their handlers.
            log.warning("%s failed: %s (%s)", type(effect).__name__, type(exc).__name__, exc.code)
            return Outcome(flow, effect, error=exc)
        except Exception as exc:
            return Outcome(flow, effect, crash=exc)

    def pump(self, *_: Any) -> None:
        """Apply finished work and scans to the flows (UI thread; the app calls it on its clock)."""
        while True:
            try:
                outcome = self._outcomes.get_nowait()
            except queue.Empty:
                try:
                    text, source = self._scans.get_nowait()
                except queue.Empty:
                    return
                self._apply_scan(text, source)
            else:
                self._apply(outcome)

    def _apply_scan(self, text: str, source: str) -> None:
        flow = self.flow
        if flow is None or not flow.accepts_scans:
            return  # a code shown to the camera on a screen that does not ask for one
        self._last_touch = self.clock()
        before = flow.state
        try:
            effects = flow.on_scan(text, source)
        except Exception as exc:
            self._crashed(exc)
            return
        self._after_step(flow, before, effects)

    def _apply(self, outcome: Outcome) -> None:
        flow = outcome.flow
        if outcome.crash is not None:
            self._crashed(outcome.crash)
            return
        if flow not in self.flows:
            # The citizen left (or timed out) while the device worked: drop the result, and wipe it
            # if it holds personal data.
            wipe = getattr(outcome.result, "wipe", None)
            if callable(wipe):
                wipe()
            log.info("dropped late result of %s", type(outcome.effect).__name__)
            return
        before = flow.state
        try:
            if outcome.error is not None:
                effects = flow.on_failure(outcome.effect, outcome.error)
            else:
                effects = flow.on_result(outcome.effect, outcome.result)
        except Exception as exc:
            self._crashed(exc)
            return
        self._after_step(flow, before, effects)

    def _crashed(self, exc: BaseException) -> None:
        """An unexpected error: log where it happened, record it, and return the citizen home.

        The traceback's frames are logged, never the exception's message: hostile input (a card's QR
        held to the look-up camera) ends up in messages.
        """
        log.error("unexpected error, returning home: %s", safe_traceback(exc))
        self.record(AppError(type(exc).__name__, self.screen))
        self.go_home()

    # -- timeouts ------------------------------------------------------------------------------
    def tick(self, *_: Any) -> None:
        """Called every half second: idle and result timeouts."""
        now = self.clock()
        if self.screen in (ATTRACT, OUT_OF_SERVICE):
            return
        flow = self.flow
        if flow is not None and flow.busy:
            return  # a device is working; its own timeout ends the wait
        if flow is not None and flow.finished:
            wait = flow.result_timeout_s or self.config.kiosk.result_timeout_s
            # A touch on a result screen (a detail chosen) keeps it up a little longer.
            if now - max(self._state_since, self._last_touch) >= wait:
                if len(self.flows) > 1:
                    self.close_flow()
                else:
                    self.end_session("finished")
                return
        idle = self.config.kiosk.idle_timeout_s
        left = idle - (now - self._last_touch)
        if left <= 0:
            self.end_session("timeout")
            return
        # Warn while a flow is open (a name, a dossier, a half-typed code on screen); the window polls
        # this, so the countdown never redraws the screen under it.
        warn = min(IDLE_WARNING_S, idle / 2)
        self.idle_warning = max(1, math.ceil(left)) if self.flows and left <= warn else None

    # -- service mode, events ------------------------------------------------------------------
    def set_out_of_service(self, reason: str | None) -> None:
        self.out_of_service_reason = reason
        if reason is None:
            if self.screen == OUT_OF_SERVICE:
                self.screen = ATTRACT
        elif self.screen in (ATTRACT, HOME):
            self.end_session("out_of_service")
        self.notify()

    def record(self, payload: EventPayload) -> None:
        """Journal an event on the journal's lane: the fsync never holds up the screen."""

        def write() -> None:
            try:
                self.journal.append(payload)
            except MotcuaError as exc:  # the journal failing must not take the citizen's screen down
                log.error("event %s not recorded: %s", payload.kind, exc.message)

        self.submit(JOURNAL_LANE, write)

    def shutdown(self) -> None:
        """Stop the lanes; events already handed to the journal's lane are written first."""
        journal = self._lanes.pop(JOURNAL_LANE, None)
        if journal is not None:
            journal.shutdown(wait=True)
        for lane in self._lanes.values():
            lane.shutdown(wait=False, cancel_futures=True)
        self._lanes.clear()
