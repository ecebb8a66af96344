"""The one module that talks to paho-mqtt: one supervised MQTT session, used by the kiosk's agent and
by every service of the center (allocator, fleet ingest), so each gets the same reconnect and ack rules.

Why a wrapper (Home Assistant's MQTT client is the model):
- Our own reconnect loop with exponential backoff and decorrelated jitter, so 10,000 kiosks that lost
  the broker together do not come back in lockstep (paho's own loop doubles a fixed delay).
- A fresh paho client per connection: paho keeps unsent QoS 1 messages in memory only (its issue #223)
  and would replay them on reconnect next to our outbox; with a fresh client the SQLite outbox is the
  single source of what still has to go. The broker-side session (clean start off + session expiry)
  survives, so commands queued while the kiosk was away are still delivered.
- A wanted-subscription registry re-applied on every connect; handlers wrapped so one failing handler
  cannot stop dispatch, and a message whose handler raised is acknowledged and counted
  (``handler_errors``) so that it cannot hold the session's in-flight window.
- Acknowledgements are reported as (generation, mid): mids restart with every client, the generation
  tells a late PUBACK of an old connection from a new one.
- Incoming QoS 1 messages are acknowledged manually (``ack``), after the handler's work is durable.
- Every packet waiting on the socket is read per turn of paho's loop (``_Client``), not one; the socket
  is read in chunks (``_ChunkedReads``; paho reads a packet's header byte by byte, a TLS call each) and
  the acknowledgements and publishes waiting are written as one send (``_Client._packet_write``; paho
  writes each packet by a call of its own).
- paho's MQTT v5 properties of every received packet are built without rebuilding paho's tables
  (``_LeanProperties``, installed for every paho client of the process on import).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import paho.mqtt.client as paho
from paho.mqtt import _packet as paho_packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion, _ConnectionState
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsConfig:
    """TLS towards the broker: the center's CA and this client's certificate (CN = its identity)."""

    ca_file: Path | None = None  # the center's CA; None = plain TCP (local demo only)
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls: cert_file and key_file go together")
        if self.cert_file is not None and self.ca_file is None:
            raise ValueError("tls: a client certificate needs ca_file (the center's CA)")


@dataclass(frozen=True)
class Message:
    """An incoming message, detached from paho."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    generation: int
    mid: int
    response_topic: str | None = None
    correlation_data: bytes | None = None


def _no_delay(client: paho.Client, userdata: Any, sock: Any) -> None:
    """TCP_NODELAY: paho does not set it, and a small publish right after another (an answer, then its
    PUBACK) otherwise waits for Nagle + the peer's delayed ACK, ~40 ms each (queue numbers: 90 -> 3 ms)."""
    with contextlib.suppress(OSError, AttributeError):  # not a TCP socket (websockets): keep the default
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _paho_tables() -> dict[str, Any]:
    made = Properties(PacketTypes.PUBLISH)
    return {name: getattr(made, name) for name in ("types", "names", "properties")}


class _LeanProperties(Properties):
    """paho's ``Properties`` without two costs it pays for every PUBLISH and PUBACK received
    (paho-mqtt 2.2.0, ``paho.mqtt._packet``): its ``__init__`` builds its tables of the 27 property
    names and types anew for each packet, and ``unpack`` first calls ``clear``, which walks the 27 names
    with ``str.replace`` and ``hasattr`` though a new object has none set. Here the tables are paho's,
    built once and shared (paho only reads them), and ``clear`` deletes only what is set; reading,
    writing and checking properties are paho's own. ``python -m bench.mqtt_decode_bench``: paho's read
    of a v5 PUBLISH without properties, about half of its cost (docs/fleet.md, "Sixth look")."""

    #: the object's own fields, not MQTT properties
    _OWN: ClassVar[tuple[str, ...]] = ("packetType", "types", "names", "properties")
    _TABLES: ClassVar[dict[str, Any]] = _paho_tables()

    def __init__(self, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)
        for name, table in self._TABLES.items():
            object.__setattr__(self, name, table)

    def clear(self) -> None:
        for name in [name for name in vars(self) if name not in self._OWN]:
            delattr(self, name)


