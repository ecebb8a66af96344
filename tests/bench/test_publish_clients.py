"""The fleet bench's simulated kiosks' MQTT clients (bench/publish_clients.py, bench/libmosquitto.py),
through a real Mosquitto with the shipped configuration: what they deliver, what ``acked`` counts, and
what a refused connection says. No skips: scripts/setup.sh installs libmosquitto1, and a machine without
it fails here rather than benchmarking quietly on paho."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from bench import libmosquitto
from bench.publish_clients import BACKENDS, Identity, PublishClient, default_backend, open_client, wait_acked
from tests.agent.broker import Broker, Pki, free_port, running_broker, temporary_pki
from tests.agent.peer import Peer

pytestmark = [pytest.mark.broker]

PUBLISHER, SUBSCRIBER = "fleet-3", "fleet-1"


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    with temporary_pki((PUBLISHER, SUBSCRIBER), "pubpki-") as made:
        yield made


@pytest.fixture
def broker(pki: Pki) -> Iterator[Broker]:
    """Its own broker per test: one of them stops it (SIGSTOP)."""
    with running_broker(pki, "pubbrk-") as instance:
        yield instance


@pytest.fixture
def subscriber(broker: Broker, pki: Pki) -> Iterator[Peer]:
    peer = Peer(broker.service_port, str(pki.ca.cert_file), pki.client(SUBSCRIBER)).connect("motcua/v1/#")
    yield peer
    peer.close()


def identity(pki: Pki) -> Identity:
    issued = pki.client(PUBLISHER)
    return Identity(PUBLISHER, str(pki.ca.cert_file), str(issued.cert_file), str(issued.key_file))


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, broker: Broker, pki: Pki) -> Iterator[PublishClient]:
    made = open_client(request.param, identity(pki), "127.0.0.1", broker.service_port)
    yield made
    made.close()


def test_libmosquitto_is_the_default() -> None:
    assert default_backend() == "libmosquitto"
    assert libmosquitto.version()[0] == 2


def test_without_the_library_the_error_names_the_debian_package_and_the_default_is_paho(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(libmosquitto, "_lib", None)  # not loaded yet, and under another name
    monkeypatch.setattr(libmosquitto, "LIBRARY", "libmosquitto-absent.so.1")
    with pytest.raises(libmosquitto.LibmosquittoMissing, match="Debian package libmosquitto1"):
        libmosquitto.load()
    assert default_backend() == "paho"


def test_qos1_messages_arrive_with_their_topics_and_payloads_and_are_all_acked(
    client: PublishClient, subscriber: Peer
) -> None:
    # binary payloads with NUL bytes: the length, not a C string's end, delimits them
    sent = [(f"motcua/v1/c{n % 3}/kiosk-{n:05d}/event/rating", b"\x00\xff" + str(n).encode() * (n % 50))
            for n in range(300)]
    for topic, payload in sent:
        client.publish(topic, payload, qos=1)
    client.publish("motcua/v1/c0/kiosk-00000/status", b'{"state": "online"}', qos=1, retain=True)
    assert wait_acked(client, len(sent) + 1, timeout=10)
    assert subscriber.wait(lambda: len(subscriber.messages) >= len(sent) + 1)
    time.sleep(0.2)  # nothing more comes
    assert [(m.topic, m.payload) for m in subscriber.messages[:-1]] == sent
    retained = subscriber.messages[-1]
    assert (retained.topic, retained.payload) == ("motcua/v1/c0/kiosk-00000/status", b'{"state": "online"}')
    assert client.acked == len(sent) + 1


def test_acked_counts_a_qos1_message_at_its_puback_and_a_qos0_one_once_written(
    client: PublishClient, broker: Broker, subscriber: Peer
) -> None:
    assert broker.process is not None
    os.kill(broker.process.pid, signal.SIGSTOP)  # connected, but it answers nothing
    try:
        for n in range(5):
            client.publish(f"motcua/v1/c0/kiosk-00001/event/e{n}", b"q1", qos=1)
        for n in range(3):
            client.publish("motcua/v1/c0/kiosk-00001/health", b"q0 %d" % n, qos=0)
        assert wait_acked(client, 3, timeout=5)  # the QoS 0 ones: written to the socket
        time.sleep(0.5)
        assert client.acked == 3  # the QoS 1 ones wait for their PUBACKs
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)
    assert wait_acked(client, 8, timeout=10)
    assert subscriber.wait(lambda: len(subscriber.messages) >= 8)
    time.sleep(0.2)
    assert client.acked == 8


def test_a_refused_connection_says_where_and_why(pki: Pki) -> None:
    port = free_port()  # nobody listens there
    with pytest.raises(libmosquitto.MosquittoError, match=rf"127\.0\.0\.1:{port}.*Connection refused"):
        open_client("libmosquitto", identity(pki), "127.0.0.1", port)


def test_a_certificate_of_another_ca_is_refused_before_the_connack(broker: Broker, pki: Pki) -> None:
    with temporary_pki((PUBLISHER,), "otherpki-") as other:  # another CA's fleet-3
        issued = other.client(PUBLISHER)
        stranger = Identity(PUBLISHER, str(pki.ca.cert_file), str(issued.cert_file), str(issued.key_file))
        # the broker's alert reaches the handshake in mosquitto_connect, or the loop's first read
        refused = rf":{broker.service_port}.*(TLS: the handshake|closed before the CONNACK)"
        with pytest.raises(libmosquitto.MosquittoError, match=refused):
            open_client("libmosquitto", stranger, "127.0.0.1", broker.service_port)
