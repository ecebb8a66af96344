"""TLS with client certificates and the shipped ACL: a kiosk is confined to its own namespace."""

from __future__ import annotations

import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from provisioning.pki import CertificateAuthority
from tests.agent.conftest import CENTER

pytestmark = pytest.mark.broker


class RawKiosk:
    """A bare MQTT v5 client with a kiosk's certificate: what a tampered kiosk could try."""

    def __init__(self, port: int, ca_file: str, cert: str, key: str, client_id: str) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.tls_set(ca_certs=ca_file, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.acks: dict[int, int] = {}
        self.subacks: list[int] = []
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.set() if not rc.is_failure else None
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.extend(r.value for r in rcs)
        self.port = port

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self.acks[mid] = rc.value

    def __enter__(self) -> RawKiosk:
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        deadline = time.monotonic() + 10
        while info.mid not in self.acks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acks[info.mid]


def raw(broker, pki, name: str, client_id: str | None = None) -> RawKiosk:
    ident = pki.client(name)
    return RawKiosk(
        broker.kiosk_port, str(pki.ca.cert_file), str(ident.cert_file), str(ident.key_file), client_id or name
    )


def test_a_kiosk_cannot_publish_under_another_kiosks_id(broker, pki, peer_factory):
    peer = peer_factory(f"motcua/v1/{CENTER}/#")
    own = f"motcua/v1/{CENTER}/kiosk-a/event/lookup"
    other = f"motcua/v1/{CENTER}/kiosk-b/event/lookup"
    with raw(broker, pki, "kiosk-a") as kiosk:
        assert kiosk.publish(other, b'{"forged":true}') == 0x87  # Not authorized
        assert kiosk.publish(other.replace("kiosk-b", "kiosk-b/x"), b"{}") == 0x87
        assert kiosk.publish(own, b'{"own":true}') in (0x00, 0x10)  # success / no matching subscribers
    assert peer.wait(lambda: bool(peer.on(own)), 10)
    time.sleep(0.3)
    assert peer.on(other) == []


def test_a_kiosk_cannot_read_another_kiosks_commands_nor_write_center_config(broker, pki, peer_factory):
    fleet = peer_factory(f"motcua/v1/{CENTER}/_center/#")
    with raw(broker, pki, "kiosk-a") as kiosk:
        received: list[str] = []
        kiosk.client.on_message = lambda c, u, m: received.append(m.topic)
        kiosk.client.subscribe(f"motcua/v1/{CENTER}/kiosk-b/cmd/req", 1)
        kiosk.client.subscribe(f"motcua/v1/{CENTER}/_center/config/set", 1)
        deadline = time.monotonic() + 5
        while len(kiosk.subacks) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Mosquitto 2.0 grants the subscription but checks read access on every delivery.
        fleet.publish(f"motcua/v1/{CENTER}/kiosk-b/cmd/req", b'{"secret":1}')
        fleet.publish(f"motcua/v1/{CENTER}/_center/config/set", b'{"hello":1}')
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert received == [f"motcua/v1/{CENTER}/_center/config/set"]
        assert kiosk.publish(f"motcua/v1/{CENTER}/_center/config/set", b"{}") == 0x87
    time.sleep(0.2)
    assert [m.payload for m in fleet.messages] == [b'{"hello":1}']


def test_a_kiosk_cannot_take_over_another_kiosks_session(broker, pki, make_agent):
    with make_agent("kiosk-b") as agent:
        with raw(broker, pki, "kiosk-a", client_id="kiosk-b") as impostor:
            time.sleep(0.5)
            assert impostor.connected.is_set()
        # use_username_as_clientid: the impostor became "kiosk-a"; kiosk-b was never kicked off
        assert agent.link.connected and agent.link.connect_count == 1


def test_connections_without_a_valid_client_certificate_are_refused(broker, pki, tmp_path):
    def handshake(cert: str | None, key: str | None) -> bool:
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="intruder", protocol=MQTTProtocolVersion.MQTTv5
        )
        client.tls_set(
            ca_certs=str(pki.ca.cert_file), certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT
        )
        connected = threading.Event()
        client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
        try:
            client.connect("127.0.0.1", broker.kiosk_port, keepalive=5)
            client.loop_start()
            return connected.wait(1)
        except (ssl.SSLError, OSError):
            return False
        finally:
            client.loop_stop()

    rogue_ca = CertificateAuthority.create(tmp_path / "rogue", name="Rogue CA")
    rogue = rogue_ca.issue(tmp_path / "rogue", "kiosk-a")
    assert handshake(None, None) is False
    assert handshake(str(rogue.cert_file), str(rogue.key_file)) is False
    good = pki.client("kiosk-a")
    assert handshake(str(good.cert_file), str(good.key_file)) is True


