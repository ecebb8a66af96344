"""The allocator service: the MQTT session, a supervised worker between it and the book.

- The MQTT session is ``common.mqtt.MqttLink`` (paho lives in one module), with session expiry 0:
  requests published while the allocator is away are dropped by the broker, because their kiosks have
  long since printed from their offline blocks and will report those numbers themselves.
- Group commit: requests that arrive together are answered from one transaction (one fsync), each
  inside its own savepoint (``AllocatorBook.guarded``): a message that raises is answered
  ``bad_request`` and the others of its group go on (issue 10: one message killed the worker).
- Every message is acknowledged to the broker once handled, whatever happened: an unacknowledged one
  would hold one of the broker's in-flight slots for this session forever.
- A supervisor thread restarts the worker if it ever dies, expires unconfirmed numbers, and republishes
  the retained ``allocator-status/1`` with its health when something in it changed that is not a mere
  counter (every kiosk receives it), and every minute for the counters.
- Two retained center-wide messages are followed in the network thread (small, parsed by the contract
  within their size limits): the queue's stats (``expected_wait_min`` of each answer) and the
  center-wide configuration push (the catalog of services).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from common.mqtt import Backoff, Message, MqttLink, TlsConfig, Will
from contract.errors import ContractError
from contract.queue import QueueStats
from contract.tickets import (
    ERR_BAD_REQUEST,
    AllocatorHealth,
    AllocatorStatus,
    NumberPlan,
    TicketRequest,
    TicketResponse,
    center_zone,
)
from contract.topics import CenterTopics, parse_topic
from contract.wire import now_iso, salvage_request_id
from fleet.allocator.book import AllocatorBook, AllocatorError
from fleet.allocator.policy import Catalog, Limits, Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AllocatorSettings:
    center_id: str
    db_path: Path
    host: str = "127.0.0.1"
    port: int = 8884
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    topic_root: str = "motcua/v1"
    timezone: str = "Asia/Ho_Chi_Minh"
    plan: NumberPlan = field(default_factory=NumberPlan)
    client_id: str = ""
    #: most messages answered from one transaction
    batch_max: int = 200
    limits: Limits = field(default_factory=Limits)
    #: ``enrolled-kiosks/1`` of the center (provisioning); None: enrollment not checked (a test broker)
    registry_file: Path | None = None
    #: a TOML file with the center's ``[[services]]``; the center-wide push replaces it when it has some
    catalog_file: Path | None = None
    #: how often the supervisor looks (worker alive, health changed); expiry runs every ``sweep_s``
    supervise_s: float = 0.5
    sweep_s: float = 30.0
    #: least time between two republished statuses; the counters alone refresh every ``status_refresh_s``
    status_min_interval_s: float = 2.0
    status_refresh_s: float = 60.0


def _significant(health: AllocatorHealth) -> AllocatorHealth:
    """The health without the counters that move with every request."""
    return dataclasses.replace(health, answered=0, refused=0, rate_limited=0, expired=0)


@dataclass(frozen=True)
class _Incoming:
    topic: str
    payload: bytes
    qos: int
    generation: int
    mid: int
    response_topic: str | None
    correlation: bytes | None


_Reply = tuple[str, bytes, bytes | None]


class Allocator:
    """The allocator service (see the module docstring)."""

    def __init__(self, settings: AllocatorSettings, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.topics = CenterTopics(settings.center_id, settings.topic_root)
        registry_file = settings.registry_file
        self.registry = Registry(registry_file, settings.center_id) if registry_file is not None else None
        self.catalog = Catalog.from_file(settings.catalog_file) if settings.catalog_file else Catalog()
        self._queue_stats: QueueStats | None = None
        self.book = AllocatorBook(
            settings.db_path, settings.plan, center_zone(settings.timezone), limits=settings.limits,
            registry=self.registry, catalog=self.catalog, pace=self._pace,
        )
        self._queue: queue.Queue[_Incoming | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        self.answered = 0
        self.message_errors = 0
        self.store_errors = 0
        self.worker_restarts = 0
        self._published: AllocatorHealth | None = None
        self._published_at = 0.0
        will = Will(self.topics.allocator_status, self._status("offline", "lost"))
        self.link = MqttLink(
            client_id=settings.client_id or f"allocator-{settings.center_id}",
            host=settings.host,
            port=settings.port,
            tls=TlsConfig(settings.ca_file, settings.cert_file, settings.key_file),
            session_expiry_s=0,
            backoff=Backoff(0.2, 10.0),
            will=lambda: will,
            on_connected=self._on_connected,
            max_inflight=1000,
        )

    # -- status and health ---------------------------------------------------------------------------

    def health(self) -> AllocatorHealth:
        stats = self.book.stats
        registry = self.registry
        catalog = self.catalog.services()
        queue_stats = self._queue_stats
        return AllocatorHealth(
            worker_alive=self._thread is not None and self._thread.is_alive(),
            worker_restarts=self.worker_restarts,
            message_errors=self.message_errors,
            store_errors=self.store_errors,
            answered=self.answered,
            refused=stats.refused,
            rate_limited=stats.rate_limited,
            expired=stats.expired,
            catalog_services=len(catalog) if catalog else None,
            registry_generation=registry.generation if registry is not None else None,
            registry_problem=registry.problem if registry is not None else "",
            queue_stats_day=queue_stats.day if queue_stats is not None else None,
        )

    def _status(
        self, state: Literal["online", "offline"], reason: Literal["birth", "shutdown", "lost"],
        health: AllocatorHealth | None = None,
    ) -> bytes:
        plan = self.settings.plan
        status = AllocatorStatus(state, reason, plan.offline_base, plan.offline_block, health=health)
        return status.to_payload()

    def _publish_status(self) -> None:
        health = self.health()
        if self.link.publish(self.topics.allocator_status, self._status("online", "birth", health),
                             qos=1, retain=True) is not None:
            self._published, self._published_at = health, time.monotonic()

    def _status_due(self) -> bool:
        """Every kiosk of the center receives the retained status: republish when something a person
        must see changed (not for every answer), or every ``status_refresh_s`` for the counters."""
        since = time.monotonic() - self._published_at
        if since < self.settings.status_min_interval_s:
            return False
        if self._published is None or since >= self.settings.status_refresh_s:
            return True
        return _significant(self.health()) != _significant(self._published)

    def _on_connected(self, generation: int) -> None:
        self._publish_status()

    # -- messages ------------------------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        self._queue.put(
            _Incoming(
                message.topic, message.payload, message.qos, message.generation, message.mid,
                message.response_topic, message.correlation_data,
            )
        )

    def _on_queue_stats(self, message: Message) -> None:
        try:
            self._queue_stats = QueueStats.parse(message.payload) if message.payload else None
        except ContractError as exc:
            log.warning("queue stats refused (the last ones stay in use): %s", exc.message)
        finally:
            self.link.ack(message.generation, message.mid, message.qos)

    def _on_center_config(self, message: Message) -> None:
        try:
            self.catalog.on_push(message.payload)
        except ContractError as exc:
            log.warning("center configuration refused (the catalog stays as it was): %s", exc.message)
        finally:
            self.link.ack(message.generation, message.mid, message.qos)

    def _pace(self, day: str, service: str) -> float | None:
        """Seconds per person of ``service`` from the queue's stats of ``day``; None when unknown."""
        stats = self._queue_stats
        if stats is None or stats.day != day:
            return None
        entry = stats.service(service)
        return entry.per_person_s if entry is not None else None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self.registry is not None:
            self.registry.current()  # logs at once when the file is missing or invalid
        self.link.subscribe(self.topics.all_ticket_requests, 1, self._on_message)
        self.link.subscribe(self.topics.queue_called, 1, self._on_message)
        self.link.subscribe(self.topics.queue_stats, 1, self._on_queue_stats)
        self.link.subscribe(self.topics.config_set, 1, self._on_center_config)
        self._start_worker()
        self._supervisor = threading.Thread(target=self._supervise, name="allocator-supervisor", daemon=True)
        self._supervisor.start()
        self.link.start()

    def _start_worker(self) -> None:
        self._thread = threading.Thread(target=self._work, name="allocator", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        return self.link.wait_connected(timeout)

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(10)
        if self._supervisor is not None:
            self._supervisor.join(5)
        self.link.stop(last=(self.topics.allocator_status, self._status("offline", "shutdown"), True))
        self.book.close()

    def _supervise(self) -> None:
        """Restart a dead worker, expire unconfirmed numbers, republish the health when it changed."""
        next_sweep = time.monotonic() + self.settings.sweep_s
        while not self._stopping.wait(self.settings.supervise_s):
            try:
                if self._thread is not None and not self._thread.is_alive() and not self._stopping.is_set():
                    self.worker_restarts += 1
                    log.error("the allocator's worker died; restarting it (restart %d)", self.worker_restarts)
                    self._start_worker()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.settings.sweep_s
                    self._sweep(self.clock())
                if self.link.connected and self._status_due():
                    self._publish_status()
            except AllocatorError as exc:
                self.store_errors += 1
                log.error("%s", exc.message)
            except Exception:
                log.exception("allocator supervisor: one round failed")

    def _sweep(self, now: datetime) -> int:
        """Expire unconfirmed online numbers (``Limits.unconfirmed_ttl_s``); how many."""
        return self.book.transaction(lambda: [self.book.expire_unconfirmed(now)])[0]

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._queue.put(None)  # a restarted worker must see the stop too
                return
            batch = [first]
            while len(batch) < self.settings.batch_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            try:
                self._answer(batch)
            except AllocatorError as exc:
                # Nothing was committed and nothing is answered: the kiosks print from their blocks.
                self.store_errors += 1
                log.error("%s", exc.message)
                time.sleep(0.5)
            except Exception:
                self.message_errors += 1
                log.exception("the allocator could not answer a group of %d messages", len(batch))
            finally:
                for message in batch:
                    self.link.ack(message.generation, message.mid, message.qos)

    def _kiosk_of(self, topic: str) -> str | None:
        """The kiosk id of a request topic of this center (the broker's ACL vouches for it)."""
        try:
            ref = parse_topic(topic, self.settings.topic_root)
        except ContractError:
            return None
        if ref.center_id != self.settings.center_id or ref.channel != "ticket/req":
            return None
        return ref.kiosk_id

    def _one(self, message: _Incoming, now: datetime) -> _Reply | None:
        """One message inside its savepoint: the answer to publish, or None."""
        if message.topic == self.topics.queue_called:
            self.book.called(message.payload, now)
            return None
        kiosk = self._kiosk_of(message.topic)
        if kiosk is None:
            log.warning("ignored a request on %s", message.topic[:200])
            return None
        answer = self.book.handle(kiosk, message.payload, now)
        topic = self.topics.kiosk(kiosk).ticket_res
        if message.response_topic and message.response_topic != topic:
            log.warning("kiosk %s asked for answers on %s; answering on %s",
                        kiosk, message.response_topic[:200], topic)
        return topic, answer.to_payload(), message.correlation

    def _failed(self, message: _Incoming, exc: Exception, now: datetime) -> _Reply | None:
        """The answer to a message whose handling raised: ``bad_request``, when it came from a kiosk."""
        self.message_errors += 1
        log.error("a message on %s could not be handled (%s: %s)", message.topic[:200],
                  type(exc).__name__, str(exc)[:200], exc_info=exc)
        kiosk = self._kiosk_of(message.topic)
        if kiosk is None:
            return None
        request_id = salvage_request_id(message.payload, TicketRequest.MAX_BYTES)
        answer = TicketResponse.refused(
            request_id, None, ERR_BAD_REQUEST, "the allocator could not handle this request", now_iso(now)
        )
        return self.topics.kiosk(kiosk).ticket_res, answer.to_payload(), message.correlation

    def _answer(self, batch: list[_Incoming]) -> None:
        now = self.clock()
        replies: list[_Reply] = []

        def work() -> list[None]:
            for message in batch:
                outcome = self.book.guarded(lambda m=message: self._one(m, now))  # type: ignore[misc]
                reply = self._failed(message, outcome, now) if isinstance(outcome, Exception) else outcome
                if reply is not None:
                    replies.append(reply)
            return []

        self.book.transaction(work)
        # Durable first, then answered, then (in _work) acknowledged to the broker.
        for topic, body, correlation in replies:
            self.link.publish(topic, body, qos=1, correlation_data=correlation)
        self.answered += len(replies)
