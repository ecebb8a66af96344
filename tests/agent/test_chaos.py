"""Chaos: the agent killed with SIGKILL and the broker restarted while 10,000 events flow; and a long
outage with the outbox growing past its bound. The fleet side is an independent persistent subscriber."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from common.journal import EventJournal
from contract.topics import KioskTopics
from tests.agent.conftest import CENTER, agent_config, spawn_agent, wait_until, write_kiosk_toml
from tests.events import number_of, numbered

pytestmark = pytest.mark.broker

T = KioskTopics(CENTER, "kiosk-a")
EVENTS = 10_000


def test_ten_thousand_events_survive_sigkills_and_broker_restarts(own_broker, pki, data_dir, peer_factory):
    rng = random.Random(20261123)
    fleet = peer_factory(f"{T.base}/event/#", target=own_broker, persistent=True, client_id="fleet-chaos")
    cfg = agent_config(own_broker, pki, "kiosk-a", reconnect_min_s=0.1, reconnect_max_s=0.3)
    conf = write_kiosk_toml(data_dir / "kiosk.toml", "kiosk-a", data_dir, cfg)
    log_file = data_dir / "agent.out"
    agent = {"proc": spawn_agent(conf, log_file)}
    journal = EventJournal(data_dir / "events.sqlite")  # the app's side
    appended: list[str] = []
    done = threading.Event()

    def produce() -> None:
        kinds = ["ticket_issued", "lookup", "rating", "card_read", "device_fault"]
        while len(appended) < EVENTS:
            size = min(25, EVENTS - len(appended))
            batch = [numbered(rng.choice(kinds), len(appended) + k) for k in range(size)]
            appended.extend(e.event_id for e in journal.append_many(batch))
            time.sleep(0.02)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    kills = restarts = 0
    started = time.monotonic()
    while not done.is_set() or kills < 4 or restarts < 3:
        time.sleep(rng.uniform(0.4, 1.2))
        assert agent["proc"].poll() is None, "agent exited: " + log_file.read_text()[-2000:]
        if rng.random() < 0.55 and kills < 6:
            os.kill(agent["proc"].pid, signal.SIGKILL)
            agent["proc"].wait(5)
            agent["proc"] = spawn_agent(conf, log_file)
            kills += 1
        elif restarts < 5:
            own_broker.restart(down_s=rng.uniform(0.2, 1.0))
            restarts += 1
        assert time.monotonic() - started < 60, "chaos phase overran"
    producer.join()
    try:
        want = set(appended)
        assert len(want) == EVENTS

        def received_ids() -> set[str]:
            return {m.json()["event_id"] for m in list(fleet.messages)}

        assert fleet.wait(lambda: want <= received_ids(), 90), (
            f"missing {len(want - received_ids())} of {EVENTS} events; agent log tail: "
            + log_file.read_text()[-2000:]
        )
        assert wait_until(lambda: journal.count() == 0, 30), "acknowledged events were not deleted"
    finally:
        agent["proc"].send_signal(signal.SIGTERM)
        agent["proc"].wait(15)
    copies: dict[str, list[dict]] = {}
    for message in fleet.messages:
        body = message.json()
        copies.setdefault(body["event_id"], []).append(body)
    assert set(copies) == want  # nothing invented either
    for event_id, bodies in copies.items():
        # Duplicates only as the same event: same seq, kind, payload. (Some come from the broker
        # redelivering to the subscriber after a restart, so not every duplicate is an agent replay.)
        assert len({(b["seq"], b["kind"], json.dumps(b["payload"])) for b in bodies}) == 1, event_id
    duplicates = sum(len(b) - 1 for b in copies.values())
    replays = sum(1 for bodies in copies.values() for b in bodies if b["replay"])
    print(
        f"\nchaos: {kills} SIGKILLs, {restarts} broker restarts, {duplicates} duplicate deliveries, "
        f"{replays} deliveries marked replay"
    )
    assert kills >= 4 and restarts >= 3


def test_an_hour_long_outage_is_bounded_alarmed_and_delivered_in_order(
    own_broker, make_agent, peer_factory, data_dir
):
    fleet = peer_factory(
        f"{T.base}/event/#", f"{T.base}/health", target=own_broker, persistent=True, client_id="fleet-outage"
    )
    journal = EventJournal(data_dir / "events.sqlite")  # the app's side: the bound comes from the agent
    with make_agent(target=own_broker, outbox_max_events=1000, outbox_alarm_ratio=0.8) as agent:
        own_broker.stop()
        assert wait_until(lambda: not agent.link.connected, 10)
        # One hour of a busy kiosk (one event every 2.4 s) while the center is unreachable.
        start = datetime.now(UTC) - timedelta(hours=1)
        for n in range(1500):
            at = (start + timedelta(seconds=2.4 * n)).isoformat(timespec="milliseconds")
            journal.append(numbered("ticket_issued", n), occurred_at=at)
        stats = journal.stats()
        assert stats.pending <= 1000 and stats.dropped_total >= 500  # bounded

        def local_health() -> dict:
            path = data_dir / "agent-health.json"
            return json.loads(path.read_text()) if path.exists() else {}

        assert wait_until(
            lambda: "outbox_near_full" in local_health().get("alarms", []), 10
        )  # alarmed offline
        health = local_health()
        assert health["outbox"]["oldest_age_s"] > 1800 and health["link"]["connected"] is False
        expected = [e.seq for e in journal.pending(limit=2000)]
        own_broker.start()
        assert fleet.wait(lambda: len(fleet.on_prefix(f"{T.base}/event/")) >= len(expected), 30)
        assert wait_until(lambda: journal.count() == 0, 10)
        # the fleet hears the alarm after the outage, then sees it clear once the outbox drained
        assert fleet.wait(lambda: any(not m.json()["outbox"]["alarm"] for m in fleet.on(T.health)), 10)
    events = [m.json() for m in fleet.on_prefix(f"{T.base}/event/")]
    seqs = [e["seq"] for e in events]
    assert seqs == expected  # all of what was kept, once, in order per kiosk
    markers = [e for e in events if e["kind"] == "outbox_dropped"]
    assert markers and sum(m["payload"]["count"] for m in markers) >= 500 - len(markers)
    kept = [number_of("ticket_issued", e["payload"]) for e in events if e["kind"] == "ticket_issued"]
    assert kept == sorted(kept) and kept[-1] == 1499  # the oldest were dropped, the newest kept


def test_an_app_killed_mid_write_loses_no_acknowledged_event(make_agent, peer_factory, data_dir):
    """Every append that returned to the app is delivered, even when the app dies with SIGKILL."""
    import subprocess
    import sys

    from tests.agent.broker import ROOT

    peer = peer_factory(f"{T.base}/event/#")
    code = (
        "import sys; from pathlib import Path; from common.journal import EventJournal\n"
        "from contract.events import TicketIssued\n"
        "j = EventJournal(Path(sys.argv[1]))\n"
        "while True:\n"
        "    e = j.append(TicketIssued('A001', 'HOTICH'))\n"
        "    sys.stdout.write(e.event_id + '\\n'); sys.stdout.flush()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with make_agent():
        app = subprocess.Popen(
            [sys.executable, "-c", code, str(data_dir / "events.sqlite")], env=env, stdout=subprocess.PIPE
        )
        assert app.stdout is not None
        returned = [app.stdout.readline().decode().strip() for _ in range(300)]
        os.kill(app.pid, signal.SIGKILL)
        rest = app.stdout.read().decode().split()
        app.wait(5)
        acknowledged = set(returned + rest)
        assert peer.wait(lambda: acknowledged <= {m.json()["event_id"] for m in peer.messages}, 20)
