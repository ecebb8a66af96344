"""Birth, heartbeat, Will and clean stop, seen by an independent subscriber on the real broker."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from common.journal import EventJournal
from contract.events import DeviceFault, Event, Rating, TicketIssued
from contract.topics import KioskTopics
from tests.agent.conftest import CENTER, agent_config, spawn_agent, write_kiosk_toml
from tests.events import numbered

pytestmark = pytest.mark.broker

TOPICS = KioskTopics(CENTER, "kiosk-a")


def test_birth_heartbeat_and_clean_stop(make_agent, peer_factory, fake_app):
    peer = peer_factory(f"motcua/v1/{CENTER}/kiosk-a/#")
    with make_agent() as agent:
        birth = peer.wait_for(TOPICS.status, lambda d: d["state"] == "online" and d["bdseq"] == agent.bdseq)
        assert birth["schema"] == "status/1" and birth["reason"] == "birth"
        assert birth["bdseq"] == agent.bdseq and birth["boot"] == agent.boot
        assert birth["app_version"] == "0.1.0-test"
        assert birth["hardware"]["devices"] == {"printer": "ok", "card_reader": "ok", "scanner": "missing"}
        assert birth["config_version"] == {"center": 0, "kiosk": 0}
        fake_app.printer_state = "paper_near_end"
        beat = peer.wait_for(TOPICS.health, lambda d: d["devices"]["printer"]["state"] == "paper_near_end")
        assert beat["schema"] == "health/1"
        assert beat["app"]["state"] == "up" and beat["app"]["screen"] == "home"
        assert "printer_paper_near_end" in beat["alarms"]
        assert beat["devices"]["scanner"] == {"state": "missing"}
        assert beat["outbox"]["pending"] == 0 and beat["outbox"]["alarm"] is False
        # the agent runs inside pytest here, so this is pytest's RSS (every collected test module): reported,
        # and plausible; the agent's own memory is bench/agent_bench.py's (seen at 218 MB: the full suite)
        assert 0 < beat["memory"]["agent_rss_bytes"] < 1024 * 1024 * 1024
        bdseq = agent.bdseq
    bye = peer.wait_for(TOPICS.status, lambda d: d["state"] == "offline" and d["bdseq"] == bdseq)
    assert bye["reason"] == "shutdown" and bye["bdseq"] == bdseq
    # retained: a subscriber arriving later sees the same
    late = peer_factory(TOPICS.status)
    assert late.wait_for(TOPICS.status)["reason"] == "shutdown"
    assert late.on(TOPICS.status)[0].retain


def test_health_reports_app_down_and_keeps_going(make_agent, peer_factory):
    peer = peer_factory(TOPICS.health)
    with make_agent():
        beat = peer.wait_for(TOPICS.health)
    assert beat["app"]["state"] == "down"
    assert "app_down" in beat["alarms"]
    assert beat["devices"]["printer"] == {"state": "unknown"}


def test_will_on_sigkill_carries_the_birth_counter(broker, pki, data_dir, peer_factory):
    peer = peer_factory(TOPICS.status)
    cfg = agent_config(broker, pki, "kiosk-a", will_delay_s=0)
    conf = write_kiosk_toml(data_dir / "kiosk.toml", "kiosk-a", data_dir, cfg)
    proc = spawn_agent(conf, data_dir / "agent.out")
    try:
        birth = peer.wait_for(TOPICS.status, lambda d: d["state"] == "online", timeout=15, live=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        will = peer.wait_for(
            TOPICS.status,
            lambda d: d["state"] == "offline" and d["bdseq"] == birth["bdseq"],
            timeout=15,
            live=True,
        )
        assert will["reason"] == "lost"
        assert will["bdseq"] == birth["bdseq"] and will["boot"] == birth["boot"]
        # The next start is a new boot and a new connection: both counters move on.
        proc = spawn_agent(conf, data_dir / "agent.out")
        again = peer.wait_for(
            TOPICS.status, lambda d: d["state"] == "online" and d["bdseq"] > birth["bdseq"], timeout=15
        )
        assert again["boot"] == birth["boot"] + 1
    finally:
        proc.terminate()
        proc.wait(10)


def test_events_reach_the_fleet_in_order_and_are_deleted_after_puback(make_agent, peer_factory, data_dir):
    peer = peer_factory(f"motcua/v1/{CENTER}/kiosk-a/event/#")
    journal = EventJournal(data_dir / "events.sqlite")
    sent = [journal.append(TicketIssued(f"A{n:03d}", "HOTICH")) for n in range(50)]
    sent_rating = Rating(5, 5, "very_satisfied", criteria={"staff_attitude": 5})
    sent.append(journal.append(sent_rating))
    with make_agent() as agent:
        assert peer.wait(lambda: len(peer.messages) >= 51, 15)
        assert peer.wait(lambda: journal.count() == 0, 10), "acknowledged events not deleted"
        assert agent.published_total == 51
    got = [m.json() for m in peer.messages]
    assert [g["seq"] for g in got] == [e.seq for e in sent]
    first = got[0]
    assert peer.messages[0].topic == f"motcua/v1/{CENTER}/kiosk-a/event/ticket_issued"
    assert first == {
        "schema": "event/1",
        "event_id": sent[0].event_id,
        "seq": sent[0].seq,
        "journal_id": journal.journal_id,
        "kind": "ticket_issued",
        "occurred_at": sent[0].occurred_at,
        "replay": False,
        "payload": {"number": "A000", "service": "HOTICH", "priority": False, "identified": False, "day": ""},
    }
    assert got[-1]["payload"]["criteria"] == {"staff_attitude": 5} and got[-1]["payload"]["level"] == 5
    assert Event.parse(peer.messages[-1].payload).payload == sent_rating
    journal.close()


def test_replayed_events_are_marked(make_agent, peer_factory, data_dir):
    journal = EventJournal(data_dir / "events.sqlite")
    event = journal.append(numbered("lookup", 1))
    journal.mark_attempted(event.seq, event.seq)  # a previous agent sent it, then died before PUBACK
    fresh = journal.append(numbered("lookup", 2))
    peer = peer_factory(f"motcua/v1/{CENTER}/kiosk-a/event/#")
    with make_agent():
        assert peer.wait(lambda: len(peer.messages) >= 2)
    by_id = {m.json()["event_id"]: m.json() for m in peer.messages}
    assert by_id[event.event_id]["replay"] is True
    assert by_id[fresh.event_id]["replay"] is False
    journal.close()


def test_cli_entry_is_registered():
    import main

    parser = main.build_parser()
    args = parser.parse_args(["agent", "--config", "x.toml"])
    assert args.config == Path("x.toml") and args.func.__module__ == "edge_agent.cli"


def test_mqtt_311_fallback_still_births_and_delivers(make_agent, peer_factory, data_dir):
    peer = peer_factory(f"motcua/v1/{CENTER}/kiosk-a/#")
    journal = EventJournal(data_dir / "events.sqlite")
    event = journal.append(numbered("lookup", 1))
    with make_agent(protocol="3.1.1") as agent:
        birth = peer.wait_for(TOPICS.status, lambda d: d["state"] == "online" and d["bdseq"] == agent.bdseq)
        got = peer.wait_for(TOPICS.event("lookup"))
    assert birth["reason"] == "birth" and got["event_id"] == event.event_id
    journal.close()


def test_corrupted_agent_state_is_moved_aside(data_dir):
    from edge_agent.state import AgentState

    path = data_dir / "agent-state.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    state = AgentState(path)
    assert state.recovered_from is not None and state.recovered_from.exists()
    first = state.next_counter("bdseq")
    assert state.next_counter("bdseq") == first + 1
    state.close()


def test_journal_corrupted_while_running_is_moved_aside_and_reported(make_agent, peer_factory, data_dir):
    peer = peer_factory(f"motcua/v1/{CENTER}/kiosk-a/event/#")
    journal = EventJournal(data_dir / "events.sqlite")
    journal.append(numbered("lookup", 1))
    with make_agent() as agent:
        assert peer.wait(lambda: len(peer.messages) >= 1)
        for _ in range(300):  # some pages worth of data, checkpointed into the main file
            journal.append(DeviceFault("printer", "paper_out", "x" * 200))
        assert peer.wait(lambda: len(peer.messages) >= 301)
        journal._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        journal.close()
        with (data_dir / "events.sqlite").open("r+b") as handle:  # a disk fault scribbles the pages
            handle.seek(4096)
            handle.write(bytes(range(256)) * 64)
        app = EventJournal(data_dir / "events.sqlite")  # the app (re)opens: it finds it corrupted
        app.append(numbered("lookup", 2))
        got = peer.wait_for(TOPICS.event("journal_recovered"), timeout=15)
        assert got["payload"]["moved_to"].startswith("events.sqlite.corrupt-")
        peer.wait_for(TOPICS.event("lookup"), lambda d: d["payload"]["latency_ms"] == 2, timeout=15)
        assert agent.journal.journal_id == app.journal_id == got["journal_id"]
        app.close()


def test_the_agent_serves_the_queue_number_relay_to_the_app(make_agent, data_dir):
    from common import ipc

    with make_agent():
        link = ipc.call(data_dir / "agent.sock", "ticket.link", {})
    assert link["connected"] is True  # the relay rides on the agent's one MQTT session
