"""Spoken guidance: which prompt each screen says, and the rule that none ever holds personal data.

Prompts are fixed catalog texts (``[voice]`` in the catalogs) without placeholders and without digits,
so no name, ID number, date of birth or dossier code can ever be spoken aloud, whatever the screen
shows. The sound itself is the driver's (``drivers.voice``, espeak-ng offline); it runs on its own
lane so the screen never waits for it. Off by default (``[kiosk] voice``); the citizen's speaker
button turns it on or off for the visit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiosk.i18n import Translator, catalog, placeholders

if TYPE_CHECKING:
    from drivers.voice import Speaker
    from kiosk.core import KioskCore

log = logging.getLogger(__name__)

VOICE_LANE = "voice"

#: (screen, flow state) -> the prompt's catalog key; state None: any state of that screen
PROMPTS: dict[tuple[str, str | None], str] = {
    ("home", None): "voice.home",
    ("ticket", "choose_service"): "voice.ticket_choose",
    ("ticket", "done"): "voice.ticket_done",
    ("ticket", "failed"): "voice.error",
    ("identify", "scan_qr"): "voice.identify",
    ("identify", "done"): "voice.take_card",
    ("identify", "failed"): "voice.error",
    ("lookup", "scan"): "voice.lookup",
    ("lookup", "found"): "voice.lookup_found",
    ("lookup", "not_found"): "voice.error",
    ("lookup", "unavailable"): "voice.error",
    ("rating", "choose_level"): "voice.rating",
    ("rating", "thanks"): "voice.thanks",
    # the rest of the visit (docs/visit.md)
    ("payment", "show"): "voice.payment",
    ("payment", "unavailable"): "voice.error",
    ("delivery", "address"): "voice.delivery_address",
    ("delivery", "phone"): "voice.delivery_phone",
    ("delivery", "done"): "voice.delivery_done",
    ("delivery", "refused"): "voice.error",
    ("delivery", "unavailable"): "voice.error",
    ("appointment", "scan"): "voice.appointment",
    ("appointment", "done"): "voice.ticket_done",
    ("appointment", "too_early"): "voice.error",
    ("appointment", "too_late"): "voice.error",
    ("appointment", "not_found"): "voice.error",
    ("appointment", "unavailable"): "voice.error",
    ("appointment", "failed"): "voice.error",
    ("feedback", "topic"): "voice.feedback",
    ("feedback", "thanks"): "voice.thanks",
    ("feedback", "refused"): "voice.error",
    ("feedback", "unavailable"): "voice.error",
}

_DIGIT = re.compile(r"\d")


class UnsafePrompt(ValueError):
    """A prompt that could carry personal data (a placeholder or a digit): never spoken."""


def check_prompt(text: str) -> str:
    """``text`` if it may be spoken, else UnsafePrompt: no placeholder, no digit."""
    if placeholders(text) or "{" in text or _DIGIT.search(text):
        raise UnsafePrompt("a voice prompt must be a fixed text without digits or placeholders")
    return text


def prompt_key(screen: str, state: str | None, *, printed: bool = True) -> str | None:
    """The prompt of a screen in a state, or None when it says nothing."""
    if screen == "attract":
        screen = "home"
    if screen == "ticket" and state == "done" and not printed:
        return "voice.ticket_not_printed"
    return PROMPTS.get((screen, state)) or PROMPTS.get((screen, None))


def all_prompts(language: str) -> dict[str, str]:
    """Every prompt of a language (the test synthesizes each one)."""
    return {key: text for key, text in catalog(language).items() if key.startswith("voice.")}


class VoiceGuide:
    """Says each screen's prompt once when the screen (or its state) changes, if voice is on.

    ``submit(lane, work)`` runs work off the UI thread (the core's lanes)."""

    def __init__(self, speaker: Speaker, submit: Callable[[str, Callable[[], Any]], Any]) -> None:
        self.speaker = speaker
        self._submit = submit
        self._last: tuple[str, str | None, str, bool] | None = None

    def on_change(self, core: KioskCore) -> None:
        flow = core.flow
        state = flow.state if flow is not None else None
        printed = getattr(getattr(flow, "ticket", None), "printed", True)
        key = prompt_key(core.screen, state, printed=printed)
        where = (core.screen.replace("attract", "home"), state, core.language, core.voice_on)
        if where == self._last:
            return
        self._last = where
        if core.screen == "identify" and state == "done":
            self._run(self.speaker.chime)  # the card is read: a sound, voice or not
        if key is None or not core.voice_on or core.session is None:
            if not core.voice_on:
                self._run(self.speaker.stop)
            return
        try:
            text = check_prompt(Translator(core.language)(key))
        except UnsafePrompt:
            log.error("voice prompt %s refused: not a fixed text", key)
            return
        language = core.language
        self._run(lambda: self.speaker.say(text, language))

    def _run(self, work: Callable[[], None]) -> None:
        def guarded() -> None:
            from common.errors import MotcuaError

            try:
                work()
            except MotcuaError as exc:  # no sound device, no espeak-ng: the screen still says it all
                log.warning("voice: %s", exc.message)

        self._submit(VOICE_LANE, guarded)
