"""The ingest over a real Mosquitto (shipped config and ACL, TLS, a certificate per kiosk) with real
agents: the shared subscription split between workers without double counting, commands with their
blobs, configuration pushed and reported, the Will and a quick reconnect, refusals, acknowledgement
only after the store committed, and a first throughput figure of one worker on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import signal
import ssl
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from common.errors import StoreError
from common.journal import EventJournal
from contract.events import Event, TicketIssued
from contract.wire import now_iso
from fleet.ingest.process import Incoming, Result
from fleet.store import Scope, Store, open_store
from fleet.store.models import Command as StoredCommand
from fleet.web.views_config import kiosk_rows
from tests.agent.broker import Broker, Pki, running_broker, temporary_pki
from tests.agent.conftest import agent_config, spawn_agent, write_kiosk_toml
from tests.conftest import ARTIFACTS
from tests.fleet.conftest import TIMINGS
from tests.fleet.mqtt import (
    CENTER,
    KIOSKS,
    OTHER_CENTER,
    drop_session,
    eventually,
    kiosk,
    running_worker,
    seed,
    worker_settings,
)

pytestmark = pytest.mark.broker
ALL = Scope.everything()


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    services = ("fleet", "fleet-1", "fleet-2", "fleet-3", "fleet-4")
    with temporary_pki((*KIOSKS, "kiosk-x", *services), "fipki-") as made:
        yield made


@pytest.fixture(scope="module")
def broker(pki: Pki) -> Iterator[Broker]:
    with running_broker(pki, "fibrk-") as instance:
        yield instance


@pytest.fixture
def fleet(sqlite_url: str) -> Iterator[Store]:
    store = open_store(sqlite_url)
    store.user_id = seed(store)  # type: ignore[attr-defined]
    yield store
    store.close()


@pytest.fixture(autouse=True)
def no_swallowed_exceptions(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A fleet thread that logged a traceback (log.exception) fails the test (the agent's guard idea)."""
    caplog.set_level(logging.INFO)
    yield
    swallowed = [
        f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info and r.name.startswith("fleet")
    ]
    assert swallowed == [], swallowed


def share() -> str:
    return f"t{uuid.uuid4().hex[:8]}"  # each test its own group: no session of another test gets a share


def test_two_workers_split_the_shared_subscription_and_none_double_counts(
    fleet: Store, broker: Broker, pki: Pki
) -> None:
    group = share()
    with (
        running_worker(
            fleet,
            worker_settings(broker, pki, f"{group}-0", identity="fleet-1", share=group, session_expiry_s=0),
        ) as one,
        running_worker(
            fleet, worker_settings(
                broker, pki, f"{group}-1", identity="fleet-2", share=group, session_expiry_s=0, duties=False
            )
        ) as two,
        kiosk(broker, pki, "kiosk-a") as (_agent, _app, directory),
    ):
        journal = EventJournal(directory / "events.sqlite")
        sent = journal.append_many(
            TicketIssued(f"A{n:03d}", "HOTICH", day="2026-11-23") for n in range(1, 601)
        )
        journal.close()
        eventually(lambda: fleet.events.count(ALL, kiosk_id="kiosk-a") == 600, timeout=60)
        eventually(lambda: (one.stats.counts["stored"] + two.stats.counts["stored"]) >= 600)
        got = {e.event_id for e in fleet.events.recent(ALL, "kiosk-a", limit=None)}
        assert got == {e.event_id for e in sent}
        shares = (one.stats.channels["event"], two.stats.channels["event"])
        assert min(shares) > 100, f"the broker should split the load, got {shares}"  # round robin
        assert sum(shares) == 600 + one.stats.counts["duplicate"] + two.stats.counts["duplicate"]
        assert fleet.events.gaps(ALL, "kiosk-a") == []  # the journal is one, seq 1..600
        eventually(lambda: fleet.registry.kiosk(ALL, "kiosk-a").state == "online")
        eventually(
            lambda: (
                len(fleet.ingest.workers()) == 2
                and all(w.stats.get("connected") for w in fleet.ingest.workers())
            )
        )
        # the agent reports when its certificate expires (health/1 cert_not_after, read from its cert file)
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(pki.client("kiosk-a").cert_file.read_bytes())
        health = eventually(lambda: fleet.telemetry.latest_health(ALL, "kiosk-a"))
        assert health["cert_not_after"] == now_iso(cert.not_valid_after_utc)
        leaders = [w.id for w in fleet.ingest.workers() if w.stats.get("leader")]
        assert leaders == [f"{group}-0"]  # the one with duties; the other only stores


