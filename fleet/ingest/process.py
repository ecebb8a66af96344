"""One message from the broker, handled: topic read and checked, payload parsed by the contract, the
effect stored, the kiosk's alarms brought in line. No MQTT here (``fleet.ingest.worker`` feeds it), so
every rule is tested with plain calls.

- The center and kiosk ids come from the **topic** (the broker's ACL vouches for the kiosk id, the
  registry for its center), never from a payload. An unknown kiosk or a kiosk under another center's
  id is refused and counted (``store.ingest.refuse``), never stored.
- Size limits are checked before parsing (``contract.wire.loads_object``); a payload that does not
  parse is counted, logged once per (center, kiosk, reason) across all workers (the first count), and
  never stops the worker.
- A ``StoreError`` (the database is away) propagates: the worker keeps the message unacknowledged and
  tries again, so nothing the broker handed over is lost while the store is down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from time import perf_counter
from typing import Any, Literal

from common.errors import ConflictError, MotcuaError, NotFoundError, StoreError
from contract.commands import BLOB_COMMANDS, COMMANDS, MAX_BLOB_BYTES, CommandResult
from contract.config import ConfigState, merge_scopes
from contract.errors import ContractError
from contract.events import Event
from contract.health import Health
from contract.schema import parse_dataclass, to_data
from contract.status import Status
from contract.tickets import AllocatorStatus
from contract.topics import DEFAULT_ROOT, TopicRef, parse_topic
from contract.wire import parse_time
from fleet.alarms.reconcile import AlarmRun
from fleet.alarms.rules import AlarmSettings, Wanted, from_health, offline_wanted
from fleet.ingest import handlers
from fleet.queue import province as queue_province
from fleet.store import Scope, Store
from fleet.store.commands import CENTER_TARGET, ELSEWHERE_PER_DAY
from fleet.store.events import EventInsert
from fleet.store.models import EventRecord, HealthReport, StatusOutcome, StatusReport
from fleet.store.partitions import month_of
from fleet.store.telemetry import HealthInsert, StatusInsert

log = logging.getLogger(__name__)

Outcome = Literal["stored", "duplicate", "refused", "invalid", "ignored", "error"]
#: the reason of an ignored result or blob of a request this store never made (another fleet's)
UNKNOWN_REQUEST = "unknown_request"
#: the reason of a stored result of another fleet's command (kept as theirs: docs/province.md)
SENT_ELSEWHERE = "sent_elsewhere"
ALL = Scope.everything()


def _status_report(status: Status) -> StatusReport:
    return StatusReport(
        status.state,
        status.reason,
        status.bdseq,
        boot=status.boot,
        at=parse_time(status.at, "status.at"),
        agent_version=status.agent_version or None,
        app_version=status.app_version,
        config_versions=dict(status.config_version) or None,
        hardware=to_data(status.hardware) if status.hardware is not None else None,
    )


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    channel: str = ""
    reason: str = ""
    hook_errors: int = 0


@dataclass(frozen=True)
class Incoming:
    """A message as the broker delivered it, with the center's arrival time."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass(slots=True)  # not frozen: the claim is set in place (dataclasses.replace cost 5 % of a batch)
class _Job:
    item: Incoming
    ref: TopicRef | None  # None: the topic is not ours
    parsed: Any = None  # the contract's object of the channel (status, health, ...)
    record: EventRecord | None = None  # an event, ready to store
    #: an event claimed before the batch locked its kiosks (``Events.claim_events``): True if new
    claimed: bool | MotcuaError | None = None
    insert: EventInsert | None = None  # an event as the store takes it (made once: the claim, the run)
    report: HealthReport | None = None  # a heartbeat, ready to store
    status: StatusReport | None = None  # a status, ready to store
    error: ContractError | None = None  # what refuses it before anything is stored


def _run_kind(job: _Job) -> str:
    """Messages stored together when they follow each other: events, heartbeats."""
    if job.record is not None:
        return "event"
    if job.report is not None:
        return "health"
    if job.status is not None:
        return "status"
    return ""


