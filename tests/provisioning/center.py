"""A real provisioned center for tests: ``center_init`` into a temporary folder, Mosquitto started with
the configuration it generated, and ``main.py provision serve`` as its own process (HTTPS enrollment,
renewals, the broker's view of the registry). Kiosks enroll against it with the real CLI or library and
run the real agent."""

from __future__ import annotations

import dataclasses
import getpass
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from contract.enrollment import EnrollmentCode
from edge_agent.agent import Agent
from edge_agent.cli import load_settings
from fleet.store import Scope, Store, open_store
from provisioning.center import CenterLayout, CenterSettings, center_init
from provisioning.pki import Issued
from tests.agent.peer import Peer

ROOT = Path(__file__).resolve().parents[2]
CENTER = "hcm-ben-thanh"
PASSPHRASE = b"mat khau thu nghiem 2026"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keep_takeovers(monkeypatch: Any) -> list[tuple[bytes, bytes, str]]:
    """Every takeover certificate ``CenterPki.issue_takeover`` makes in this process from now on (cert
    PEM, key PEM, serial): the real one is called, and the test keeps what the caller forgets."""
    from provisioning.center_pki import CenterPki

    takeovers: list[tuple[bytes, bytes, str]] = []
    issue_takeover = CenterPki.issue_takeover

    def recorded(self: CenterPki, kiosk_id: str, now: datetime | None = None) -> tuple[bytes, bytes, str]:
        made = issue_takeover(self, kiosk_id, now)
        takeovers.append(made)
        return made

    monkeypatch.setattr(CenterPki, "issue_takeover", recorded)
    return takeovers


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} not open in {timeout} s: {log.read_text(errors='replace')[-3000:]}")


