"""Fixtures for the edge agent: a real Mosquitto with TLS and the shipped ACL, certificates, a fake app
(a real kiosk.ipc.ControlServer whose handlers record what they got), and agents in-process or as a
separate process (for SIGKILL)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from common.ipc import ControlServer
from edge_agent.agent import Agent, AgentSettings
from edge_agent.config import AgentConfig, TlsConfig
from tests.agent.broker import ROOT, Broker, Pki, running_broker, temporary_pki
from tests.agent.peer import Peer

CENTER = "hcm-ben-thanh"


@pytest.fixture(scope="session")
def pki() -> Iterator[Pki]:
    with temporary_pki(("kiosk-a", "kiosk-b", "fleet"), "agpki-") as made:
        yield made


@pytest.fixture(scope="session")
def broker(pki: Pki) -> Iterator[Broker]:
    with running_broker(pki, "agbrk-") as instance:
        yield instance


@pytest.fixture
def own_broker(pki: Pki) -> Iterator[Broker]:
    """A broker this test may stop and restart."""
    with running_broker(pki, "agbrk-") as instance:
        yield instance


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short path: the app's Unix socket lives here (108-byte limit on socket paths).
    directory = Path(tempfile.mkdtemp(prefix="ag-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


#: the fleet ingest workers' certificates in the shipped ACL: the broker makes a service's CN its client
#: id, so peers that are connected at the same time need one each
FLEET_WORKERS = ("fleet-1", "fleet-2", "fleet-3", "fleet-4")


@pytest.fixture
def peer_factory(broker: Broker, pki: Pki) -> Iterator[Callable[..., Peer]]:
    """Fleet-side MQTT clients on the service port, each with its own fleet worker certificate (the
    client id a test passes is replaced by the broker with that certificate's CN)."""
    peers: list[Peer] = []

    def make(
        *filters: str, target: Broker | None = None, persistent: bool = False, client_id: str | None = None
    ) -> Peer:
        b = target or broker
        assert len(peers) < len(FLEET_WORKERS), "more fleet peers than fleet worker certificates"
        peer = Peer(
            b.service_port,
            str(pki.ca.cert_file),
            pki.client(FLEET_WORKERS[len(peers)]),
            persistent=persistent,
            client_id=client_id,
        )
        peers.append(peer)
        return peer.connect(*filters)

    yield make
    for peer in peers:
        peer.close()


def agent_config(broker: Broker, pki: Pki, kiosk_id: str, **overrides: Any) -> AgentConfig:
    identity = pki.client(kiosk_id)
    base = AgentConfig(
        broker_host="127.0.0.1",
        broker_port=broker.kiosk_port,
        tls=TlsConfig(ca_file=pki.ca.cert_file, cert_file=identity.cert_file, key_file=identity.key_file),
        heartbeat_s=1.0,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        will_delay_s=0,
        app_timeout_s=2.0,
    )
    return replace(base, **overrides)


class RunningAgent:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.thread = threading.Thread(target=agent.run, name="agent-under-test", daemon=True)

    def __enter__(self) -> Agent:
        self.thread.start()
        assert self.agent.link.wait_subscribed(10), f"agent did not connect: {self.agent.link.last_error}"
        return self.agent

    def __exit__(self, *exc: object) -> None:
        self.agent.request_stop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "agent did not stop"


@pytest.fixture
def make_agent(broker: Broker, pki: Pki, data_dir: Path) -> Callable[..., RunningAgent]:
    def make(
        kiosk_id: str = "kiosk-a",
        *,
        target: Broker | None = None,
        directory: Path | None = None,
        **overrides: Any,
    ) -> RunningAgent:
        cfg = agent_config(target or broker, pki, kiosk_id, **overrides)
        settings = AgentSettings(kiosk_id, CENTER, directory or data_dir, cfg)
        return RunningAgent(Agent(settings))

    make.broker = broker  # type: ignore[attr-defined]
    make.pki = pki  # type: ignore[attr-defined]
    return make


class FakeApp:
    """The kiosk app's control socket with handlers that record calls and answer like the app will."""

    def __init__(self, data_dir: Path) -> None:
        self.server = ControlServer(data_dir / "app.sock")
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.printer_state = "ok"
        self.refuse_reload: str | None = None
        #: control command -> the error its handler raises (answered as the app answers it)
        self.errors: dict[str, Exception] = {}
        self.screenshot_path = data_dir / "shot.png"
        for cmd in (
            "app.health",
            "app.notice",
            "app.print_test_ticket",
            "app.screenshot",
            "app.restart",
            "app.service_mode",
            "app.reload_config",
        ):
            self.server.register(cmd, self._handler(cmd))

    def _handler(self, cmd: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def handle(args: dict[str, Any]) -> dict[str, Any]:
            self.calls.append((cmd, args))
            if cmd in self.errors:
                raise self.errors[cmd]
            if cmd == "app.health":
                return {
                    "app_version": "0.1.0-test",
                    "uptime_s": 12,
                    "screen": "home",
                    "out_of_service": False,
                    "config_version": 3,
                    "devices": {
                        "printer": {"state": self.printer_state, "model": "TM-T82"},
                        "card_reader": {"state": "ok"},
                        "scanner": {"state": "missing"},
                    },
                }
            if cmd == "app.screenshot":
                return {"png_path": str(self.screenshot_path)}
            if cmd == "app.reload_config" and self.refuse_reload:
                from common.errors import ConfigError

                raise ConfigError(self.refuse_reload)
            return {}

        return handle

    def called(self, cmd: str) -> list[dict[str, Any]]:
        return [args for name, args in self.calls if name == cmd]

    def __enter__(self) -> FakeApp:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


@pytest.fixture
def fake_app(data_dir: Path) -> Iterator[FakeApp]:
    with FakeApp(data_dir) as app:
        yield app


def write_kiosk_toml(path: Path, kiosk_id: str, data_dir: Path, cfg: AgentConfig) -> Path:
    tls = cfg.tls
    path.write_text(
        f"""
[kiosk]
id = "{kiosk_id}"
center_id = "{CENTER}"
center_name = "Trung tâm Phục vụ hành chính công phường Bến Thành"
data_dir = "{data_dir}"

[[services]]
code = "HOTICH"
prefix = "A"
name_vi = "Hộ tịch"
name_en = "Civil status"

[agent]
broker_port = {cfg.broker_port}
heartbeat_s = {cfg.heartbeat_s}
reconnect_min_s = {cfg.reconnect_min_s}
reconnect_max_s = {cfg.reconnect_max_s}
will_delay_s = {cfg.will_delay_s}
outbox_max_events = {cfg.outbox_max_events}

[agent.tls]
ca_file = "{tls.ca_file}"
cert_file = "{tls.cert_file}"
key_file = "{tls.key_file}"
""",
        encoding="utf-8",
    )
    return path


def spawn_agent(config_file: Path, log_file: Path) -> subprocess.Popen[bytes]:
    """The agent as its own process (``python -m edge_agent``), so a test can SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "--config", str(config_file)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


class _ExceptionGuard(logging.Handler):
    """Fails a test when an agent thread logged a swallowed exception (log.exception)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.name.startswith(("edge_agent", "kiosk")):
            self.records.append(record)


@pytest.fixture(autouse=True)
def exception_guard() -> Iterator[_ExceptionGuard]:
    guard = _ExceptionGuard()
    root = logging.getLogger()
    root.addHandler(guard)
    yield guard
    root.removeHandler(guard)
    swallowed = [f"{r.name}: {r.getMessage()}" for r in guard.records]
    assert not swallowed, f"exceptions swallowed by agent threads: {swallowed}"


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
