"""The fleet's ingest against the real thing: Mosquitto with the shipped configuration and ACL (TLS,
certificates per kiosk), real agents (in-process, or ``python -m edge_agent`` for SIGKILL), the
fake app of the agent's tests behind their control socket, ingest workers on the real store."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common.mqtt import TlsConfig
from edge_agent.agent import Agent, AgentSettings
from fleet.ingest.worker import IngestWorker, WorkerSettings
from fleet.store import Store
from tests.agent.broker import Broker, Pki
from tests.agent.conftest import FakeApp, RunningAgent, agent_config

CENTER = "hcm-ben-thanh"
OTHER_CENTER = "hcm-thu-duc"
KIOSKS = ("kiosk-a", "kiosk-b", "kiosk-c", "kiosk-d", "kiosk-e", "kiosk-f", "kiosk-g")


def seed(store: Store, kiosks: tuple[str, ...] = KIOSKS, heartbeat_s: int = 1) -> int:
    """Two centers, the test kiosks at Bến Thành, a technician; returns the technician's user id."""
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center(CENTER, "hcm", "Trung tâm Phục vụ hành chính công phường Bến Thành")
    store.registry.add_center(OTHER_CENTER, "hcm", "Trung tâm Phục vụ hành chính công phường Thủ Đức")
    for slot, kiosk in enumerate(kiosks):
        store.registry.add_kiosk(
            kiosk, CENTER, slot=slot, label=f"Sảnh, máy {slot + 1}", heartbeat_s=heartbeat_s
        )
    from fleet.auth import hash_password
    from tests.fleet.data import CHEAP, PASSWORD

    return store.accounts.add_user(
        "kythuat.bt",
        hash_password(PASSWORD, CHEAP),
        "technician",
        center_id=CENTER,
        display_name="Lê Hoàng Nam",
    ).id


def worker_settings(
    broker: Broker, pki: Pki, client_id: str, *, identity: str = "fleet", **overrides: Any
) -> WorkerSettings:
    """A worker with the certificate ``identity``: the broker makes a service's client id its
    certificate's name, so workers that run at the same time, or keep a session, need one each."""
    fleet = pki.client(identity)
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": broker.service_port,
        "tls": TlsConfig(pki.ca.cert_file, fleet.cert_file, fleet.key_file),
        "client_id": client_id,
        "sweep_every_s": 0.5,
        "beat_every_s": 0.5,
    }
    base.update(overrides)
    return WorkerSettings(**base)


def drop_session(broker: Broker, pki: Pki, identity: str) -> None:
    """Discard the broker's session of ``identity`` (MQTT v5 clean start): a test that kept one must not
    hand its subscriptions to the next test that connects with the same certificate."""
    import ssl

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    issued = pki.client(identity)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=identity, protocol=MQTTProtocolVersion.MQTTv5)
    client.tls_set(ca_certs=str(pki.ca.cert_file), certfile=str(issued.cert_file),
                   keyfile=str(issued.key_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.connect("127.0.0.1", broker.service_port, clean_start=True)
    client.loop_start()
    deadline = time.monotonic() + 10
    while not client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    client.disconnect()
    client.loop_stop()


@contextmanager
def running_worker(store: Store, settings: WorkerSettings) -> Iterator[IngestWorker]:
    worker = IngestWorker(store, settings)
    worker.start()
    try:
        assert worker.wait_subscribed(15), f"ingest worker did not subscribe: {worker.link.last_error}"
        yield worker
    finally:
        worker.stop()


@contextmanager
def kiosk(
    broker: Broker, pki: Pki, kiosk_id: str, *, center: str = CENTER, app: bool = True, **overrides: Any
) -> Iterator[tuple[Agent, FakeApp | None, Path]]:
    """A real agent for ``kiosk_id`` (in-process) with, when ``app``, the fake app on its socket."""
    directory = Path(tempfile.mkdtemp(prefix="fa-"))  # short: the app's socket lives here
    fake = FakeApp(directory) if app else None
    try:
        if fake is not None:
            fake.__enter__()
        cfg = agent_config(broker, pki, kiosk_id, **{"heartbeat_s": 1.0, **overrides})
        with RunningAgent(Agent(AgentSettings(kiosk_id, center, directory, cfg))) as agent:
            yield agent, fake, directory
    finally:
        if fake is not None:
            fake.__exit__(None, None, None)
        shutil.rmtree(directory, ignore_errors=True)


def eventually(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """The first truthy value of ``predicate`` within ``timeout``; fails the test otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not true within {timeout} s: {getattr(predicate, '__doc__', '') or predicate}"
            )
        time.sleep(interval)