@dataclass
class RunningCenter:
    root: Path
    layout: CenterLayout
    settings: CenterSettings
    broker: subprocess.Popen[bytes]
    serve: subprocess.Popen[bytes] | None
    logs: Path
    peers: list[Peer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.layout.store_url(self.settings)

    def open_store(self, **kwargs: Any) -> Store:
        return open_store(self.url, **kwargs)

    def code(
        self,
        kiosk_id: str,
        *,
        slot: int | None = None,
        replace: bool = False,
        lifetime: timedelta = timedelta(hours=1),
        store: Store | None = None,
    ) -> str:
        """An enrollment code as the dashboard shows it (made through the store API)."""
        own = store is None
        store = store or self.open_store()
        try:
            text, _token = store.enrollment.create_token(
                Scope.everything(),
                CENTER,
                kiosk_id,
                slot=slot,
                purpose="replace" if replace else "new",
                username="test",
                lifetime=lifetime,
            )
            settings = store.enrollment.center(CENTER)
        finally:
            if own:
                store.close()
        return EnrollmentCode(
            settings.enroll_host, settings.enroll_port, CENTER, settings.ca_fingerprint, text
        ).to_text()

    def pending_code(self) -> str:
        store = self.open_store()
        try:
            settings = store.enrollment.center(CENTER)
        finally:
            store.close()
        return EnrollmentCode(
            settings.enroll_host, settings.enroll_port, CENTER, settings.ca_fingerprint
        ).to_text()

    def service_peer(self, name: str = "fleet", *filters: str, client_id: str | None = None) -> Peer:
        """A service's client. Its client id is forced to the certificate's CN on the services' listener,
        so one certificate is one connection: an earlier peer of the same name is closed first."""
        pki = self.layout.pki
        self.close_service_peers(name)
        peer = Peer(
            self.settings.service_port,
            str(pki.chain_file),
            Issued(pki.cert_file(name), pki.key_file(name)),
            client_id=client_id,
        )
        peer.service_name = name  # type: ignore[attr-defined]
        self.peers.append(peer)
        return peer.connect(*filters) if filters else peer

    def close_service_peers(self, name: str) -> None:
        for old in [p for p in self.peers if getattr(p, "service_name", None) == name]:
            old.close()
            self.peers.remove(old)

    def kiosk_peer(self, cert: Path, key: Path, *filters: str, client_id: str | None = None) -> Peer:
        peer = Peer(
            self.settings.kiosk_port, str(self.layout.pki.chain_file), Issued(cert, key), client_id=client_id
        )
        self.peers.append(peer)
        return peer.connect(*filters) if filters else peer

    def broker_log(self) -> str:
        return (self.logs / "mosquitto.log").read_text(errors="replace")

    def stop(self) -> None:
        for peer in self.peers:
            with suppress(Exception):
                peer.close()
        for proc in (self.serve, self.broker):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def make_settings(**overrides: Any) -> CenterSettings:
    base = CenterSettings(
        center_id=CENTER,
        center_name="Trung tâm Phục vụ hành chính công phường Bến Thành",
        province_id="hcm",
        province_name="TP. Hồ Chí Minh",
        addresses=["127.0.0.1"],
        kiosk_port=free_port(),
        service_port=free_port(),
        enroll_port=free_port(),
        bind="127.0.0.1",
        broker_user=getpass.getuser(),
        kiosk_template=str(ROOT / "config" / "simulate.toml"),
    )
    return dataclasses.replace(base, **overrides)


@contextmanager
def running_center(
    *, serve: bool = True, interval_s: float = 0.2, **overrides: Any
) -> Iterator[RunningCenter]:
    root = Path(tempfile.mkdtemp(prefix="pc-"))
    logs = root / "logs"
    logs.mkdir()
    settings = make_settings(**overrides)
    center_init(root / "center", settings, PASSPHRASE)
    layout = CenterLayout((root / "center").resolve())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    broker_log = logs / "mosquitto.log"
    with broker_log.open("wb") as out:
        broker = subprocess.Popen(  # as the generated unit starts it
            ["mosquitto", "-c", str(layout.broker_conf)], stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "OPENSSL_CONF": str(layout.openssl_conf)},
        )
    center = RunningCenter(root, layout, settings, broker, None, logs)
    try:
        wait_port(settings.kiosk_port, broker, broker_log)
        wait_port(settings.service_port, broker, broker_log)
        if serve:
            serve_log = logs / "serve.log"
            with serve_log.open("wb") as out:
                center.serve = subprocess.Popen(
                    [
                        sys.executable,
                        str(ROOT / "main.py"),
                        "provision",
                        "serve",
                        "--dir",
                        str(layout.root),
                        "--interval",
                        str(interval_s),
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            wait_https(settings.enroll_port, center.serve, serve_log)
        yield center
    finally:
        center.stop()
        if os.environ.get("KEEP_CENTER_DIR") is None:
            shutil.rmtree(root, ignore_errors=True)


def wait_https(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 40.0) -> None:
    import http.client

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"provision serve exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=1, context=context)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"provision serve did not answer: {log.read_text(errors='replace')[-3000:]}")


def enroll_cli(
    code: str, kiosk_dir: Path, *extra: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``main.py provision enroll --code`` as a technician runs it, into a fresh kiosk folder."""
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "provision",
            "enroll",
            "--code",
            code,
            "--config",
            str(kiosk_dir / "kiosk.toml"),
            "--data-dir",
            str(kiosk_dir / "data"),
            "--base",
            str(ROOT / "config" / "simulate.toml"),
            "--json",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class RunningAgent:
    """The real agent of an enrolled kiosk (its own kiosk.toml), in a thread of the test process."""

    def __init__(self, config: Path, **overrides: Any) -> None:
        settings = load_settings(config)
        fast = {
            "heartbeat_s": 1.0,
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 1.0,
            "will_delay_s": 0,
            "app_timeout_s": 1.0,
            **overrides,
        }
        self.settings = dataclasses.replace(settings, agent=dataclasses.replace(settings.agent, **fast))
        self.agent: Agent | None = None
        self.thread: threading.Thread | None = None

    def start(self, clock: Any = None) -> Agent:
        self.agent = Agent(self.settings, clock=clock)
        self.thread = threading.Thread(
            target=self.agent.run, name=f"agent-{self.settings.kiosk_id}", daemon=True
        )
        self.thread.start()
        assert self.agent.link.wait_subscribed(15), f"agent did not connect: {self.agent.link.last_error}"
        return self.agent

    def stop(self) -> None:
        if self.agent is not None and self.thread is not None:
            self.agent.request_stop()
            self.thread.join(15)
            assert not self.thread.is_alive(), "agent did not stop"


def wait_for(predicate: Any, timeout: float, what: str, step: float = 0.05) -> float:
    """Seconds until ``predicate()`` held; fails the test after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - started


class RawClient:
    """A bare MQTT v5 client with a certificate: PUBACK and SUBACK reason codes, connect outcome."""

    def __init__(self, port: int, ca_file: Path, cert: Path, key: Path, client_id: str) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.tls_set(
            ca_certs=str(ca_file), certfile=str(cert), keyfile=str(key), tls_version=ssl.PROTOCOL_TLS_CLIENT
        )
        self.acks: dict[int, int] = {}
        self.subacks: dict[int, list[int]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.disconnects = 0
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.set() if not rc.is_failure else None
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = lambda c, u, mid, rc, p: self.acks.__setitem__(mid, rc.value)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.__setitem__(
            mid, [r.value for r in rcs]
        )
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # floats work (time.sleep)
        self.port = port

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connected.clear()
        self.disconnected.set()
        self.disconnects += 1

    def connect(self, timeout: float = 10.0) -> RawClient:
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(timeout), "could not connect"
        return self

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        """The PUBACK's reason code. Mosquitto 2.0.11 closes the connection after a refused QoS 1 publish
        (PUBACK 0x87 first): paho reconnects, and we wait for that before the next call."""
        assert self.connected.wait(10), "not connected"
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        deadline = time.monotonic() + 10
        while info.mid not in self.acks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> list[int]:
        assert self.connected.wait(10), "not connected"
        _result, mid = self.client.subscribe(topic, 1)
        assert mid is not None, "not connected"
        deadline = time.monotonic() + 10
        while mid not in self.subacks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.subacks[mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def can_connect(
    port: int, ca_file: Path, cert: Path, key: Path, client_id: str, timeout: float = 3.0
) -> bool:
    """Whether a TLS + MQTT connection with this certificate gets a successful CONNACK."""
    probe = RawClient(port, ca_file, cert, key, client_id)
    try:
        probe.client.connect("127.0.0.1", port, keepalive=10)
    except (OSError, ssl.SSLError):
        return False
    probe.client.loop_start()
    try:
        return probe.connected.wait(timeout)
    finally:
        probe.client.disconnect()
        probe.client.loop_stop()


class RealIngest:
    """The fleet's own MQTT ingest (``fleet.ingest.worker.IngestWorker``, in this process) on the
    center's broker with the generated ``fleet`` certificate, so the dashboard shows what the kiosks
    report through the code path a center runs. Its lease duties are off: the provisioning tests
    drive commands themselves."""

    def __init__(self, center: RunningCenter) -> None:
        from common.mqtt import TlsConfig
        from fleet.ingest.worker import IngestWorker, WorkerSettings

        center.close_service_peers("fleet")
        self.store = center.open_store()
        pki = center.layout.pki
        self.worker = IngestWorker(
            self.store,
            WorkerSettings(
                host="127.0.0.1",
                port=center.settings.service_port,
                tls=TlsConfig(pki.chain_file, pki.cert_file("fleet"), pki.key_file("fleet")),
                client_id="fleet",
                center_id=CENTER,
                duties=False,
                notify=None,
                session_expiry_s=0,
            ),
        )
        self.worker.start()
        assert self.worker.wait_subscribed(15), f"ingest did not subscribe: {self.worker.link.last_error}"

    @property
    def events(self) -> int:
        """Event messages handled (stored, or a duplicate of a stored one)."""
        with self.worker.stats.lock:
            return self.worker.stats.channels["event"]

    @property
    def errors(self) -> list[str]:
        """What the ingest refused or failed on (a test fails on any)."""
        with self.worker.stats.lock:
            counts = self.worker.stats.counts
            return [f"{k}: {counts[k]}" for k in ("refused", "invalid", "errors", "hook_errors") if counts[k]]

    def close(self) -> None:
        self.worker.stop()
        self.store.close()
