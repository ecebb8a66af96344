"""Edge agent benchmark: ``python -m bench.agent_bench [--events N] [--idle-s S]``.

Against its own Mosquitto (TLS, client certificates, the shipped config and ACL), side by side in one
run:
- raw paho QoS 1: a separate process publishes N event payloads and waits for every PUBACK;
- the agent's path: the "app" appends the same N events to the SQLite journal (batches of 100, one fsync
  each), the agent (a separate process) publishes them at QoS 1 and deletes them after PUBACK; timed
  until an independent subscriber has all N and the journal is empty;
- the agent's memory (RSS, peak) after that run, and its CPU at idle with heartbeats.
Prints a table and writes ``bench/results/agent_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil

from common.journal import EventJournal
from contract.events import Lookup, TicketIssued, event_payload_bytes, payload_json
from contract.topics import KioskTopics
from tests.agent.broker import ROOT, Broker, Pki
from tests.agent.conftest import CENTER, agent_config, write_kiosk_toml
from tests.agent.peer import Peer

RESULTS = ROOT / "bench" / "results"

RAW_PUBLISHER = textwrap.dedent(
    """
    import json, ssl, sys, time
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
    port, ca, cert, key, topic, payload_file = sys.argv[1:7]
    payloads = [bytes.fromhex(line) for line in open(payload_file)]
    acked = 0
    def on_publish(c, u, mid, rc, p):
        global acked
        acked += 1
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="kiosk-raw",
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.max_inflight_messages_set(int(sys.argv[7]))
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", int(port), keepalive=30)
    client.loop_start()
    time.sleep(0.5)
    start = time.perf_counter()
    wall_start = time.time()
    for body in payloads:
        client.publish(topic, body, qos=1)
    while acked < len(payloads):
        time.sleep(0.001)
    elapsed = time.perf_counter() - start
    client.disconnect(); client.loop_stop()
    print(json.dumps({"elapsed_s": elapsed, "wall_start": wall_start}))
    """
)


APP_PRODUCER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from common.journal import EventJournal
    from contract.events import TicketIssued
    journal = EventJournal(Path(sys.argv[1]))
    bodies = [TicketIssued.from_data(json.loads(line)) for line in open(sys.argv[2])]
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()
    start = time.perf_counter()
    for i in range(0, len(bodies), 100):
        journal.append_many(bodies[i:i + 100])
    print(json.dumps({"append_s": time.perf_counter() - start}))
    """
)


def make_payloads(n: int) -> list[bytes]:
    """Envelopes like the agent sends: ~300 bytes each."""
    out = []
    for i in range(n):
        body = payload_json(TicketIssued(f"A{i % 1000:03d}", "HOTICH", day="2026-11-23"))
        out.append(
            event_payload_bytes(
                seq=i + 1,
                event_id=os.urandom(16).hex(),
                kind="ticket_issued",
                occurred_at="2026-11-23T10:00:00.000+00:00",
                payload_json=body,
                journal_id=os.urandom(16).hex(),
                replay=False,
            )
        )
    return out


def bench_raw(broker: Broker, pki: Pki, payloads: list[bytes], work: Path, inflight: int) -> dict[str, Any]:
    ident = pki.client("kiosk-raw")
    payload_file = work / "payloads.hex"
    payload_file.write_text("\n".join(p.hex() for p in payloads))
    topic = KioskTopics(CENTER, "kiosk-raw").event("ticket_issued")
    subscriber = Peer(broker.service_port, str(pki.ca.cert_file), pki.client("fleet-1")).connect(topic)
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                RAW_PUBLISHER,
                str(broker.kiosk_port),
                str(pki.ca.cert_file),
                str(ident.cert_file),
                str(ident.key_file),
                topic,
                str(payload_file),
                str(inflight),
            ],
            capture_output=True,
            check=True,
            cwd=ROOT,
            timeout=300,
        )
        report = json.loads(out.stdout)
        acked = report["elapsed_s"]
        subscriber.wait(lambda: len(subscriber.messages) >= len(payloads), 60)
        to_subscriber = time.time() - report["wall_start"]
        received = len(subscriber.messages)
    finally:
        subscriber.close()
    return {
        "events": len(payloads),
        "elapsed_s": acked,
        "events_per_s": len(payloads) / acked,
        "inflight": inflight,
        "received_by_subscriber": received,
        "to_subscriber_s": to_subscriber,
        "to_subscriber_events_per_s": len(payloads) / to_subscriber,
    }


