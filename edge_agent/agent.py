"""The edge agent: the kiosk's only voice to the center.

Threads, and why each exists:
- ``mqtt-supervisor`` (+ paho's network thread): keeps one MQTT session up (common.mqtt).
- the caller's thread runs ``run()``: the outbox pump. It reads the journal in seq order, publishes at
  QoS 1 within a window, and deletes events in batches once their PUBACK arrived. A new connection
  restarts the read from the oldest undeleted event, so nothing unacknowledged is skipped and order per
  kiosk holds (duplicates carry the same event id and ``replay: true``).
- ``agent-session``: birth on every connect, heartbeat every N s. It calls the app, so it may wait; the
  pump never does.
- ``agent-control``: commands and pushed configuration, one at a time in arrival order; incoming
  messages are acknowledged to the broker only after their outcome is stored (manual ack).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from common import ipc
from common.errors import MotcuaError
from common.files import write_atomically
from common.journal import EventJournal, JournalError
from common.mqtt import Backoff, Message, MqttLink, Will
from contract.commands import REASON_INTERRUPTED, REASON_REJECTED, Command, CommandResult
from contract.config import ConfigState
from contract.errors import ContractError
from contract.events import event_payload_bytes
from contract.health import Health, LinkHealth, health_alarms
from contract.schema import to_data
from contract.status import Status
from contract.topics import KioskTopics
from contract.wire import salvage_request_id
from edge_agent import __version__
from edge_agent.commands import CommandExecutor
from edge_agent.config import AgentConfig
from edge_agent.health import (
    CertificateExpiry,
    HealthProbe,
    app_section,
    devices_section,
    hardware_inventory,
    outbox_section,
)
from edge_agent.remote_config import ConfigManager
from edge_agent.state import AgentState

log = logging.getLogger(__name__)

JOURNAL_NAME = "events.sqlite"
STATE_NAME = "agent-state.sqlite"
SOCKET_NAME = "app.sock"
HEALTH_FILE = "agent-health.json"


@dataclass(frozen=True)
class AgentSettings:
    """Everything the agent needs from the kiosk's configuration file."""

    kiosk_id: str
    center_id: str
    data_dir: Path
    agent: AgentConfig