# paho makes the properties of a packet it receives in module functions of ``paho.mqtt._packet``
# (decode_publish, the acknowledgements' decoders), with no per-client hook: installed for the process
paho_packet.Properties = _LeanProperties  # type: ignore[misc]


class _ChunkedReads:
    """A connected socket (TLS or plain) read ``CHUNK`` bytes at a time, handed to paho in the pieces it
    asks for. paho reads a packet's first byte, then its length a byte at a time, then the rest: four
    ``SSLSocket.recv`` calls per small message, each releasing and taking again the GIL that paho's
    thread shares with a fleet worker's processing thread; now about one (TLS gives a record per read,
    and Mosquitto writes a record per packet). ``pending`` counts what is held here, so paho's loop
    does not wait in ``select`` while whole packets lie in this buffer. Everything else is the
    socket's."""

    CHUNK = 65536

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._held = b""
        self._pos = 0

    def recv(self, buffer_size: int) -> bytes:
        if self._pos == len(self._held):
            data: bytes = self._sock.recv(max(buffer_size, self.CHUNK))  # raises as the socket does
            if len(data) <= buffer_size:  # all of it asked for (b"" is the end of the stream)
                return data
            self._held, self._pos = data, 0
        start, self._pos = self._pos, min(self._pos + buffer_size, len(self._held))
        piece = self._held[start : self._pos]
        if self._pos == len(self._held):
            self._held, self._pos = b"", 0
        return piece

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)  # an SSLSocket's own decrypted bytes
        return len(self._held) - self._pos + (inner() if inner is not None else 0)

    def send(self, buffer: bytes | bytearray) -> int:
        return int(self._sock.send(buffer))

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def __getattr__(self, name: str) -> Any:  # setsockopt, shutdown, settimeout, getpeercert ...
        return getattr(self._sock, name)


def _coalesced(out: Any, limit: int) -> dict[str, Any] | None:
    """The packets at the head of paho's queue ``out`` that need nothing done once written (QoS 1/2
    publishes: paho waits for their PUBACK; PUBACKs), taken off as one packet of at most about
    ``limit`` bytes; None (and ``out`` as it was) when there are fewer than two. Other threads only
    append to ``out``, and only paho's loop thread takes from it."""
    taken: list[dict[str, Any]] = []
    size = 0
    while out and size < limit:
        head = out[0]
        kind = head["command"] & 0xF0
        if head["pos"] or not (kind == paho.PUBACK or (kind == paho.PUBLISH and head["qos"] > 0)):
            break
        taken.append(out.popleft())
        size += head["to_process"]
    if len(taken) < 2:
        if taken:
            out.appendleft(taken[0])  # as it was
        return None
    return {"command": paho.PUBACK, "mid": 0, "qos": 0, "pos": 0, "to_process": size,
            "packet": b"".join(packet["packet"] for packet in taken), "info": None}


