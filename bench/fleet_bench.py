"""The fleet ingest under a province's load (docs/fleet.md "Measured", docs/province.md):

simulated kiosks publish per the contract (``status/1`` births retained QoS 1, ``health/1`` every 30 s
QoS 0, events QoS 1 at a chosen rate with a mix of kinds, then a **reconnect burst**: every kiosk's new
birth and a replay of queued events at once) into a real Mosquitto (the shipped configuration: TLS 1.2,
client certificates, ACL), and ``main.py fleet ingest --workers N`` stores them; on SQLite and on a
throwaway PostgreSQL 15, with 1 and 2 workers. Measured: stored msg/s while the load runs (and whether
it kept up), publish -> stored p50/p99 (probe events: the time from ``publish()`` until a reader sees the
event in the store, polled every 100 ms, a probe every 100th event), CPU of workers, broker, PostgreSQL
and the publishers, the drain time of the burst, bytes per kiosk per day on the wire and in the store;
then the **capacity**: the ingest stopped, ``--capacity`` events queued in the broker for the workers'
sessions, the ingest started again: how fast it drains them (the publishers run on the same two cores
at ``nice 19``: the live phase shows what the center does with what they leave it).

    python -m bench.fleet_bench [--kiosks 2000] [--event-rate 4000] [--seconds 30] \
        [--backends sqlite,postgresql] [--workers 1,2] [--tickets 0.1] [--publisher libmosquitto|paho]

Prints a table and writes bench/results/fleet_bench.json. The simulated kiosks publish with two
center-service certificates (``fleet-3``, ``fleet-4``; two connections carrying many kiosks' topics)
rather than one TLS connection per kiosk: the messages, topics and QoS are the kiosks' own; what a
connection per kiosk costs the broker is measured on its own (``bench.fleet_connections``). Their MQTT
client (``bench.publish_clients``) is libmosquitto, the C library, through ctypes (its network loop a C
thread: 56-76 us of CPU per QoS 1 publish here against paho's 162-194, ``bench.publisher_cost``; the
load generator should cost the two cores as little as it can), or paho (``--publisher paho``; the
default when libmosquitto1 is not installed). The table and the JSON say which one ran.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import bindparam, create_engine, select, text

from bench.publish_clients import BACKENDS, Identity, default_backend, open_client, wait_acked
from fleet.store.schema import ingest_workers

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PROVINCE = "bench"
KIOSKS_PER_CENTER = 20
HEARTBEAT_S = 30
WORKER_IDENTITIES = ("fleet-1", "fleet-2")  # the ingest's workers' certificates (fleet-{n})
PUBLISHER_IDENTITIES = ("fleet-3", "fleet-4")  # the simulated kiosks' two connections
#: a busy center's kiosk, per day (docs/province.md): tickets, look-ups, ratings, card reads, sessions
EVENTS_PER_KIOSK_DAY = 400


def kiosk_ids(count: int) -> list[tuple[str, str]]:
    """(center, kiosk) of the simulated province: centers of 20 kiosks."""
    return [(f"bench-c{n // KIOSKS_PER_CENTER:03d}", f"kiosk-{n:05d}") for n in range(count)]


# --- the publishers (own processes: they must not share a GIL with what they measure) ---------------


@dataclass(frozen=True)
class PublisherPlan:
    identity: str
    ca: str
    cert: str
    key: str
    port: int
    kiosks: list[tuple[str, str]]
    event_rate: float  # events/s of this publisher
    seconds: float
    tickets: float  # share of ticket_issued among the events (they feed the queue's hook)
    replay_per_kiosk: int
    probe_every: int
    capacity: int  # events published while the ingest is stopped, to measure how fast it drains them
    backend: str  # the MQTT client: "libmosquitto" or "paho" (bench.publish_clients)


def _health(bdseq: int) -> bytes:
    from contract.health import AppHealth, DeviceHealth, Health, LinkHealth, OutboxHealth

    devices = {name: DeviceHealth("ok") for name in ("printer", "card_reader", "scanner")}
    return Health(
        bdseq=bdseq, boot=1, app=AppHealth("up", version="1.4.0"), outbox=OutboxHealth(0, 10000, 0.0),
        link=LinkHealth(True), devices=devices, cpu_percent=12.5, temperature_c=48.0,
        cert_not_after="2027-11-01T00:00:00Z",
    ).to_payload()


def number_prefix(kiosk_id: str) -> str:
    """A letter per kiosk of a center (``kiosk-NNNNN``): the kiosks' ticket numbers never collide, as
    the allocator's do not (with one letter for all, 90 % of the tickets were already in the queue)."""
    return chr(ord("A") + int(kiosk_id.rsplit("-", 1)[1]) % KIOSKS_PER_CENTER)