def test_commands_round_trip_with_screenshot_and_logs(
    fleet: Store, broker: Broker, pki: Pki, tmp_path: Path
) -> None:
    user = fleet.user_id  # type: ignore[attr-defined]
    with (
        running_worker(fleet, worker_settings(broker, pki, share(), share=share(), session_expiry_s=0)),
        kiosk(broker, pki, "kiosk-b") as (_agent, app, directory),
    ):
        assert app is not None
        png = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
        app.screenshot_path.write_bytes(png)
        (directory / "logs").mkdir(exist_ok=True)
        (directory / "logs" / "kiosk.log").write_text(
            "10:02 printer ok\n10:03 a citizen with 079123456789 left\n"
        )
        (directory / "logs" / "agent.log").write_text("birth published\n")
        expires = fleet.db.now() + timedelta(minutes=10)

        def ask(command: str, args: dict[str, object]) -> str:
            return fleet.commands.create(ALL, "kiosk-b", command, args, user, expires_at=expires).request_id

        notice = ask("set_notice", {"text_vi": "Hôm nay nghỉ trưa 11:30–13:00", "text_en": ""})
        shot = ask("screenshot", {})
        logs = ask("upload_logs", {"max_kb": 4})
        test_print = ask("print_test_ticket", {})
        stale = fleet.commands.create(
            ALL, "kiosk-b", "restart_app", {}, user, expires_at=fleet.db.now() - timedelta(seconds=1)
        ).request_id

        def done() -> dict[str, StoredCommand]:
            found = {c.request_id: c for c in fleet.commands.for_kiosk(ALL, "kiosk-b")}
            return (
                found
                if all(found[r].status in ("ok", "error") for r in (notice, shot, logs, test_print, stale))
                else {}
            )

        found = eventually(done, timeout=20)
        assert [found[r].status for r in (notice, shot, logs, test_print)] == ["ok"] * 4
        assert (
            found[stale].status == "error" and "expired before it could be sent" in found[stale].result_reason
        )
        assert app.called("app.notice") == [{"text_vi": "Hôm nay nghỉ trưa 11:30–13:00", "text_en": ""}]
        assert app.called("app.restart") == []  # expired: never sent, never run
        assert len(app.called("app.print_test_ticket")) == 1
        blob = eventually(
            lambda: (
                fleet.blobs.infos(ALL, "kiosk-b", [shot, logs]).get(logs)
                and fleet.blobs.infos(ALL, "kiosk-b", [shot, logs])
            )
        )
        assert blob[shot].sha256 == hashlib.sha256(png).hexdigest() == found[shot].result["sha256"]
        archive = gzip.decompress(fleet.blobs.get(ALL, "kiosk-b", logs).data).decode()
        assert "==> kiosk.log <==" in archive and "079123456789" not in archive  # scrubbed on the kiosk
        assert found[logs].result["files"] == ["kiosk.log", "agent.log"]
        assert fleet.ingest.refusals(ALL) == []