def test_fleet_shared_subscription_and_allocator_rights(broker, pki, peer_factory):
    """The fleet's documented shared subscription works under the shipped ACL; the allocator is narrow."""
    from tests.agent.peer import Peer

    fleet = peer_factory("$share/fleet/motcua/v1/+/+/event/#")
    allocator = Peer(broker.service_port, str(pki.ca.cert_file), pki.client("allocator"))
    allocator.connect("motcua/v1/+/+/ticket/req", f"motcua/v1/{CENTER}/kiosk-a/event/#")
    try:
        with raw(broker, pki, "kiosk-a") as kiosk:
            assert kiosk.publish(f"motcua/v1/{CENTER}/kiosk-a/ticket/req", b'{"service":"HOTICH"}') in (
                0,
                0x10,
            )
            assert kiosk.publish(f"motcua/v1/{CENTER}/kiosk-a/event/lookup", b'{"e":1}') in (0, 0x10)
        assert fleet.wait(lambda: bool(fleet.on(f"motcua/v1/{CENTER}/kiosk-a/event/lookup")))
        assert allocator.wait(lambda: bool(allocator.on(f"motcua/v1/{CENTER}/kiosk-a/ticket/req")))
        time.sleep(0.2)
        assert allocator.on(f"motcua/v1/{CENTER}/kiosk-a/event/lookup") == []  # events are not its business
    finally:
        allocator.close()


# -- the service listener: services cannot pick their client id (security review item 4) --------------


def service(broker, pki, name: str, client_id: str) -> RawKiosk:
    """A bare client on the service port with the certificate of ``name`` asking for ``client_id``."""
    ident = pki.client(name)
    return RawKiosk(
        broker.service_port, str(pki.ca.cert_file), str(ident.cert_file), str(ident.key_file), client_id
    )


@pytest.mark.parametrize("name", ["counter", "fleet-2", "allocator"])
def test_a_service_certificate_cannot_take_a_kiosks_session(broker, pki, make_agent, name):
    with make_agent("kiosk-b") as agent:
        with service(broker, pki, name, client_id="kiosk-b") as impostor:
            time.sleep(0.5)
            assert impostor.connected.is_set()  # connected, but as its own CN
        time.sleep(0.3)
        assert agent.link.connected and agent.link.connect_count == 1, "kiosk-b was kicked off"


def test_a_service_certificate_cannot_drop_a_kiosks_queued_commands(
    broker, pki, make_agent, peer_factory, fake_app
):
    """With clean start, a takeover of kiosk-b's client id would discard its session and the commands
    the broker queued for it while it was away."""
    import json
    import uuid
    from datetime import UTC, datetime, timedelta

    from contract.topics import KioskTopics

    topics = KioskTopics(CENTER, "kiosk-b")
    peer = peer_factory(topics.cmd_res)
    with make_agent("kiosk-b"):
        pass  # the persistent session exists; kiosk-b is away now
    rid = uuid.uuid4().hex
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"schema": "command/1", "request_id": rid, "command": "set_notice",
            "args": {"text_vi": "Tạm ngưng"}, "expires_at": expires}
    peer.publish(topics.cmd_req, json.dumps(body).encode())  # queued in kiosk-b's session
    with service(broker, pki, "counter", client_id="kiosk-b") as impostor:  # clean start
        assert impostor.connected.wait(5)
    with make_agent("kiosk-b"):
        result = peer.wait_for(topics.cmd_res, lambda d: d["request_id"] == rid, timeout=10)
    assert result["status"] == "ok"
    assert fake_app.called("app.notice") == [{"text_vi": "Tạm ngưng", "text_en": ""}]