def _event(
    kind_index: int, seq: int, journal: str, tickets: float, replay: bool = False, prefix: str = "A"
) -> tuple[str, bytes, str]:
    from contract.events import CardRead, Event, Lookup, Rating, SessionEnded, TicketIssued

    share = (kind_index % 100) / 100
    payload: Any
    if share < tickets:
        payload = TicketIssued(f"{prefix}{seq % 999 + 1:03d}", "HOTICH", day="2026-11-23")
    elif share < tickets + 0.25:
        payload = Lookup("found", "camera", agency_code="000.00.10.H12")
    elif share < tickets + 0.45:
        payload = Rating(4, 4, "satisfied")
    elif share < tickets + 0.65:
        payload = CardRead("ok", "valid", 1850)
    else:
        payload = SessionEnded("done", 74.0)
    event_id = uuid.uuid4().hex
    return payload.KIND, Event(event_id, seq, journal, payload, replay=replay).to_payload(), event_id


def publisher(plan: PublisherPlan, out: Any) -> None:
    """Births, then heartbeats every 30 s per kiosk and events at the rate, then the reconnect burst.
    Reports phase times, counts, sizes and probes (event id, publish time) on ``out``."""
    from contract.status import Hardware, Status

    # The simulated kiosks run on the center's two cores only because the bench has no other machine:
    # they get what the center leaves (at normal priority, on paho, they took 0.8-1.3 cores at 5,000
    # msg/s; libmosquitto, the default, costs about a third of paho's CPU per publish). A publisher
    # that falls behind shows in sent/s (against offered/s, the rate asked for).
    os.nice(19)
    identity = Identity(plan.identity, plan.ca, plan.cert, plan.key)
    client = open_client(plan.backend, identity, "127.0.0.1", plan.port)
    counts = {"status": 0, "health": 0, "event": 0}
    sizes: dict[str, list[int]] = {"status": [], "health": [], "event": []}
    journals = {kiosk: uuid.uuid4().hex for _, kiosk in plan.kiosks}
    seqs = dict.fromkeys(journals, 0)
    probes: list[tuple[str, float]] = []

    def send(kind: str, topic: str, payload: bytes, qos: int, retain: bool = False) -> None:
        counts[kind] += 1
        if len(sizes[kind]) < 2000:
            sizes[kind].append(len(payload) + len(topic))
        client.publish(topic, payload, qos=qos, retain=retain)

    def births(bdseq: int) -> None:
        for center, kiosk in plan.kiosks:
            hardware = Hardware(devices={"printer": "ok", "card_reader": "ok", "scanner": "ok"})
            status = Status("online", "birth", bdseq, bdseq, agent_version="1.4.0", app_version="1.4.0",
                            hardware=hardware)
            send("status", f"motcua/v1/{center}/{kiosk}/status", status.to_payload(), 1, retain=True)
            send("health", f"motcua/v1/{center}/{kiosk}/health", _health(bdseq), 0)

    def make_event(index: int, replay: bool = False) -> tuple[str, bytes, str]:
        center, kiosk = plan.kiosks[index % len(plan.kiosks)]
        seqs[kiosk] += 1
        prefix = number_prefix(kiosk)
        kind, payload, event_id = _event(index, seqs[kiosk], journals[kiosk], plan.tickets, replay, prefix)
        return f"motcua/v1/{center}/{kiosk}/event/{kind}", payload, event_id

    def one_event(index: int, replay: bool = False, made: tuple[str, bytes, str] | None = None) -> None:
        topic, payload, event_id = made or make_event(index, replay)
        send("event", topic, payload, 1)
        if not replay and index < 10_000_000 and index % plan.probe_every == 0:
            probes.append((event_id, time.time()))

    marks: dict[str, float] = {"births": time.time()}
    births(1)
    births_sent = sum(counts.values())
    # the steady load's events made beforehand: building them took half a core at 5,000 msg/s, CPU the
    # kiosks spend on their own machines, not on the center's two cores
    steady = [make_event(index) for index in range(int(plan.event_rate * plan.seconds))]
    out.put(("ready", marks["births"]))  # when its births began: the main process times their storing
    go = out_wait(out)  # the main process says when every publisher's births are stored
    marks["steady"] = time.time()
    start = time.monotonic()
    sent_events = 0
    beat_every = HEARTBEAT_S / max(1, len(plan.kiosks))
    sent_beats = 0
    last_flush = start
    while (elapsed := time.monotonic() - start) < plan.seconds:
        due_events = int(elapsed * plan.event_rate) - sent_events
        for _ in range(min(due_events, 400)):
            one_event(sent_events, made=steady[sent_events] if sent_events < len(steady) else None)
            sent_events += 1
        due_beats = int(elapsed / beat_every) - sent_beats
        for _ in range(min(due_beats, 400)):
            center, kiosk = plan.kiosks[sent_beats % len(plan.kiosks)]
            send("health", f"motcua/v1/{center}/{kiosk}/health", _health(1), 0)
            sent_beats += 1
        if time.monotonic() - last_flush > 0.5:
            out.put(("probes", probes[:]))
            probes.clear()
            last_flush = time.monotonic()
        if due_events <= 0 and due_beats <= 0:
            time.sleep(0.002)
    out.put(("probes", probes[:]))
    probes.clear()
    marks["burst"] = time.time()
    before_burst = dict(counts)
    births(2)  # every kiosk reconnected: a new connection (bdseq 2), its birth and heartbeat ...
    for index in range(len(plan.kiosks) * plan.replay_per_kiosk):  # ... and what its outbox kept
        one_event(sent_events + index, replay=True)
    marks["burst_sent"] = time.time()
    wait_acked(client, sum(counts.values()))
    marks["burst_acked"] = time.time()
    out.put(("done", {"identity": plan.identity, "counts": dict(counts), "marks": marks, "go": go,
                      "before_burst": before_burst, "births_sent": births_sent,
                      "sizes": {k: statistics.mean(v) if v else 0 for k, v in sizes.items()}}))
    # the capacity phase: the ingest is stopped; the broker keeps what is published for its sessions
    flag = Path(os.environ["FLEET_BENCH_GO"] + ".capacity")
    while not flag.exists():
        time.sleep(0.01)
    before = dict(counts)
    started = time.time()
    for index in range(plan.capacity):
        one_event(10_000_000 + index, replay=False)
    wait_acked(client, sum(counts.values()))
    out.put(("capacity", {"identity": plan.identity, "events": counts["event"] - before["event"],
                          "publish_s": time.time() - started}))
    client.close()


