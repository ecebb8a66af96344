"""What one process of the center does for all (while it holds the store's lease ``fleet-duties``), and
what every worker does for itself (its beat).

Every worker renews its beat (counters) every ``beat_every_s``. The lease holder also, every 0.5 s,
publishes commands people asked for and configuration pushes (QoS 1, the store marks them sent or
published when the broker acknowledged them; no push where the store's centers push their own,
``Configs.owner``), and every ``sweep_every_s``:
- the silence sweep (``telemetry.mark_silent``: 3 x heartbeat without news is offline);
- the alarm sweeps: offline alarms true to the registry, event gaps open past the grace period,
  one-shot alarms (events dropped) ended once acknowledged;
- announcements of raised and cleared alarms and reminders (queued for the notifier);
and hourly the blob retention. A lease lasts ``lease_ttl_s``: if its holder dies, another worker takes
over within that time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from common.errors import StoreError
from contract.commands import Command
from contract.config import ConfigPush as ConfigMessage
from contract.errors import ContractError
from contract.topics import CenterTopics, KioskTopics
from contract.wire import now_iso
from fleet.alarms.reconcile import AlarmRun
from fleet.alarms.rules import ONE_SHOT_TYPES, Wanted, offline_wanted
from fleet.store.commands import CENTER_TARGET, REASON_NOT_SENT

if TYPE_CHECKING:
    from fleet.ingest.worker import IngestWorker

log = logging.getLogger(__name__)
DEFAULT_LIFETIME = timedelta(hours=1)
ACK_TIMEOUT_S = 30.0
SLOW_DUTIES_S = 1.0


class Duties:
    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker
        self.store = worker.store
        self.settings = worker.settings
        self.leader = False
        self._acks: deque[tuple[int, int, bool, str]] = deque()
        self._lock = threading.Lock()  # publish + register, and the lookup of acks
        # (generation, mid) -> ("command", (kiosk, request_id)) | ("config", push_id)
        self._inflight: dict[tuple[int, int], tuple[str, Any]] = {}
        self._sent_at: dict[tuple[str, Any], float] = {}  # what is in flight, since when (monotonic)
        self._last_sweep = 0.0
        self._last_beat = 0.0
        self._last_lease = 0.0
        self._last_prune = 0.0
        self._notice_from: int | None = None
        self._told_owner = False  # the unpublished pushes of a store whose centers push their own: logged
        self._beat_counts: dict[str, int] = {}
        self._beat_mono = time.monotonic()

    # --- the loop ---

    def run(self) -> None:
        stop = self.worker._stop
        while not stop.is_set():
            now = time.monotonic()
            try:
                if now - self._last_beat >= self.settings.beat_every_s:
                    self._last_beat = now
                    self.beat()
                if self.settings.duties and now - self._last_lease >= min(2.0, self.settings.lease_ttl_s / 3):
                    self._last_lease = now
                    self._renew()
                if self.leader:
                    self._drain_acks()
                    self.publish()
                    if now - self._last_sweep >= self.settings.sweep_every_s:
                        self._last_sweep = now
                        self.sweep()
                    if now - self._last_prune >= 3600:
                        self._last_prune = now
                        self.prune()
                took = time.monotonic() - now
                if took > SLOW_DUTIES_S:  # a clue: the sweeps share the kiosks' rows with the ingest
                    log.warning("slow duties: %.0f ms (leader: %s)", took * 1000, self.leader)
            except StoreError as exc:
                log.error("duties: %s", exc.message)
            except Exception:
                log.exception("duties failed; trying again")
            stop.wait(0.5)
        if self.leader:
            try:
                self.store.ingest.release_lease(self.worker.LEASE, self.worker.worker_id)
            except StoreError as exc:
                log.warning("lease not released: %s", exc.message)
            self.leader = False

    def _renew(self) -> None:
        ttl = timedelta(seconds=self.settings.lease_ttl_s)
        held = self.store.ingest.acquire_lease(self.worker.LEASE, self.worker.worker_id, ttl)
        if held != self.leader:
            log.info("worker %s %s the duties lease", self.worker.worker_id, "took" if held else "lost")
            if held and self.worker.notifier is not None:
                self.worker.notifier.wake()
        self.leader = held

    # --- the worker's beat ---

    def beat(self, *, stopped: bool = False) -> None:
        worker, stats = self.worker, self.worker.stats
        now_mono = time.monotonic()
        with stats.lock:
            counts = dict(stats.counts)
            channels = dict(stats.channels)
            interval = max(0.001, now_mono - self._beat_mono)
            rate = (counts.get("in", 0) - self._beat_counts.get("in", 0)) / interval
            busy = stats.busy_s
            snapshot = {
                "counts": counts,
                "channels": channels,
                "rate_per_s": round(rate, 1),
                "busy_s": round(busy, 3),
                "max_process_ms": round(stats.max_process_ms, 1),
                "max_lag_ms": round(stats.max_lag_ms, 1),
                "last_lag_ms": round(stats.last_lag_ms, 1),
                "last_message_at": stats.last_message_at.isoformat() if stats.last_message_at else None,
            }
            stats.max_lag_ms = 0.0
            stats.max_process_ms = 0.0
        self._beat_counts, self._beat_mono = counts, now_mono
        snapshot.update(
            queue=worker.queue_depth,
            connected=worker.link.connected,
            last_error=worker.link.last_error[:300],
            leader=self.leader,
            center=self.settings.center_id,
            inflight=len(self._inflight),
            notifications_sent=worker.notifier.sent if worker.notifier else 0,
            notifications_failed=worker.notifier.failed if worker.notifier else 0,
        )
        self.store.ingest.worker_beat(
            worker.worker_id,
            host=worker.host,
            pid=worker.pid,
            started_at=worker.started_at,
            stats=snapshot,
            stopped=stopped,
        )

    # --- publishing (commands, configuration) ---

    def acked(self, generation: int, mid: int, failed: bool, reason: str) -> None:
        """From paho's thread with its mutex held: only queue (see common.mqtt._handle_publish)."""
        self._acks.append((generation, mid, failed, reason))

    def _drain_acks(self) -> None:
        while self._acks:
            generation, mid, failed, reason = self._acks.popleft()
            with self._lock:
                found = self._inflight.pop((generation, mid), None)
                if found is not None:
                    self._sent_at.pop(found, None)
            if found is None:
                continue
            kind, key = found
            if failed:
                log.warning("broker refused %s %s: %s", kind, key, reason)
                continue
            if kind == "command":
                self.store.commands.mark_sent(key[0], key[1])
                self.worker.stats.add("commands_published")
            else:
                self.store.outgoing.mark_published(key)
                self.worker.stats.add("configs_published")

    def _in_flight(self, key: tuple[str, Any]) -> bool:
        started = self._sent_at.get(key)
        return started is not None and time.monotonic() - started < ACK_TIMEOUT_S

    def _publish(self, key: tuple[str, Any], topic: str, payload: bytes, *, retain: bool) -> bool:
        with self._lock:
            sent = self.worker.link.publish(topic, payload, qos=1, retain=retain)
            if sent is None:
                return False
            self._inflight[sent] = key
            self._sent_at[key] = time.monotonic()
        return True

    def publish(self) -> None:
        if not self.worker.link.connected:
            return
        self.store.outgoing.expire_unsent()
        for command in self.store.commands.pending(limit=200):
            if self.settings.center_id not in ("+", command.center_id):
                continue
            key: tuple[str, Any] = ("command", (command.kiosk_id, command.request_id))
            if self._in_flight(key):
                continue
            expires = command.expires_at or (command.requested_at or datetime.now(UTC)) + DEFAULT_LIFETIME
            try:
                message = Command.from_data(
                    {
                        "schema": Command.SCHEMA,
                        "request_id": command.request_id,
                        "command": command.command,
                        "args": command.args,
                        "expires_at": now_iso(expires),
                    }
                )
            except ContractError as exc:  # the web validates; a row that still fails is answered here
                self.store.commands.record_result(
                    command.center_id,
                    command.kiosk_id,
                    command.request_id,
                    command=command.command,
                    status="error",
                    reason=f"{REASON_NOT_SENT}{exc.message}",
                    result={},
                    at=None,
                )
                continue
            topic = KioskTopics(command.center_id, command.kiosk_id, self.settings.root).cmd_req
            self._publish(key, topic, message.to_payload(), retain=False)
        pushes = self.store.outgoing.unpublished()
        owners = {center: self.store.configs.owner(center) for center in {p.center_id for p in pushes}}
        held = [push for push in pushes if owners[push.center_id] == "centers"]
        pushes = [push for push in pushes if owners[push.center_id] != "centers"]
        if held and not self._told_owner:
            # recorded before the store was told the center pushes its own: never published from here
            # (a second retained publisher of the same kiosks' versions), said once per process
            self._told_owner = True
            log.info(
                "%d configuration push(es) not published: their centers push their own "
                "configuration (config owner 'centers', docs/province.md)",
                len(held),
            )
        for push in pushes:
            if self.settings.center_id not in ("+", push.center_id):
                continue
            key = ("config", push.id)
            if self._in_flight(key):
                continue
            try:
                config = ConfigMessage.from_data(
                    {"schema": ConfigMessage.SCHEMA, "version": push.version, "config": push.body}
                )
            except ContractError as exc:
                log.error(
                    "config push %d of %s is not valid and is not published: %s",
                    push.id,
                    push.target,
                    exc.message,
                )
                continue
            center = CenterTopics(push.center_id, self.settings.root)
            topic = (
                center.config_set if push.target == CENTER_TARGET else center.kiosk(push.target).config_set
            )
            self._publish(key, topic, config.to_payload(), retain=True)

    # --- sweeps ---

    def sweep(self) -> None:
        """The alarms the store's state calls for: kiosks gone silent, offline alarms that disagree with
        the registry's states, event gaps open past the grace period, all reconciled in memory and
        written together (``AlarmRun``): a province-wide outage is 10,000 kiosks silent in one sweep,
        ~15 statements each one by one, and every open gap's kiosk was read again at every sweep."""
        store, now = self.store, self.store.db.now()
        silent = store.telemetry.mark_silent(now)
        to_raise, to_clear = store.ingest.offline_mismatches()
        missing = store.ingest.open_gap_kiosks(now - self.settings.alarms.gap_grace)
        named = set(silent) | {kiosk_id for kiosk_id, _ in to_raise} | set(to_clear) | set(missing)
        alarms = AlarmRun(store, store.alarms.active_for_kiosks(sorted(named)))
        for kiosk_id in silent:
            alarms.reconcile(kiosk_id, {"offline": offline_wanted("silent")}, ["offline"], now)
        for kiosk_id, reason in to_raise:
            alarms.reconcile(kiosk_id, {"offline": offline_wanted(reason)}, ["offline"], now)
        for kiosk_id in to_clear:
            alarms.reconcile(kiosk_id, {}, ["offline"], now)
        for kiosk_id, count in missing.items():
            want = Wanted("events_missing", "major", detail={"state": "gap", "count": count})
            alarms.reconcile(kiosk_id, {"events_missing": want}, ["events_missing"], now)
        alarms.flush()
        self._gaps_closed(now)
        for alarm in store.alarms.active_of_type("events_dropped"):
            if alarm.type in ONE_SHOT_TYPES and alarm.acknowledged_at is not None and alarm.kiosk_id:
                store.alarms.clear_alarm(alarm.kiosk_id, alarm.type, at=now)
        self._announce(now)

    def _gaps_closed(self, now: datetime) -> None:
        """Events-missing alarms whose kiosk has no open gap any more end."""
        active = [a.kiosk_id for a in self.store.alarms.active_of_type("events_missing") if a.kiosk_id]
        still_open = self.store.ingest.kiosks_with_open_gaps(active)
        for kiosk_id in active:
            if kiosk_id not in still_open:
                self.store.alarms.clear_alarm(kiosk_id, "events_missing", at=now)

    def _announce(self, now: datetime) -> None:
        notices = self.store.notices
        if self._notice_from is None:
            self._notice_from = notices.watermark()
        raised, cleared = notices.unannounced(
            self._notice_from, raised_before=now - self.settings.alarms.announce_after
        )
        queued = 0
        for alarm in raised:
            queued += notices.announce(alarm.id, "raised", at=now) or 0
        for alarm in cleared:
            queued += notices.announce(alarm.id, "cleared", at=now) or 0
        for alarm in self.store.alarms.due_reminders(self.settings.alarms.reminder_every, now=now):
            queued += notices.remind(alarm.id, at=now) or 0
        if queued and self.worker.notifier is not None:
            self.worker.notifier.wake()

    def prune(self) -> None:
        removed = self.store.blobs.prune(self.store.db.now() - timedelta(days=self.settings.blob_days))
        if removed:
            log.info("blob retention: %d removed (older than %d days)", removed, self.settings.blob_days)
