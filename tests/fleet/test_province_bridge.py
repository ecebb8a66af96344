"""A center's broker bridged to the province broker (deploy/province/center-bridge.conf, docs/province.md):
two real Mosquittos with the shipped configuration (TLS, client certificates, ACL), the bridge over TLS
with a certificate of its own and an ACL block on the province that confines it to its center; the
center's fleet ingest on SQLite, the province's on PostgreSQL. A real agent at the center: its state,
its printer alarm and its events are the same in both stores, and on both fleets' center pages."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from common.journal import EventJournal
from contract.events import Lookup
from fleet.queue import stats
from fleet.queue.engine import Queue
from fleet.queue.publisher import PublisherSettings, QueuePublisher
from fleet.store import Scope, Store, open_store
from fleet.web.app import create_app
from tests.agent.broker import DEPLOY, Broker, Pki, temporary_pki
from tests.fleet.conftest import FakeClock, _new_url
from tests.fleet.data import build
from tests.fleet.mqtt import CENTER, eventually, kiosk, running_worker, seed, worker_settings
from tests.fleet.queue_data import a_day_at_the_counters, issue, officer, setup_center
from tests.fleet.web import Browser

ROOT = Path(__file__).resolve().parents[2]
ALL = Scope.everything()
BRIDGE = f"bridge-{CENTER}"
KIOSK = "kiosk-a"
pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    with temporary_pki((KIOSK, "fleet", "fleet-1", BRIDGE, "counter"), "pvpki-") as made:
        yield made


def province_broker(directory: Path, pki: Pki) -> Broker:
    """The province's broker: the shipped configuration, its ACL plus one block per bridged center."""
    broker = Broker(directory, pki)
    acl = directory / "province.acl"
    acl.write_text(
        (DEPLOY / "motcua.acl").read_text()
        + f"\n# the bridge of {CENTER}: only its own center's topics\nuser {BRIDGE}\n"
        + f"topic readwrite motcua/v1/{CENTER}/#\n"
    )
    broker.conf.write_text(broker.conf.read_text().replace(str(DEPLOY / "motcua.acl"), str(acl)))
    return broker


def center_broker(directory: Path, pki: Pki, province: Broker) -> Broker:
    """A center's broker with deploy/province/center-bridge.conf appended, as docs/province.md says."""
    broker = Broker(directory, pki)
    bridge = pki.client(BRIDGE)
    text = (ROOT / "deploy" / "province" / "center-bridge.conf").read_text()
    for old, new in {
        "CENTER_ID": CENTER,
        "PROVINCE_HOST:8884": f"127.0.0.1:{province.service_port}",
        "/etc/mosquitto/certs/province-ca.crt": str(pki.ca.cert_file),
        "/etc/mosquitto/certs/bridge.crt": str(bridge.cert_file),
        "/etc/mosquitto/certs/bridge.key": str(bridge.key_file),
    }.items():
        assert old in text, f"center-bridge.conf no longer contains {old!r}"
        text = text.replace(old, new)
    broker.conf.write_text(broker.conf.read_text() + "\n" + text)
    return broker


