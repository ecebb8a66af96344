"""Issue 11: N kiosks' own TLS connections to one Mosquitto, held, all shown online on the dashboard, then
the broker restarted: how long until all are back and shown online again (docs/province.md,
docs/fleet.md "Measured (batches)").

The kiosks: N paho-mqtt 2.x clients (MQTT v5, TLS 1.2, each with its own certificate from a test CA,
CN = kiosk id) in **one process and one asyncio event loop**, through paho's external-loop API
(``on_socket_open/close/register_write/unregister_write`` -> ``loop_read``/``loop_write``, a ticker
calling ``loop_misc``; the pattern of paho's ``examples/loop_asyncio.py``). Each behaves like an agent at
birth (edge_agent/agent.py): a Will ``status/1`` offline/lost (retained, QoS 1, Will delay 5 s), clean
start off with a session expiry of one day, keepalive 30 s, on CONNACK a retained ``status/1``
online/birth, then a ``health/1`` every ``--heartbeat`` s (the agent's 30 s: without heartbeats the
fleet's silence sweep marks a kiosk offline after 3 x 30 s); ``bdseq`` grows by one per connection
attempt. After a lost connection: a jittered backoff, 0.5 s doubling to 5 s. paho's ``connect()`` does
its TCP connect and TLS handshake blocking; ``--connect-threads`` (default 4) run those handshakes off
the loop (everything after the handshake is the loop's), 0 runs them on the loop one at a time.

The center: the shipped Mosquitto configuration (``deploy/mosquitto``), the kiosks registered in a fleet
store (SQLite by default, ``--backend postgresql`` a throwaway PostgreSQL 15), ``main.py fleet ingest
--workers 2`` on the service listener and ``main.py fleet serve``. "Shown online" is what a province
admin gets over HTTP: the dashboard's own JSON export ``/centers?format=json`` (each center's online
count), summed; after the restart also every center's kiosk export (``/centers/{id}?format=json``): a
kiosk counts once its ``last_seen`` is after the restart (the new connection reached the dashboard).

    python -m bench.fleet_connections [--kiosks 10000] [--hold 300] [--workers 2] [--backend sqlite]

Prints a table and writes bench/results/fleet_connections.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import resource
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ADMIN = "tinh.admin"
#: what the agent uses by default (edge_agent/config.py)
KEEPALIVE_S = 30
WILL_DELAY_S = 5
SESSION_EXPIRY_S = 86400
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 5.0
REPORT_EVERY_S = 0.25


# --- the kiosks (their own process: one event loop, paho's external-loop API) ----------------------


@dataclass(frozen=True)
class FleetPlan:
    kiosks: list[tuple[str, str]]  # (center, kiosk)
    pki_dir: str
    ca: str
    port: int
    heartbeat_s: float
    connect_threads: int


def birth_payload(bdseq: int, boot: int) -> bytes:
    from contract.status import Hardware, Status

    hardware = Hardware(devices={"printer": "ok", "card_reader": "ok", "scanner": "ok"})
    return Status("online", "birth", bdseq, boot, agent_version="1.4.0", app_version="1.4.0",
                  hardware=hardware).to_payload()


def will_payload(bdseq: int, boot: int) -> bytes:
    from contract.status import Status

    return Status("offline", "lost", bdseq, boot).to_payload()


class SimKiosk:
    """One kiosk's MQTT side: a new paho client per connection attempt (as common/mqtt.py does), its
    socket served by the shared event loop."""

    def __init__(self, fleet: SimFleet, center: str, kiosk: str, context: ssl.SSLContext) -> None:
        from contract.topics import KioskTopics

        self.fleet = fleet
        self.kiosk_id = kiosk
        self.topics = KioskTopics(center, kiosk)
        self.context = context
        self.bdseq = 0
        self.boot = 1
        self.client: Any = None
        self.connected = False
        self.connected_at = 0.0
        self.backoff = BACKOFF_MIN_S
        self.beat: asyncio.TimerHandle | None = None

    # the connection ---------------------------------------------------------------------------------

    def new_client(self) -> Any:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.bdseq += 1  # per connection attempt, like the agent's Will (edge_agent/agent.py _make_will)
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.kiosk_id,
                             protocol=MQTTProtocolVersion.MQTTv5, reconnect_on_failure=False)
        client.tls_set_context(self.context)
        client.connect_timeout = 30.0
        will_props = Properties(PacketTypes.WILLMESSAGE)
        will_props.WillDelayInterval = WILL_DELAY_S
        client.will_set(self.topics.status, will_payload(self.bdseq, self.boot), qos=1, retain=True,
                        properties=will_props)
        client.on_connect = self.on_connect
        client.on_disconnect = self.on_disconnect
        client.on_socket_open = self.fleet.on_socket_open
        client.on_socket_close = self.fleet.on_socket_close
        client.on_socket_register_write = self.fleet.on_socket_register_write
        client.on_socket_unregister_write = self.fleet.on_socket_unregister_write
        return client

    def connect(self) -> None:
        """Blocking TCP connect and TLS handshake (paho has no other); see ``SimFleet.start_connect``."""
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        client = self.client = self.new_client()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            client.connect("127.0.0.1", self.fleet.plan.port, keepalive=KEEPALIVE_S, clean_start=False,
                           properties=props)
        except (OSError, ssl.SSLError, ValueError) as exc:  # refused while the broker is down, timeouts
            self.fleet.loop.call_soon_threadsafe(self.failed, client, type(exc).__name__)

    def failed(self, client: Any, error: str) -> None:
        self.fleet.errors[error] += 1
        if self.client is client:
            self.client = None
        self.retry_later()

    def retry_later(self) -> None:
        if self.fleet.stopping:
            return
        delay = self.backoff * random.uniform(0.5, 1.0)
        self.backoff = min(BACKOFF_MAX_S, self.backoff * 2)
        self.fleet.loop.call_later(delay, self.fleet.start_connect, self)

    # paho callbacks (the loop's thread: loop_read/loop_write/loop_misc run there) ----------------------

    def on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.fleet.errors[f"connack:{reason}"] += 1
            client.disconnect()
            return
        self.connected = True
        self.connected_at = time.time()
        self.backoff = BACKOFF_MIN_S
        self.fleet.kiosk_connected(self)
        client.publish(self.topics.status, birth_payload(self.bdseq, self.boot), qos=1, retain=True)
        # the first heartbeat somewhere in the period: 10,000 kiosks' beats spread, not in one burst
        self.beat = self.fleet.loop.call_later(random.uniform(0, self.fleet.plan.heartbeat_s), self.heartbeat)

    def heartbeat(self) -> None:
        from bench.fleet_bench import _health

        if self.connected and self.client is not None:
            self.client.publish(self.topics.health, _health(self.bdseq), qos=0)
            self.beat = self.fleet.loop.call_later(self.fleet.plan.heartbeat_s, self.heartbeat)

    def on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        was = self.connected
        self.connected = False
        self.client = None
        if self.beat is not None:
            self.beat.cancel()
            self.beat = None
        self.fleet.kiosk_disconnected(self, was)
        self.retry_later()


class SimFleet:
    def __init__(self, plan: FleetPlan, pipe: Connection) -> None:
        self.plan = plan
        self.pipe = pipe
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.pool = ThreadPoolExecutor(plan.connect_threads) if plan.connect_threads else None
        self.kiosks: list[SimKiosk] = []
        self.connected = 0
        #: connected kiosks whose connection began after the mark (the start, the broker's restart)
        self.fresh = 0
        self.mark = 0.0
        self.attempts = 0
        self.connects = 0
        self.drops = 0
        self.errors: Counter[str] = Counter()
        self.stopping = False
        self.clients: dict[Any, Any] = {}  # socket -> client, for the loop_misc ticker

    def build(self) -> None:
        for center, kiosk in self.plan.kiosks:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_verify_locations(self.plan.ca)
            base = Path(self.plan.pki_dir) / kiosk
            context.load_cert_chain(f"{base}.crt", f"{base}.key")
            self.kiosks.append(SimKiosk(self, center, kiosk, context))

    def start_connect(self, kiosk: SimKiosk) -> None:
        if self.stopping:
            return
        self.attempts += 1
        if self.pool is None:
            kiosk.connect()
        else:
            self.pool.submit(kiosk.connect)

    def kiosk_connected(self, kiosk: SimKiosk) -> None:
        self.connected += 1
        self.connects += 1
        if kiosk.connected_at >= self.mark:
            self.fresh += 1
            if self.fresh == len(self.kiosks):
                self.report("all")  # at once, not at the next tick: the time is the measurement

    def kiosk_disconnected(self, kiosk: SimKiosk, was_connected: bool) -> None:
        if was_connected:
            self.connected -= 1
            self.drops += 1
            if kiosk.connected_at >= self.mark:
                self.fresh -= 1

    # paho's socket callbacks: the connect runs on a pool thread, everything else on the loop --------

    def _in_loop(self, call: Callable[..., Any], *args: Any) -> None:
        if threading.get_ident() == self.loop_thread:
            call(*args)
        else:
            self.loop.call_soon_threadsafe(call, *args)

    def on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        def register() -> None:
            self.clients[sock] = client
            self.loop.add_reader(sock, self.readable, client, sock)

        self._in_loop(register)

    def readable(self, client: Any, sock: Any) -> None:
        client.loop_read()
        # TLS: a record may hold more than loop_read took; select() does not see what OpenSSL buffered
        while client.socket() is sock and sock.pending():
            client.loop_read()

    def on_socket_close(self, client: Any, userdata: Any, sock: Any) -> None:
        # always on the loop's thread (loop_read/write/misc close it), before paho closes the socket
        self.clients.pop(sock, None)
        self.loop.remove_reader(sock)
        self.loop.remove_writer(sock)

    def on_socket_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self._in_loop(self.loop.add_writer, sock, client.loop_write)

    def on_socket_unregister_write(self, client: Any, userdata: Any, sock: Any) -> None:
        self._in_loop(self.loop.remove_writer, sock)

    # the run ---------------------------------------------------------------------------------------

    def report(self, kind: str = "tick") -> None:
        self.pipe.send((kind, time.time(), {
            "connected": self.connected, "fresh": self.fresh, "attempts": self.attempts,
            "connects": self.connects, "drops": self.drops, "errors": dict(self.errors),
        }))

    async def run(self) -> None:
        self.build()
        self.pipe.send(("ready", time.time(), {"kiosks": len(self.kiosks)}))
        commands: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
        self.loop.add_reader(self.pipe.fileno(), lambda: commands.put_nowait(self.pipe.recv()))
        command, self.mark = await commands.get()
        assert command == "go"
        for kiosk in self.kiosks:
            self.start_connect(kiosk)
        ticker = asyncio.create_task(self.tick())
        while (order := await commands.get())[0] == "mark":  # only connections from now on count
            self.mark = order[1]
            self.fresh = sum(k.connected and k.connected_at >= self.mark for k in self.kiosks)
            self.report("marked")
        assert order[0] == "stop"
        self.stopping = True
        ticker.cancel()
        for kiosk in self.kiosks:  # a clean stop, not a measurement: close without DISCONNECT's wait
            if kiosk.client is not None:
                kiosk.client.disconnect()
                with suppress(Exception):
                    kiosk.client.loop_write()
        self.report("stopped")
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    async def tick(self) -> None:
        last_misc = 0.0
        while True:
            await asyncio.sleep(REPORT_EVERY_S)
            self.report()
            if time.monotonic() - last_misc >= 1.0:  # keepalive pings and their timeouts
                last_misc = time.monotonic()
                for client in list(self.clients.values()):
                    client.loop_misc()


def fleet_process(plan: FleetPlan, pipe: Connection) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def main() -> None:
        await SimFleet(plan, pipe).run()

    asyncio.run(main())


# --- the center: broker, store, ingest, web ---------------------------------------------------------


class Dashboard:
    """The province admin's view over HTTP."""

    def __init__(self, base: str) -> None:
        import httpx

        from tests.fleet.server import login

        self.client = httpx.Client(base_url=base, timeout=60)
        login(self.client, ADMIN)
        self.request_ms: list[float] = []

    def online(self) -> dict[str, int]:
        started = time.perf_counter()
        response = self.client.get("/centers", params={"format": "json"})
        response.raise_for_status()
        self.request_ms.append((time.perf_counter() - started) * 1000)
        items = response.json()["items"]
        return {key: sum(int(c[key]) for c in items) for key in ("kiosks", "online", "offline", "unknown")}

    def seen_since(self, centers: list[str], since: datetime) -> int:
        """Kiosks shown online whose last_seen is after ``since``: every center's own export."""
        count = 0
        for center in centers:
            rows = self.client.get(f"/centers/{center}", params={"format": "json"}).json()["items"]
            for row in rows:
                seen = row.get("last_seen")
                if row["state"] == "online" and seen and aware(datetime.fromisoformat(seen)) >= since:
                    count += 1
        return count


