"""CPU per publish of the simulated kiosks' MQTT client (``bench.publish_clients``), standalone:

one client (a center service's certificate, as the fleet bench's publishers) publishes the fleet bench's
events (QoS 1, its mix of kinds, built beforehand) at a fixed rate into a throwaway Mosquitto with the
shipped configuration (TLS 1.2, client certificates, ACL; nobody subscribed); measured: the process's
CPU seconds (every thread: paho's network loop or libmosquitto's) from the first publish until the last
PUBACK, per message, and how much of it was the publishing (main) thread's.

    python -m bench.publisher_cost [--rate 2500] [--seconds 10] [--backends libmosquitto,paho] [--runs 3]
    python -m bench.publisher_cost --burst 30000   # as fast as it goes (the fleet bench's reconnect
                                                   # burst and capacity phase publish so)

The runs alternate between the backends (``--runs`` each), on one broker, a new connection each.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
import uuid
from typing import Any

import psutil

from bench.fleet_bench import PUBLISHER_IDENTITIES, _event, kiosk_ids, number_prefix
from bench.publish_clients import BACKENDS, Identity, open_client, wait_acked


def events(count: int, kiosks: int = 1000) -> list[tuple[str, bytes]]:
    """``count`` (topic, payload) of the fleet bench's mix, round the kiosks."""
    ids = kiosk_ids(kiosks)
    journals = {kiosk: uuid.uuid4().hex for _, kiosk in ids}
    made = []
    for index in range(count):
        center, kiosk = ids[index % len(ids)]
        seq = index // len(ids) + 1
        kind, payload, _ = _event(index, seq, journals[kiosk], 0.1, prefix=number_prefix(kiosk))
        made.append((f"motcua/v1/{center}/{kiosk}/event/{kind}", payload))
    return made


def process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def thread_cpu_s(native_id: int) -> float:
    found = next((t for t in psutil.Process().threads() if t.id == native_id), None)
    return found.user_time + found.system_time if found else 0.0


def measure(
    backend: str, identity: Identity, port: int, rate: float, seconds: float, burst: int = 0
) -> dict[str, Any]:
    """``rate`` publishes per second for ``seconds``; or ``burst`` publishes at once."""
    messages = events(burst or int(rate * seconds))
    client = open_client(backend, identity, "127.0.0.1", port)
    try:
        main_thread = threading.get_native_id()
        cpu_before, main_before = process_cpu_s(), thread_cpu_s(main_thread)
        started = time.monotonic()
        sent = 0
        while sent < len(messages):  # as the fleet bench's publishers: what is due, then a short sleep
            due = len(messages) if burst else min(len(messages), int((time.monotonic() - started) * rate))
            if due <= sent:
                time.sleep(0.002)
                continue
            for topic, payload in messages[sent:due]:
                client.publish(topic, payload, qos=1)
            sent = due
        publish_s = time.monotonic() - started
        all_acked = wait_acked(client, sent, timeout=60)
        cpu = process_cpu_s() - cpu_before
        main = thread_cpu_s(main_thread) - main_before
        return {
            "backend": backend, "messages": sent, "acked": client.acked, "all_acked": all_acked,
            "offered_msg_s": round(sent / publish_s, 1), "acked_all_s": round(time.monotonic() - started, 2),
            "cpu_s": round(cpu, 3),
            "cpu_us_per_msg": round(cpu / sent * 1e6, 1),
            "publishing_thread_us_per_msg": round(main / sent * 1e6, 1),
            "other_threads_us_per_msg": round((cpu - main) / sent * 1e6, 1),
        }
    finally:
        client.close()


def main() -> None:
    from tests.agent.broker import running_broker, temporary_pki

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2500, help="QoS 1 publishes per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--runs", type=int, default=3, help="runs of each backend, interleaved")
    parser.add_argument("--burst", type=int, default=0, help="publish this many at once instead (no rate)")
    args = parser.parse_args()
    backends = args.backends.split(",")
    if unknown := set(backends) - set(BACKENDS):
        parser.error(f"--backends: unknown {sorted(unknown)} (one of {', '.join(BACKENDS)})")
    name = PUBLISHER_IDENTITIES[0]
    results = []
    with temporary_pki((name,), "pubcost-pki-") as pki, running_broker(pki, "pubcost-mq-") as broker:
        issued = pki.client(name)
        identity = Identity(name, str(pki.ca.cert_file), str(issued.cert_file), str(issued.key_file))
        for _ in range(args.runs):
            for backend in backends:
                result = measure(backend, identity, broker.service_port, args.rate, args.seconds, args.burst)
                results.append(result)
                print(json.dumps(result), flush=True)
    print(f"{'backend':<13} {'msg':>7} {'offered/s':>9} {'acked s':>7} {'CPU us/msg':>10} "
          f"{'main thread':>11} {'others':>7}", file=sys.stderr)
    for r in results:
        print(f"{r['backend']:<13} {r['messages']:>7} {r['offered_msg_s']:>9} {r['acked_all_s']:>7} "
              f"{r['cpu_us_per_msg']:>10} "
              f"{r['publishing_thread_us_per_msg']:>11} {r['other_threads_us_per_msg']:>7}"
              + ("" if r["all_acked"] else "  NOT ALL ACKED"), file=sys.stderr)


if __name__ == "__main__":
    main()