class _Client(paho.Client):
    """paho's client reading every packet that has arrived per turn of its loop (up to
    ``READ_PER_TURN``), where paho reads one unless QoS 2 flows or its own QoS > 0 publishes are in
    flight: a fleet worker receiving thousands of messages a second then paid a ``select``, an SSL
    ``pending`` and the loop's keepalive and write checks per message. Measured with
    ``bench/ingest_profile.py`` (8,000 events): paho's thread 1.01-1.08 -> 0.62-0.87 CPU s. Each
    ``_packet_read`` still reads one whole packet or keeps a partial one for the next turn, as paho's
    own ``loop_read`` does (paho-mqtt 2.2.0; tests/agent/test_mqtt_link.py checks the hooks). Once
    ``disconnect`` was called (paho's ``_state``), a turn reads one packet, so the DISCONNECT goes out."""

    READ_PER_TURN = 200
    #: the most bytes of waiting packets written by one send (``_packet_write``)
    WRITE_CHUNK = 65536
    #: after our DISCONNECT, how long to wait for the broker to close its side (``_sock_close``)
    CLOSE_WAIT_S = 1.0

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        for n in range(max(max_packets, self.READ_PER_TURN)):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            if n and self._state == _ConnectionState.MQTT_CS_DISCONNECTING:
                # Our DISCONNECT is queued, and paho's loop writes only after its read: a batch of
                # handler calls first held a stop of a busy link ~1 s (two turns of 200 x 2.5 ms).
                # One packet per turn from now on, as paho itself reads.
                break
            rc = self._packet_read()
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break  # nothing more on the socket: back to select
            if rc > 0:
                return self._loop_rc_handle(rc)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        return sock if self._transport == "websockets" else _ChunkedReads(sock)

    def _packet_write(self) -> MQTTErrorCode:
        # paho sends each queued packet by a call of its own: a worker acknowledging a batch of 500
        # made 500 TLS writes. The run of them at the head of the queue goes as one packet instead; a
        # partial write leaves the rest of it at the head, as paho does with any packet.
        merged = _coalesced(self._out_packet, self.WRITE_CHUNK)
        if merged is not None:
            self._out_packet.appendleft(merged)  # type: ignore[arg-type]
        return super()._packet_write()

    def _sock_close(self) -> None:
        # paho closes right after writing our DISCONNECT. With bytes from the broker still unread (a
        # SUBACK, the next messages) the kernel then sends RST, and a broker that gets RST drops what it
        # has not read yet of ours: the last PUBACKs (handled messages came again next session) and the
        # DISCONNECT itself (the broker published the Will of a clean stop). So: FIN first, then read
        # and drop until the broker, having read everything, closes (its answer to DISCONNECT).
        sock = self._sock
        if sock is not None and self._state == _ConnectionState.MQTT_CS_DISCONNECTING:
            _close_gracefully(sock, self.CLOSE_WAIT_S)
        super()._sock_close()


def _close_gracefully(sock: Any, timeout_s: float) -> None:
    """Half-close ``sock`` and read it to its end (at most ``timeout_s``); what arrives is dropped (a
    QoS 1 message never acknowledged comes again next session). No TLS close_notify: the broker ends
    the session on the DISCONNECT, and ``SSLSocket.shutdown`` reads the plain socket from then on."""
    deadline = time.monotonic() + timeout_s
    with contextlib.suppress(OSError, ValueError):  # reset, timed out, not a socket (websockets)
        sock.shutdown(socket.SHUT_WR)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(65536):
                return


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    delay_s: int = 0


class Backoff:
    """Exponential backoff with decorrelated jitter (AWS architecture blog): next = U(min, 3 x previous)."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self._rng = rng or random.Random()
        self._previous = min_s

    def next(self) -> float:
        delay = min(self.max_s, self._rng.uniform(self.min_s, self._previous * 3))
        self._previous = max(delay, self.min_s)
        return delay

    def reset(self) -> None:
        self._previous = self.min_s


def topic_matches(topic_filter: str, topic: str) -> bool:
    """paho's matcher, but a shared subscription (MQTT v5 ``$share/{group}/{filter}``) matches what its
    filter matches: the broker delivers the plain topic, and paho compares ``$share/...`` literally."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        if len(parts) < 3:
            return False
        topic_filter = parts[2]
    return bool(paho.topic_matches_sub(topic_filter, topic))


