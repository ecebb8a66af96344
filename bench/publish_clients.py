"""The simulated kiosks' MQTT client, on libmosquitto (``bench.libmosquitto``) or on paho.

Both connect the same way (MQTT v5, clean start, TLS with a center service's certificate, 1,000 QoS 1
publishes in flight, nothing dropped when more are queued) and count ``acked`` the same way: a PUBACK for
QoS 1, the PUBLISH written to the socket for QoS 0 (libmosquitto's ``on_publish`` and paho's fire
then). The benches use only ``open_client``, ``publish``, ``acked``, ``wait_acked`` and ``close``: what
they measure differs by the client alone. libmosquitto's network loop is a C thread: about a third of
paho's CPU per publish here (docs/fleet.md, "Seventh pass").
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Any, Protocol

from bench import libmosquitto

BACKENDS = ("libmosquitto", "paho")
SEND_MAXIMUM = 1000  # QoS 1 publishes in flight (the broker's max_inflight_messages is 1000 too)


class PublishClient(Protocol):
    acked: int

    def connect(self, host: str, port: int) -> None: ...

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Identity:
    client_id: str
    ca: str
    cert: str
    key: str


def default_backend() -> str:
    """libmosquitto when the library loads, else paho."""
    try:
        libmosquitto.load()
    except libmosquitto.LibmosquittoMissing:
        return "paho"
    return "libmosquitto"


def open_client(backend: str, identity: Identity, host: str, port: int) -> PublishClient:
    """A connected client (the broker's CONNACK received); raises when the connection is refused."""
    client: PublishClient
    if backend == "libmosquitto":
        client = libmosquitto.Client(identity.client_id, ca=identity.ca, cert=identity.cert,
                                     key=identity.key, send_maximum=SEND_MAXIMUM)
    elif backend == "paho":
        client = PahoClient(identity)
    else:
        raise ValueError(f"unknown publisher backend {backend!r} (one of {', '.join(BACKENDS)})")
    try:
        client.connect(host, port)
    except BaseException:
        client.close()
        raise
    return client


def wait_acked(client: PublishClient, published: int, timeout: float = 300) -> bool:
    """Until the broker acknowledged (QoS 1) or took (QoS 0) ``published`` messages; False on timeout."""
    deadline = time.monotonic() + timeout
    while client.acked < published:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class PahoClient:
    """paho-mqtt, threaded (``loop_start``): its network loop, packets and TLS writes in Python."""

    def __init__(self, identity: Identity) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=identity.client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self._client.tls_set(
            ca_certs=identity.ca, certfile=identity.cert, keyfile=identity.key,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self._client.max_inflight_messages_set(SEND_MAXIMUM)
        self._client.max_queued_messages_set(0)
        self._client.on_publish = self._on_publish
        self._looping = False
        self.acked = 0

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self.acked += 1

    def connect(self, host: str, port: int, timeout: float = 10.0) -> None:
        self._client.connect(host, port)
        self._client.loop_start()
        self._looping = True
        deadline = time.monotonic() + timeout
        while not self._client.is_connected():
            if time.monotonic() > deadline:
                raise ConnectionError(f"paho: no CONNACK from {host}:{port} within {timeout} s")
            time.sleep(0.01)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        rc = self._client.publish(topic, payload, qos=qos, retain=retain).rc
        if rc:  # as libmosquitto's binding: a publish the client refused (not connected, say) is loud
            import paho.mqtt.client as paho

            raise ConnectionError(f"paho publish({topic}): {paho.error_string(rc)}")

    def close(self) -> None:
        if self._looping:
            self._client.disconnect()
            self._client.loop_stop()
            self._looping = False