def test_configuration_is_pushed_applied_reported_and_a_refusal_shown(
    fleet: Store, broker: Broker, pki: Pki
) -> None:
    user = fleet.user_id  # type: ignore[attr-defined]
    with (
        running_worker(fleet, worker_settings(broker, pki, share(), share=share(), session_expiry_s=0)),
        kiosk(broker, pki, "kiosk-c") as (_agent, app, _directory),
    ):
        assert app is not None
        center = fleet.configs.record_push(
            ALL, CENTER, "_center", {"kiosk": {"notice_vi": "Chào mừng"}, "agent": {"heartbeat_s": 7}}, user
        )

        def row() -> object:
            found = kiosk_rows(fleet, ALL, CENTER, [fleet.registry.kiosk(ALL, "kiosk-c")])[0]
            return found if found.status == "applied" else None

        applied = eventually(row, timeout=20)
        assert applied.applied_center == center.version and applied.missing == []
        eventually(lambda: fleet.outgoing.published([center.id]))  # the broker's PUBACK, recorded
        assert fleet.registry.kiosk(ALL, "kiosk-c").heartbeat_s == 7  # the silence limit follows it
        assert app.called("app.reload_config"), "the app was asked to reload"
        app.refuse_reload = "kiosk.idle_timeout_s: the hall screen needs at least 30 s"
        refused = fleet.configs.record_push(ALL, CENTER, "kiosk-c", {"kiosk": {"idle_timeout_s": 10}}, user)

        def refusal() -> object:
            found = kiosk_rows(fleet, ALL, CENTER, [fleet.registry.kiosk(ALL, "kiosk-c")])[0]
            return found if found.status == "refused" else None

        shown = eventually(refusal, timeout=20)
        assert shown.state.last_refused["version"] == refused.version
        assert "at least 30 s" in shown.state.last_refused["reason"]
        assert [d.key for d in shown.missing] == ["kiosk.idle_timeout_s"]


def test_will_means_offline_within_the_delay_and_a_quick_reconnect_raises_nothing(
    fleet: Store, broker: Broker, pki: Pki
) -> None:
    directory = Path(tempfile.mkdtemp(prefix="fw-"))
    cfg = agent_config(broker, pki, "kiosk-d", heartbeat_s=1.0, will_delay_s=4)
    toml = write_kiosk_toml(directory / "kiosk.toml", "kiosk-d", directory, cfg)
    log = directory / "agent.log"
    fleet.telemetry.set_heartbeat("kiosk-d", 5)  # silence after 15 s: the Will (4 s) is what tells here
    with running_worker(fleet, worker_settings(broker, pki, share(), share=share(), session_expiry_s=0)):
        process = spawn_agent(toml, log)
        try:
            eventually(lambda: fleet.registry.kiosk(ALL, "kiosk-d").state == "online", timeout=20)
            first_bdseq = fleet.registry.kiosk(ALL, "kiosk-d").bdseq
            # a crash and a restart within the Will delay: the broker never publishes the Will
            process.send_signal(signal.SIGKILL)
            process.wait()
            process = spawn_agent(toml, log)
            eventually(
                lambda: (fleet.registry.kiosk(ALL, "kiosk-d").bdseq or 0) > (first_bdseq or 0), timeout=20
            )
            time.sleep(5)  # longer than the Will delay
            history = fleet.telemetry.status_history(ALL, "kiosk-d")
            assert [h.state for h in history if h.applied and h.state == "offline"] == []
            assert fleet.registry.kiosk(ALL, "kiosk-d").state == "online"
            assert [a for a in fleet.alarms.active_for_kiosk("kiosk-d") if a.type == "offline"] == []
            # now a crash for good
            killed = time.monotonic()
            process.send_signal(signal.SIGKILL)
            process.wait()
            eventually(
                lambda: any(a.type == "offline" for a in fleet.alarms.active_for_kiosk("kiosk-d")), timeout=15
            )
            took = time.monotonic() - killed
            TIMINGS["sigkill_to_offline_alarm_s (will delay 4 s)"] = round(took, 2)
            kiosk_now = fleet.registry.kiosk(ALL, "kiosk-d")
            assert (kiosk_now.state, kiosk_now.state_reason) == ("offline", "lost")
            assert 4.0 <= took < 4 + 5, took
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_refused_over_the_broker_unknown_kiosk_and_wrong_center(
    fleet: Store, broker: Broker, pki: Pki
) -> None:
    with (
        running_worker(fleet, worker_settings(broker, pki, share(), share=share(), session_expiry_s=0)),
        kiosk(broker, pki, "kiosk-e", center=OTHER_CENTER),  # registered at Bến Thành, says Thủ Đức
        kiosk(broker, pki, "kiosk-x"),  # has a certificate, is in no registry
    ):

        def refused() -> set[tuple[str, str, str]]:
            found = {(r.center_id, r.kiosk_id, r.reason) for r in fleet.ingest.refusals(ALL)}
            wanted = {(OTHER_CENTER, "kiosk-e", "wrong_center"), (CENTER, "kiosk-x", "unknown_kiosk")}
            return found if wanted <= found else set()

        eventually(refused, timeout=15)
        assert fleet.registry.kiosk(ALL, "kiosk-e").state == "unknown"  # nothing it said was stored
        eventually(  # its birth, then each heartbeat: every one refused and counted
            lambda: next(r for r in fleet.ingest.refusals(ALL) if r.kiosk_id == "kiosk-x").count >= 3
        )
        # the manager of Bến Thành sees both: one names their center, the other is their kiosk
        assert {r.kiosk_id for r in fleet.ingest.refusals(Scope.center(CENTER))} >= {"kiosk-e", "kiosk-x"}