@pytest.fixture
def brokers(pki: Pki, tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    province = province_broker(tmp_path / "province", pki)
    center = center_broker(tmp_path / "center", pki, province)
    province.start()
    center.start()
    try:
        yield center, province
    finally:
        center.stop()
        province.stop()


def snapshot(store: Store) -> dict[str, Any]:
    row = store.registry.kiosk(ALL, KIOSK)
    return {
        "state": row.state,
        "bdseq": row.bdseq,
        "agent_version": row.agent_version,
        "alarms": sorted((a.type, a.severity) for a in store.alarms.active_for_kiosk(KIOSK)),
        "events": store.events.count(ALL, kiosk_id=KIOSK),
    }


def center_page(store: Store) -> dict[str, Any]:
    """The center's page as JSON, through the fleet's web app on that store (a technician's view)."""
    with TestClient(create_app(store)) as client:
        browser = Browser(client)
        assert browser.login("kythuat.bt") in (200, 303)
        data = client.get(f"/centers/{CENTER}?format=json").json()
    rows = data["items"]
    return {r["id"]: (r["state"], r["devices"], r["active_alarms"], r["worst_severity"]) for r in rows}


def test_the_province_sees_through_the_bridge_what_the_center_sees(
    brokers: tuple[Broker, Broker], pki: Pki, sqlite_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    center_broker_, province_broker_ = brokers
    center_store = open_store(sqlite_url)
    province_store = open_store(_new_url("postgresql", request, tmp_path))
    try:
        for store in (center_store, province_store):
            seed(store)
        at_center = worker_settings(center_broker_, pki, "center-w", identity="fleet", session_expiry_s=0)
        at_province = worker_settings(
            province_broker_, pki, "province-w", identity="fleet-1", session_expiry_s=0
        )
        # the workers outlive the kiosk: its clean stop's offline status must still be stored
        with running_worker(center_store, at_center), running_worker(province_store, at_province):
            with kiosk(center_broker_, pki, KIOSK) as (_agent, app, directory):
                assert app is not None
                app.printer_state = "paper_out"
                journal = EventJournal(directory / "events.sqlite")
                journal.append_many(Lookup("found", "camera") for _ in range(25))
                journal.close()

                def same_everywhere() -> dict[str, Any] | None:
                    """the kiosk online with its paper-out alarm and 25 events, the same in both stores"""
                    here, there = snapshot(center_store), snapshot(province_store)
                    paper_out = ("printer", "critical") in here["alarms"]
                    wanted = here["state"] == "online" and here["events"] == 25 and paper_out
                    return here if wanted and here == there else None

                seen = eventually(same_everywhere, timeout=30)
                assert seen["agent_version"]  # the birth crossed the bridge too (retained, QoS 1)
                center_view, province_view = center_page(center_store), center_page(province_store)
                assert center_view == province_view
                assert center_view[KIOSK][0] == "online" and center_view[KIOSK][3] == "critical"
                assert center_view[KIOSK][1]["printer"] == "paper_out"
                # the paper is back: cleared at the center and at the province
                app.printer_state = "ok"
                def printer_cleared() -> bool:
                    """the printer alarm cleared in both stores (the fake app's scanner stays 'missing')"""
                    here, there = snapshot(center_store)["alarms"], snapshot(province_store)["alarms"]
                    return here == there and "printer" not in {kind for kind, _ in here}

                eventually(printer_cleared, 20)
            # the agent stopped cleanly: its offline status crosses the bridge as well
            eventually(
                lambda: snapshot(province_store)["state"] == "offline" == snapshot(center_store)["state"], 20
            )
    finally:
        center_store.close()
        province_store.close()


def queue_figures(store: Store, day: str) -> dict[str, list[tuple[object, ...]]]:
    """Every grouping of the queue's statistics of ``day`` in ``store`` (labels aside: the province
    names services by their code and officers by their username)."""
    queue = Queue(store)
    groups = stats.compute_groups(queue, CENTER, day, day, stats.GROUPS, 1800, lang="vi", zone=queue.zone)
    return {
        by: [(r.key, r.arrivals, r.called, r.served, r.no_shows, r.left, r.transfers, r.recalls, r.wait_n,
              r.wait_sum_s, r.wait_max_s, r.wait_over_target, r.service_n, r.service_sum_s) for r in rows]
        for by, rows in groups.items()
    }


def test_a_ticket_called_at_the_center_is_in_the_provinces_queue_statistics(
    brokers: tuple[Broker, Broker], pki: Pki, sqlite_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The center's queue publisher (user ``counter``) on the center's broker, the bridge, the province's
    ingest on PostgreSQL: the day's 20 steps, and then a call made while everything runs, give the same
    statistics at the province (store and page) as at the center; the center's own ingest, which gets
    the same messages from its broker, stores none of them."""
    center_broker_, province_broker_ = brokers
    clock = FakeClock()
    center_store = open_store(sqlite_url, clock=clock)
    province_store = open_store(_new_url("postgresql", request, tmp_path))
    queue = Queue(center_store)
    counter = pki.client("counter")
    publisher = QueuePublisher(
        queue,
        PublisherSettings(
            CENTER,
            port=center_broker_.service_port,
            ca_file=pki.ca.cert_file,
            cert_file=counter.cert_file,
            key_file=counter.key_file,
        ),
    )
    try:
        build(center_store)
        seed(province_store)
        setup_center(queue)
        day = a_day_at_the_counters(center_store, queue, clock)  # 20 steps in the outbox
        at_center = worker_settings(center_broker_, pki, "center-wq", identity="fleet", session_expiry_s=0)
        at_province = worker_settings(
            province_broker_, pki, "province-wq", identity="fleet-1", session_expiry_s=0
        )
        with running_worker(center_store, at_center) as center_worker, running_worker(
            province_store, at_province
        ):
            publisher.start()

            def the_day_at_the_province() -> bool:
                """the province's statistics of the day equal the center's"""
                return queue_figures(province_store, day) == queue_figures(center_store, day)

            eventually(the_day_at_the_province, 30)
            # a call while everything runs: from the center's store to the province's statistics
            issue(center_store, "A005", "HOTICH", day=day)
            ha = officer(center_store, "canbo.bt")
            clock.advance(minutes=3)
            started = time.monotonic()
            called = queue.call_next(ha)
            assert called is not None and called.number == "A005"

            def the_call_at_the_province() -> bool:
                """A005's call is in the province's statistics per officer"""
                rows = queue_figures(province_store, day)["officer"]
                return any(r[0] == "canbo.bt" and r[2] == 4 for r in rows)

            eventually(the_call_at_the_province, 20, interval=0.01)
            call_to_province_s = time.monotonic() - started
            eventually(the_day_at_the_province, 10)
            # the center's ingest got every step back from its broker and stored none (its own queue)
            eventually(lambda: center_worker.stats.channels["queue/event"] >= 22, 10)
            assert center_worker.stats.counts["ignored"] >= 22 and center_worker.stats.counts["stored"] == 0
            assert len(queue.steps_since(CENTER, 0)) == 22
        request.node.user_properties.append(("call_to_province_s", round(call_to_province_s, 3)))
        assert call_to_province_s < 5
        # the province's page of the center, from the bridged steps (a technician of the center there)
        with TestClient(create_app(province_store)) as client:
            browser = Browser(client)
            assert browser.login("kythuat.bt") in (200, 303)
            data = client.get(f"/queue/{CENTER}?format=json&from={day}&to={day}&by=counter").json()
        counters = {row["key"].split()[-1]: row for row in data["items"]}  # "Quầy 1": no counter names here
        assert counters["1"]["called"] == 4 and counters["1"]["no_shows"] == 1
        assert counters["3"]["served"] == 2 and counters["3"]["wait_max_min"] == 50
    finally:
        publisher.stop()
        center_store.close()
        province_store.close()


def test_the_bridge_cannot_publish_for_another_center(pki: Pki, tmp_path: Path) -> None:
    """The province's ACL confines a center's bridge identity to that center's topics (tried with the
    bridge's certificate directly, on a province broker without the center's bridge connected)."""
    import ssl
    import time

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    province = province_broker(tmp_path / "province", pki)
    province.start()
    identity = pki.client(BRIDGE)
    received: list[str] = []
    watcher_identity = pki.client("fleet-1")
    clients = []
    for name, issued in (("watch", watcher_identity), ("bridge", identity)):
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=MQTTProtocolVersion.MQTTv5)
        client.tls_set(ca_certs=str(pki.ca.cert_file), certfile=str(issued.cert_file),
                       keyfile=str(issued.key_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.connect("127.0.0.1", province.service_port)
        client.loop_start()
        clients.append(client)
    watch, bridge = clients
    try:
        eventually(lambda: watch.is_connected() and bridge.is_connected(), 10)
        watch.on_message = lambda c, u, m: received.append(m.topic)
        watch.subscribe("motcua/v1/#", qos=1)
        time.sleep(0.5)
        other = f"motcua/v1/hcm-thu-duc/kiosk-x/event/lookup/{uuid.uuid4().hex}"
        own = f"motcua/v1/{CENTER}/{KIOSK}/event/lookup"
        bridge.publish(other, b"{}", qos=1).wait_for_publish(5)
        # Mosquitto may close the connection of a client that published where it may not (its log:
        # "Bad socket read/write"); paho reconnects: the own topic is sent again until it goes through
        def sent_own() -> bool:
            try:
                bridge.publish(own, b"{}", qos=1).wait_for_publish(2)
            except RuntimeError:  # not connected at this moment
                return False
            return True

        eventually(sent_own, 15)
        eventually(lambda: own in received, 10)
        assert other not in received
    finally:
        for client in clients:
            client.disconnect()
            client.loop_stop()
        province.stop()