class Agent:
    def __init__(self, settings: AgentSettings, *, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        cfg = settings.agent
        self.cfg = cfg
        data_dir = settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.app_socket = data_dir / SOCKET_NAME
        self.topics = KioskTopics(settings.center_id, settings.kiosk_id, cfg.topic_root)
        self.journal = EventJournal(data_dir / JOURNAL_NAME, max_events=cfg.outbox_max_events, durable=False)
        if self.journal.recovered is not None:
            log.error("event journal was corrupted and moved aside to %s", self.journal.recovered[0].name)
        self.state = AgentState(data_dir / STATE_NAME)
        self.boot = self.state.next_counter("boot")
        self.state.prune_commands()  # request ids older than any redelivery (30 days)
        self.bdseq = 0
        self.probe = HealthProbe(data_dir)
        self.cert_expiry = CertificateExpiry(cfg.tls.cert_file)
        self.heartbeat_s = cfg.heartbeat_s
        self._stop = threading.Event()
        self._wake_session = threading.Event()
        self._wake_pump = threading.Event()
        self._acks: collections.deque[tuple[int, int, bool, str]] = collections.deque()
        self._other_lock = threading.Lock()
        # (generation, mid) -> request id of a command result; registered under _other_lock together
        # with the publish, and looked up under it, so an ack can never be seen before its registration
        self._other_acks: dict[tuple[int, int], str] = {}
        self._to_delete: list[int] = []
        self._last_flush = time.monotonic()
        self._control: queue.Queue[Message | None] = queue.Queue()
        self._birth_generation = -1
        self._heal_birth = False
        self.published_total = 0
        self.refused_total = 0
        #: control messages (commands, pushed configuration) whose handling raised
        self.control_errors = 0
        self.link = MqttLink(
            client_id=settings.kiosk_id,
            host=cfg.broker_host,
            port=cfg.broker_port,
            tls=cfg.tls,
            protocol=cfg.protocol,
            keepalive_s=cfg.keepalive_s,
            session_expiry_s=cfg.session_expiry_s,
            backoff=Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s),
            will=self._make_will,
            on_connected=self._on_connected,
            on_disconnected=self._on_disconnected,
            on_ack=self._on_ack,
            max_inflight=cfg.mqtt_max_inflight,
        )
        self.config = ConfigManager(
            state=self.state,
            data_dir=data_dir,
            app_socket=self.app_socket,
            app_timeout_s=cfg.app_timeout_s,
            publish_state=self._publish_config_state,
            apply_agent=self._apply_agent_config,
        )
        self.executor = CommandExecutor(
            app_socket=self.app_socket,
            app_timeout_s=cfg.app_timeout_s,
            log_files=[p if p.is_absolute() else data_dir / p for p in cfg.log_files],
            max_blob_bytes=cfg.max_blob_bytes,
            publish_blob=self._publish_blob,
            reload_config=self.config.reload_app,
            blob_topic=self.topics.blob,
        )
        # Queue numbers: the app asks on <data_dir>/agent.sock, the allocator answers over this session.
        from edge_agent.tickets import TicketRelay

        self.tickets = TicketRelay(self.link, self.topics, data_dir)
        # The certificate renews itself before it ends (provisioning: docs/provisioning.md).
        from edge_agent.renewal import Renewal

        self.renewal = Renewal(
            self.link, self.topics, cfg.tls, renew_before=timedelta(days=cfg.renew_before_days),
            retry_after=timedelta(seconds=cfg.renew_retry_s), clock=clock,
        )
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the MQTT session and the worker threads; ``run`` then pumps the outbox."""
        self.link.subscribe(self.topics.cmd_req, 1, self._enqueue)
        # QoS 0: a push is a state (retained, versioned). At QoS 1 the broker queued every push made
        # while we were away and replayed them all, oldest first, each applied in turn; the retained
        # copy sent at every (re)subscribe is the newest, and a live push arrives on the open link.
        self.link.subscribe(self.topics.config_set, 0, self._enqueue)
        self.link.subscribe(self.topics.center.config_set, 0, self._enqueue)
        # QoS 0, like the relay's allocator status: a replay of our own earlier births and Wills
        # queued while we were away would look like live publishes and trigger needless heals.
        self.link.subscribe(self.topics.status, 0, self._on_own_status)
        self.renewal.start()
        self.tickets.start()
        for name, target in (("agent-session", self._session_loop), ("agent-control", self._control_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self.link.start()

    def request_stop(self) -> None:
        """Ask ``run`` to return (safe from a signal handler: only sets flags)."""
        self._stop.set()
        self._wake_session.set()
        self._wake_pump.set()

    def _shutdown(self) -> None:
        """Clean stop: publish ``offline/shutdown`` ourselves, then disconnect (no Will)."""
        self.request_stop()
        self._control.put(None)
        for thread in self._threads:
            thread.join(5)
        final = Status("offline", "shutdown", self.bdseq, self.boot)
        self.link.stop(last=(self.topics.status, final.to_payload(), True))
        self.tickets.stop()
        self._flush_acks(force=True)
        self.journal.close()
        self.state.close()

    def run(self) -> None:
        """The outbox pump; returns when ``stop`` was called (from a signal handler or another thread)."""
        self.start()
        try:
            self._pump()
        finally:
            self._shutdown()

    # -- MQTT callbacks (network threads: quick, no waiting) ---------------------------------------------

    def _make_will(self) -> Will:
        self.bdseq = self.state.next_counter("bdseq")
        will = Status("offline", "lost", self.bdseq, self.boot)
        delay = self.cfg.will_delay_s if self.cfg.protocol == "5" else 0
        return Will(self.topics.status, will.to_payload(), delay)

    def _on_connected(self, generation: int) -> None:
        self._wake_session.set()
        self._wake_pump.set()

    def _on_disconnected(self, generation: int, reason: str) -> None:
        self._wake_pump.set()

    def _on_ack(self, generation: int, mid: int, failed: bool, reason: str) -> None:
        self._acks.append((generation, mid, failed, reason))
        if len(self._acks) >= 64:
            self._wake_pump.set()

    def _enqueue(self, message: Message) -> None:
        self._control.put(message)

    def _on_own_status(self, message: Message) -> None:
        """Self-heal: a late Will of an earlier connection must not leave us shown offline.

        Only live publishes count (retain flag off): the retained copy delivered on subscribe is old news.
        """
        self.link.ack(message.generation, message.mid, message.qos)
        if message.retain or self._stop.is_set():  # old news, or our own offline/shutdown
            return
        try:
            seen: Status | None = Status.parse(message.payload)
        except ContractError:
            seen = None
        if self.link.connected and self._birth_generation == self.link.generation and (
            seen is None or seen.state != "online" or seen.bdseq != self.bdseq
        ):
            log.warning("retained status shows %s (bdseq %s); publishing birth again",
                        seen and seen.state, seen and seen.bdseq)
            self._heal_birth = True
            self._wake_session.set()

    # -- the outbox pump ------------------------------------------------------------------------------

    def _pump(self) -> None:
        inflight: dict[int, int] = {}  # mid -> seq, for the current generation
        generation = -1
        cursor = 0
        topic_cache: dict[str, str] = {}
        refill = max(1, min(250, self.cfg.publish_window // 4))
        journal_id = self.journal.journal_id
        while not self._stop.is_set():
            busy = False
            if self.journal.journal_id != journal_id:  # recovered by _journal_failed
                journal_id = self.journal.journal_id
                inflight.clear()
                self._to_delete = []
                cursor = 0
            if self.link.connected and self._birth_generation == self.link.generation:
                if self.link.generation != generation:
                    generation = self.link.generation
                    inflight.clear()
                    cursor = 0  # resend everything not acknowledged, oldest first
                room = self.cfg.publish_window - len(inflight)
                # Refill in chunks, not one event per PUBACK: each read+mark is a SQLite round trip.
                if room >= refill or not inflight:
                    try:
                        rows = self.journal.pending_rows(cursor, min(room, 500))
                        if self.journal.journal_id != journal_id:
                            # A new journal file (corruption recovered, here or by the app): its seqs
                            # restart, so forget everything about the old one, acks included.
                            journal_id = self.journal.journal_id
                            inflight.clear()
                            self._to_delete = []
                            cursor = 0
                            continue
                        if rows:
                            self.journal.mark_attempted(rows[0][0], rows[-1][0])
                    except JournalError as exc:
                        self._journal_failed(exc)
                        continue
                    for seq, event_id, kind, occurred_at, payload_json, attempts in rows:
                        topic = topic_cache.get(kind)
                        if topic is None:
                            topic = topic_cache[kind] = self.topics.event(kind)
                        body = event_payload_bytes(
                            seq=seq, event_id=event_id, kind=kind, occurred_at=occurred_at,
                            payload_json=payload_json, journal_id=journal_id, replay=attempts > 0,
                        )
                        sent = self.link.publish(topic, body, qos=1)
                        if sent is None or sent[0] != generation:
                            break
                        inflight[sent[1]] = seq
                        cursor = seq
                        busy = True
            self._process_acks(inflight, generation)
            self._flush_acks(force=not busy)
            if not busy:
                # Not spinning on single PUBACKs (paho's thread needs the GIL to read them): acks wake
                # us in groups; while events are in flight a short timeout bounds the wait.
                self._wake_pump.wait(0.01 if inflight else self.cfg.poll_interval_s)
                self._wake_pump.clear()

    def _process_acks(self, inflight: dict[int, int], generation: int) -> bool:
        processed = False
        while self._acks:
            ack_generation, mid, failed, reason = self._acks.popleft()
            processed = True
            seq = inflight.pop(mid, None) if ack_generation == generation else None
            if seq is None:
                self._other_ack((ack_generation, mid), failed)
                continue
            if failed:
                # Kept in the journal: re-sent after the next reconnect. Seen when the ACL is wrong.
                self.refused_total += 1
                log.error("broker refused event seq %d: %s", seq, reason)
                continue
            self._to_delete.append(seq)
            self.published_total += 1
        return processed

    def _flush_acks(self, force: bool = False) -> None:
        """Batched commits: one DELETE transaction per ``ack_flush_s`` or 1000 acknowledged events."""
        if not self._to_delete:
            return
        now = time.monotonic()
        if force or len(self._to_delete) >= 1000 or now - self._last_flush >= self.cfg.ack_flush_s:
            try:
                self.journal.delete(self._to_delete)
            except JournalError as exc:
                self._journal_failed(exc)
                return
            self._to_delete = []
            self._last_flush = now

    def _journal_failed(self, exc: JournalError) -> None:
        log.error("%s", exc.message)
        text = exc.message.lower()
        if "malformed" in text or "not a database" in text or "corrupt" in text:
            self.journal.recover(exc.message)
            self._to_delete = []
        else:
            self._stop.wait(1.0)  # e.g. the disk is full: try again, do not spin

    def _other_ack(self, key: tuple[int, int], failed: bool) -> None:
        with self._other_lock:
            request_id = self._other_acks.pop(key, None)
        if request_id is not None and not failed:
            self.state.command_published(request_id)

    # -- session: birth and heartbeat -----------------------------------------------------------------

    def _session_loop(self) -> None:
        next_beat = last_beat = 0.0
        while not self._stop.is_set():
            # a pushed shorter interval counts from the last beat, not after the old interval ran out
            next_beat = min(next_beat, last_beat + self.heartbeat_s)
            generation = self.link.generation
            if self.link.connected and (self._birth_generation != generation or self._heal_birth):
                self._heal_birth = False
                try:
                    self._publish_birth(generation)
                except Exception:
                    log.exception("birth failed")
                next_beat = 0.0
            now = time.monotonic()
            if now >= next_beat:
                try:
                    self._heartbeat()
                except Exception:
                    log.exception("heartbeat failed")
                last_beat, next_beat = now, now + self.heartbeat_s
                try:
                    self.renewal.tick()
                except Exception:
                    log.exception("certificate renewal check failed")
            self._wake_session.wait(max(0.0, next_beat - time.monotonic()))
            self._wake_session.clear()

    def _app_health(self, timeout: float) -> tuple[dict[str, Any] | None, str | None]:
        try:
            return ipc.call(self.app_socket, "app.health", {}, timeout=timeout), None
        except MotcuaError as exc:  # ipc.BadReplyError included
            return None, exc.message

    def _publish_birth(self, generation: int) -> None:
        reply, _error = self._app_health(min(self.cfg.app_timeout_s, 2.0))
        devices = {name: d.state for name, d in devices_section(reply).items()}
        app_version = (reply or {}).get("app_version")
        birth = Status(
            "online",
            "birth",
            self.bdseq,
            self.boot,
            agent_version=__version__,
            app_version=str(app_version)[:40] if app_version is not None else None,
            config_version=self.config.versions(),
            hardware=hardware_inventory(self.settings.data_dir, devices),
        )
        if self.link.publish(self.topics.status, birth.to_payload(), qos=1, retain=True) is None:
            return
        self._birth_generation = generation
        self._wake_pump.set()
        self._publish_config_state(self.config.report())
        for result in self.state.unpublished_results():
            self._publish_result(result, None, None)
        log.info("birth published (bdseq %d, boot %d)", self.bdseq, self.boot)

    def health(self) -> Health:
        reply, error = self._app_health(self.cfg.app_timeout_s)
        outbox = outbox_section(
            self.journal.stats(), self.cfg.outbox_alarm_ratio, self.journal.journal_id,
            self.journal.recovered[0].name if self.journal.recovered is not None else None,
        )
        app = app_section(reply, error)
        devices = devices_section(reply)
        return Health(
            bdseq=self.bdseq,
            boot=self.boot,
            app=app,
            outbox=outbox,
            link=LinkHealth(self.link.connected, self.link.connect_count, self.link.last_error[:300],
                            self.refused_total, self.link.handler_errors + self.control_errors),
            devices=devices,
            config_version=self.config.versions(),
            alarms=health_alarms(app, devices, outbox),
            cert_not_after=self.cert_expiry.not_after(),
            **self.probe.system(),
        )

    def _heartbeat(self) -> None:
        health = self.health()
        if health.outbox.alarm:
            log.warning("outbox %.0f %% full (%d of %d events)", health.outbox.fill_ratio * 100,
                        health.outbox.pending, health.outbox.max)
        payload = health.to_payload()
        # Local copy for the technician screen and for when the center cannot be reached.
        write_atomically(self.settings.data_dir / HEALTH_FILE, payload)
        self.link.publish(self.topics.health, payload, qos=0)

    def _apply_agent_config(self, agent: dict[str, Any]) -> None:
        heartbeat = agent.get("heartbeat_s")
        self.heartbeat_s = float(heartbeat) if heartbeat is not None else self.cfg.heartbeat_s
        self._wake_session.set()

    # -- control: commands and pushed configuration --------------------------------------------------

    def _control_loop(self) -> None:
        while True:
            message = self._control.get()
            if message is None:
                return
            try:
                if message.topic == self.topics.cmd_req:
                    self._handle_command(message)
                elif message.topic == self.topics.config_set:
                    self.config.on_push("kiosk", message.payload)
                elif message.topic == self.topics.center.config_set:
                    self.config.on_push("center", message.payload)
            except Exception:
                self.control_errors += 1  # in the health (link.handler_errors); the loop goes on
                log.exception("handling %s failed", message.topic)
            finally:
                self.link.ack(message.generation, message.mid, message.qos)

    def _handle_command(self, message: Message) -> None:
        try:
            request = Command.parse(message.payload)
        except ContractError as exc:
            request_id = salvage_request_id(message.payload, Command.MAX_BYTES)
            log.warning("rejected command %s: %s", request_id, exc.message)
            reason = f"{REASON_REJECTED}{exc.message}"[:2000]
            result = CommandResult(request_id, None, "error", reason, code="rejected")
            if request_id is not None:
                if self.state.command_seen(request_id) is not None:
                    return  # that request id was answered already; an id is answered once
                self.state.command_done(request_id, None, result.to_data())
            self._publish_result(result.to_data(), message.response_topic, message.correlation_data)
            return
        seen = self.state.command_seen(request.request_id)
        if seen is not None:
            state, stored = seen
            if state == "done" and stored is not None:
                log.info("command %s seen again: answering with the stored result", request.request_id)
                self._publish_result(stored, message.response_topic, message.correlation_data)
                return
            result = CommandResult(
                request.request_id, request.command, "error", REASON_INTERRUPTED, args=to_data(request.args),
                code="interrupted",
            )
        else:
            self.state.command_started(request.request_id, request.command)
            log.info("executing command %s (%s)", request.command, request.request_id)
            result = self.executor.execute(request)
        self.state.command_done(request.request_id, request.command, result.to_data())
        self._publish_result(result.to_data(), message.response_topic, message.correlation_data)

    def _publish_result(
        self, result: dict[str, Any], response_topic: str | None, correlation: bytes | None
    ) -> None:
        topic = self.topics.cmd_res
        if response_topic and response_topic.startswith(self.topics.base + "/"):
            topic = response_topic  # MQTT v5 request/response, inside our own namespace (the ACL)
        payload = CommandResult.from_data(result).to_payload()  # stored results are re-checked as sent
        with self._other_lock:
            sent = self.link.publish(topic, payload, qos=1, correlation_data=correlation)
            if sent is None:
                return  # stays unpublished in the ledger; sent again after the next birth
            request_id = result.get("request_id")
            if request_id is not None:
                self._other_acks[sent] = str(request_id)

    def _publish_blob(self, request_id: str, data: bytes) -> bool:
        return self.link.publish(self.topics.blob(request_id), data, qos=1) is not None

    def _publish_config_state(self, report: ConfigState) -> None:
        self.link.publish(self.topics.config_state, report.to_payload(), qos=1, retain=True)
