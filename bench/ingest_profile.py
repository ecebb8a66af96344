"""Where one ingest worker's time goes in the capacity phase (docs/fleet.md "Where the worker's time
went"): events queued in a real Mosquitto for the worker's persistent session while it is away, then
one ``IngestWorker`` in this process drains them into a throwaway PostgreSQL (or SQLite).

Reported: drain time and msg/s, the CPU seconds of each of the worker's threads (paho's network thread,
``ingest-process``, the rest) and, with ``--profile``, a cProfile of the processing thread (the top
functions by cumulative and by own time, and the full profile in ``bench/results/``).

    python -m bench.ingest_profile [--events 8000] [--kiosks 200] [--tickets 0.1] [--backend postgresql]
        [--profile | --profile-network]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.fleet_bench import RESULTS, _event, cluster_for, kiosk_ids, make_store, number_prefix, seed

SHARE = "profile"


def _publish(broker: Any, pki: Any, kiosks: list[tuple[str, str]], events: int, tickets: float) -> float:
    """``events`` events over the kiosks (seq 1, 2, ... per kiosk), QoS 1, all acknowledged by the broker."""
    import uuid

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    identity = pki.client("fleet-3")
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="fleet-3", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.tls_set(ca_certs=str(pki.ca.cert_file), certfile=str(identity.cert_file),
                   keyfile=str(identity.key_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    acked = [0]
    client.on_publish = lambda c, userdata, mid, reason, properties: acked.__setitem__(0, acked[0] + 1)
    client.connect("127.0.0.1", broker.service_port)
    client.loop_start()
    while not client.is_connected():
        time.sleep(0.01)
    journals = {kiosk: uuid.uuid4().hex for _, kiosk in kiosks}
    seqs = dict.fromkeys(journals, 0)
    started = time.perf_counter()
    for index in range(events):
        center, kiosk = kiosks[index % len(kiosks)]
        seqs[kiosk] += 1
        kind, payload, _ = _event(index, seqs[kiosk], journals[kiosk], tickets, prefix=number_prefix(kiosk))
        client.publish(f"motcua/v1/{center}/{kiosk}/event/{kind}", payload, qos=1)
    while acked[0] < events:
        time.sleep(0.02)
    took = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return took


def _thread_cpu() -> dict[str, float]:
    """CPU seconds per thread name of this process (threads of the same name added up)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    found: dict[str, float] = {}
    for t in psutil.Process().threads():
        name = names.get(t.id, "other")
        if name.startswith("paho") or name == "other":
            name = "paho/other"  # paho's loop thread is started by paho; unnamed here
        found[name] = found.get(name, 0.0) + t.user_time + t.system_time
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=8000)
    parser.add_argument("--kiosks", type=int, default=200)
    parser.add_argument("--tickets", type=float, default=0.1)
    parser.add_argument("--backend", default="postgresql", choices=("postgresql", "sqlite"))
    parser.add_argument("--profile", action="store_true", help="cProfile the processing thread")
    parser.add_argument("--profile-network", action="store_true",
                        help="cProfile paho's network thread instead (the worker's session only)")
    parser.add_argument("--out", type=Path, default=RESULTS / "ingest_profile.json")
    args = parser.parse_args()

    from fleet.ingest import plugins
    from fleet.ingest.worker import IngestWorker, freeze_heap
    from fleet.store import open_store
    from tests.agent.broker import Broker, Pki
    from tests.fleet.mqtt import worker_settings

    plugins.load()  # the queue's ticket hook, as every ingest process has it
    directory = Path(tempfile.mkdtemp(prefix="ingestprof-"))
    pki = Pki.create(directory / "pki", ("fleet-3", "fleet-4"))
    broker = Broker(directory / "broker", pki)
    conf = broker.conf.read_text()
    assert "max_inflight_messages 1000" in conf  # the shipped window (deploy/mosquitto/motcua.conf)
    broker.start()
    try:
        with cluster_for(args.backend) as cluster:
            url = make_store(args.backend, directory, cluster, "profile")
            kiosks = kiosk_ids(args.kiosks)
            seed(url, kiosks)
            store = open_store(url)
            settings = worker_settings(broker, pki, "fleet-4", identity="fleet-4", share=SHARE,
                                       session_expiry_s=600, duties=False, notify=None)
            worker = IngestWorker(store, settings)
            worker.start()
            assert worker.wait_subscribed(15)
            worker.stop()  # the session stays: the broker keeps what follows for it
            publish_s = _publish(broker, pki, kiosks, args.events, args.tickets)
            profiler = cProfile.Profile() if args.profile or args.profile_network else None
            worker = IngestWorker(store, settings)
            freeze_heap()  # as `main.py fleet ingest` does before its worker starts
            if profiler is not None and args.profile_network:
                import paho.mqtt.client as paho

                thread_main = paho.Client._thread_main

                def profiled_network(client: paho.Client) -> None:
                    profiler.enable()
                    try:
                        thread_main(client)
                    finally:
                        profiler.disable()

                paho.Client._thread_main = profiled_network  # type: ignore[method-assign,assignment]
            elif profiler is not None:
                loop = worker._process_loop

                def profiled() -> None:
                    profiler.enable()
                    try:
                        loop()
                    finally:
                        profiler.disable()

                worker._process_loop = profiled  # type: ignore[method-assign]
            cpu_before = _thread_cpu()
            process_before = psutil.Process().cpu_times()
            started = time.perf_counter()
            worker.start()
            while worker.stats.channels["event"] < args.events and time.perf_counter() - started < 170:
                time.sleep(0.01)
            took = time.perf_counter() - started
            cpu = {k: round(v - cpu_before.get(k, 0.0), 2) for k, v in _thread_cpu().items()}
            process_after = psutil.Process().cpu_times()
            stats = dict(worker.stats.counts)
            worker.stop()
            stored = store.events.count(__import__("fleet.store", fromlist=["Scope"]).Scope.everything())
            store.close()
    finally:
        broker.stop()
        shutil.rmtree(directory, ignore_errors=True)
    result = {
        "backend": args.backend,
        "events": args.events,
        "kiosks": args.kiosks,
        "tickets": args.tickets,
        "profiled": "network" if args.profile_network else args.profile,
        "publish_s": round(publish_s, 2),
        "drain_s": round(took, 2),
        "msg_s": round(args.events / took, 1),
        "stored": stored,
        "counts": stats,
        "cpu_s_by_thread": cpu,
        "process_cpu_s": round(
            (process_after.user + process_after.system) - (process_before.user + process_before.system), 2
        ),
        "load_average": os.getloadavg(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    if profiler is not None:
        profile_file = args.out.with_suffix(".prof")
        profiler.dump_stats(profile_file)
        for order in ("cumulative", "tottime"):
            pstats.Stats(str(profile_file), stream=sys.stdout).sort_stats(order).print_stats(35)


if __name__ == "__main__":
    main()