def _plain_filter(topic_filter: str) -> str:
    """The filter a subscription's messages match: a shared one's (``$share/{group}/{filter}``)."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        return parts[2] if len(parts) == 3 else ""
    return topic_filter


class Routes:
    """Which subscriptions a topic matches, built once per change of the subscriptions with paho's own
    matcher (a trie): ``topic_matches`` per filter built a matcher per call, ~60 µs per message over the
    ingest's seven filters on paho's network thread (docs/fleet.md, "Where the worker's time went").
    A topic's answer is remembered (a province's few thousand kiosk topics come again and again; the
    trie walk was ~13 % of paho's thread); the memo starts again past ``MEMO_LIMIT`` topics, since a
    topic is whatever a client publishes."""

    MEMO_LIMIT = 20_000

    def __init__(self, filters: list[str]) -> None:
        self._order = {f: i for i, f in enumerate(filters)}  # handlers run in subscription order
        self._memo: dict[str, tuple[str, ...]] = {}
        self._matcher = MQTTMatcher()
        for topic_filter in filters:
            plain = _plain_filter(topic_filter)
            if not plain:
                continue
            try:
                self._matcher[plain].append(topic_filter)
            except KeyError:
                self._matcher[plain] = [topic_filter]

    def filters(self, topic: str) -> tuple[str, ...]:
        """The filters ``topic`` matches, in subscription order (the caller holds the link's lock)."""
        found = self._memo.get(topic)
        if found is None:
            matched = [f for group in self._matcher.iter_match(topic) for f in group]
            if len(matched) > 1:
                matched.sort(key=self._order.__getitem__)
            if len(self._memo) >= self.MEMO_LIMIT:
                self._memo.clear()
            found = self._memo[topic] = tuple(matched)
        return found


MessageHandler = Callable[[Message], None]
AckHandler = Callable[[int, int, bool, str], None]  # generation, mid, failed, reason


class MqttLink:
    """One MQTT session, kept up by a supervisor thread until ``stop``."""

    #: a connection that lasted this long resets the backoff (a flapping broker keeps it growing)
    STABLE_AFTER_S = 10.0

    def __init__(
        self,
        *,
        client_id: str,
        host: str,
        port: int,
        tls: TlsConfig,
        protocol: Literal["5", "3.1.1"] = "5",
        keepalive_s: int = 30,
        session_expiry_s: int = 86400,
        backoff: Backoff,
        will: Callable[[], Will] | None = None,
        on_connected: Callable[[int], None] | None = None,
        on_disconnected: Callable[[int, str], None] | None = None,
        on_ack: AckHandler | None = None,
        max_inflight: int = 1000,
    ) -> None:
        self.client_id = client_id
        self.host = host
        self.port = port
        self.tls = tls
        self.protocol = protocol
        self.keepalive_s = keepalive_s
        self.session_expiry_s = session_expiry_s
        self.backoff = backoff
        self._will = will
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_ack = on_ack
        self._max_inflight = max_inflight
        self._subscriptions: dict[str, tuple[int, MessageHandler]] = {}
        self._routes = Routes([])
        self._lock = threading.Lock()
        self._client: paho.Client | None = None
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()  # every wanted subscription of this connection SUBACKed
        self._pending_subacks: set[int] = set()
        self._lost = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error = ""
        self.connect_count = 0
        #: incoming messages whose handler raised (acknowledged anyway; see ``_handle_message``)
        self.handler_errors = 0

    # -- public API ------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def generation(self) -> int:
        return self._generation

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """Connected and every wanted subscription acknowledged: from now on nothing sent to us is lost."""
        return self._subscribed.wait(timeout)

    def subscribe(self, topic_filter: str, qos: int, handler: MessageHandler) -> None:
        """Register a wanted subscription; (re)applied on every connect."""
        with self._lock:
            self._subscriptions[topic_filter] = (qos, handler)
            self._routes = Routes(list(self._subscriptions))
            client = self._client if self.connected else None
        if client is not None:
            client.subscribe(topic_filter, qos)

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        *,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> tuple[int, int] | None:
        """Hand a message to the current connection: (generation, mid), or None when not connected."""
        with self._lock:
            client, generation = self._client, self._generation
        if client is None or not self.connected:
            return None
        properties = None
        if self.protocol == "5" and (response_topic or correlation_data):
            properties = Properties(PacketTypes.PUBLISH)
            if response_topic:
                properties.ResponseTopic = response_topic
            if correlation_data:
                properties.CorrelationData = correlation_data
        try:
            info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        except (ValueError, OSError) as exc:  # bad topic, payload over the MQTT limit, socket gone
            log.error("cannot publish to %s: %s", topic, exc)
            return None
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return None
        return generation, info.mid

    def ack(self, generation: int, mid: int, qos: int) -> None:
        """Acknowledge an incoming QoS 1 message once its effect is durable (manual ack)."""
        with self._lock:
            client = self._client if generation == self._generation else None
        if client is not None and qos > 0:
            client.ack(mid, qos)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="mqtt-supervisor", daemon=True)
        self._thread.start()

    def stop(self, last: tuple[str, bytes, bool] | None = None, timeout: float = 5.0) -> None:
        """Publish ``last`` (topic, payload, retain) at QoS 1 and wait for its PUBACK, then disconnect."""
        self._stopping.set()
        with self._lock:
            client = self._client
        if client is not None and self.connected:
            if last is not None:
                info = client.publish(last[0], last[1], qos=1, retain=last[2])
                try:
                    info.wait_for_publish(timeout)
                except (RuntimeError, ValueError) as exc:
                    log.warning("final status not acknowledged: %s", exc)
            client.disconnect()  # reason 0: the broker drops the Will
        self._lost.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def reconnect(self) -> None:
        """End the current connection with a normal DISCONNECT (the broker drops the Will) so that the
        next one, after the backoff's minimum, is made with the TLS files as they are now (a renewed
        certificate). The broker session survives (clean start off)."""
        with self._lock:
            client = self._client
        if client is not None and self.connected:
            client.disconnect()

    # -- the supervisor -------------------------------------------------------------------------------

    def _new_client(self, will: Will | None) -> paho.Client:
        v5 = self.protocol == "5"
        client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        client.max_inflight_messages_set(self._max_inflight)
        client.max_queued_messages_set(0)
        if self.tls.ca_file is not None:
            client.tls_set(
                ca_certs=str(self.tls.ca_file),
                certfile=str(self.tls.cert_file) if self.tls.cert_file else None,
                keyfile=str(self.tls.key_file) if self.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will is not None:  # a service without a status of its own (the fleet's ingest) has none
            will_props = None
            if v5 and will.delay_s:
                will_props = Properties(PacketTypes.WILLMESSAGE)
                will_props.WillDelayInterval = will.delay_s
            client.will_set(will.topic, will.payload, qos=1, retain=True, properties=will_props)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        client.on_subscribe = self._handle_subscribe
        client.on_socket_open = _no_delay
        return client

    def _supervise(self) -> None:
        """Keep a session up until stop; a failure of one round is logged and retried, never fatal."""
        while not self._stopping.is_set():
            try:
                self._one_session()
            except Exception as exc:  # e.g. unreadable certificate files: say so and keep trying
                self.last_error = f"MQTT session failed: {type(exc).__name__}: {exc}"
                log.error("%s", self.last_error)
                with self._lock:
                    self._client = None
                self._connected.clear()
                self._wait_backoff()

    def _one_session(self) -> None:
        """One connection: connect, run until it is lost, then wait the backoff."""
        if not self._stopping.is_set():
            will = self._will() if self._will is not None else None
            client = self._new_client(will)
            with self._lock:
                self._generation += 1
                generation = self._generation
                self._client = client
            self._lost.clear()
            connect_props = None
            if self.protocol == "5":
                connect_props = Properties(PacketTypes.CONNECT)
                connect_props.SessionExpiryInterval = self.session_expiry_s
            try:
                client.connect(
                    self.host,
                    self.port,
                    keepalive=self.keepalive_s,
                    clean_start=False if self.protocol == "5" else paho.MQTT_CLEAN_START_FIRST_ONLY,
                    properties=connect_props,
                )
            except (OSError, ssl.SSLError, ValueError) as exc:
                self.last_error = f"connect to {self.host}:{self.port}: {exc}"
                log.info("%s", self.last_error)
                self._wait_backoff()
                return
            client.loop_start()
            started = time.monotonic()
            self._lost.wait()
            client.loop_stop()
            was_connected = self._connected.is_set()
            self._connected.clear()
            self._subscribed.clear()
            with self._lock:
                self._client = None
            if was_connected and self._on_disconnected is not None:
                self._guard(self._on_disconnected, generation, self.last_error)
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= self.STABLE_AFTER_S:
                self.backoff.reset()
            self._wait_backoff()

    def _wait_backoff(self) -> None:
        delay = self.backoff.next()
        log.debug("reconnecting in %.2f s", delay)
        self._stopping.wait(delay)

    # -- paho callbacks (network thread) --------------------------------------------------------------

    def _handle_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            log.warning("%s", self.last_error)
            self._lost.set()
            return
        self.connect_count += 1
        with self._lock:
            wanted = list(self._subscriptions.items())
            generation = self._generation
        self._subscribed.clear()
        with self._lock:
            self._pending_subacks = set()
            for topic_filter, (qos, _handler) in wanted:
                result, mid = client.subscribe(topic_filter, qos)
                if result == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
                    self._pending_subacks.add(mid)
            if not self._pending_subacks:
                self._subscribed.set()
        self._connected.set()
        log.info("connected to %s:%d (session present: %s)", self.host, self.port, flags.session_present)
        if self._on_connected is not None:
            self._guard(self._on_connected, generation)

    def _handle_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        refused = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            log.error("broker refused a subscription: %s", ", ".join(refused))
        with self._lock:
            self._pending_subacks.discard(mid)
            if not self._pending_subacks:
                self._subscribed.set()

    def _handle_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if not self._stopping.is_set():
            self.last_error = f"connection lost: {reason}"
            log.info("%s", self.last_error)
        self._lost.set()

    def _handle_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        props = getattr(message, "properties", None)
        response_topic = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        topic = message.topic  # decoded by paho on every access
        msg = Message(
            topic,
            bytes(message.payload),
            message.qos,
            bool(message.retain),
            self._generation,
            message.mid,
            response_topic,
            correlation,
        )
        with self._lock:
            subscriptions, routes = self._subscriptions, self._routes
            handlers = [subscriptions[f][1] for f in routes.filters(topic)]
        if not handlers:
            self.ack(msg.generation, msg.mid, msg.qos)
        failed = [handler for handler in handlers if not self._guard(handler, msg)]
        if failed:
            # Acknowledged anyway: left unacknowledged, it would hold one of the broker's in-flight
            # slots of this session until the next connection (after 100 of them the broker sends
            # nothing more) and then come back to fail again.
            self.handler_errors += 1
            self.ack(msg.generation, msg.mid, msg.qos)

    def _handle_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        # Called with paho's _out_message_mutex held: take no lock that a publishing thread may hold.
        if self._on_ack is not None:
            failed = bool(getattr(reason, "is_failure", False))
            self._guard(self._on_ack, self._generation, mid, failed, str(reason))

    @staticmethod
    def _guard(func: Callable[..., None], *args: Any) -> bool:
        """One failing callback must not kill paho's network thread or stop dispatch; False if it raised."""
        try:
            func(*args)
        except Exception:
            log.exception("MQTT callback %s failed", getattr(func, "__qualname__", func))
            return False
        return True



def take_over(
    *, client_id: str, host: str, port: int, ca_file: Path, cert_pem: bytes, key_pem: bytes,
    timeout_s: float = 5.0, session_expiry_s: int = 86400,
) -> str:
    """Connect once as ``client_id`` with a certificate held in memory, then disconnect normally: the
    broker closes any other connection with that client id (MQTT's session takeover). Provisioning uses
    it to end the connection of a revoked certificate, which Mosquitto cannot do on its own without a
    restart. Clean start off and a session expiry: the kiosk's broker session (queued commands) is kept
    for its replacement. Returns "" when done, else why not."""
    import os
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="motcua-takeover-")  # 0700: nobody else reads the key
    done = threading.Event()
    outcome: list[str] = []

    def on_connect(client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        outcome.append("" if not reason.is_failure else f"refused: {reason}")
        done.set()

    v5 = MQTTProtocolVersion.MQTTv5
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=v5)
    try:
        cert_file, key_file = os.path.join(folder, "c.pem"), os.path.join(folder, "k.pem")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key_pem)
        with open(cert_file, "wb") as handle:
            handle.write(cert_pem)
        client.tls_set(ca_certs=str(ca_file), certfile=cert_file, keyfile=key_file,
                       cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # loaded into the TLS context: the files can go
    client.on_connect = on_connect
    client.on_socket_open = _no_delay
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry_s
    try:
        client.connect(host, port, keepalive=10, clean_start=False, properties=props)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return f"connect to {host}:{port}: {exc}"
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            return f"no CONNACK from {host}:{port} within {timeout_s} s"
        if outcome and outcome[0]:
            return outcome[0]
        client.disconnect()
        return ""
    finally:
        client.loop_stop()