def out_wait(out: Any) -> float:
    """A publisher waits for the go (a file the main process creates; a queue is one-way here)."""
    flag = Path(os.environ["FLEET_BENCH_GO"])
    while not flag.exists():
        time.sleep(0.01)
    return time.time()


# --- the center: broker, store, ingest --------------------------------------------------------------


@contextmanager
def postgres() -> Iterator[Any]:
    from tests.fleet.pg import throwaway_cluster

    with throwaway_cluster() as cluster:
        yield cluster


@contextmanager
def cluster_for(backend: str) -> Iterator[Any]:
    """A throwaway PostgreSQL for ``backend`` "postgresql", None for SQLite (``make_store`` needs none)."""
    if backend == "postgresql":
        with postgres() as cluster:
            yield cluster
    else:
        yield None


def make_store(backend: str, directory: Path, cluster: Any, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{directory / 'fleet.sqlite'}"
    engine = create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return str(cluster.url(name))


def seed(url: str, kiosks: list[tuple[str, str]]) -> None:
    from fleet.store import open_store

    store = open_store(url, upgrade=True)
    try:
        store.registry.ensure_province(PROVINCE, "Tỉnh đo tải")
        by_center: dict[str, list[dict[str, Any]]] = {}
        for center, kiosk in kiosks:
            by_center.setdefault(center, []).append({"id": kiosk, "slot": len(by_center.get(center, []))})
        for center, rows in by_center.items():
            store.registry.add_center(center, PROVINCE, f"Trung tâm {center}")
            store.registry.add_kiosks(center, rows)
    finally:
        store.close()


def counts(engine: Any) -> dict[str, int]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM event_keys), (SELECT count(*) FROM health_samples), "
                "(SELECT count(*) FROM kiosk_status)"
            )
        ).one()
    return {"event": int(row[0]), "health": int(row[1]), "status": int(row[2])}


def handled(engine: Any, since: datetime | None = None) -> int:
    """Messages the ingest workers took in (their counters in the store, written every 2 s); ``since``:
    only rows written after it (a restarted worker starts its counters again under the same id)."""
    with engine.connect() as conn:
        if since is None:
            rows = conn.execute(text("SELECT stats FROM ingest_workers")).scalars().all()
        else:
            query = select(ingest_workers.c.stats).where(ingest_workers.c.updated_at > since)
            rows = conn.execute(query).scalars().all()
    stats = [json.loads(r) if isinstance(r, str) else r for r in rows]
    return sum(int((s.get("counts") or {}).get("in", 0)) for s in stats)


def beats(engine: Any) -> list[tuple[str, float, int]]:
    """Each worker's last beat: (worker id, when it was written (epoch s), messages taken in by then)."""
    with engine.connect() as conn:
        columns = (ingest_workers.c.id, ingest_workers.c.updated_at, ingest_workers.c.stats)
        rows = conn.execute(select(*columns)).all()
    out = []
    for worker_id, updated_at, stats in rows:
        at = updated_at if updated_at.tzinfo else updated_at.replace(tzinfo=UTC)  # SQLite: naive UTC
        counts = (json.loads(stats) if isinstance(stats, str) else stats).get("counts") or {}
        out.append((worker_id, at.timestamp(), int(counts.get("in", 0))))
    return out


