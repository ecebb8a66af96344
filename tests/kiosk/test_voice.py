"""Spoken guidance, offline (issue 14): every prompt of both languages is synthesized by the real
espeak-ng into audio that is not silence, no prompt can carry personal data, and the guide says a
screen's prompt only while voice is on (the chime when the card is read, always)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from common.journal import EventJournal
from drivers.voice import Speaker, VoiceConfig, chime_wav, rms
from kiosk.config import ConfigHolder
from kiosk.core import KioskCore, Route
from kiosk.flows.identify import ReadCard
from kiosk.i18n import catalog
from kiosk.session import Identity
from kiosk.voice import PROMPTS, UnsafePrompt, VoiceGuide, all_prompts, check_prompt, prompt_key
from tests.conftest import demo_config

DEMO_NAMES = ("Nguyễn Văn An", "Trần Thị Bích Ngọc", "Lê Hoàng Nam", "Vũ Thị Hồng Nhung", "Phạm Thu Hà")


@pytest.mark.parametrize("language", ["vi", "en"])
def test_every_prompt_is_audio_offline_and_not_silence(language: str) -> None:
    speaker = Speaker()
    prompts = all_prompts(language)
    assert set(PROMPTS.values()) <= set(prompts) and len(prompts) >= 10
    for key, text in prompts.items():
        seconds, level = rms(speaker.synthesize(check_prompt(text), language))
        assert seconds > 0.5, f"{key}: {seconds:.2f} s of audio"
        assert level > 0.01, f"{key}: silence (RMS {level:.4f})"


def test_no_prompt_can_carry_personal_data() -> None:
    for language in ("vi", "en"):
        for key, text in all_prompts(language).items():
            assert not re.search(r"\d|\{", text), key
            assert not any(name.split()[-1] in text for name in DEMO_NAMES), key
    with pytest.raises(UnsafePrompt):
        check_prompt("Kính chào {name}")
    with pytest.raises(UnsafePrompt):
        check_prompt("Số định danh 079190009876")
    seconds, level = rms(chime_wav())
    assert seconds == pytest.approx(0.5) and level > 0.1


def test_prompt_keys_of_screens() -> None:
    assert prompt_key("attract", None) == "voice.home"
    assert prompt_key("ticket", "done") == "voice.ticket_done"
    assert prompt_key("ticket", "done", printed=False) == "voice.ticket_not_printed"
    assert prompt_key("identify", "done") == "voice.take_card"
    assert prompt_key("technician", "menu") is None
    assert all(key in catalog("vi") for key in PROMPTS.values())
    assert prompt_key("payment", "show") == "voice.payment"
    assert prompt_key("feedback", "topic") == "voice.feedback"


def test_every_prompted_state_is_one_its_flow_has() -> None:
    """A renamed state would leave its screen silent: each (screen, state) is one of the flow's."""
    from kiosk.flows.appointment import AppointmentFlow
    from kiosk.flows.delivery import PostDeliveryFlow
    from kiosk.flows.feedback import FeedbackFlow
    from kiosk.flows.identify import IdentifyFlow
    from kiosk.flows.lookup import LookupFlow
    from kiosk.flows.payment import FeePaymentFlow
    from kiosk.flows.rating import RatingFlow
    from kiosk.flows.ticket import TicketFlow

    flows = {f.name: f for f in (AppointmentFlow, PostDeliveryFlow, FeedbackFlow, IdentifyFlow, LookupFlow,
                                 FeePaymentFlow, RatingFlow, TicketFlow)}
    for screen, state in PROMPTS:
        if screen == "home":
            continue
        states = {s for pair in flows[screen].TRANSITIONS for s in pair}
        assert state is None or state in states, f"{screen}: no state {state!r}"


class RecordingSpeaker(Speaker):
    """The real speaker with a player that writes what it would play to a file (no sound card here)."""

    def __init__(self, out: Path) -> None:
        super().__init__(VoiceConfig(player=("sh", "-c", f"cat >> {out}")))
        self.said: list[str] = []
        self.chimes = 0

    def say(self, text: str, language: str = "vi") -> None:
        self.said.append(text)
        super().say(text, language)

    def chime(self) -> None:
        self.chimes += 1
        super().chime()


@pytest.fixture
def core(tmp_path: Path) -> Iterator[KioskCore]:
    config = demo_config(tmp_path)
    journal = EventJournal(tmp_path / "events.sqlite")
    identity = Identity("Vũ Thị Hồng Nhung", date(1948, 3, 8), "genuine", True, sex="Nữ")
    routes: list[Route[Any]] = [Route(ReadCard, lambda _e: identity, "card")]
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    core = KioskCore(
        ConfigHolder(config),
        journal,
        routes,
        synchronous=True,
        wall_clock=lambda: datetime(2026, 12, 2, 9, tzinfo=zone),
    )
    yield core
    journal.close()


def test_guide_speaks_only_when_on_and_never_the_name(core: KioskCore, tmp_path: Path) -> None:
    out = tmp_path / "played.wav"
    speaker = RecordingSpeaker(out)
    guide = VoiceGuide(speaker, core.submit)
    listen: Callable[[], None] = lambda: guide.on_change(core)  # noqa: E731
    core.subscribe(listen)
    assert not core.voice_on  # off by default ([kiosk] voice = false)
    core.start("ticket")
    assert speaker.said == []
    core.toggle_voice()  # the citizen's speaker button
    assert speaker.said == [catalog("vi")["voice.ticket_choose"]]
    core.start("identify")
    core.scanned("079148000123|...|Vũ Thị Hồng Nhung|08031948|Nữ|...|01012021")
    core.pump()
    assert core.flow is not None and core.flow.state == "done"
    assert speaker.chimes == 1 and speaker.said[-1] == catalog("vi")["voice.take_card"]
    assert not any("Nhung" in text or re.search(r"\d", text) for text in speaker.said)
    speaker.stop()
    assert out.stat().st_size > 10_000  # the player got the audio
    core.end_session("test")
    assert not core.voice_on  # the next citizen starts with the center's setting