def test_a_message_is_acknowledged_only_after_the_store_committed(
    fleet: Store, broker: Broker, pki: Pki
) -> None:
    group = share()
    settings = worker_settings(
        broker, pki, f"{group}-w", identity="fleet-3", share=group, session_expiry_s=600, duties=False
    )
    with running_worker(fleet, settings) as broken:
        real = broken.processor.handle_batch

        def store_down(items: Sequence[Incoming]) -> list[Result]:
            if any("/event/" in item.topic for item in items):
                raise StoreError("database is down (test)")
            return real(items)

        broken.processor.handle_batch = store_down  # type: ignore[method-assign]
        with kiosk(broker, pki, "kiosk-f") as (_agent, _app, directory):
            journal = EventJournal(directory / "events.sqlite")
            journal.append_many(TicketIssued(f"B{n:03d}", "DATDAI") for n in range(1, 21))
            eventually(lambda: journal.count() == 0, timeout=20)  # the broker has them all (PUBACK)
            journal.close()
            eventually(lambda: broken.stats.counts["store_retries"] >= 3)
            assert fleet.events.count(ALL, kiosk_id="kiosk-f") == 0
    # the same worker again (same client id, so the same session): the broker delivers what was not acked
    try:
        with running_worker(fleet, settings):
            eventually(lambda: fleet.events.count(ALL, kiosk_id="kiosk-f") == 20, timeout=20)
    finally:
        drop_session(broker, pki, "fleet-3")