def _schedule(jobs: Sequence[_Job]) -> list[tuple[str, list[int]]]:
    """The order a batch is stored in: (run kind, positions) each, a run stored together ("" : one
    message alone). The events first, as one run: a kiosk's events depend on nothing its statuses or
    heartbeats change (a heartbeat every few dozen events had cut a batch into ~15 runs). Then **rounds**:
    each kiosk's other messages, in arrival order, cut into segments (consecutive statuses, consecutive
    heartbeats, or one other message); round k holds every kiosk's k-th segment, its statuses as one
    run, its heartbeats as one, the others one by one. A kiosk's messages keep their order, and a
    reconnect burst (each kiosk's birth, then its heartbeat) is two runs per batch instead of one per
    message (~11 statements each, 4.6 ms per message in ``bench.burst_bench``)."""
    schedule: list[tuple[str, list[int]]] = []
    events = [i for i, job in enumerate(jobs) if _run_kind(job) == "event"]
    if events:
        schedule.append(("event", events))
    rounds: list[dict[str, list[int]]] = []
    segment: dict[str | None, tuple[int, str]] = {}  # per kiosk (None: no kiosk): its last round, kind
    for index, job in enumerate(jobs):
        kind = _run_kind(job)
        if kind == "event":
            continue
        kiosk = job.ref.kiosk_id if job.ref is not None else None
        last = segment.get(kiosk)
        if last is not None and kind and last[1] == kind:
            at = last[0]
        else:
            at = last[0] + 1 if last is not None else 0
            segment[kiosk] = (at, kind)
        if at == len(rounds):
            rounds.append({})
        rounds[at].setdefault(kind, []).append(index)
    for one in rounds:
        for kind in ("status", "health"):
            if kind in one:
                schedule.append((kind, one[kind]))
        schedule.extend(("", [index]) for index in one.get("", []))
    return schedule


_PARSERS: dict[str, Callable[[bytes], Any]] = {
    "cmd/res": CommandResult.parse,
    "config/state": ConfigState.parse,
}


def _echoed_args(result: CommandResult) -> dict[str, Any]:
    """The arguments a result echoes (``command-result/1`` ``args``), checked as the command's own
    arguments type (lenient: a newer minor's extra argument is left out), for another fleet's command:
    ``{}`` when absent (an older agent), for a command this contract does not know, or when they do not
    parse (a hostile kiosk): the result itself is kept all the same. Ours keep the args we sent."""
    args_type = COMMANDS.get(result.command or "")
    if result.args is None or args_type is None:
        return {}
    try:
        checked: dict[str, Any] = to_data(
            parse_dataclass(args_type, result.args, "command-result.args", lenient=True)
        )
    except ContractError:
        return {}
    return checked