def aware(moment: datetime) -> datetime:
    """The store's times are UTC; SQLite hands them back without a zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextmanager
def center(args: argparse.Namespace, directory: Path, kiosks: list[tuple[str, str]]) -> Iterator[Any]:
    """Broker, store, ingest and web app, started; all stopped at the end."""
    from bench.fleet_bench import make_store, postgres, seed, wait_for_workers, with_suppress_kill
    from tests.agent.broker import Broker, Pki
    from tests.fleet.server import running_server

    with ExitStack() as stack:
        issued_at = time.perf_counter()
        workers = [f"fleet-{n}" for n in range(1, args.workers + 1)]
        pki = Pki.create(directory / "pki", (*workers, *(k for _, k in kiosks)))
        issue_s = time.perf_counter() - issued_at
        broker = Broker(directory / "broker", pki)
        broker.start()
        stack.callback(broker.stop)
        cluster = stack.enter_context(postgres()) if args.backend == "postgresql" else None
        url = make_store(args.backend, directory, cluster, f"conns_{int(time.time())}")
        seed(url, kiosks)
        add_admin(url)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        ingest = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "fleet", "ingest", "--db", url,
             "--broker", f"127.0.0.1:{broker.service_port}", "--ca", str(pki.ca.cert_file),
             "--cert", str(directory / "pki" / "fleet-{n}.crt"),
             "--key", str(directory / "pki" / "fleet-{n}.key"),
             "--workers", str(args.workers), "--client-id", "conns"],
            env=env, cwd=ROOT, stdout=(directory / "ingest.log").open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stack.callback(with_suppress_kill, ingest)
        from sqlalchemy import create_engine

        engine = create_engine(url)
        wait_for_workers(engine, args.workers)  # the bench's own readiness check, not a measurement
        engine.dispose()
        server = stack.enter_context(running_server(url, directory, name="web"))
        yield {"pki": pki, "broker": broker, "ingest": ingest, "server": server, "issue_s": issue_s,
               "url": url}


def add_admin(url: str) -> None:
    from bench.fleet_bench import PROVINCE
    from fleet.store import open_store
    from tests.fleet.data import CHEAP, PASSWORD

    store = open_store(url, upgrade=True)
    try:
        store.accounts.add_user(ADMIN, CHEAP.hash(PASSWORD), "province_admin", province_id=PROVINCE)
    finally:
        store.close()


class Watch:
    """CPU, memory and descriptors of the processes, sampled."""

    def __init__(self, processes: dict[str, list[psutil.Process]]) -> None:
        self.processes = processes
        self.peak: dict[str, dict[str, float]] = {}
        self.cpu_at_start = self.cpu()
        self.started = time.monotonic()
        self.loads: list[float] = []

    def cpu(self) -> dict[str, float]:
        from bench.fleet_bench import cpu_seconds

        return cpu_seconds(self.processes)

    def sample(self) -> dict[str, dict[str, float]]:
        now: dict[str, dict[str, float]] = {}
        for name, procs in self.processes.items():
            rss = fds = 0.0
            for proc in procs:
                with suppress(psutil.Error):
                    rss += proc.memory_info().rss / 2**20
                    fds += proc.num_fds()
            now[name] = {"rss_mb": round(rss, 1), "fds": fds}
            peak = self.peak.setdefault(name, {"rss_mb": 0.0, "fds": 0.0})
            peak["rss_mb"] = max(peak["rss_mb"], now[name]["rss_mb"])
            peak["fds"] = max(peak["fds"], fds)
        self.loads.append(os.getloadavg()[0])
        return now

    def cpu_percent(self) -> dict[str, float]:
        span = time.monotonic() - self.started
        end = self.cpu()
        return {name: round((end[name] - self.cpu_at_start.get(name, 0)) / span * 100, 1) for name in end}


class Run:
    """The measurement: kiosk process reports (pipe) and the dashboard, polled."""

    def __init__(self, args: argparse.Namespace, pipe: Connection, dashboard: Dashboard, watch: Watch,
                 centers: list[str]) -> None:
        self.args = args
        self.pipe = pipe
        self.dashboard = dashboard
        self.watch = watch
        self.centers = centers
        self.kiosks = args.kiosks
        self.last: dict[str, Any] = {"connected": 0, "fresh": 0}
        self.all_at: float | None = None
        self.marked = False
        self.timeline: list[dict[str, Any]] = []

    def drain(self) -> None:
        while self.pipe.poll():
            kind, at, body = self.pipe.recv()
            self.last = body
            if kind == "all" and self.all_at is None:
                self.all_at = at
            self.marked = self.marked or kind == "marked"

    def mark(self, at: float) -> None:
        """From now on only connections begun after ``at`` count (the kiosks' process says when)."""
        self.marked = False
        self.pipe.send(("mark", at))
        while not self.marked:
            self.pipe.poll(1)
            self.drain()

    def until_all(self, since: float, restarted: datetime | None = None) -> dict[str, Any]:
        """Until all connected since ``since`` (the kiosks say) and all shown online (the dashboard says)."""
        connected_at = shown_at = summary_at = None
        sweeps: list[float] = []  # how long each check of every center's export took
        min_online = self.kiosks
        next_poll = 0.0
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            self.drain()
            if self.last["fresh"] == self.kiosks and connected_at is None:
                connected_at = self.all_at or time.time()
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.args.poll
                counts = self.dashboard.online()
                min_online = min(min_online, counts["online"])
                self.timeline.append({"t": round(time.time() - since, 2), "connected": self.last["connected"],
                                      **counts})
                polled_at = time.time()
                if counts["online"] == self.kiosks and connected_at is not None and shown_at is None:
                    summary_at = summary_at or polled_at
                    if restarted is None:
                        shown_at = polled_at
                    else:  # the summary alone may still count old connections whose Will was not in
                        seen = self.dashboard.seen_since(self.centers, restarted)
                        sweeps.append(time.time() - polled_at)
                        if seen == self.kiosks:
                            shown_at = time.time()
            if connected_at is not None and shown_at is not None:
                break
            time.sleep(0.05)
        return {
            "all_connected_s": round(connected_at - since, 2) if connected_at else None,
            "all_shown_online_s": round(shown_at - since, 2) if shown_at else None,
            # the first poll whose summary said N online: a lower bound of the above after a restart
            "summary_all_online_s": round(summary_at - since, 2) if summary_at else None,
            "export_sweeps_s": [round(x, 1) for x in sweeps],
            "connected": self.last["connected"],
            "min_shown_online": min_online,
        }

    def hold(self) -> dict[str, Any]:
        started = time.monotonic()
        min_connected = min_online = self.kiosks
        checks = 0
        while (left := self.args.hold - (time.monotonic() - started)) > 0:
            time.sleep(min(self.args.check_every, left))
            self.drain()
            counts = self.dashboard.online()
            checks += 1
            min_online = min(min_online, counts["online"])
            min_connected = min(min_connected, self.last["connected"])
            self.watch.sample()
            self.timeline.append({"t": round(time.monotonic() - started, 2), "phase": "hold",
                                  "connected": self.last["connected"], **counts})
            print(f"  hold {time.monotonic() - started:6.0f} s: connected {self.last['connected']}, "
                  f"shown online {counts['online']}", file=sys.stderr, flush=True)
        return {"held_s": self.args.hold, "checks": checks, "min_connected": min_connected,
                "min_shown_online": min_online}


def measure(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    from bench.fleet_bench import kiosk_ids

    kiosks = kiosk_ids(args.kiosks)
    centers = sorted({c for c, _ in kiosks})
    result: dict[str, Any] = {"kiosks": args.kiosks, "centers": len(centers), "backend": args.backend,
                              "workers": args.workers, "connect_threads": args.connect_threads,
                              "heartbeat_s": args.heartbeat}
    with center(args, directory, kiosks) as site:
        broker = site["broker"]
        result["certificates_issued_s"] = round(site["issue_s"], 1)
        ctx = mp.get_context("spawn")
        ours, theirs = ctx.Pipe()
        plan = FleetPlan(kiosks, str(directory / "pki"), str(site["pki"].ca.cert_file), broker.kiosk_port,
                         args.heartbeat, args.connect_threads)
        proc = ctx.Process(target=fleet_process, args=(plan, theirs), daemon=True)
        proc.start()
        try:
            kind, _, _ = ours.recv()  # the kiosks' TLS contexts are built: not part of the measurement
            assert kind == "ready"
            dashboard = Dashboard(site["server"].base)
            ingest = psutil.Process(site["ingest"].pid)
            watch = Watch({
                "broker": [psutil.Process(broker.process.pid)],
                "kiosks": [psutil.Process(proc.pid)],
                "ingest": [ingest, *ingest.children(recursive=True)],
                "web": [psutil.Process(site["server"].process.pid)],
            })
            run = Run(args, ours, dashboard, watch, centers)
            started = time.time()
            ours.send(("go", started))
            print(f"fleet_connections: {args.kiosks} kiosks connecting ...", file=sys.stderr, flush=True)
            result["start"] = run.until_all(started)
            result["start"]["sample"] = watch.sample()
            print(f"  {result['start']}", file=sys.stderr, flush=True)
            result["hold"] = run.hold()
            run.drain()
            result["broker_before_restart"] = {
                "rss_mb": watch.sample()["broker"]["rss_mb"], "fds": watch.sample()["broker"]["fds"],
            }
            attempts_before = run.last["attempts"]
            print("  restarting the broker (SIGTERM, start) ...", file=sys.stderr, flush=True)
            restart_at = time.time()
            restarted = datetime.now(UTC)
            run.all_at = None
            run.mark(restart_at)
            broker.restart()
            result["restart_s"] = round(time.time() - restart_at, 2)  # SIGTERM to listening again
            watch.processes["broker"] = [psutil.Process(broker.process.pid)]
            result["after_restart"] = run.until_all(restart_at, restarted)
            run.drain()
            result["after_restart"]["attempts"] = run.last["attempts"] - attempts_before
            result["after_restart"]["sample"] = watch.sample()
            result["kiosk_totals"] = run.last
            result["cpu_percent_of_one_core"] = watch.cpu_percent()
            result["peak"] = watch.peak
            result["load_average"] = {"min": min(watch.loads), "max": max(watch.loads),
                                      "at_end": os.getloadavg()}
            ms = sorted(dashboard.request_ms)
            result["dashboard_request_ms"] = {"n": len(ms), "p50": round(ms[len(ms) // 2], 1),
                                              "max": round(ms[-1], 1)}
            result["timeline"] = run.timeline
            ours.send(("stop", time.time()))
            with suppress(EOFError, OSError):
                while ours.poll(10) and ours.recv()[0] != "stopped":
                    pass
        finally:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    return result


def print_table(result: dict[str, Any]) -> None:
    start, after, hold = result["start"], result["after_restart"], result["hold"]
    peak = ", ".join(f"{k} {v['rss_mb']:.0f}/{v['fds']:.0f}" for k, v in result["peak"].items())
    cpu = ", ".join(f"{k} {v}" for k, v in result["cpu_percent_of_one_core"].items())
    rows = [
        ("kiosks / centers", f"{result['kiosks']} / {result['centers']}"),
        ("store, ingest workers", f"{result['backend']}, {result['workers']}"),
        ("certificates issued", f"{result['certificates_issued_s']} s"),
        ("all connected (CONNACK)", f"{start['all_connected_s']} s"),
        ("all shown online (dashboard)", f"{start['all_shown_online_s']} s"),
        ("held", f"{hold['held_s']} s, {hold['checks']} checks: min connected {hold['min_connected']}, "
                 f"min shown online {hold['min_shown_online']}"),
        ("broker before restart", f"{result['broker_before_restart']['rss_mb']} MB, "
                                  f"{result['broker_before_restart']['fds']:.0f} descriptors"),
        ("broker SIGTERM -> listening", f"{result['restart_s']} s"),
        ("after restart: all connected", f"{after['all_connected_s']} s ({after['attempts']} attempts)"),
        ("after restart: all shown online", f"{after['all_shown_online_s']} s (summary: "
                                            f"{after['summary_all_online_s']} s; min shown online "
                                            f"{after['min_shown_online']})"),
        ("peak RSS MB / fds", peak),
        ("CPU % of one core (whole run)", cpu),
        ("load average (1 min)", f"{result['load_average']['min']:.1f}-{result['load_average']['max']:.1f}"),
        ("dashboard request ms", f"p50 {result['dashboard_request_ms']['p50']}, "
                                 f"max {result['dashboard_request_ms']['max']}"),
        ("errors seen by the kiosks", str(result["kiosk_totals"]["errors"])),
    ]
    for name, value in rows:
        print(f"{name:<34} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kiosks", type=int, default=10000)
    parser.add_argument("--hold", type=float, default=300.0, help="seconds to hold every connection")
    parser.add_argument("--check-every", type=float, default=10.0, help="dashboard check during the hold")
    parser.add_argument("--poll", type=float, default=1.0, help="dashboard poll while waiting for all")
    parser.add_argument("--heartbeat", type=float, default=30.0, help="health/1 every N s per kiosk")
    parser.add_argument("--workers", type=int, default=2, help="ingest workers (fleet ingest --workers)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--connect-threads", type=int, default=4,
                        help="threads for paho's blocking connect+handshake (0: on the event loop)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up waiting for all after this")
    parser.add_argument("--out", type=Path, default=RESULTS / "fleet_connections.json")
    args = parser.parse_args()
    # a SIGTERM must still run the clean-ups: the broker, ingest and web app it started
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the broker inherits it
    directory = Path(tempfile.mkdtemp(prefix="fleetconn-"))
    try:
        result = measure(args, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    result["fd_limit"] = {"soft_before": soft, "hard": hard}
    result["machine"] = {"cpus": os.cpu_count()}
    result["command"] = "python -m bench.fleet_connections " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print_table(result)
    print(f"(written to {args.out})", file=sys.stderr)


if __name__ == "__main__":
    main()
