"""Every pushable key, pushed by the center through the real agent on the real broker, takes effect in
the real window without a restart (issue: configuration that really reloads).

The window is the UI session's kiosk; the agent runs in this process on the kiosk's own data folder
(its control socket and journal), the broker is a real Mosquitto with TLS and the shipped ACL, and
the center is a peer with the fleet's certificate publishing ``config/1`` retained.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from contract.topics import KioskTopics
from edge_agent.agent import Agent, AgentSettings
from screens.harness import KioskDriver
from tests.agent.broker import Broker, Pki, running_broker, temporary_pki
from tests.agent.conftest import RunningAgent, agent_config
from tests.agent.peer import Peer

pytestmark = [pytest.mark.window, pytest.mark.broker]

# The English name is written as a hostile center could push it: it must be shown as written, not read
# as Kivy markup (a 300-pixel font, a colour).
HOSTILE_NAME = "Justice [size=300]&[/size] [color=ff0000]now[/color]"
JUSTICE = {"code": "TU_PHAP", "prefix": "G", "name_vi": "Tư pháp", "name_en": HOSTILE_NAME, "counters": ["9"],
           "opens": "00:00", "closes": "23:59"}
REASON = {"code": "which_counter", "label_vi": "Không biết đến quầy nào",
          "label_en": "Did not know which counter"}
OFFICER = {"id": "cb09", "name": "Trần Thị Bích Ngọc", "counter": "9", "photo": "ngoc.png"}


@pytest.fixture(scope="module")
def center() -> Iterator[tuple[Pki, Broker]]:
    with temporary_pki(("kiosk-demo-01", "fleet"), "uipki-") as pki, running_broker(pki, "uibrk-") as broker:
        yield pki, broker


@pytest.fixture
def pushed(kiosk: KioskDriver, center: tuple[Pki, Broker]) -> Iterator[tuple[Agent, Peer, KioskTopics]]:
    """The kiosk's agent connected to the center, and the center's peer; every push undone after."""
    pki, broker = center
    config = kiosk.core.config
    topics = KioskTopics(config.kiosk.center_id, config.kiosk.id)
    settings = AgentSettings(
        config.kiosk.id, config.kiosk.center_id, config.kiosk.data_dir,
        replace(agent_config(broker, pki, config.kiosk.id), heartbeat_s=30.0),
    )
    fleet = Peer(broker.service_port, str(pki.ca.cert_file), pki.client("fleet")).connect(
        topics.config_state, topics.health
    )
    agent = Agent(settings)
    try:
        with RunningAgent(agent):
            yield agent, fleet, topics
            fleet.publish(topics.config_set, b"", retain=True)  # the center takes its push back
            kiosk.wait_for(lambda: kiosk.core.config.kiosk.notice_en == "", what="the push cleared")
    finally:
        fleet.publish(topics.config_state, b"", retain=True)
        fleet.close()
        (config.kiosk.data_dir / "pushed-config.json").unlink(missing_ok=True)


def push(peer: Peer, topics: KioskTopics, version: int, config: dict[str, Any]) -> None:
    body = json.dumps({"schema": "config/1", "version": version, "config": config}, ensure_ascii=False)
    peer.publish(topics.config_set, body.encode(), retain=True)


def touch_home(kiosk: KioskDriver) -> None:
    """A new visit: a touch on the idle home outside any button (the header's center name)."""
    kiosk.core.end_session("test")
    kiosk.frames(3)
    name = kiosk.app.root.ids.center_name
    kiosk.tap_at(*name.to_window(*name.center))
    kiosk.wait_state("home")


def test_every_pushable_key_takes_effect_in_the_window(
    kiosk: KioskDriver, pushed: tuple[Agent, Peer, KioskTopics]
) -> None:
    agent, fleet, topics = pushed
    photos = kiosk.core.config.kiosk.data_dir / "officials"
    photos.mkdir(exist_ok=True)
    PILImage.new("RGB", (120, 160), (40, 90, 160)).save(photos / "ngoc.png")
    services = [
        {"code": s.code, "prefix": s.prefix, "name_vi": s.name_vi, "name_en": s.name_en,
         "counters": s.counters, "opens": s.opens, "closes": s.closes}
        for s in kiosk.core.config.services
    ]
    push(fleet, topics, 1, {
        "services": [*services, JUSTICE],
        "kiosk": {"language": "en", "idle_timeout_s": 8, "result_timeout_s": 3,
                  "notice_vi": "Hôm nay nghỉ trưa 11:30–13:00", "notice_en": "Lunch break 11:30–13:00"},
        "rating": {"levels": 5, "reasons": [REASON], "repeat_interval_s": 30, "officials": [OFFICER],
                   "show_official_photos": True},
        "agent": {"heartbeat_s": 5},
    })
    state = fleet.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 1, timeout=20)
    assert state.get("last_refused") is None and state["app_pending"] is False
    kiosk.wait_for(lambda: kiosk.core.config.version == 1, what="the app applied version 1")

    # kiosk.language: a new visit starts in the pushed language; kiosk.notice_en: shown on the home screen
    touch_home(kiosk)
    texts = kiosk.texts()
    assert "Take a number: choose a service area" in texts and "Lunch break 11:30–13:00" in " ".join(texts)
    kiosk.shot("push-home-english-notice")
    # a pushed name is text, never markup: shown as written (find() reads the text as drawn), and no
    # 300-pixel letters (read as markup, the button's text would be taller than 300 pixels)
    assert kiosk.find(HOSTILE_NAME).texture_size[1] < 300
    kiosk.tap("Tiếng Việt")  # kiosk.notice_vi: the same notice in Vietnamese
    assert "Hôm nay nghỉ trưa 11:30–13:00" in " ".join(kiosk.texts())

    # services: the new service area is offered on the home and prints its own numbers (one tap)
    kiosk.tap("Tư pháp")
    kiosk.wait_state("ticket", "done")
    assert kiosk.core.flow is not None and kiosk.core.flow.ticket.number.startswith("G")
    kiosk.shot("push-ticket-new-service")
    # kiosk.result_timeout_s: the result screen goes home after 3 s (the file says 12)
    done_at = time.monotonic()
    kiosk.wait_for(lambda: kiosk.core.screen == "attract", timeout=10, what="result timeout")
    assert 2.5 <= time.monotonic() - done_at < 8

    # kiosk.idle_timeout_s: an untouched visit ends after 8 s (the file says 60)
    touch_home(kiosk)
    idle_from = time.monotonic()
    kiosk.wait_for(lambda: kiosk.core.screen == "attract", timeout=20, what="idle timeout")
    assert 7 <= time.monotonic() - idle_from < 15

    # rating: five faces, the pushed reason, the pushed officer with the photo, the pushed repeat interval
    touch_home(kiosk)
    kiosk.tap("Rate our service")
    kiosk.wait_state("rating", "choose_level")
    texts = kiosk.texts()
    for face in ("Very satisfied", "Satisfied", "Neutral", "Dissatisfied", "Very dissatisfied"):
        assert any(t.split("\n")[0] == face for t in texts), face
    kiosk.shot("push-rating-five-levels")
    kiosk.tap("Very dissatisfied")
    kiosk.wait_state("rating", "details")  # the officer and the reasons come after the tap
    texts = kiosk.texts()
    assert any("Trần Thị Bích Ngọc" in t for t in texts)
    images = [w for w in kiosk.visible_widgets() if type(w).__name__ == "Image"]
    assert any(Path(str(w.source)) == photos / "ngoc.png" for w in images), "the officer's photo is shown"
    kiosk.tap("Did not know which counter")
    kiosk.shot("push-rating-pushed-reason-officer-photo")
    kiosk.tap("Send these details")
    kiosk.wait_state("rating", "thanks")  # the book follows the pushed scale: not "failed"
    assert kiosk.runtime.ratings.scale.size == 5
    rated = [e for e in kiosk.runtime.journal.pending(limit=100_000) if e.kind == "rating"]
    if rated:  # the agent may already have delivered and deleted it
        assert rated[-1].payload["scale"] == 5 and rated[-1].payload["reasons"] == ["which_counter"]
    time.sleep(6)  # past the file's 5 s, inside the pushed 30 s (the thanks screen went home by itself)
    touch_home(kiosk)
    kiosk.tap("Rate our service")
    kiosk.tap("Satisfied")
    kiosk.tap("Send these details")
    kiosk.wait_state("rating", "not_counted")

    # agent.heartbeat_s: heartbeats every 5 s (the agent's file says 30)
    assert agent.heartbeat_s == 5.0
    start = len(fleet.on(topics.health))
    assert fleet.wait(lambda: len(fleet.on(topics.health)) >= start + 2, 15)