class Processor:
    """Handles messages for one store; safe to call from one thread (the worker's processing thread)."""

    def __init__(self, store: Store, alarms: AlarmSettings | None = None, root: str = DEFAULT_ROOT) -> None:
        self.store = store
        self.alarms = alarms or AlarmSettings()
        self.root = root
        #: seconds the last batch spent in each phase (read, claim, lock, runs, commit, hooks): the
        #: worker logs them for a slow batch
        self.last_phases: dict[str, float] = {}

    def handle(self, topic: str, payload: bytes, received_at: datetime) -> Result:
        """One message in a transaction of its own."""
        return self.handle_batch([Incoming(topic, payload, received_at)])[0]

    def handle_batch(self, items: Sequence[Incoming]) -> list[Result]:
        """Messages, all in one store transaction (``db.batch()``): parsed first (no database), the
        months their events need partitioned, the events claimed and inserted (``_claim_events``),
        then the kiosks the batch names locked in id order, then the runs ``_schedule`` orders (the
        events' gaps as one run, then each kiosk's other messages in its order, runs of heartbeats or
        statuses of many kiosks together), each run or message in a savepoint of its own (a refusal or
        a bug undoes only that message). Results in arrival order. A ``StoreError`` rolls everything
        back and propagates: the caller acknowledges nothing and tries the batch again."""
        phases = self.last_phases = {}
        mark = perf_counter()

        def lap(name: str) -> None:
            nonlocal mark
            now = perf_counter()
            phases[name] = now - mark
            mark = now

        jobs = [self._read(item) for item in items]
        for month in sorted({month_of(job.record.occurred_at) for job in jobs if job.record is not None}):
            self.store.partitions.ensure(month)  # DDL before the batch holds any lock
        # the heartbeats' days (their samples are partitioned by received_at): DDL before any lock too
        self.store.health_partitions.ensure_covering(j.item.received_at for j in jobs if j.report is not None)
        lap("read")
        found: dict[int, Result] = {}
        with self.store.db.batch():
            self._claim_events(jobs)
            lap("claim")
            named = {job.ref.kiosk_id for job in jobs if job.ref is not None and job.ref.kiosk_id}
            self.store.telemetry.lock_kiosks(named)
            lap("lock")
            for run, chosen in _schedule(jobs):
                if run:
                    done = self._guarded_run(run, [jobs[i] for i in chosen])
                else:
                    done = [self._one(jobs[chosen[0]])]
                found.update(zip(chosen, done, strict=True))
            lap("runs")
        lap("commit")
        results = self._run_hooks(jobs, [found[i] for i in range(len(jobs))])
        lap("hooks")
        return results

    def _claim_events(self, jobs: list[_Job]) -> None:
        """The batch's events claimed and inserted first, before its kiosks are locked: row locks last
        until the batch commits, and the insert is most of a batch's database time, so a second
        worker whose batch names the same kiosks (round robin hands every worker every kiosk's
        messages) waits only for the rest (journals, statuses, alarms). Their runs then follow the
        gaps (``Events.track_events``); each job keeps its claim (``claimed``). A bug here leaves the
        events to their runs, which store them."""
        positions = [index for index, job in enumerate(jobs) if job.record is not None]
        if not positions:
            return
        inserts = [self._insert_of(jobs[index]) for index in positions]
        try:
            with self.store.db.write():  # a savepoint: a bug undoes only the claim
                claims = self.store.events.claim_events(inserts)
        except StoreError:
            raise
        except Exception:
            log.exception("claiming a batch's %d events failed; each run stores its own", len(inserts))
            return
        for index, claim in zip(positions, claims, strict=True):
            jobs[index].claimed = claim

    @staticmethod
    def _insert_of(job: _Job) -> EventInsert:
        if job.insert is None:
            assert job.ref is not None and job.ref.kiosk_id is not None and job.record is not None
            job.insert = EventInsert(job.ref.center_id, job.ref.kiosk_id, job.record, job.item.received_at)
        return job.insert

    def _run_hooks(self, jobs: Sequence[_Job], results: list[Result]) -> list[Result]:
        """The event hooks (``fleet.ingest.handlers``) once the batch is committed, each in transactions
        of its own, as the hook contract says: a hook that locks rows of its own (the queue locks its
        center's row) would otherwise hold them for the whole batch, in the batch's order, and two workers
        deadlock (seen in the benchmark). A rolled-back batch runs none."""
        calls: list[handlers.HookCall] = []
        positions: list[int] = []
        for index, (job, result) in enumerate(zip(jobs, results, strict=True)):
            stored = result.channel == "event" and result.outcome in ("stored", "duplicate")
            if stored and job.record is not None and job.ref is not None and job.ref.kiosk_id:
                calls.append(
                    handlers.HookCall(
                        job.ref.center_id, job.ref.kiosk_id, job.record, result.outcome == "duplicate",
                        job.parsed,
                    )
                )
                positions.append(index)
        done = list(results)
        for index, errors in zip(positions, handlers.dispatch_many(self.store, calls), strict=True):
            if errors:
                done[index] = replace(done[index], hook_errors=errors)
        return done

    def _guarded_run(self, run: str, jobs: Sequence[_Job]) -> list[Result]:
        """A run in a savepoint; a bug in it undoes the run, which is then tried message by message,
        so that only the message that fails is lost (logged, counted as an error)."""
        try:
            with self.store.db.write():
                if run == "event":
                    return self._events(jobs)
                return self._healths(jobs) if run == "health" else self._statuses(jobs)
        except StoreError:
            raise
        except Exception:
            if len(jobs) > 1:
                return [result for job in jobs for result in self._guarded_run(run, [job])]
            log.exception("processing %s failed; the message is dropped", jobs[0].item.topic[:200])
            return [Result("error", run)]

    def _read(self, item: Incoming) -> _Job:
        """Topic and payload read by the contract; nothing stored yet."""
        try:
            ref = parse_topic(item.topic, self.root)
        except ContractError as exc:
            return _Job(item, None, error=ContractError(f"{item.topic[:120]}: {exc.message}"))
        if ref.kiosk_id is None or ref.channel == "blob" or not item.payload:
            return _Job(item, ref)
        try:
            if ref.channel == "event":
                event = Event.parse(item.payload)
                if event.kind != ref.detail:
                    raise ContractError(
                        f"event.kind: {event.kind!r} published on the topic of {ref.detail!r}"
                    )
                record = EventRecord(
                    event.event_id,
                    event.journal_id,
                    event.seq,
                    event.kind,
                    parse_time(event.occurred_at, "event.occurred_at"),
                    event.payload.to_data(),
                    event.replay,
                )
                return _Job(item, ref, parsed=event, record=record)
            if ref.channel == "status":
                status = Status.parse(item.payload)
                return _Job(item, ref, parsed=status, status=_status_report(status))
            if ref.channel == "health":
                health = Health.parse(item.payload)
                report = HealthReport.from_payload(health.to_data(), parse_time(health.at, "health.at"))
                return _Job(item, ref, parsed=health, report=report)
            parser = _PARSERS.get(ref.channel)
            return _Job(item, ref, parsed=parser(item.payload) if parser else None)
        except ContractError as exc:
            return _Job(item, ref, error=exc)

    def _one(self, job: _Job) -> Result:
        ref, at = job.ref, job.item.received_at
        if ref is None:
            assert job.error is not None
            return self._refuse("", "", "bad_topic", job.error.message, at, "invalid")
        try:
            if job.error is not None:
                raise job.error
            with self.store.db.write():  # a savepoint: a refusal or a bug undoes only this message
                return self._dispatch(ref, job.item.payload, job.parsed, at)
        except StoreError:
            raise
        except (NotFoundError, ConflictError, ContractError) as exc:
            return self._refusal(ref, exc, at)
        except Exception:
            log.exception("processing %s failed; the message is dropped", job.item.topic[:200])
            return Result("error", ref.channel)

    def _refusal(self, ref: TopicRef, exc: MotcuaError | ContractError, at: datetime) -> Result:
        kiosk = ref.kiosk_id or ""
        if isinstance(exc, NotFoundError):
            reason = "unknown_center" if ref.kiosk_id is None else "unknown_kiosk"
            return self._refuse(ref.center_id, kiosk, reason, exc.message, at, "refused", ref.channel)
        if isinstance(exc, ConflictError):
            return self._refuse(ref.center_id, kiosk, "wrong_center", exc.message, at, "refused", ref.channel)
        reason = f"invalid_{ref.channel.replace('/', '_')}"
        return self._refuse(ref.center_id, kiosk, reason, exc.message, at, "invalid", ref.channel)

    def _refuse(
        self,
        center_id: str,
        kiosk_id: str,
        reason: str,
        detail: str,
        at: datetime,
        outcome: Outcome,
        channel: str = "",
    ) -> Result:
        count = self.store.ingest.refuse(center_id, kiosk_id, reason, detail=detail, at=at)
        if count == 1:  # logged once, across all workers; the count goes on in the store
            log.warning("refused (%s) from center %r kiosk %r: %s", reason, center_id, kiosk_id, detail)
        return Result(outcome, channel, reason)

    def _dispatch(self, ref: TopicRef, payload: bytes, parsed: Any, at: datetime) -> Result:
        if ref.kiosk_id is None:
            if ref.channel == "allocator/status":
                return self._allocator(ref.center_id, payload, at)
            if ref.channel == "queue/event":  # a center's queue step (fleet.queue.province)
                outcome, reason = queue_province.store_event(self.store, ref.center_id, payload, at)
                return Result(outcome, ref.channel, reason)
            return Result("ignored", ref.channel)
        kiosk = ref.kiosk_id
        channel = ref.channel
        if channel == "blob":
            return self._blob(ref.center_id, kiosk, ref.detail, payload, at)
        if not payload:
            return Result("ignored", channel, "empty")  # a retained topic cleared
        if channel == "cmd/res":
            return self._result(ref.center_id, kiosk, parsed, at)
        if channel == "config/state":
            return self._config_state(ref.center_id, kiosk, parsed, at)
        return Result("ignored", channel)

    # --- per channel ---

    def _statuses(self, jobs: Sequence[_Job]) -> list[Result]:
        """A run of statuses: stored together (``record_statuses``), then the offline alarm of each kiosk
        whose status was applied brought in line, in order."""
        inserts = []
        for job in jobs:
            assert job.ref is not None and job.ref.kiosk_id is not None and job.status is not None
            ref = job.ref
            inserts.append(StatusInsert(ref.center_id, ref.kiosk_id or "", job.status, job.item.received_at))
        outcomes = self.store.telemetry.record_statuses(inserts)
        applied = {
            i.kiosk_id
            for i, o in zip(inserts, outcomes, strict=True)
            if isinstance(o, StatusOutcome) and o.applied
        }
        alarms = AlarmRun(self.store, self.store.alarms.active_for_kiosks(sorted(applied)))
        results = []
        for job, one, outcome in zip(jobs, inserts, outcomes, strict=True):
            assert job.ref is not None
            if isinstance(outcome, MotcuaError):
                results.append(self._refusal(job.ref, outcome, job.item.received_at))
                continue
            if outcome.applied:
                wanted: dict[str, Wanted] = {}
                if outcome.state == "offline":
                    wanted["offline"] = offline_wanted(one.report.reason)
                alarms.reconcile(one.kiosk_id, wanted, ["offline"], job.item.received_at)
            results.append(Result("stored", "status"))
        alarms.flush()
        return results

    def _healths(self, jobs: Sequence[_Job]) -> list[Result]:
        """A run of heartbeats: stored together, then each kiosk's alarms brought in line, in order."""
        inserts = []
        for job in jobs:
            assert job.ref is not None and job.ref.kiosk_id is not None and job.report is not None
            ref, report = job.ref, job.report
            inserts.append(HealthInsert(ref.center_id, ref.kiosk_id or "", report, job.item.received_at))
        outcomes = self.store.telemetry.record_healths(inserts)
        known = {i.kiosk_id for i, o in zip(inserts, outcomes, strict=True) if not isinstance(o, MotcuaError)}
        alarms = AlarmRun(self.store, self.store.alarms.active_for_kiosks(sorted(known)))
        results = []
        for job, beat, outcome in zip(jobs, inserts, outcomes, strict=True):
            assert job.ref is not None
            at = job.item.received_at
            if isinstance(outcome, MotcuaError):
                results.append(self._refusal(job.ref, outcome, at))
                continue
            health: Health = job.parsed
            if outcome.kiosk_bdseq is not None and health.bdseq < outcome.kiosk_bdseq:
                results.append(Result("stored", "health", "stale"))  # an old connection's: a sample only
                continue
            wanted, decided = from_health(health, at, self.alarms)
            if outcome.status is not None or outcome.kiosk_state == "online":
                decided = decided | {"offline"}  # a heartbeat of the live connection: it is not offline
            alarms.reconcile(beat.kiosk_id, wanted, decided, at)
            results.append(Result("stored", "health"))
        alarms.flush()
        return results

    def _events(self, jobs: Sequence[_Job]) -> list[Result]:
        """A run of events: their gaps followed (stored already by ``_claim_events``, or here together
        if that failed), then per event the dropped alarm (hooks: ``_run_hooks``)."""
        inserts = [self._insert_of(job) for job in jobs]
        claims = [job.claimed for job in jobs]
        if all(claim is not None for claim in claims):
            outcomes = self.store.events.track_events(inserts, [c for c in claims if c is not None])
        else:
            outcomes = self.store.events.insert_events(inserts)
        results = []
        for job, event, outcome in zip(jobs, inserts, outcomes, strict=True):
            assert job.ref is not None
            if isinstance(outcome, MotcuaError):
                results.append(self._refusal(job.ref, outcome, job.item.received_at))
                continue
            if outcome.inserted and event.event.kind == "outbox_dropped":
                self._dropped(event.kiosk_id, event.event, job.item.received_at)
            results.append(Result("stored" if outcome.inserted else "duplicate", "event"))
        return results

    def _dropped(self, kiosk_id: str, record: EventRecord, at: datetime) -> None:
        """A loss the kiosk announced: one alarm, which adds up further drops until acknowledged."""
        count = int(record.payload.get("count") or 0)
        previous = next(
            (a for a in self.store.alarms.active_for_kiosk(kiosk_id) if a.type == "events_dropped"), None
        )
        total = count + int((previous.detail or {}).get("count") or 0) if previous else count
        detail = {
            "state": "dropped",
            "count": total,
            "journal_id": record.journal_id,
            "first_seq": record.payload.get("first_seq"),
            "last_seq": record.payload.get("last_seq"),
        }
        try:
            self.store.alarms.raise_alarm(kiosk_id, "events_dropped", "major", detail=detail, at=at)
        except ConflictError:
            log.debug("events_dropped of %s raised concurrently", kiosk_id)

    def _result(self, center_id: str, kiosk_id: str, result: CommandResult, at: datetime) -> Result:
        if result.request_id is None:
            # garbage the kiosk could not even read a request id from: nothing to match it with
            raise ContractError(f"command-result without a request id: {result.reason[:200]}")
        outcome = self.store.commands.record_result(
            center_id,
            kiosk_id,
            result.request_id,
            command=result.command or "",
            status=result.status,
            reason=result.reason,
            result=dict(result.result),
            at=parse_time(result.at, "command-result.at"),
            received_at=at,
            args=_echoed_args(result),
            code=result.code,
        )
        if outcome == "unknown":
            return self._unknown_request(center_id, kiosk_id, result.request_id, "cmd/res")
        if outcome == "elsewhere":
            return Result("stored", "cmd/res", SENT_ELSEWHERE)
        if outcome == "elsewhere_limit":
            detail = (f"result of request {result.request_id} not made here: this kiosk reported "
                      f"{ELSEWHERE_PER_DAY} such results in a day already")
            return self._refuse(center_id, kiosk_id, "elsewhere_limit", detail, at, "refused", "cmd/res")
        return Result(outcome, "cmd/res")

    @staticmethod
    def _unknown_request(center_id: str, kiosk_id: str, request_id: str, channel: str) -> Result:
        """A result or blob of a request this store never made: normal where two fleets command the same
        kiosks (a center's and the province's, docs/province.md), so not a refusal. Nothing is stored;
        the worker counts it (``unknown_requests``)."""
        log.debug("%s of %s/%s: request %r was not made here (another fleet's)", channel, center_id,
                  kiosk_id, request_id)
        return Result("ignored", channel, UNKNOWN_REQUEST)

    def _blob(self, center_id: str, kiosk_id: str, request_id: str, data: bytes, at: datetime) -> Result:
        if len(data) > MAX_BLOB_BYTES:
            raise ContractError(
                f"blob {request_id}: {len(data)} bytes, more than the {MAX_BLOB_BYTES} allowed"
            )
        found = self.store.blobs.accept(
            center_id, kiosk_id, request_id, data, commands_with_blobs=BLOB_COMMANDS, received_at=at
        )
        if found == "unknown":
            return self._unknown_request(center_id, kiosk_id, request_id, "blob")
        if found == "unexpected":
            detail = f"blob {request_id} ({len(data)} bytes): request {request_id} makes no blob"
            return self._refuse(center_id, kiosk_id, "unexpected_blob", detail, at, "refused", "blob")
        return Result("stored" if found == "stored" else "duplicate", "blob")

    def _config_state(self, center_id: str, kiosk_id: str, state: ConfigState, at: datetime) -> Result:
        center_version = state.versions.get("center")
        kiosk_version = state.versions.get("kiosk")
        self.store.configs.record_state(
            center_id,
            kiosk_id,
            center_version=center_version,
            kiosk_version=kiosk_version,
            app_pending=state.app_pending,
            last_refused=to_data(state.last_refused) if state.last_refused is not None else None,
            at=parse_time(state.at, "config-state.at"),
            received_at=at,
        )
        self._follow_heartbeat(center_id, kiosk_id, center_version, kiosk_version)
        return Result("stored", "config/state")

    def _follow_heartbeat(
        self, center_id: str, kiosk_id: str, center_version: int | None, kiosk_version: int | None
    ) -> None:
        """A pushed ``agent.heartbeat_s`` the kiosk applied moves its silence limit (3 x heartbeat)."""
        wanted = {(t, v) for t, v in ((CENTER_TARGET, center_version), (kiosk_id, kiosk_version)) if v}
        bodies = self.store.outgoing.bodies(center_id, wanted)
        merged = merge_scopes(
            bodies.get((CENTER_TARGET, center_version or 0), {}),
            bodies.get((kiosk_id, kiosk_version or 0), {}),
        )
        heartbeat = (merged.get("agent") or {}).get("heartbeat_s")
        if isinstance(heartbeat, int | float) and not isinstance(heartbeat, bool):
            seconds = max(1, round(heartbeat))
            if self.store.registry.kiosk(ALL, kiosk_id).heartbeat_s != seconds:
                self.store.telemetry.set_heartbeat(kiosk_id, seconds)

    def _allocator(self, center_id: str, payload: bytes, at: datetime) -> Result:
        self.store.registry.center(ALL, center_id)  # NotFoundError: not one of our centers
        if not payload:
            self.store.alarms.clear_center_alarm(center_id, "allocator_offline", at=at)
            return Result("ignored", "allocator/status", "empty")
        status = AllocatorStatus.parse(payload)
        try:
            if status.state == "offline":
                self.store.alarms.raise_center_alarm(
                    center_id,
                    "allocator_offline",
                    "major",
                    detail={"state": status.reason, "at": status.at},
                    at=at,
                )
            else:
                self.store.alarms.clear_center_alarm(center_id, "allocator_offline", at=at)
            self._allocator_health(center_id, status, at)
        except ConflictError:  # every worker sees this retained topic; another one got there first
            log.debug("allocator alarm of %s raised concurrently", center_id)
        return Result("stored", "allocator/status")

    def _allocator_health(self, center_id: str, status: AllocatorStatus, at: datetime) -> None:
        """Online but not well: its worker is dead (the supervisor restarts it) or the enrollment registry
        cannot be read (every kiosk is refused until it can): the ``allocator_unhealthy`` alarm."""
        health = status.health
        problems = []
        if status.state == "online" and health is not None:
            if not health.worker_alive:
                problems.append("worker_dead")
            if health.registry_problem:
                problems.append("registry")
        if problems:
            detail = {"problems": problems, "registry_problem": health.registry_problem if health else ""}
            alarms = self.store.alarms
            alarms.raise_center_alarm(center_id, "allocator_unhealthy", "major", detail=detail, at=at)
        else:
            self.store.alarms.clear_center_alarm(center_id, "allocator_unhealthy", at=at)
