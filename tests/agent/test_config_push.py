"""Configuration pushed by the center (retained, versioned, center-wide and per kiosk)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from contract.config import ServiceArea
from contract.schema import parse_dataclass, to_data
from contract.topics import KioskTopics
from tests.agent.conftest import CENTER, wait_until

pytestmark = pytest.mark.broker

CENTER_TOPIC = f"motcua/v1/{CENTER}/_center/config/set"


def push(peer, topic: str, version: int, config: dict) -> None:
    peer.publish(topic, json.dumps({"schema": "config/1", "version": version, "config": config}), retain=True)


@pytest.fixture
def kiosk(request, peer_factory):
    """A kiosk id of its own per test: retained config must not leak into other tests."""
    kiosk_id = f"kiosk-cfg-{request.node.name.split('[')[0][-20:].replace('_', '-')}".lower()
    topics = KioskTopics(CENTER, kiosk_id)
    peer = peer_factory(topics.config_state)
    yield kiosk_id, topics, peer
    peer.publish(topics.config_set, b"", retain=True)  # clear retained messages
    peer.publish(topics.config_state, b"", retain=True)


SERVICES: list[dict[str, Any]] = [
    {"code": "HOTICH", "prefix": "A", "name_vi": "Hộ tịch", "name_en": "Civil status"},
    {"code": "DATDAI", "prefix": "B", "name_vi": "Đất đai", "name_en": "Land", "counters": ["3", "4"]},
]


def test_push_is_validated_applied_without_restart_and_reported(kiosk, make_agent, fake_app, data_dir):
    kiosk_id, topics, peer = kiosk
    with make_agent(kiosk_id) as agent:
        push(
            peer,
            topics.config_set,
            1,
            {"kiosk": {"idle_timeout_s": 90, "notice_vi": "Nghỉ trưa 11:30"}, "agent": {"heartbeat_s": 7}},
        )
        state = peer.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 1)
        assert state["last_refused"] is None and state["app_pending"] is False
        assert agent.heartbeat_s == 7.0
    overlay = json.loads((data_dir / "pushed-config.json").read_text())
    assert overlay == {"kiosk": {"idle_timeout_s": 90, "notice_vi": "Nghỉ trưa 11:30"}, "version": 1}
    assert fake_app.called("app.reload_config") == [{"overlay_path": str(data_dir / "pushed-config.json")}]


def test_a_shorter_pushed_heartbeat_counts_from_the_last_beat(kiosk, make_agent, fake_app, peer_factory):
    """Seen in CI: heartbeat_s pushed from 30 to 5 took effect only after the old 30 s ran out."""
    kiosk_id, topics, peer = kiosk
    health = peer_factory(topics.health)
    with make_agent(kiosk_id, heartbeat_s=30.0):
        assert health.wait(lambda: len(health.on(topics.health)) >= 1, 10)  # the beat after connecting
        push(peer, topics.config_set, 1, {"agent": {"heartbeat_s": 5}})
        peer.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 1)
        beats = len(health.on(topics.health))
        assert health.wait(lambda: len(health.on(topics.health)) >= beats + 2, 13), "the old 30 s still ran"


@pytest.mark.parametrize(
    ("config", "reason_part"),
    [
        ({"kiosk": {"id": "kiosk-evil"}}, "config.kiosk.id: unknown key"),
        ({"agent": {"broker_host": "evil.example"}}, "config.agent.broker_host: unknown key"),
        ({"kiosk": {"idle_timeout_s": 1}}, "idle_timeout_s: expected a number between 5 and 600"),
        (
            {"services": [SERVICES[0], {**SERVICES[1], "prefix": "A"}]},
            "services[1].prefix: 'A' is used twice",
        ),
        ({"services": [{"code": "x", "prefix": "A", "name_vi": "a", "name_en": "a"}]}, "services[0].code"),
    ],
)
def test_invalid_push_is_refused_and_the_old_one_stays(
    kiosk, make_agent, fake_app, data_dir, config, reason_part
):
    kiosk_id, topics, peer = kiosk
    with make_agent(kiosk_id):
        push(peer, topics.config_set, 1, {"kiosk": {"notice_vi": "cũ"}})
        peer.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 1)
        before = (data_dir / "pushed-config.json").read_bytes()
        push(peer, topics.config_set, 2, config)
        state = peer.wait_for(topics.config_state, lambda d: d["last_refused"] is not None)
    assert state["versions"]["kiosk"] == 1
    assert state["last_refused"]["version"] == 2 and state["last_refused"]["scope"] == "kiosk"
    assert reason_part in state["last_refused"]["reason"], state
    assert (data_dir / "pushed-config.json").read_bytes() == before
    assert len(fake_app.called("app.reload_config")) == 1


def test_older_version_is_refused(kiosk, make_agent, fake_app):
    kiosk_id, topics, peer = kiosk
    with make_agent(kiosk_id):
        push(peer, topics.config_set, 5, {"kiosk": {"language": "en"}})
        peer.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 5)
        push(peer, topics.config_set, 4, {"kiosk": {"language": "vi"}})
        state = peer.wait_for(topics.config_state, lambda d: d["last_refused"] is not None)
    assert "older than applied 5" in state["last_refused"]["reason"]


def test_center_and_kiosk_scopes_merge_and_retained_push_applies_at_connect(
    kiosk, make_agent, fake_app, data_dir
):
    kiosk_id, topics, peer = kiosk
    center = peer_factory_publish = peer  # the fleet peer publishes both scopes
    push(center, CENTER_TOPIC, 3, {"services": SERVICES, "kiosk": {"idle_timeout_s": 60, "language": "vi"}})
    push(peer_factory_publish, topics.config_set, 2, {"kiosk": {"idle_timeout_s": 120}})
    try:
        with make_agent(kiosk_id):  # both are retained: delivered when the agent subscribes
            peer.wait_for(topics.config_state, lambda d: d["versions"] == {"center": 3, "kiosk": 2})
        overlay = json.loads((data_dir / "pushed-config.json").read_text())
        normalised = [to_data(parse_dataclass(ServiceArea, s)) for s in SERVICES]  # defaults filled in
        assert overlay == {
            "services": normalised,
            "kiosk": {"idle_timeout_s": 120, "language": "vi"},
            "version": 3,
        }
    finally:
        peer.publish(CENTER_TOPIC, b"", retain=True)


def test_app_refusing_the_push_restores_the_previous_file(kiosk, make_agent, fake_app, data_dir):
    kiosk_id, topics, peer = kiosk
    with make_agent(kiosk_id):
        push(peer, topics.config_set, 1, {"kiosk": {"notice_vi": "một"}})
        peer.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 1)
        before = (data_dir / "pushed-config.json").read_bytes()
        fake_app.refuse_reload = "services: at least one [[services]] entry is needed"
        push(peer, topics.config_set, 2, {"kiosk": {"notice_vi": "hai"}})
        state = peer.wait_for(topics.config_state, lambda d: d["last_refused"] is not None)
    assert state["versions"]["kiosk"] == 1
    assert "the app refused it" in state["last_refused"]["reason"]
    assert (data_dir / "pushed-config.json").read_bytes() == before


def test_push_while_the_app_is_down_waits_in_the_overlay(kiosk, make_agent, data_dir):
    kiosk_id, topics, peer = kiosk
    with make_agent(kiosk_id):
        push(peer, topics.config_set, 1, {"kiosk": {"result_timeout_s": 20}})
        state = peer.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 1)
    assert state["app_pending"] is True
    assert wait_until(lambda: (data_dir / "pushed-config.json").exists())
    assert json.loads((data_dir / "pushed-config.json").read_text())["kiosk"] == {"result_timeout_s": 20}


def test_pushable_schema_is_the_apps_own():
    """One schema: what the agent accepts is the contract's, which the app's overlay is built from."""
    from dataclasses import fields

    from contract.config import PUSHABLE_KIOSK_KEYS, CitizenSettings, PushedConfig
    from kiosk.config import KioskSection

    assert {f.name for f in fields(PushedConfig)} == {"services", "kiosk", "rating", "agent", "visit"}
    assert PUSHABLE_KIOSK_KEYS == (
        "language", "idle_timeout_s", "result_timeout_s", "notice_vi", "notice_en", "voice"
    )
    assert issubclass(KioskSection, CitizenSettings)  # the app's [kiosk] is the pushable part plus identity


def test_push_is_also_checked_by_the_apps_own_config_loader(kiosk, make_agent, fake_app, data_dir):
    """What the agent accepted and wrote is what the app's own loader applies to the kiosk's file."""
    from tests.agent.conftest import agent_config, write_kiosk_toml

    kiosk_id, topics, peer = kiosk
    toml = write_kiosk_toml(
        data_dir / "kiosk.toml", kiosk_id, data_dir, agent_config(make_agent.broker, make_agent.pki, kiosk_id)
    )
    with make_agent(kiosk_id):
        push(peer, topics.config_set, 1, {"services": SERVICES, "kiosk": {"language": "en"}})
        state = peer.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 1 or d["last_refused"])
    assert state["last_refused"] is None, state
    from kiosk.config import load_config

    config = load_config(toml)  # what the app will load: base file + the overlay the agent wrote
    assert [s.code for s in config.services] == ["HOTICH", "DATDAI"] and config.kiosk.language == "en"
    assert config.version == 1


def test_a_pushed_visit_reaches_the_apps_loader_without_the_salt(kiosk, make_agent, fake_app, data_dir):
    """[visit] from the center (docs/visit.md): accepted by the agent, merged key by key over the kiosk's
    own file; the salt is refused as a key, so a push can never replace or read it."""
    from tests.agent.conftest import agent_config, write_kiosk_toml

    kiosk_id, topics, peer = kiosk
    toml = write_kiosk_toml(
        data_dir / "kiosk.toml", kiosk_id, data_dir, agent_config(make_agent.broker, make_agent.pki, kiosk_id)
    )
    with make_agent(kiosk_id):
        push(peer, topics.config_set, 1, {"visit": {"appointment_salt": "a-salt-from-the-center"}})
        refused = peer.wait_for(topics.config_state, lambda d: d["last_refused"] is not None)
        assert "visit.appointment_salt: unknown key" in refused["last_refused"]["reason"]
        push(peer, topics.config_set, 2, {"visit": {"hotline": "0274 1022", "feedback_topics": ["khac"]}})
        state = peer.wait_for(topics.config_state, lambda d: d["versions"].get("kiosk") == 2)
    assert state["last_refused"] is None or state["last_refused"]["version"] == 1, state
    from kiosk.config import load_config

    own = load_config(toml, with_pushed=False)
    config = load_config(toml)
    assert config.visit.hotline == "0274 1022" and config.visit.feedback_topics == ["khac"]
    assert config.visit.appointment_salt == own.visit.appointment_salt
    assert config.visit.appointment_late_min == own.visit.appointment_late_min  # not pushed: its own


def test_a_kiosk_back_after_several_pushes_applies_only_the_newest(
    kiosk, make_agent, fake_app, data_dir, caplog: pytest.LogCaptureFixture
):
    """A push is a state, not an event: the pushes made while a kiosk was away are not queued in its
    session and applied one by one on its return (at QoS 1 the broker replayed every one, oldest first,
    then the retained one: each an app reload and a config-state report); only the retained one counts."""
    kiosk_id, topics, peer = kiosk
    with make_agent(kiosk_id):
        push(peer, topics.config_set, 1, {"kiosk": {"notice_vi": "bản 1"}})
        peer.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 1)
    # stopped: its broker session stays (clean start off, expiry of a day), subscriptions included
    for version in (2, 3, 4, 5):
        push(peer, topics.config_set, version, {"kiosk": {"notice_vi": f"bản {version}"}})
    reloads = len(fake_app.called("app.reload_config"))
    reports = len(peer.on(topics.config_state))
    caplog.set_level(logging.INFO, logger="edge_agent.remote_config")
    caplog.clear()
    with make_agent(kiosk_id) as agent:
        peer.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 5)
        # anything the broker had queued came before the retained copy: all handled by now
        assert wait_until(lambda: agent._control.empty())
    applied = [r.getMessage() for r in caplog.records if r.getMessage().startswith("applied ")]
    assert applied == ["applied kiosk configuration version 5"]
    assert len(fake_app.called("app.reload_config")) - reloads == 1
    stale = [m.json()["versions"]["kiosk"] for m in peer.on(topics.config_state)[reports:] if m.payload]
    assert not {2, 3, 4} & set(stale), stale
    overlay = json.loads((data_dir / "pushed-config.json").read_text())
    assert overlay == {"kiosk": {"notice_vi": "bản 5"}, "version": 5}


def test_pushes_made_while_the_link_is_down_arrive_with_the_resubscribe(
    kiosk, make_agent, fake_app, data_dir, broker, pki, caplog: pytest.LogCaptureFixture
):
    """Nothing is lost at QoS 0: a push the broker could not deliver live (the link was down) is the
    retained copy MqttLink's subscribe brings at the next connect, without an agent restart."""
    from tests.agent.test_security import raw

    kiosk_id, topics, peer = kiosk
    caplog.set_level(logging.INFO, logger="edge_agent.remote_config")
    with make_agent(kiosk_id, reconnect_min_s=1.5, reconnect_max_s=1.5) as agent:
        push(peer, topics.config_set, 1, {"kiosk": {"notice_vi": "bản 1"}})
        peer.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 1)
        with raw(broker, pki, kiosk_id):  # its own client id: the broker drops the agent's connection
            assert wait_until(lambda: not agent.link.connected)
            push(peer, topics.config_set, 2, {"kiosk": {"notice_vi": "bản 2"}})
            push(peer, topics.config_set, 3, {"kiosk": {"notice_vi": "bản 3"}})
            assert not agent.link.connected, "reconnected before the pushes: they may have come live"
        peer.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 3)
        assert agent.link.connect_count >= 2
    applied = [r.getMessage() for r in caplog.records if r.getMessage().startswith("applied ")]
    assert applied == ["applied kiosk configuration version 1", "applied kiosk configuration version 3"]
    assert json.loads((data_dir / "pushed-config.json").read_text())["kiosk"] == {"notice_vi": "bản 3"}
