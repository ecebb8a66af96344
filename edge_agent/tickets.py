"""The agent's relay for queue numbers: the app asks on ``<data_dir>/agent.sock``, the allocator answers
over MQTT v5 request/response on the agent's one session (docs/mqtt.md, "Queue numbers").

Why a relay and not MQTT in the app: the agent owns the kiosk's only MQTT session and identity, and
the app must print within 2 s whatever the network does. So the relay answers fast when it knows it
cannot get an answer: not connected, or the allocator's retained status says it is offline. Then the
app prints from its offline block at once instead of waiting out its budget.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from common.errors import NetworkError
from common.ipc import ControlServer
from common.mqtt import Message, MqttLink
from contract.errors import ContractError
from contract.tickets import AllocatorStatus, TicketRequest, TicketResponse
from contract.topics import KioskTopics

log = logging.getLogger(__name__)

SOCKET_NAME = "agent.sock"
#: longest wait the app may ask for (it prints offline after its own budget anyway)
MAX_WAIT_S = 5.0


class TicketRelayError(NetworkError):
    """No answer from the allocator: the app takes a number from its offline block."""

    code = "allocator_unreachable"


class _Waiter:
    __slots__ = ("answer", "event")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.answer: dict[str, Any] | None = None


class TicketRelay:
    """Forwards ``ticket.allocate`` / ``ticket.report`` from the app to the allocator and back."""

    def __init__(self, link: MqttLink, topics: KioskTopics, data_dir: Path) -> None:
        self.link = link
        self.topics = topics
        self.request_topic = topics.ticket_req
        self.response_topic = topics.ticket_res
        self.server = ControlServer(data_dir / SOCKET_NAME)
        self._waiters: dict[str, _Waiter] = {}
        self._lock = threading.Lock()
        #: what the allocator's retained status said last; None until heard
        self.allocator_state: str | None = None
        self.forwarded = 0
        self.late_answers = 0

    def start(self) -> None:
        self.link.subscribe(self.response_topic, 1, self._on_response)
        # QoS 0: a state, not an event. At QoS 1 the broker queues every birth and stop in this kiosk's
        # session while it is away and replays them on its return, so the relay would believe stale
        # states one after another; the retained copy sent on each subscribe is the current one.
        self.link.subscribe(self.topics.center.allocator_status, 0, self._on_allocator_status)
        self.server.register("ticket.allocate", lambda args: self._forward("allocate", args))
        self.server.register("ticket.report", lambda args: self._forward("report", args))
        self.server.register("ticket.link", lambda args: self.state())
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        with self._lock:
            for waiter in self._waiters.values():
                waiter.event.set()

    def state(self) -> dict[str, Any]:
        return {"connected": self.link.connected, "allocator": self.allocator_state}

    # -- app side (control-socket threads) ------------------------------------------------------------

    def _forward(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            request = TicketRequest.from_data(args.get("request"))
        except ContractError as exc:
            raise ValueError(f"'request' is not a valid {TicketRequest.SCHEMA}: {exc.message}") from None
        if request.op != op:
            raise ValueError(f"'request' has op {request.op!r}, expected {op!r}")
        request_id = request.request_id
        timeout_ms = args.get("timeout_ms", 1000)
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int | float):
            raise ValueError("'timeout_ms' must be a number")
        wait_s = min(MAX_WAIT_S, max(0.0, float(timeout_ms) / 1000))
        if not self.link.connected:
            raise TicketRelayError("not connected to the broker")
        if self.allocator_state == "offline":
            raise TicketRelayError("the center allocator is offline")
        waiter = _Waiter()
        with self._lock:
            self._waiters[request_id] = waiter
        try:
            sent = self.link.publish(
                self.request_topic, request.to_payload(), qos=1,
                response_topic=self.response_topic, correlation_data=request_id.encode(),
            )
            if sent is None:
                raise TicketRelayError("not connected to the broker")
            self.forwarded += 1
            if not waiter.event.wait(wait_s) or waiter.answer is None:
                raise TicketRelayError(f"no answer from the allocator within {wait_s * 1000:.0f} ms")
            return waiter.answer
        finally:
            with self._lock:
                self._waiters.pop(request_id, None)

    # -- MQTT side (paho's network thread: quick) -----------------------------------------------------

    def _on_response(self, message: Message) -> None:
        try:
            try:
                answer = TicketResponse.parse(message.payload)
            except ContractError as exc:
                log.warning("ticket answer refused: %s", exc.message)
                return
            key = message.correlation_data.decode("utf-8", "replace") if message.correlation_data else None
            key = key or answer.request_id
            with self._lock:
                waiter = self._waiters.get(str(key))
            if waiter is None:
                # The app gave up on it and printed from its block; its report settles the books.
                self.late_answers += 1
                return
            waiter.answer = answer.to_data()
            waiter.event.set()
        finally:
            self.link.ack(message.generation, message.mid, message.qos)

    def _on_allocator_status(self, message: Message) -> None:
        try:
            state: str | None = AllocatorStatus.parse(message.payload).state if message.payload else None
        except ContractError as exc:
            log.warning("allocator status refused: %s", exc.message)
            state = None
        finally:
            self.link.ack(message.generation, message.mid, message.qos)
        self.allocator_state = state
        log.info("center allocator is %s", self.allocator_state or "unknown")


def wait_for(relay: TicketRelay, timeout: float) -> bool:
    """Until the relay is connected and has heard the allocator (tests, benchmarks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if relay.link.connected and relay.allocator_state == "online":
            return True
        time.sleep(0.01)
    return False
