"""An independent MQTT client for tests: the fleet's side of the contract (a separate paho client)."""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from provisioning.pki import Issued


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    correlation: bytes | None = None

    def json(self) -> Any:
        return json.loads(self.payload)


class Peer:
    def __init__(
        self,
        port: int,
        ca_file: str,
        identity: Issued,
        *,
        client_id: str | None = None,
        persistent: bool = False,
    ) -> None:
        self.client_id = client_id or f"peer-{uuid.uuid4().hex[:8]}"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.tls_set(
            ca_certs=ca_file,
            certfile=str(identity.cert_file),
            keyfile=str(identity.key_file),
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # floats work (time.sleep)
        self.messages: list[Received] = []
        self.suback: list[list[int]] = []
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self._filters: list[tuple[str, int]] = []
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.port = port
        self.persistent = persistent

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            return
        for topic_filter, qos in self._filters:
            client.subscribe(topic_filter, qos)
        self._connected.set()

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        with self._cond:
            self.suback.append([r.value for r in reasons])
            self._cond.notify_all()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        corr = getattr(message.properties, "CorrelationData", None) if message.properties else None
        with self._cond:
            self.messages.append(Received(message.topic, bytes(message.payload), bool(message.retain), corr))
            self._cond.notify_all()

    def connect(self, *filters: str, qos: int = 1) -> Peer:
        self._filters = [(f, qos) for f in filters]
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600 if self.persistent else 0
        self.client.connect(
            "127.0.0.1", self.port, keepalive=10, clean_start=not self.persistent, properties=props
        )
        self.client.loop_start()
        assert self._connected.wait(10), "peer could not connect"
        self.wait(lambda: len(self.suback) >= (1 if filters else 0), 10)
        return self

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        response_topic: str | None = None,
        correlation: bytes | None = None,
    ) -> None:
        props = None
        if response_topic or correlation:
            props = Properties(PacketTypes.PUBLISH)
            if response_topic:
                props.ResponseTopic = response_topic
            if correlation:
                props.CorrelationData = correlation
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        info.wait_for_publish(10)

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.2))
        return True

    def on(self, topic: str, live: bool = False) -> list[Received]:
        """Messages on ``topic``; ``live``: only those published while we were subscribed (not retained)."""
        with self._cond:
            return [m for m in self.messages if m.topic == topic and not (live and m.retain)]

    def on_prefix(self, prefix: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic.startswith(prefix)]

    def wait_for(
        self,
        topic: str,
        predicate: Callable[[Any], bool] = lambda d: True,
        timeout: float = 10.0,
        live: bool = False,
    ) -> Any:
        """The first JSON message on ``topic`` that satisfies ``predicate``; fails the test on timeout."""
        found: list[Any] = []

        def check() -> bool:
            for m in self.on(topic, live):
                data = m.json() if m.payload else None
                if data is not None and predicate(data):
                    found.append(data)
                    return True
            return False

        assert self.wait(check, timeout), (
            f"nothing matching on {topic}; got {[m.payload[:200] for m in self.on(topic)]}"
        )
        return found[0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
