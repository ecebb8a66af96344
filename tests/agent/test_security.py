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