def bench_agent(broker: Broker, pki: Pki, payloads: list[bytes], work: Path, idle_s: float) -> dict[str, Any]:
    data_dir = work / "kiosk"
    cfg = agent_config(broker, pki, "kiosk-a", heartbeat_s=5.0)
    conf = write_kiosk_toml(work / "kiosk.toml", "kiosk-a", data_dir, cfg)
    topics = KioskTopics(CENTER, "kiosk-a")
    subscriber = Peer(broker.service_port, str(pki.ca.cert_file), pki.client("fleet-1")).connect(
        f"{topics.base}/event/#"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (work / "agent.out").open("wb")
    agent = subprocess.Popen(
        [sys.executable, "main.py", "agent", "--config", str(conf)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        proc = psutil.Process(agent.pid)
        # Its own fleet worker certificate: the broker makes a service's CN its client id.
        status_peer = Peer(broker.service_port, str(pki.ca.cert_file), pki.client("fleet-2")).connect(
            topics.status
        )
        status_peer.wait_for(topics.status, lambda d: d["state"] == "online", timeout=20, live=True)
        status_peer.close()
        rss_idle_before = proc.memory_info().rss
        journal = EventJournal(data_dir / "events.sqlite")
        bodies_file = work / "bodies.jsonl"
        bodies = [TicketIssued.from_data(json.loads(p)["payload"]) for p in payloads]
        bodies_file.write_text("\n".join(json.dumps(b.to_data()) for b in bodies))
        # The app is its own process, as on a kiosk: it appends in batches of 100 (one fsync each).
        producer = subprocess.Popen(
            [sys.executable, "-c", APP_PRODUCER, str(data_dir / "events.sqlite"), str(bodies_file)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert producer.stdin is not None and producer.stdout is not None
        assert producer.stdout.readline().strip() == b"ready"
        start = time.perf_counter()
        producer.stdin.write(b"go\n")
        producer.stdin.flush()
        appended = json.loads(producer.stdout.readline())["append_s"]
        producer.wait(30)
        # Every event PUBACKed by the broker = deleted from the journal: the "app -> broker" time.
        while journal.count() and time.perf_counter() - start < 300:
            time.sleep(0.005)
        drained = time.perf_counter() - start
        ok = subscriber.wait(lambda: len(subscriber.messages) >= len(payloads), 300)
        delivered = time.perf_counter() - start
        # Drain: the same events already waiting in the outbox (as after an outage); the agent is
        # paused with SIGSTOP while they are appended, so this times the agent's path alone.
        agent.send_signal(signal.SIGSTOP)
        for i in range(0, len(bodies), 100):
            journal.append_many(bodies[i : i + 100])
        drain_start = time.perf_counter()
        agent.send_signal(signal.SIGCONT)
        while journal.count() and time.perf_counter() - drain_start < 300:
            time.sleep(0.005)
        drain_s = time.perf_counter() - drain_start
        subscriber.wait(lambda: len(subscriber.messages) >= 2 * len(payloads), 300)
        rss = proc.memory_info().rss
        peak = _vm_hwm(agent.pid)
        # Single appends (one fsync each): what one citizen action costs the app's worker thread.
        t0 = time.perf_counter()
        for _ in range(200):
            journal.append(Lookup("found", "camera"))
        single_ms = (time.perf_counter() - t0) / 200 * 1000
        subscriber.wait(lambda: len(subscriber.messages) >= 2 * len(payloads) + 200, 30)
        while journal.count():
            time.sleep(0.05)
        # Idle: only heartbeats (every 5 s) and the journal poll (every 0.1 s).
        time.sleep(1.0)
        cpu0, t_idle = proc.cpu_times(), time.perf_counter()
        time.sleep(idle_s)
        cpu1, t_idle1 = proc.cpu_times(), time.perf_counter()
        idle_cpu = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (t_idle1 - t_idle) * 100
        journal.close()
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(20)
        subscriber.close()
        log.close()
    return {
        "events": len(payloads),
        "all_delivered": ok,
        "append_s": appended,
        "append_events_per_s": len(payloads) / appended,
        "delivered_s": delivered,
        "events_per_s": len(payloads) / drained,
        "to_subscriber_events_per_s": len(payloads) / delivered,
        "drained_s": drained,
        "single_append_ms": single_ms,
        "drain_s": drain_s,
        "drain_events_per_s": len(payloads) / drain_s,
        "rss_idle_start_mb": rss_idle_before / 2**20,
        "rss_after_run_mb": rss / 2**20,
        "rss_peak_mb": peak / 2**20 if peak else None,
        "idle_cpu_percent": idle_cpu,
        "idle_window_s": idle_s,
        "heartbeat_s": 5.0,
    }


def _vm_hwm(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agent_bench", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--idle-s", type=float, default=20.0)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="agbench-"))
    pki = Pki.create(work / "pki", ("kiosk-a", "kiosk-raw", "fleet"))
    broker = Broker(work / "broker", pki)
    broker.start()
    try:
        payloads = make_payloads(args.events)
        raw = bench_raw(broker, pki, payloads, work, 20)  # paho's default, as the agent uses
        agent = bench_agent(broker, pki, payloads, work, args.idle_s)
    finally:
        broker.cleanup()
    ratio = agent["events_per_s"] / raw["events_per_s"]
    ratio_sub = agent["to_subscriber_events_per_s"] / raw["to_subscriber_events_per_s"]
    rows = [
        ("raw paho QoS 1 (PUBACKed)", f"{raw['events_per_s']:,.0f} ev/s", f"{raw['elapsed_s']:.2f} s"),
        (
            "raw paho QoS 1, until the subscriber has all",
            f"{raw['to_subscriber_events_per_s']:,.0f} ev/s",
            f"{raw['to_subscriber_s']:.2f} s",
        ),
        (
            "agent: app append (batches of 100)",
            f"{agent['append_events_per_s']:,.0f} ev/s",
            f"{agent['append_s']:.2f} s",
        ),
        (
            "agent: app -> journal -> broker (all PUBACKed)",
            f"{agent['events_per_s']:,.0f} ev/s",
            f"{agent['drained_s']:.2f} s",
        ),
        (
            "agent: ... until the subscriber has all",
            f"{agent['to_subscriber_events_per_s']:,.0f} ev/s",
            f"{agent['delivered_s']:.2f} s",
        ),
        ("agent / raw (to PUBACK)", f"{ratio:.0%}", "target >= 50%"),
        ("agent / raw (until the subscriber has all)", f"{ratio_sub:.0%}", ""),
        (
            "agent: drain a pre-filled outbox (all PUBACKed)",
            f"{agent['drain_events_per_s']:,.0f} ev/s",
            f"{agent['drain_s']:.2f} s ({agent['drain_events_per_s'] / raw['events_per_s']:.0%} of raw)",
        ),
        ("single append (fsync)", f"{agent['single_append_ms']:.2f} ms", ""),
        (
            "agent RSS after run / peak",
            f"{agent['rss_after_run_mb']:.1f} MB",
            f"peak {agent['rss_peak_mb']:.1f} MB (target < 60)",
        ),
        (
            "agent CPU idle (heartbeat 5 s)",
            f"{agent['idle_cpu_percent']:.2f} %",
            f"over {args.idle_s:.0f} s (target < 1 %)",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(
        f"edge agent bench: {args.events:,} events of ~{sum(map(len, payloads)) // len(payloads)} bytes, "
        f"TLS, Mosquitto {platform.machine()}, {os.cpu_count()} CPUs"
    )
    for name, value, extra in rows:
        print(f"  {name:<{width}}  {value:>14}  {extra}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "agent_bench.json"
    out.write_text(
        json.dumps(
            {
                "raw": raw,
                "agent": agent,
                "ratio": ratio,
                "ratio_to_subscriber": ratio_sub,
                "payload_bytes": sum(map(len, payloads)) / len(payloads),
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
