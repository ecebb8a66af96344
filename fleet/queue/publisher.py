"""The queue on the contract: publishes the outbox (``queue_steps`` not yet published) and the queue now.

- every step as ``queue-event/1`` on ``_center/queue/event`` (QoS 1; the bridge takes it to the
  province), in ``seq`` order; a call also as ``queue-called/1`` on ``_center/queue/called``, which
  the allocator consumes so that its ``waiting_ahead`` leaves called tickets out;
- ``queue-stats/1`` retained on ``_center/queue/stats`` (waiting, counters open and the expected wait
  per service), after changes and at least every ``stats_every_s``: what the allocator puts into its
  answers as ``expected_wait_min``.

A step is marked published only after the broker acknowledged every message made from it, so a
restart of this process, of the web or of the broker loses nothing: at worst a step is sent twice
(consumers deduplicate on ``event_id``). Run it once per store: ``main.py fleet queue publish``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from common.mqtt import Backoff, MqttLink, TlsConfig, Will
from contract.queue import QueueEvent, QueueStats, ServiceWait, expected_wait_min
from contract.tickets import QueueCalled
from contract.topics import CenterTopics
from contract.wire import now_iso
from fleet.queue.engine import Queue
from fleet.queue.models import Step, Ticket

log = logging.getLogger(__name__)


def queue_event(step: Step, ticket: Ticket | None) -> QueueEvent:
    """The contract's message of one step (only what the contract carries: never anything personal)."""
    d = step.detail
    ticket_fields: dict[str, Any] = {}
    if ticket is not None:
        ticket_fields = {
            "day": step.day,
            "number": step.number,
            "service": step.service,
            "priority": ticket.priority,
            "issued_at": now_iso(ticket.issued_at),
            "source": ticket.source if ticket.source in ("online", "offline") else None,
        }
    return QueueEvent(
        step.event_id,
        step.seq,
        cast(Any, step.kind),
        now_iso(step.at),
        counter=step.counter,
        officer=step.officer,
        calls=d.get("calls"),
        waited_s=d.get("waited_s"),
        served_s=d.get("served_s"),
        to_service=d.get("to_service"),
        to_counter=d.get("to_counter"),
        level=d.get("level"),
        scale=d.get("scale"),
        via=d.get("via"),
        **ticket_fields,
    )


def queue_stats(queue: Queue, center_id: str) -> QueueStats:
    paces = queue.paces(center_id)
    return QueueStats(
        queue.today(),
        [
            ServiceWait(
                p.service,
                p.waiting,
                p.open_counters,
                p.service_s,
                p.per_person_s,
                expected_wait_min(p.waiting, p.per_person_s),
            )
            for p in paces.values()
        ][:40],
        now_iso(queue.db.now()),
    )


@dataclass(frozen=True)
class PublisherSettings:
    center_id: str
    host: str = "127.0.0.1"
    port: int = 8884
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    topic_root: str = "motcua/v1"
    client_id: str = "queue-publisher"
    poll_s: float = 0.2
    stats_every_s: float = 10.0
    ack_timeout_s: float = 5.0


class QueuePublisher:
    def __init__(self, queue: Queue, settings: PublisherSettings) -> None:
        self.queue = queue
        self.settings = settings
        self._acked: set[tuple[int, int]] = set()
        self._ack_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0
        self.topics = CenterTopics(settings.center_id, settings.topic_root)
        # publisher gone = the expected wait is no longer known: the retained stats are cleared
        self._will = Will(self.topics.queue_stats, b"")
        self.link = MqttLink(
            client_id=settings.client_id,
            host=settings.host,
            port=settings.port,
            tls=TlsConfig(settings.ca_file, settings.cert_file, settings.key_file),
            session_expiry_s=0,
            backoff=Backoff(0.2, 10.0),
            will=lambda: self._will,
            on_ack=self._on_ack,
            max_inflight=1000,
        )

    def _on_ack(self, generation: int, mid: int, failed: bool, reason: str) -> None:
        if failed:
            log.warning("broker refused a queue message (mid %d): %s", mid, reason)
            return
        with self._ack_lock:
            self._acked.add((generation, mid))

    def start(self) -> None:
        self.link.start()
        self._thread = threading.Thread(target=self._run, name="queue-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.link.stop(last=(self.topics.queue_stats, b"", True))

    def _run(self) -> None:
        last_stats = 0.0
        while not self._stop.is_set():
            if not self.link.wait_connected(1.0):
                continue
            try:
                sent = self.publish_pending()
                if sent or time.monotonic() - last_stats >= self.settings.stats_every_s:
                    self.publish_stats()
                    last_stats = time.monotonic()
            except Exception:  # the store or the link failed: try again, nothing was marked
                log.exception("queue publisher")
                self._stop.wait(1.0)
                continue
            if not sent:
                self._stop.wait(self.settings.poll_s)

    def publish_pending(self) -> int:
        """One batch of the outbox: published, acknowledged, then marked. Returns the steps marked."""
        batch = self.queue.unpublished(200, self.settings.center_id)
        if not batch:
            return 0
        waiting: dict[int, list[tuple[int, int]]] = {}
        for step, ticket in batch:
            topics = self.topics
            messages = [(topics.queue_event, queue_event(step, ticket).to_payload())]
            if step.kind == "called" and step.number and step.service:
                call = QueueCalled(step.service, step.number, step.counter, step.day)
                messages.append((topics.queue_called, call.to_payload()))
            ids = []
            for topic, payload in messages:
                sent = self.link.publish(topic, payload, qos=1)
                if sent is None:
                    break
                ids.append(sent)
            else:
                waiting[step.id] = ids
                continue
            break  # the link went away: the rest waits for the next connection
        deadline = time.monotonic() + self.settings.ack_timeout_s
        done: list[int] = []
        while waiting and time.monotonic() < deadline:
            with self._ack_lock:
                for step_id, ids in list(waiting.items()):
                    if all(i in self._acked for i in ids):
                        done.append(step_id)
                        self._acked.difference_update(ids)
                        del waiting[step_id]
            if waiting:
                time.sleep(0.005)
        self.queue.mark_published(done)
        self.published += len(done)
        return len(done)

    def publish_stats(self) -> None:
        stats = queue_stats(self.queue, self.settings.center_id)
        self.link.publish(self.topics.queue_stats, stats.to_payload(), qos=1, retain=True)
