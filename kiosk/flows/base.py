"""Flows are plain state machines: taps and device results in, new state and effects out.

A flow never touches a device, a thread or a widget. It returns ``Effect`` objects; the core runs
them on workers and feeds the outcome back with ``on_result`` / ``on_failure``. Every allowed state
change is listed in ``TRANSITIONS`` so tests can check each one is reachable and nothing else is.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from common.errors import MotcuaError
from kiosk.config import ConfigHolder, KioskConfig
from kiosk.error_screens import screen_key
from kiosk.errors import FlowError
from kiosk.session import CitizenSession

log = logging.getLogger(__name__)

_effect_ids = itertools.count(1)


@dataclass(frozen=True)
class Effect:
    """Work a flow asks the core to do off the UI thread."""

    id: int = field(default_factory=lambda: next(_effect_ids), init=False, compare=False)


@dataclass
class FlowContext:
    settings: ConfigHolder
    session: CitizenSession
    now: Callable[[], datetime]  # aware local time; injected so tests control days and midnight

    @property
    def config(self) -> KioskConfig:
        """The current configuration: a push from the center applies to a flow already on screen."""
        return self.settings.current


class Flow:
    name: ClassVar[str]
    initial: ClassVar[str]
    TRANSITIONS: ClassVar[frozenset[tuple[str, str]]]
    #: states in which a device or the network is working: the idle timeout waits for them
    BUSY: ClassVar[frozenset[str]] = frozenset()
    #: end states that return home by themselves after the result timeout
    RESULT: ClassVar[frozenset[str]] = frozenset()
    #: whether a scanned code is routed to this flow (``on_scan``)
    accepts_scans: ClassVar[bool] = False
    #: runs on top of the flow that started it (delivery and payment on top of the look-up) and
    #: returns to it when closed, as the identify step does
    ON_TOP: ClassVar[bool] = False
    #: seconds an end state stays up before the kiosk moves on (None: the center's result_timeout_s)
    result_timeout_s: ClassVar[float | None] = None

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self.state = self.initial
        #: catalog key of the message for the current error state, if any
        self.error_key: str | None = None
        self.history: list[str] = [self.initial]

    def go(self, new_state: str) -> None:
        if (self.state, new_state) not in self.TRANSITIONS:
            raise FlowError(f"{self.name}: no transition {self.state} -> {new_state}")
        log.debug("%s: %s -> %s", self.name, self.state, new_state)
        self.state = new_state
        self.history.append(new_state)

    def act(self, action: str, **values: Any) -> list[Effect]:
        """A tap from the screen: calls ``do_<action>``; unknown actions are programming errors."""
        method = getattr(self, f"do_{action}", None)
        if method is None:
            raise FlowError(f"{self.name}: unknown action {action!r} in state {self.state}")
        result: list[Effect] = method(**values)
        return result

    def on_result(self, effect: Effect, result: Any) -> list[Effect]:
        raise FlowError(f"{self.name}: unexpected result for {type(effect).__name__}")

    def on_failure(self, effect: Effect, error: MotcuaError) -> list[Effect]:
        raise FlowError(f"{self.name}: unexpected failure of {type(effect).__name__}: {error.message}")

    def on_scan(self, text: str, source: str = "camera") -> list[Effect]:
        return []

    def on_leave(self) -> list[Effect]:
        """Work still owed when the citizen leaves (home, timeout): e.g. a rating not yet sent."""
        return []

    @property
    def busy(self) -> bool:
        return self.state in self.BUSY

    @property
    def finished(self) -> bool:
        return self.state in self.RESULT

    def fail(self, state: str, error: MotcuaError | str) -> None:
        self.error_key = error if isinstance(error, str) else screen_key(error)
        self.go(state)