def _publisher(broker: Broker, pki: Pki, kiosk_id: str) -> paho.Client:
    identity = pki.client(kiosk_id)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=kiosk_id, protocol=MQTTProtocolVersion.MQTTv5)
    client.tls_set(
        ca_certs=str(pki.ca.cert_file),
        certfile=str(identity.cert_file),
        keyfile=str(identity.key_file),
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", broker.kiosk_port)
    client.loop_start()
    return client


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_throughput_of_one_worker(backend: str, store_url: str, broker: Broker, pki: Pki) -> None:
    """A first figure (the full benchmark comes later): events queued by the broker while the worker was
    away, then one worker storing them, each acknowledged after its transaction."""
    store = open_store(store_url)
    seed(store)
    count = 1500
    group = share()
    settings = worker_settings(
        broker, pki, f"{group}-solo", identity="fleet-4", share=group, session_expiry_s=600, duties=False
    )
    try:
        with running_worker(store, settings):
            pass  # subscribed once: from now on the broker keeps this session's messages
        client = _publisher(broker, pki, "kiosk-g")
        journal = uuid.uuid4().hex
        infos = []
        for seq in range(1, count + 1):
            event = Event(uuid.uuid4().hex, seq, journal, TicketIssued(f"C{seq:04d}", "HOTICH"), now_iso())
            infos.append(
                client.publish(f"motcua/v1/{CENTER}/kiosk-g/event/ticket_issued", event.to_payload(), qos=1)
            )
        for info in infos[-50:]:
            info.wait_for_publish(30)
        client.disconnect()
        client.loop_stop()
        started = time.perf_counter()
        with running_worker(store, settings) as worker:
            eventually(
                lambda: store.events.count(ALL, kiosk_id="kiosk-g") == count, timeout=120, interval=0.02
            )
            took = time.perf_counter() - started
            # a batch's counters are added just after its commit: the store may show them a moment first
            eventually(lambda: worker.stats.channels["event"] >= count, timeout=10)
            stats = dict(worker.stats.counts)
            events = worker.stats.channels["event"]
        rate = count / took
        TIMINGS[f"ingest_one_worker_events_per_s_{backend}"] = round(rate, 1)
        ARTIFACTS.joinpath("fleet").mkdir(parents=True, exist_ok=True)
        ARTIFACTS.joinpath("fleet", f"ingest-throughput-{backend}.json").write_text(
            json.dumps(
                {
                    "events": count,
                    "seconds": round(took, 2),
                    "events_per_s": round(rate, 1),
                    "stats": stats,
                    "busy_s": round(worker.stats.busy_s, 2),
                },
                indent=2,
            )
            + "\n"
        )
        print(f"\n{backend}: one worker stored {count} events in {took:.2f} s ({rate:.0f}/s)")
        assert events == count and stats.get("duplicate", 0) == 0  # (retained statuses of other kiosks too)
        assert store.events.gaps(ALL, "kiosk-g") == []
    finally:
        drop_session(broker, pki, "fleet-4")
        store.close()


def test_fleet_ingest_runs_supervised_workers_that_come_back_after_a_kill(
    fleet: Store, broker: Broker, pki: Pki, sqlite_url: str, tmp_path: Path
) -> None:
    """``main.py fleet ingest --workers 2`` as an operator runs it: two processes, visible in the store and
    in ``fleet ingest-status``; one SIGKILLed comes back; SIGTERM stops them all."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    for name in ("fleet-1", "fleet-2"):
        pki.client(name)  # each worker has its own certificate: fleet-{n}
    cert_pattern = str(pki.client("fleet-1").cert_file).replace("fleet-1", "fleet-{n}")
    key_pattern = str(pki.client("fleet-1").key_file).replace("fleet-1", "fleet-{n}")
    prefix = f"cli-{uuid.uuid4().hex[:6]}"
    command = [
        sys.executable,
        str(ROOT / "main.py"),
        "fleet",
        "ingest",
        "--db",
        sqlite_url,
        "--broker",
        f"127.0.0.1:{broker.service_port}",
        "--ca",
        str(pki.ca.cert_file),
        "--cert",
        cert_pattern,
        "--key",
        key_pattern,
        "--workers",
        "2",
        "--client-id",
        prefix,
        "--session-expiry",
        "0",
    ]
    log = (tmp_path / "ingest.log").open("wb")
    supervisor = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:

        def running() -> dict[str, int]:
            now = fleet.db.now()
            found = {
                w.id: w.pid
                for w in fleet.ingest.workers()
                if w.id.startswith(prefix)
                and w.stopped_at is None
                and w.stats.get("connected")
                and (now - w.updated_at).total_seconds() < 3
            }
            return found if len(found) == 2 else {}

        pids = eventually(running, timeout=40)
        assert set(pids) == {f"{prefix}-0", f"{prefix}-1"}
        os.kill(pids[f"{prefix}-1"], signal.SIGKILL)
        back = eventually(
            lambda: (r := running()) and r[f"{prefix}-1"] != pids[f"{prefix}-1"] and r, timeout=40
        )
        assert back[f"{prefix}-0"] == pids[f"{prefix}-0"]  # the other one never stopped
        status = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "fleet", "ingest-status", "--db", sqlite_url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        shown = json.loads(status.stdout)
        assert {w["id"] for w in shown["workers"] if w["id"].startswith(prefix) and not w["stopped"]} == set(
            pids
        )
        assert shown["duties"]["holder"] in set(pids)  # one of them holds the lease
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(60) == 0
        stopped = {
            w.id for w in fleet.ingest.workers() if w.id.startswith(prefix) and w.stopped_at is not None
        }
        assert stopped == set(pids)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        log.close()
    assert "exited with -9; restart 1" in (tmp_path / "ingest.log").read_text()


def test_a_printed_ticket_reaches_the_queue_through_the_ingest(
    fleet: Store, broker: Broker, pki: Pki
) -> None:
    """The kiosk journals ticket_issued; the agent publishes it; the ingest stores it and its registered
    handler (fleet.ingest.plugins.HANDLER_MODULES) puts the ticket into the center's queue, which a
    counter can then call: offline and online numbers take the same way."""
    from fleet.ingest import plugins
    from fleet.queue.hooks import queue_of
    from tests.fleet.queue_data import setup_center

    plugins.load()
    queue = queue_of(fleet)
    setup_center(queue)
    group = share()
    day = fleet.db.now().date().isoformat()
    with (
        running_worker(fleet, worker_settings(broker, pki, share(), share=group, session_expiry_s=0)),
        kiosk(broker, pki, "kiosk-c") as (_agent, _app, directory),
    ):
        journal = EventJournal(directory / "events.sqlite")
        journal.append_many(TicketIssued(number, "HOTICH", day=day) for number in ("A012", "A805"))
        journal.close()

        def both() -> list[Any] | None:
            found = queue.tickets(CENTER, day)
            return found if len(found) == 2 else None

        tickets = eventually(both, timeout=20)
    assert sorted(t.number for t in tickets) == ["A012", "A805"]
    assert all(t.kiosk_id == "kiosk-c" for t in tickets)


def test_a_worker_back_after_allocator_restarts_raises_no_alarm_from_their_history(
    fleet: Store, broker: Broker, pki: Pki
) -> None:
    """The allocator's status is a state: the births and stops published while a worker was away are
    not replayed from its session (at QoS 1 they were, oldest first, so the worker raised and cleared
    an 'allocator offline' alarm, with notifications, for a stop long over). It hears the current one."""
    group = share()
    settings = worker_settings(
        broker, pki, f"{group}-w", identity="fleet-4", share=group, session_expiry_s=600, duties=False
    )
    topic = f"motcua/v1/{CENTER}/_center/allocator/status"
    try:
        with running_worker(fleet, settings):
            pass  # subscribed; the session stays while it is away
        allocator = _publisher_on_services(broker, pki, "fleet-1")
        try:
            for state, reason in (("offline", "shutdown"), ("online", "birth"), ("offline", "lost"),
                                  ("online", "birth")):
                status = {"schema": "allocator-status/1", "state": state, "reason": reason,
                          "offline_base": 800, "offline_block": 20, "at": now_iso()}
                allocator.publish(topic, json.dumps(status), qos=1, retain=True).wait_for_publish(5)
        finally:
            allocator.disconnect()
            allocator.loop_stop()
        with running_worker(fleet, settings) as back:
            eventually(lambda: back.stats.channels["allocator/status"] >= 1)
            time.sleep(0.5)  # anything more the broker had for the session would have come by now
            assert back.stats.channels["allocator/status"] == 1  # the retained copy alone
        history = fleet.alarms.page(ALL, active=None, center_id=CENTER).items
        assert [a for a in history if a.type == "allocator_offline"] == []
    finally:
        drop_session(broker, pki, "fleet-4")


def _publisher_on_services(broker: Broker, pki: Pki, identity: str) -> paho.Client:
    issued = pki.client(identity)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=identity, protocol=MQTTProtocolVersion.MQTTv5)
    client.tls_set(ca_certs=str(pki.ca.cert_file), certfile=str(issued.cert_file),
                   keyfile=str(issued.key_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.connect("127.0.0.1", broker.service_port)
    client.loop_start()
    return client
