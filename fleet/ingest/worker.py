"""One ingest worker: an MQTT v5 session on the shared subscription, a processing thread, and (while it
holds the lease) the center's duties.

Threads, and why each exists:
- ``mqtt-supervisor`` + paho's network thread (``common.mqtt.MqttLink``): the session; its callback only
  stamps the arrival time and queues the message, so keepalives never wait for the database.
- ``ingest-process``: takes messages in arrival order, stores their effect (``Processor``), then
  acknowledges them (manual ack, QoS 1): a message is acknowledged only once its effect is stored. A
  ``StoreError`` (database away) is retried with backoff, unacknowledged.
- ``ingest-duties`` (``fleet.ingest.duties``): the worker's beat in the store, the lease, and while it
  holds it: the silence sweep, alarm sweeps, reminders, announcements, publishing commands and
  configuration pushes.
- ``fleet-notify`` (``fleet.notify``): sends queued notifications while this worker holds the lease.

The session is persistent (clean start off, session expiry): messages for this worker's share that
arrive while it restarts are kept by the broker and delivered when it is back; a duplicate delivery is
harmless (events are idempotent on event_id, results on request_id, statuses by bdseq).
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common.errors import StoreError
from common.mqtt import Backoff, Message, MqttLink, TlsConfig
from contract.topics import DEFAULT_ROOT, FLEET_SHARE, fleet_center_filters, fleet_filters
from fleet.alarms.rules import AlarmSettings
from fleet.ingest.process import SENT_ELSEWHERE, UNKNOWN_REQUEST, Incoming, Processor
from fleet.notify.notifier import Notifier, NotifySettings
from fleet.store import Store

log = logging.getLogger(__name__)


def freeze_heap() -> None:
    """What the process holds once started (modules, SQLAlchemy's and psycopg's caches, the registry)
    moved out of the cyclic garbage collector's sight: a full collection walked all of it, 80-90 ms each,
    twice per 8,000 messages in ``bench.ingest_profile`` (~10 % of the worker's CPU, both threads
    stopped meanwhile), and found nothing there to free. Reference counting still frees those objects;
    only a cycle among them that dies later would stay. Called once, by an ingest process (``fleet
    ingest``, ``fleet serve --broker``) before its worker starts."""
    gc.collect()
    gc.freeze()
    log.info("heap frozen: %d objects out of the garbage collector's sight", gc.get_freeze_count())


@dataclass(frozen=True)
class WorkerSettings:
    host: str
    port: int
    tls: TlsConfig
    #: unique per worker and stable across its restarts (the broker keeps its session under it)
    client_id: str
    #: one center ("fleet serve" at a center) or "+" (every center: a province's workers)
    center_id: str = "+"
    root: str = DEFAULT_ROOT
    share: str = FLEET_SHARE
    session_expiry_s: int = 86400
    keepalive_s: int = 30
    #: whether this worker competes for the lease (publishing, sweeps, notifications)
    duties: bool = True
    alarms: AlarmSettings = field(default_factory=AlarmSettings)
    notify: NotifySettings | None = field(default_factory=NotifySettings)
    sweep_every_s: float = 2.0
    beat_every_s: float = 2.0
    lease_ttl_s: float = 15.0
    blob_days: int = 30
    #: messages stored per transaction at most (whatever has queued up; one when the worker keeps up)
    max_batch: int = 500
    #: messages received but not yet processed past which paho's network thread waits (see _on_message)
    max_queued: int = 1000
    #: a batch that takes longer than this is logged with the time of each phase (an operator's clue)
    slow_batch_s: float = 1.0


@dataclass(frozen=True)
class _Item:
    message: Message
    arrived: datetime
    arrived_mono: float


class Stats:
    """Counters a worker reports (``ingest_workers.stats``): what came in, what became of it, lag."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.channels: Counter[str] = Counter()
        self.busy_s = 0.0
        self.max_process_ms = 0.0
        self.max_lag_ms = 0.0  # since the last report: arrival to acknowledgement
        self.last_lag_ms = 0.0
        self.last_message_at: datetime | None = None

    def record(self, outcome: str, channel: str, process_s: float, lag_s: float, at: datetime) -> None:
        with self.lock:
            self.counts[outcome] += 1
            self.counts["in"] += 1
            if channel:
                self.channels[channel] += 1
            self.busy_s += process_s
            self.max_process_ms = max(self.max_process_ms, process_s * 1000)
            self.max_lag_ms = max(self.max_lag_ms, lag_s * 1000)
            self.last_lag_ms = lag_s * 1000
            self.last_message_at = at

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n