@pytest.mark.parametrize("client_id", ["allocator", f"allocator-{CENTER}"])
def test_a_service_certificate_cannot_take_the_allocators_session(broker, pki, client_id):
    with service(broker, pki, "allocator", client_id=f"allocator-{CENTER}") as allocator:
        for name in ("counter", "fleet-1"):
            with service(broker, pki, name, client_id=client_id) as impostor:
                assert impostor.connected.wait(5)
                time.sleep(0.3)
        with raw(broker, pki, "kiosk-a", client_id=client_id):  # nor a kiosk, on its own port
            time.sleep(0.3)
        assert not allocator.disconnected.is_set(), "the allocator was kicked off"
        # The allocator itself still does its job under its forced client id.
        assert allocator.publish(f"motcua/v1/{CENTER}/kiosk-a/ticket/res", b"{}") in (0, 0x10)


def test_several_fleet_workers_run_at_once_on_the_shared_subscription(broker, pki):
    """Each worker has its own certificate (fleet-1, fleet-2, fleet-3), all asking for one client id."""
    workers = [service(broker, pki, f"fleet-{n}", client_id="fleet") for n in (1, 2, 3)]
    got: dict[int, list[str]] = {n: [] for n in range(3)}
    for index, worker in enumerate(workers):
        worker.client.on_message = lambda c, u, m, index=index: got[index].append(m.topic)
        worker.__enter__()
    try:
        for worker in workers:
            worker.client.subscribe(f"$share/fleet/motcua/v1/{CENTER}/kiosk-a/event/#", 1)
        deadline = time.monotonic() + 5
        while sum(len(w.subacks) for w in workers) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [w.subacks for w in workers] == [[1], [1], [1]]
        with raw(broker, pki, "kiosk-a") as kiosk:
            for n in range(30):
                assert kiosk.publish(f"motcua/v1/{CENTER}/kiosk-a/event/lookup", f'{{"n":{n}}}'.encode()) == 0
        deadline = time.monotonic() + 10
        while sum(map(len, got.values())) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sum(map(len, got.values())) == 30  # each event once, split between the workers
        assert sum(1 for topics in got.values() if topics) >= 2
        assert not any(w.disconnected.is_set() for w in workers), "workers kicked each other off"
    finally:
        for worker in workers:
            worker.__exit__()


def test_every_listener_pins_tls_1_2_and_forces_the_client_id():
    """The shipped broker configuration: per listener, a TLS minimum (not the library's default) and
    the certificate's CN as username and client id."""
    from tests.agent.broker import DEPLOY

    listeners: list[dict[str, str]] = []
    for line in (DEPLOY / "motcua.conf").read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "listener":
            listeners.append({})
        elif listeners:
            listeners[-1][words[0]] = " ".join(words[1:])
    assert len(listeners) == 2
    for options in listeners:
        assert options.get("tls_version") in ("tlsv1.2", "tlsv1.3"), options
        assert options.get("require_certificate") == "true"
        assert options.get("use_identity_as_username") == "true"
        assert options.get("use_username_as_clientid") == "true"


@pytest.mark.parametrize(
    ("version", "name"), [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")]
)
def test_tls_1_2_and_1_3_clients_connect_to_both_listeners(broker, pki, version, name):
    """The pinned minimum keeps TLS 1.2 clients (older boards) working. (TLS 1.1 is refused here with
    or without the pin: Mosquitto 2.0's own default is 1.2, so a test of that could not fail.)"""
    import socket

    ident = pki.client("kiosk-a")
    context = ssl.create_default_context(cafile=str(pki.ca.cert_file))
    context.load_cert_chain(str(ident.cert_file), str(ident.key_file))
    context.minimum_version = context.maximum_version = version
    for port in (broker.kiosk_port, broker.service_port):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            assert tls.version() == name