BeatLog = dict[str, list[tuple[float, int]]]  # per worker: (beat written, epoch s; messages taken in)


def stored_rate(beat_log: BeatLog, start: float, end: float) -> float | None:
    """Messages per second the workers took in between two moments: each worker's counts at its first
    and last beat inside [start, end] (a beat every 2 s), its rate, added up. The beats' own times, not
    the bench's readings of them (read every 0.5 s, a count lagged by up to 2 s: ~10 % of a 17 s window
    at 5,000 msg/s), and no beat past ``end`` (the reconnect burst follows the window). None when a
    worker has fewer than two beats inside."""
    total = 0.0
    for log in beat_log.values():
        inside = [(t, n) for t, n in log if start <= t <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        (t0, n0), (t1, n1) = inside[0], inside[-1]
        total += (n1 - n0) / (t1 - t0)
    return total


def taken_in_at(beat_log: BeatLog, when: float) -> float:
    """All workers' messages taken in by ``when``: each worker's last beat before it, carried on at the
    rate of the beat interval that ends there (nothing published after ``when`` counts)."""
    total = 0.0
    for log in beat_log.values():
        before = [(t, n) for t, n in log if t <= when]
        if not before:
            continue
        t1, n1 = before[-1]
        taken = float(n1)
        if len(before) >= 2 and t1 > before[-2][0]:
            t0, n0 = before[-2]
            taken += (n1 - n0) / (t1 - t0) * (when - t1)
        total += taken
    return total


def worker_counts(engine: Any, since: datetime) -> dict[str, int]:
    """The workers' counters (``ingest_workers.stats``) added up, of the rows written after ``since``."""
    with engine.connect() as conn:
        query = select(ingest_workers.c.stats).where(ingest_workers.c.updated_at > since)
        rows = conn.execute(query).scalars().all()
    total: dict[str, int] = {}
    for row in rows:
        for name, n in ((json.loads(row) if isinstance(row, str) else row).get("counts") or {}).items():
            total[name] = total.get(name, 0) + int(n)
    return total


def thread_cpu(processes: list[psutil.Process]) -> dict[tuple[int, int], float]:
    found: dict[tuple[int, int], float] = {}
    for proc in processes:
        with suppress(psutil.Error):
            for t in proc.threads():
                found[(proc.pid, t.id)] = t.user_time + t.system_time
    return found


def backend_waits(engine: Any) -> Counter[str]:
    """The other backends of this database in a transaction, by what they wait for (PostgreSQL)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT coalesce(wait_event_type, 'CPU'), count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' GROUP BY 1"
        )).all()
        idle = conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'idle in transaction'"
        )).scalar_one()
    found: Counter[str] = Counter({str(kind): int(n) for kind, n in rows})
    found["idle in transaction"] = int(idle)
    return found


def store_bytes(backend: str, url: str, engine: Any) -> int:
    if backend == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def cpu_seconds(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    found: dict[str, float] = {}
    for name, procs in processes.items():
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        found[name] = total
    return found


def postgres_processes(cluster: Any) -> list[psutil.Process]:
    pid = int((cluster.directory / "data" / "postmaster.pid").read_text().split()[0])
    master = psutil.Process(pid)
    return [master, *master.children(recursive=True)]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def run_one(backend: str, workers: int, args: argparse.Namespace, cluster: Any) -> dict[str, Any]:
    from tests.agent.broker import Broker, Pki

    directory = Path(tempfile.mkdtemp(prefix="fleetbench-"))
    kiosks = kiosk_ids(args.kiosks)
    pki = Pki.create(directory / "pki", (*WORKER_IDENTITIES, *PUBLISHER_IDENTITIES))
    broker = Broker(directory / "broker", pki)
    if args.broker_inflight:  # the shipped motcua.conf allows 100 unacknowledged messages per client
        conf = broker.conf.read_text()
        broker.conf.write_text(
            conf.replace("max_inflight_messages 1000", f"max_inflight_messages {args.broker_inflight}")
        )
    broker.start()
    url = make_store(backend, directory, cluster, f"bench_{backend}_{workers}_{int(time.time())}")
    seed(url, kiosks)
    engine = create_engine(url)
    go_flag = directory / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    def start_ingest() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "fleet", "ingest", "--db", url,
             "--broker", f"127.0.0.1:{broker.service_port}", "--ca", str(pki.ca.cert_file),
             "--cert", str(directory / "pki" / "fleet-{n}.crt"),
             "--key", str(directory / "pki" / "fleet-{n}.key"),
             "--workers", str(workers), "--client-id", "bench"],
            env=env, cwd=ROOT, stdout=(directory / "ingest.log").open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    ingest = start_ingest()
    result: dict[str, Any] = {"backend": backend, "workers": workers, "kiosks": args.kiosks,
                              "publisher": args.publisher}
    try:
        wait_for_workers(engine, workers)
        before_bytes = store_bytes(backend, url, engine)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        halves = [kiosks[0::2], kiosks[1::2]]
        plans = [
            PublisherPlan(identity, str(pki.ca.cert_file), str(pki.client(identity).cert_file),
                          str(pki.client(identity).key_file), broker.service_port,
                          half, args.event_rate / 2, args.seconds, args.tickets, args.replay, 100,
                          args.capacity // 2, args.publisher)
            for identity, half in zip(PUBLISHER_IDENTITIES, halves, strict=True)
        ]
        os.environ["FLEET_BENCH_GO"] = str(go_flag)  # the spawned publishers inherit it
        procs = [ctx.Process(target=publisher, args=(plan, out), daemon=True) for plan in plans]
        for proc in procs:
            proc.start()
        # the births are stored while the publishers still build their steady events: watched from
        # here, from the first publisher's first birth until a look at the store finds them all
        expected_births = 2 * len(kiosks)  # a status and a heartbeat each
        births_began: list[float] = []
        births_stored: float | None = None
        deadline = time.monotonic() + 180
        while len(births_began) < len(procs) or births_stored is None:
            if births_stored is None and sum(counts(engine).values()) >= expected_births:
                births_stored = time.time()
            if time.monotonic() > deadline:
                raise TimeoutError(f"births not stored: {counts(engine)} of {expected_births}")
            with suppress(queue.Empty):
                kind, value = out.get(timeout=0.1)
                if kind == "ready":
                    births_began.append(value)
        result["births_stored_s"] = round(births_stored - min(births_began), 2)
        watched = {
            "workers": [psutil.Process(ingest.pid), *psutil.Process(ingest.pid).children(recursive=True)],
            "broker": [psutil.Process(broker.process.pid)] if broker.process else [],
            "postgresql": postgres_processes(cluster) if backend == "postgresql" else [],
            "publishers": [psutil.Process(p.pid) for p in procs if p.pid],
        }
        go_flag.touch()
        pending: dict[str, float] = {}
        latencies: list[float] = []
        by_publish: list[tuple[float, float]] = []  # (publish time, latency): when the slow ones were sent
        done: list[dict[str, Any]] = []
        samples: list[tuple[float, dict[str, float]]] = []  # (time, CPU seconds of each part)
        beat_log: BeatLog = {}
        stop_sampling = threading.Event()

        live_waits: Counter[str] = Counter()  # what the workers' backends do while the load runs

        def sampler() -> None:
            sample_engine = create_engine(url)
            while not stop_sampling.is_set():
                samples.append((time.time(), cpu_seconds(watched)))
                for worker_id, at, taken in beats(sample_engine):
                    log = beat_log.setdefault(worker_id, [])
                    if not log or at > log[-1][0]:
                        log.append((at, taken))
                if backend == "postgresql":
                    live_waits.update(backend_waits(sample_engine))
                stop_sampling.wait(0.5)
            sample_engine.dispose()

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        while len(done) < len(procs) or pending:
            try:
                while True:
                    kind, body = out.get_nowait()
                    if kind == "probes":
                        pending.update(dict(body))
                    elif kind == "done":
                        done.append(body)
            except queue.Empty:
                pass
            if pending:  # the oldest first, a few hundred at a time: the probing must not load the store
                ids = list(pending)[:300]
                with engine.connect() as conn:
                    found = conn.execute(
                        text("SELECT event_id FROM event_keys WHERE event_id IN :ids").bindparams(
                            bindparam("ids", expanding=True)
                        ),
                        {"ids": ids},
                    ).scalars().all()
                now = time.time()
                for event_id in found:
                    sent_at = pending.pop(event_id)
                    latencies.append(now - sent_at)
                    by_publish.append((sent_at, now - sent_at))
                stale = [e for e, t in pending.items() if now - t > 120]
                for event_id in stale:
                    pending.pop(event_id)
                result.setdefault("probes_lost", 0)
                result["probes_lost"] += len(stale)
            if len(done) == len(procs) and not pending:
                break
            time.sleep(0.1)
        sent = {k: sum(d["counts"][k] for d in done) for k in ("status", "health", "event")}
        total_sent = sum(sent.values())
        burst_at = min(d["marks"]["burst"] for d in done)
        steady_at = min(d["marks"]["steady"] for d in done)
        burst_sent_at = max(d["marks"]["burst_sent"] for d in done)
        with suppress(RuntimeError):  # QoS 0 heartbeats may be dropped: then "lost" says how many
            wait_until(lambda: handled(engine) >= total_sent, 120)
        drained_at = time.time()
        stop_sampling.set()
        thread.join(5)
        time.sleep(2.5)  # the workers' last counters
        samples.append((time.time(), cpu_seconds(watched)))
        window = [s for s in samples if steady_at + 3 <= s[0] <= burst_at]
        first, last = (window[0], window[-1]) if len(window) >= 2 else (samples[0], samples[-1])
        span = last[0] - first[0]
        stored_per_s = stored_rate(beat_log, steady_at + 3, burst_at)
        offered = args.event_rate + args.kiosks / HEARTBEAT_S
        # what the publishers did send in their steady phase (a publisher short of CPU sends less)
        steady_sent = [sum(d["before_burst"].values()) - d["births_sent"] for d in done]
        sent_rate = sum(
            n / (d["marks"]["burst"] - d["marks"]["steady"]) for n, d in zip(steady_sent, done, strict=True)
        )
        sent_before_burst = sum(sum(d["before_burst"].values()) for d in done)
        result.update(
            {
                "offered_msg_s": round(offered, 1),
                "sent_msg_s": round(sent_rate, 1),
                # from the workers' beats inside the window (steady + 3 s to the burst)
                "stored_msg_s": round(stored_per_s, 1) if stored_per_s is not None else None,
                # sent before the burst but not stored when it began: > a few hundred = it did not keep up
                "backlog_at_burst": max(0, round(sent_before_burst - taken_in_at(beat_log, burst_at))),
                "publish_to_stored_ms": {
                    "n": len(latencies),
                    "p50": round(statistics.median(latencies) * 1000, 1) if latencies else None,
                    "p99": round(pct(latencies, 99) * 1000, 1) if latencies else None,
                    "max": round(max(latencies) * 1000, 1) if latencies else None,
                },
                # per second of the steady load (by publish time): probes, their median and worst
                # latency (ms), and what the workers stored that second: a stall shows its hour here
                "latency_by_second": latency_by_second(by_publish, beat_log, steady_at),
                "cpu_percent_of_one_core": {
                    name: round((last[1][name] - first[1][name]) / span * 100, 1) if span > 0 else None
                    for name in last[1]
                },
                "burst": {
                    "messages": args.kiosks * (2 + args.replay),
                    "sent_s": round(burst_sent_at - burst_at, 2),
                    "stored_all_s": round(drained_at - burst_at, 2),
                },
                "sent": sent,
                "lost": total_sent - handled(engine),
            }
        )
        sizes = {k: sum(d["sizes"][k] for d in done) / len(done) for k in ("status", "health", "event")}
        per_day = {"health": 86400 / HEARTBEAT_S, "event": EVENTS_PER_KIOSK_DAY, "status": 2}
        grown = store_bytes(backend, url, engine) - before_bytes
        stored_total = sum(counts(engine).values())
        result["bytes_per_kiosk_day"] = {
            "wire_payload_and_topic": round(sum(sizes[k] * per_day[k] for k in per_day)),
            "store": round(grown / max(1, stored_total) * sum(per_day.values())),
            "message_sizes": {k: round(v) for k, v in sizes.items()},
        }
        # the workers' counters of the births, the steady load and the burst: "batches" against "in"
        # says how many messages a transaction carried while the load ran
        result["worker_counts"] = worker_counts(engine, datetime.fromtimestamp(0, UTC))
        result["backend_samples"] = dict(live_waits)
        # capacity: the ingest stopped, the publishers queue --capacity events in the broker (the
        # workers' persistent sessions), then the ingest starts again and drains them
        with_suppress_kill(ingest)
        Path(str(go_flag) + ".capacity").touch()
        published: list[dict[str, Any]] = []
        while len(published) < len(procs):
            kind, body = out.get(timeout=300)
            if kind == "capacity":
                published.append(body)
        queued = sum(p["events"] for p in published)
        watched["workers"] = []
        rows_before = counts(engine)["event"]
        restarted = datetime.now(UTC)
        ingest = start_ingest()
        drain: list[tuple[float, int, dict[str, float]]] = []
        waits: Counter[str] = Counter()  # what the workers' backends were doing, sampled every 0.1 s
        threads_at_first: dict[tuple[int, int], float] = {}
        threads_at_last: dict[tuple[int, int], float] = {}
        # (time, events stored since the restart, CPU seconds), every 0.1 s
        rows: list[tuple[float, int, dict[str, float]]] = []
        deadline = time.monotonic() + 240
        next_beat_sample = 0.0
        while time.monotonic() < deadline:
            if not watched["workers"]:
                with suppress(psutil.Error):
                    kids = psutil.Process(ingest.pid).children(recursive=True)
                    if len(kids) >= workers or workers == 1:  # one worker runs in the ingest's process
                        watched["workers"] = [psutil.Process(ingest.pid), *kids]
            if backend == "postgresql" and not any(r[1] for r in rows):
                # the restarted workers' own backends, as they connect (until the first event is stored)
                with suppress(psutil.Error):
                    watched["postgresql"] = postgres_processes(cluster)
            rows.append((time.time(), counts(engine)["event"] - rows_before, cpu_seconds(watched)))
            if backend == "postgresql" and rows[-1][1]:
                waits.update(backend_waits(engine))
            if rows[-1][1] and not threads_at_first:
                threads_at_first = thread_cpu(watched["workers"])
            if rows[-1][1] >= queued and not threads_at_last:
                threads_at_last = thread_cpu(watched["workers"])
            if time.monotonic() >= next_beat_sample:
                drain.append((time.time(), handled(engine, restarted), cpu_seconds(watched)))
                next_beat_sample = time.monotonic() + 0.5
            if drain[-1][1] >= queued and rows[-1][1] >= queued:
                drain.append((time.time(), handled(engine, restarted), cpu_seconds(watched)))
                break
            time.sleep(0.1)
        # the stored rows, polled every 0.1 s: from the first poll that saw some to the first that saw all
        first_row = next((r for r in rows if r[1] > 0), rows[0])
        last_row = next((r for r in rows if r[1] >= queued), rows[-1])
        rows_span = max(0.001, last_row[0] - first_row[0])
        moving = [d for d in drain if d[1] > 0]
        start_d = moving[0] if moving else drain[0]
        end_d = drain[-1]
        # the counters move every 2 s: the rate between the first and the last beat that moved (none
        # when the drain ended within one beat)
        span_d = end_d[0] - start_d[0]
        by_counters = round((end_d[1] - start_d[1]) / span_d, 1) if end_d[1] > start_d[1] else None
        # CPU over the rows' window: what the drain of the events cost each process group
        worker_cpu = (last_row[2].get("workers", 0) - first_row[2].get("workers", 0)) / rows_span
        events_rate = (last_row[1] - first_row[1]) / rows_span
        result["capacity"] = {
            # what the workers store per second of CPU they got (the machine is shared)
            "msg_per_worker_cpu_s": round(events_rate / worker_cpu, 1) if worker_cpu else None,
            "queued_events": queued,
            "publish_s": round(max(p["publish_s"] for p in published), 1),
            "drained": end_d[1],  # every message the workers handled: the queued events, retained statuses
            "stored_msg_s": by_counters,
            # finer: the events' rows from the first poll that saw one to the first that saw all
            "events_stored_msg_s": round(events_rate, 1),
            "events_drain_s": round(rows_span, 2),
            "worker_counts": {},
            # per 0.1 s sample while the events drained: backends running ("CPU"), waiting for a lock
            # (a kiosk's or a center's row another worker holds: "Lock"), for the client ("Client"), ...
            "backend_samples": dict(waits),
            # CPU seconds of each thread of each worker process over the rows' window, the largest first
            # (Python's threads have no OS names: the processing thread and paho's are the two largest)
            "worker_threads_cpu_s": {
                str(pid): sorted(
                    (round(v - threads_at_first.get((pid, tid), 0.0), 2)
                     for (p, tid), v in threads_at_last.items() if p == pid),
                    reverse=True,
                )[:4]
                for pid in sorted({p for p, _ in threads_at_last})
            },
            "cpu_percent_of_one_core": {
                name: round((last_row[2].get(name, 0) - first_row[2].get(name, 0)) / rows_span * 100, 1)
                for name in last_row[2]
            },
        }
        time.sleep(2.5)  # the workers' last counters (written every 2 s)
        result["capacity"]["worker_counts"] = worker_counts(engine, restarted)
        for proc in procs:
            proc.join(10)
        return result
    finally:
        with_suppress_kill(ingest)
        broker.stop()
        engine.dispose()
        with suppress(OSError):  # the workers' log, for what the numbers do not say (retries, errors)
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(directory / "ingest.log", RESULTS / f"ingest-{backend}-{workers}.log")
        shutil.rmtree(directory, ignore_errors=True)


def latency_by_second(
    by_publish: list[tuple[float, float]], beat_log: BeatLog, start: float
) -> list[list[int]]:
    """[second, probes, p50 ms, max ms, stored msg/s] for each second of publish time from ``start``."""
    seconds: dict[int, list[float]] = {}
    for published, latency in by_publish:
        seconds.setdefault(int(published - start), []).append(latency)
    rows = []
    for second in sorted(seconds):
        values = seconds[second]
        at = start + second
        stored = round(taken_in_at(beat_log, at + 1) - taken_in_at(beat_log, at))
        rows.append([second, len(values), round(statistics.median(values) * 1000),
                     round(max(values) * 1000), stored])
    return rows


def with_suppress_kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_for_workers(engine: Any, workers: int, timeout: float = 60) -> None:
    def connected() -> bool:
        with engine.connect() as conn:
            query = text("SELECT stats FROM ingest_workers WHERE stopped_at IS NULL")
            rows = conn.execute(query).scalars().all()
        stats = [json.loads(r) if isinstance(r, str) else r for r in rows]
        return sum(1 for s in stats if s.get("connected")) >= workers

    wait_until(connected, timeout)
    time.sleep(1.0)  # the subscriptions follow the connection


def wait_until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not true within {timeout} s: {predicate}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kiosks", type=int, default=2000)
    parser.add_argument("--event-rate", type=float, default=4000, help="events/s offered (all kiosks)")
    parser.add_argument("--seconds", type=float, default=30, help="how long the steady load runs")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--tickets", type=float, default=0.1, help="share of ticket_issued events")
    parser.add_argument("--replay", type=int, default=5, help="events each kiosk replays in the burst")
    parser.add_argument("--capacity", type=int, default=60000,
                        help="events queued while the ingest is stopped, then drained (its capacity)")
    parser.add_argument("--broker-inflight", type=int, default=0,
                        help="max_inflight_messages of the broker (default: the shipped configuration's)")
    parser.add_argument("--publisher", choices=BACKENDS, default=None,
                        help="the simulated kiosks' MQTT client (default: libmosquitto when it loads)")
    parser.add_argument("--out", type=Path, default=RESULTS / "fleet_bench.json")
    args = parser.parse_args()
    args.publisher = args.publisher or default_backend()
    worker_numbers = [int(w) for w in args.workers.split(",")]
    if any(not 1 <= n <= len(WORKER_IDENTITIES) for n in worker_numbers):
        # the shipped ACL knows fleet-1 .. fleet-4; the publishers are fleet-3 and fleet-4, and a worker
        # on a publisher's certificate would take its session (each kicks the other off, forever)
        parser.error(f"--workers: 1 to {len(WORKER_IDENTITIES)} (the publishers use {PUBLISHER_IDENTITIES})")
    # a SIGTERM (timeout, Ctrl-C's cousin) must still run the clean-ups: the ingest and broker it started
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    runs = []
    backends = args.backends.split(",")
    with postgres() if "postgresql" in backends else _nothing() as cluster:
        for backend in backends:
            for workers in worker_numbers:
                print(f"fleet_bench: {backend}, {workers} worker(s) ...", file=sys.stderr, flush=True)
                runs.append(run_one(backend, workers, args, cluster))
                write_report(args, runs)  # after every run: a long series interrupted keeps what it has
    print_table(runs)
    print(f"(written to {args.out})")


def write_report(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    report = {
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def print_table(runs: list[dict[str, Any]]) -> None:
    head = (f"{'store':<11} {'wk':>2} {'offered/s':>9} {'sent/s':>9} {'stored/s':>9} "
            f"{'p50 ms':>8} {'p99 ms':>8} "
            f"{'cpu wk%':>7} {'cpu mq%':>7} {'cpu pg%':>7} {'burst s':>7} {'lost':>5} "
            f"{'B/kiosk/day wire':>16} {'store':>9} | {'drain msg/s':>11} {'rows/s':>7} "
            f"{'wk%':>5} {'pg%':>5}")
    print(f"simulated kiosks on {', '.join(sorted({r['publisher'] for r in runs}))}")
    print(head)
    for r in runs:
        lat, cpu = r["publish_to_stored_ms"], r["cpu_percent_of_one_core"]
        print(
            f"{r['backend']:<11} {r['workers']:>2} {r['offered_msg_s']:>9} {r['sent_msg_s']:>9} "
            f"{r['stored_msg_s']!s:>9} "
            f"{lat['p50']!s:>8} {lat['p99']!s:>8} {cpu['workers']!s:>7} {cpu['broker']!s:>7} "
            f"{cpu['postgresql']!s:>7} {r['burst']['stored_all_s']:>7} {r['lost']:>5} "
            f"{r['bytes_per_kiosk_day']['wire_payload_and_topic']:>16} "
            f"{r['bytes_per_kiosk_day']['store']:>9} | "
            f"{r['capacity']['stored_msg_s']!s:>11} {r['capacity']['events_stored_msg_s']:>7} "
            f"{r['capacity']['cpu_percent_of_one_core']['workers']:>5} "
            f"{r['capacity']['cpu_percent_of_one_core']['postgresql']:>5}"
        )


if __name__ == "__main__":
    main()