class IngestWorker:
    LEASE = "fleet-duties"

    def __init__(self, store: Store, settings: WorkerSettings) -> None:
        self.store = store
        self.settings = settings
        self.worker_id = settings.client_id
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started_at = datetime.now(UTC)
        self.processor = Processor(store, settings.alarms, settings.root)
        self.stats = Stats()
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._room = threading.Event()  # set by the processing thread whenever it takes messages
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.link = MqttLink(
            client_id=settings.client_id,
            host=settings.host,
            port=settings.port,
            tls=settings.tls,
            keepalive_s=settings.keepalive_s,
            session_expiry_s=settings.session_expiry_s,
            backoff=Backoff(0.5, 30.0),
            will=None,
            on_ack=self._on_ack,
            on_connected=lambda generation: self.stats.add("connects"),
            max_inflight=1000,
        )
        from fleet.ingest.duties import Duties

        self.duties = Duties(self)
        self.notifier = (
            Notifier(store, settings.notify, lambda: self.duties.leader)
            if settings.notify is not None and settings.duties
            else None
        )

    # --- lifecycle ---

    def start(self) -> None:
        for topic_filter in fleet_filters(self.settings.root, self.settings.center_id, self.settings.share):
            self.link.subscribe(topic_filter, 1, self._on_message)
        # QoS 0: the allocator's retained status is a state. At QoS 1 the broker queued every birth and
        # stop in this worker's session while it was away and replayed them, oldest first: an
        # 'allocator offline' alarm raised and cleared for a stop long over (docs/mqtt.md)
        for topic_filter in fleet_center_filters(self.settings.root, self.settings.center_id):
            self.link.subscribe(topic_filter, 0, self._on_message)
        for name, target in (("ingest-process", self._process_loop), ("ingest-duties", self.duties.run)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.notifier is not None:
            self.notifier.start()
        self.link.start()
        log.info(
            "ingest worker %s: broker %s:%d, center %s",
            self.worker_id,
            self.settings.host,
            self.settings.port,
            self.settings.center_id,
        )

    def wait_subscribed(self, timeout: float) -> bool:
        return self.link.wait_subscribed(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued messages (each acknowledged after it is stored), then disconnect; what
        arrives meanwhile stays unacknowledged and comes again with the next session."""
        self._stop.set()
        self._room.set()  # paho's thread no longer waits for room (see _on_message)
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
        if self.notifier is not None:
            self.notifier.stop()
        self.link.stop()
        try:
            self.duties.beat(stopped=True)
        except StoreError as exc:
            log.warning("last beat not stored: %s", exc.message)

    # --- MQTT callbacks (paho's network thread: quick, no database) ---

    def _on_message(self, message: Message) -> None:
        self._queue.put(_Item(message, datetime.now(UTC), time.monotonic()))
        # The broker's window of unacknowledged messages is what should bound this queue, but Mosquitto
        # 2.0 overshoots it once acknowledgements flow (seen here: 15,900 unacknowledged with
        # max_inflight_messages 1000, 9,700 with a receive maximum of 200). Past max_queued, paho's
        # network thread waits here (the socket is not read, the broker keeps the rest), so that it
        # does not hold the GIL the processing thread needs between its statements; never longer
        # than a third of the keepalive, so the session stays up while the database is away.
        if self._queue.qsize() >= self.settings.max_queued and not self._stop.is_set():
            self._room.clear()
            if self._queue.qsize() >= self.settings.max_queued:  # taken meanwhile: _room is set again
                self._room.wait(self.settings.keepalive_s / 3)

    def _on_ack(self, generation: int, mid: int, failed: bool, reason: str) -> None:
        self.duties.acked(generation, mid, failed, reason)

    # --- processing ---

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def _process_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self.settings.max_batch:  # what has queued up meanwhile, never waiting
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._room.set()
            self._process(batch)
            if stopping:
                return

    def _process(self, batch: list[_Item]) -> None:
        """One store transaction for the batch, then every message acknowledged (after the commit)."""
        incoming = [Incoming(i.message.topic, i.message.payload, i.arrived) for i in batch]
        backoff = Backoff(0.2, 10.0)
        while True:
            started = time.perf_counter()
            try:
                results = self.processor.handle_batch(incoming)
            except StoreError as exc:
                self.stats.add("store_retries")
                log.error("store unavailable, %d messages kept unacknowledged: %s", len(batch), exc.message)
                if self._stop.wait(backoff.next()):
                    return  # not acknowledged: the broker delivers them again to the next session
                continue
            except Exception:  # a bug outside any one message (each has its own guard): none is stored
                log.exception("processing a batch of %d messages failed; they are dropped", len(batch))
                self.stats.add("errors", len(batch))
                for item in batch:
                    self.link.ack(item.message.generation, item.message.mid, item.message.qos)
                return
            break
        for item in batch:
            self.link.ack(item.message.generation, item.message.mid, item.message.qos)
        done = time.perf_counter()
        if done - started > self.settings.slow_batch_s:
            phases = " ".join(f"{k} {v * 1000:.0f}" for k, v in self.processor.last_phases.items())
            log.warning(
                "slow batch: %d messages in %.0f ms (ms: %s), %d queued behind it",
                len(batch), (done - started) * 1000, phases, self._queue.qsize(),
            )
        share = (done - started) / len(batch)
        self.stats.add("batches")
        now = time.monotonic()
        for item, result in zip(batch, results, strict=True):
            if result.hook_errors:
                self.stats.add("hook_errors", result.hook_errors)
            if result.outcome == "error":
                self.stats.add("errors")
                continue
            if result.reason == UNKNOWN_REQUEST:  # a blob of another fleet's command (docs/province.md)
                self.stats.add("unknown_requests")
            elif result.reason == SENT_ELSEWHERE:  # another fleet's command's result, kept as theirs
                self.stats.add("elsewhere_results")
            self.stats.record(result.outcome, result.channel, share, now - item.arrived_mono, item.arrived)
