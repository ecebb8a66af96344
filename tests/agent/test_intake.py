"""What the center sends a kiosk cannot stop the kiosk from listening (issue 10 item 1), on the real
broker: hostile command payloads, a handler that raises, a command whose handling raises."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.mqtt import Backoff, Message, MqttLink, TlsConfig
from contract.topics import KioskTopics
from tests.agent.conftest import CENTER, wait_until

pytestmark = pytest.mark.broker

T = KioskTopics(CENTER, "kiosk-a")


def test_a_handler_that_raises_does_not_hold_the_brokers_inflight_window(broker, pki, peer_factory) -> None:
    """Mosquitto sends a session at most 100 unacknowledged QoS 1 messages; a message whose handler
    raised was never acknowledged, so after 100 of them nothing more arrived until a reconnect."""
    identity = pki.client("kiosk-b")
    topics = KioskTopics(CENTER, "kiosk-b")
    seen: list[bytes] = []
    lock = threading.Lock()

    def explodes(message: Message) -> None:
        with lock:
            seen.append(message.payload)
        raise RuntimeError("a handler bug")

    link = MqttLink(client_id="kiosk-b", host="127.0.0.1", port=broker.kiosk_port,
                    tls=TlsConfig(pki.ca.cert_file, identity.cert_file, identity.key_file),
                    session_expiry_s=0, backoff=Backoff(0.1, 0.5))
    link.subscribe(topics.cmd_req, 1, explodes)
    link.start()
    try:
        assert link.wait_subscribed(10), link.last_error
        fleet = peer_factory()
        for i in range(150):
            fleet.publish(topics.cmd_req, f"m{i}".encode())
        assert wait_until(lambda: len(seen) == 150, 15), f"{len(seen)} of 150 delivered"
        assert wait_until(lambda: link.handler_errors == 150)  # counted just after the handler returns
        assert link.connect_count == 1
    finally:
        link.stop()


def _command(name: str, args: dict[str, Any], request_id: str) -> bytes:
    expires = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    return json.dumps({"schema": "command/1", "request_id": request_id, "command": name, "args": args,
                       "expires_at": expires}).encode()


def test_hostile_commands_are_answered_and_the_next_one_runs(make_agent, peer_factory, fake_app,
                                                             exception_guard, monkeypatch) -> None:
    peer = peer_factory(T.cmd_res, T.health)
    with make_agent(heartbeat_s=1) as agent:
        hostile = [
            b"[" * 200_000,
            b'{"schema": "command/1", "request_id": "deep", "args": ' + b"[" * 3_000 + b"}",
            b'{"request_id": "big", "pad": "' + b"x" * (1 << 20) + b'"}',
            _command("set_notice", {"text_vi": "\ud800"}, "sur"),  # json.dumps writes it as \\ud800
        ]
        for payload in hostile:
            peer.publish(T.cmd_req, payload)
        assert peer.wait(lambda: len(peer.on(T.cmd_res)) >= len(hostile)), peer.on(T.cmd_res)
        rejected = [m.json() for m in peer.on(T.cmd_res)]
        assert all(r["status"] == "error" and r["reason"].startswith("rejected") for r in rejected), rejected
        assert "lone surrogate" in rejected[3]["reason"]
        calls: list[str] = []
        original = agent.executor.execute

        def fails_once(request: Any) -> Any:
            calls.append(request.request_id)
            if len(calls) == 1:
                raise RuntimeError("an executor bug")
            return original(request)

        monkeypatch.setattr(agent.executor, "execute", fails_once)
        first, second = uuid.uuid4().hex, uuid.uuid4().hex
        peer.publish(T.cmd_req, _command("restart_app", {}, first))
        peer.publish(T.cmd_req, _command("restart_app", {}, second))
        assert peer.wait_for(T.cmd_res, lambda d: d["request_id"] == second)["status"] == "ok"
        assert calls == [first, second]
        beat = peer.wait_for(T.health, lambda d: d["link"].get("handler_errors") == 1, timeout=15)
        assert beat["link"]["connected"] is True
    exception_guard.records.clear()  # the injected executor bug was logged with its traceback, as it should


def test_hostile_pushed_configuration_is_refused_and_a_good_one_applies_after(
    make_agent, fake_app, peer_factory, data_dir
) -> None:
    topics = KioskTopics(CENTER, "kiosk-intake")
    peer = peer_factory(topics.config_state)
    try:
        with make_agent("kiosk-intake"):
            hostile = [
                b"[" * 300_000,  # over config/1's 256 KiB
                b'{"schema": "config/1", "version": 1, "config": ' + b"[" * 3_000 + b"}",
                json.dumps({"schema": "config/1", "version": 2,
                            "config": {"kiosk": {"notice_vi": "\ud800"}}}),  # written as \\ud800
            ]
            for payload in hostile:
                peer.publish(topics.config_set, payload, retain=True)
            reasons: list[str] = []

            def refused_all() -> bool:
                reasons[:] = [m.json()["last_refused"]["reason"] for m in peer.on(topics.config_state)
                              if m.payload and m.json().get("last_refused")]
                return any("surrogate" in r for r in reasons)

            assert peer.wait(refused_all, 15), reasons
            good = {"schema": "config/1", "version": 3, "config": {"kiosk": {"notice_vi": "Nghỉ trưa"}}}
            peer.publish(topics.config_set, json.dumps(good), retain=True)
            state = peer.wait_for(topics.config_state, lambda d: d["versions"]["kiosk"] == 3)
            assert state["last_refused"] is None or "surrogate" in state["last_refused"]["reason"]
        overlay = json.loads((data_dir / "pushed-config.json").read_text())
        assert overlay["kiosk"] == {"notice_vi": "Nghỉ trưa"}
    finally:
        peer.publish(topics.config_set, b"", retain=True)
        peer.publish(topics.config_state, b"", retain=True)
