"""A center's broker bridged to the province broker (deploy/province/center-bridge.conf, docs/province.md):
two real Mosquittos with the shipped configuration (TLS, client certificates, ACL), the bridge over TLS
with a certificate of its own and an ACL block on the province that confines it to its center; the
center's fleet ingest on SQLite, the province's on PostgreSQL. A real agent at the center: its state,
its printer alarm and its events are the same in both stores, and on both fleets' center pages."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from starlette.testclient import TestClient

from common.errors import NotFoundError
from common.journal import EventJournal
from contract.commands import Command
from contract.config import ConfigPush
from contract.events import Lookup
from contract.topics import CenterTopics, KioskTopics
from contract.wire import now_iso
from fleet.auth import hash_password
from fleet.queue import stats
from fleet.queue.engine import Queue
from fleet.queue.publisher import PublisherSettings, QueuePublisher
from fleet.store import Scope, Store, open_store
from fleet.web.app import create_app
from tests.agent.broker import DEPLOY, Broker, Pki, temporary_pki
from tests.fleet.conftest import FakeClock, _new_url
from tests.fleet.data import CHEAP, PASSWORD, build
from tests.fleet.mqtt import CENTER, OTHER_CENTER, eventually, kiosk, running_worker, seed, worker_settings
from tests.fleet.queue_data import a_day_at_the_counters, issue, officer, setup_center
from tests.fleet.web import Browser, browser

ROOT = Path(__file__).resolve().parents[2]
ALL = Scope.everything()
BRIDGE = f"bridge-{CENTER}"
KIOSK = "kiosk-a"
pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    with temporary_pki((KIOSK, "fleet", "fleet-1", BRIDGE, "counter"), "pvpki-") as made:
        yield made


def province_acl(block: str | None = None) -> str:
    """The province's ACL as docs/province.md says: the shipped one without its kiosk patterns (no kiosk
    connects there) plus deploy/province/bridge.acl for the bridged center (or ``block``: the one
    ``provision bridge-cert`` wrote)."""
    lines = (DEPLOY / "motcua.acl").read_text().splitlines()
    shipped = [line for line in lines if not line.startswith("pattern ")]
    if block is None:
        block = (ROOT / "deploy" / "province" / "bridge.acl").read_text()
        assert "CENTER_ID" in block, "bridge.acl no longer contains CENTER_ID"
        block = block.replace("CENTER_ID", CENTER)
    return "\n".join(shipped) + "\n\n" + block


def province_broker(directory: Path, pki: Pki, block: str | None = None) -> Broker:
    """The province's broker: the shipped configuration, its ACL (``province_acl``)."""
    broker = Broker(directory, pki)
    acl = directory / "province.acl"
    acl.write_text(province_acl(block))
    broker.conf.write_text(broker.conf.read_text().replace(str(DEPLOY / "motcua.acl"), str(acl)))
    return broker


def center_broker(directory: Path, pki: Pki, province: Broker, section: str | None = None) -> Broker:
    """A center's broker with deploy/province/center-bridge.conf appended, as docs/province.md says (or
    ``section``: the one ``provision bridge-cert`` wrote)."""
    broker = Broker(directory, pki)
    if section is None:
        bridge = pki.client(BRIDGE)
        section = (ROOT / "deploy" / "province" / "center-bridge.conf").read_text()
        for old, new in {
            "CENTER_ID": CENTER,
            "PROVINCE_HOST:8884": f"127.0.0.1:{province.service_port}",
            "/etc/mosquitto/certs/province-ca.crt": str(pki.ca.cert_file),
            "/etc/mosquitto/certs/bridge.crt": str(bridge.cert_file),
            "/etc/mosquitto/certs/bridge.key": str(bridge.key_file),
        }.items():
            assert old in section, f"center-bridge.conf no longer contains {old!r}"
            section = section.replace(old, new)
    broker.conf.write_text(broker.conf.read_text() + "\n" + section)
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


class Client:
    """A paho client of a service identity on a broker's services listener, with what it received and
    the reason codes of its subscriptions (MQTT v5 SUBACK: 0-2 granted, 0x87 not authorized)."""

    def __init__(self, broker: Broker, pki: Pki, identity: str) -> None:
        issued = pki.client(identity)
        self.received: list[tuple[str, bytes]] = []
        self.granted: dict[int, list[int]] = {}
        self.paho = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=identity, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.paho.tls_set(ca_certs=str(pki.ca.cert_file), certfile=str(issued.cert_file),
                          keyfile=str(issued.key_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.paho.on_message = lambda c, u, m: self.received.append((m.topic, bytes(m.payload)))
        self.paho.on_subscribe = lambda c, u, mid, codes, props: self.granted.update(
            {mid: [code.value for code in codes]}
        )
        self.paho.connect("127.0.0.1", broker.service_port, clean_start=True)
        self.paho.loop_start()
        eventually(self.paho.is_connected, 10)

    def subscribe(self, *filters: str) -> list[int]:
        """Subscribe and wait for the SUBACK; its reason codes, one per filter."""
        _rc, mid = self.paho.subscribe([(f, 1) for f in filters])
        assert mid is not None
        return list(eventually(lambda: self.granted.get(mid), 10))

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.paho.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def topics(self) -> list[str]:
        return [topic for topic, _ in self.received]

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


def a_command(request_id: str, command: str = "print_test_ticket") -> bytes:
    """A valid ``command/1`` (contract.commands), valid for ten minutes."""
    expires = now_iso(datetime.now(UTC) + timedelta(minutes=10))
    return Command.from_data(
        {"schema": Command.SCHEMA, "request_id": request_id, "command": command, "args": {},
         "expires_at": expires}
    ).to_payload()


def test_the_bridge_reads_its_own_centers_commands_only(pki: Pki, tmp_path: Path) -> None:
    """The province's ACL (deploy/province/bridge.acl, the shipped one without its kiosk patterns): of
    what the province's fleet publishes, the bridge's certificate receives its own center's cmd/req and
    nothing else (another center's commands and queue, configuration retained or not, its own center's
    other topics), whatever it subscribes to. Mosquitto 2.0.11 grants every subscription (SUBACK 1) and
    applies the read rules to each message it would deliver, retained ones included."""
    province = province_broker(tmp_path / "province", pki)
    province.start()
    bridge = fleet = None
    try:
        bridge, fleet = Client(province, pki, BRIDGE), Client(province, pki, "fleet-1")
        config = ConfigPush.from_data({"schema": ConfigPush.SCHEMA, "version": 7, "config": {}}).to_payload()
        retained = [CenterTopics(CENTER).config_set, KioskTopics(CENTER, KIOSK).config_set,
                    CenterTopics(OTHER_CENTER).config_set]
        for topic in retained:  # there before the bridge subscribes
            fleet.publish(topic, config, retain=True)
        filters = [
            f"motcua/v1/{CENTER}/+/cmd/req",
            f"motcua/v1/{OTHER_CENTER}/+/cmd/req",
            "motcua/v1/+/+/cmd/req",
            f"motcua/v1/{CENTER}/+/config/set",
            f"motcua/v1/{CENTER}/_center/#",
            f"motcua/v1/{OTHER_CENTER}/_center/#",
            f"motcua/v1/{CENTER}/+/status",
            "motcua/v1/#",
        ]
        bridge.subscribe(*filters)
        others = [
            KioskTopics(OTHER_CENTER, KIOSK).cmd_req,
            KioskTopics(CENTER, KIOSK).status,
            CenterTopics(OTHER_CENTER).queue_event,
            KioskTopics(CENTER, KIOSK).config_set,
        ]
        for topic in others:
            fleet.publish(topic, a_command(f"x-{uuid.uuid4().hex[:8]}"))
        # sent last by the same publisher, QoS 1: anything else delivered to the bridge would be first
        own = KioskTopics(CENTER, KIOSK).cmd_req
        fleet.publish(own, a_command("for-ben-thanh"))
        eventually(lambda: own in bridge.topics(), 10)
        assert set(bridge.topics()) == {own}, bridge.topics()
    finally:
        for client in (bridge, fleet):
            if client is not None:
                client.close()
        province.stop()


def request_id_of(payload: bytes) -> str:
    return str(json.loads(payload)["request_id"])


def test_a_command_from_the_provinces_pages_reaches_the_kiosk_and_each_fleet_shows_the_others_as_theirs(
    brokers: tuple[Broker, Broker], pki: Pki, sqlite_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A province admin's screenshot (the province's web app) and a notice (its store) are published by
    the province's lease holder on the province broker, come down the bridge to the real agent at the
    center, and their results and the screenshot's bytes are stored against the province's commands;
    the center's ingest sees the same results and blob on its broker and keeps the results as the other
    fleet's (with the args the real agent echoed; not the screenshot), shown so on the center's kiosk
    page, and the province the center's own command's the same way. Every command reaches the center's
    broker once."""
    center_broker_, province_broker_ = brokers
    center_store = open_store(sqlite_url)
    province_store = open_store(_new_url("postgresql", request, tmp_path))
    watch = None
    try:
        center_user = seed(center_store)
        seed(province_store)
        province_store.configs.set_owner("centers")  # as docs/province.md sets it up: commands still go
        admin = province_store.accounts.add_user(
            "admin.hcm", hash_password(PASSWORD, CHEAP), "province_admin", province_id="hcm"
        )
        # every command that reaches the center's broker, whoever sent it
        watch = Client(center_broker_, pki, "fleet-1")
        assert watch.subscribe(f"motcua/v1/{CENTER}/+/cmd/req") == [1]
        at_center = worker_settings(center_broker_, pki, "center-wc", identity="fleet", session_expiry_s=0)
        at_province = worker_settings(
            province_broker_, pki, "province-wc", identity="fleet-1", session_expiry_s=0
        )
        with (
            running_worker(center_store, at_center) as center_worker,
            running_worker(province_store, at_province) as province_worker,
            kiosk(center_broker_, pki, KIOSK) as (_agent, app, _directory),
        ):
            assert app is not None
            png = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
            app.screenshot_path.write_bytes(png)
            expires = center_store.db.now() + timedelta(minutes=10)
            # the center's own command first: it goes up the bridge with the rest ("out")
            ours = center_store.commands.create(
                ALL, KIOSK, "print_test_ticket", {}, center_user, expires_at=expires
            ).request_id
            eventually(lambda: center_store.commands.for_kiosk(ALL, KIOSK)[0].status == "ok", 20)
            # the province keeps the center's command as the center's: no requester, marked
            [theirs] = eventually(lambda: province_store.commands.for_kiosk(ALL, KIOSK), 20)
            assert (theirs.request_id, theirs.command, theirs.status, theirs.sent_elsewhere) == (
                ours, "print_test_ticket", "ok", True
            )
            assert theirs.requested_by is None and province_worker.stats.counts["elsewhere_results"] == 1
            # from the province's pages: the kiosk page's console
            with browser(province_store, admin.username) as person:
                sent = person.post(f"/kiosks/{KIOSK}/commands", {"command": "screenshot"})
                assert sent.status_code == 303, sent.text[:500]
            listed = province_store.commands.for_kiosk(ALL, KIOSK)
            [shot] = [c.request_id for c in listed if not c.sent_elsewhere]
            notice = province_store.commands.create(
                ALL, KIOSK, "set_notice", {"text_vi": "Tỉnh: nghỉ trưa 11:30", "text_en": ""}, admin.id,
                expires_at=expires,
            ).request_id

            def answered() -> dict[str, Any]:
                """the province's two commands answered, in the province's store"""
                found = {c.request_id: c for c in province_store.commands.for_kiosk(ALL, KIOSK)}
                return found if all(found[r].status in ("ok", "error") for r in (shot, notice)) else {}

            found = eventually(answered, 30)
            assert (found[shot].status, found[notice].status) == ("ok", "ok"), found
            assert found[shot].requested_by == found[notice].requested_by == admin.id
            assert not found[shot].sent_elsewhere and found[ours].sent_elsewhere
            assert sorted(found) == sorted([ours, shot, notice])
            assert app.called("app.notice") == [{"text_vi": "Tỉnh: nghỉ trưa 11:30", "text_en": ""}]
            blob = eventually(lambda: province_store.blobs.infos(ALL, KIOSK, [shot]).get(shot), 20)
            assert blob.sha256 == hashlib.sha256(png).hexdigest() == found[shot].result["sha256"]
            # the center's ingest got both results and the screenshot on its broker: the results kept
            # as the province's, with what the agent echoed; the screenshot not
            eventually(lambda: center_worker.stats.counts["elsewhere_results"] >= 2, 20)
            eventually(lambda: center_worker.stats.counts["unknown_requests"] >= 1, 20)
            kept = {c.request_id: c for c in center_store.commands.for_kiosk(ALL, KIOSK)}
            assert sorted(kept) == sorted([ours, shot, notice])
            assert [kept[r].sent_elsewhere for r in (ours, shot, notice)] == [False, True, True]
            assert (kept[notice].command, kept[notice].args, kept[notice].status) == (
                "set_notice", {"text_vi": "Tỉnh: nghỉ trưa 11:30", "text_en": ""}, "ok"
            )
            assert kept[shot].requested_by is None and kept[shot].result == found[shot].result
            assert center_store.commands.pending() == []
            assert center_store.blobs.infos(ALL, KIOSK, [shot]) == {}
            with browser(center_store, "kythuat.bt") as technician:  # the center's kiosk page
                page = technician.client.get(f"/kiosks/{KIOSK}").text
                row = page.split(f'data-request="{notice}"', 1)[1].split("</tr>", 1)[0]
                assert 'data-sent-elsewhere="yes"' in row and "Trang giám sát khác" in row
                assert "Tỉnh: nghỉ trưa 11:30" in row
            with pytest.raises(NotFoundError):
                center_store.blobs.get(ALL, KIOSK, shot)
            assert center_store.ingest.refusals(ALL) == [] == province_store.ingest.refusals(ALL)
            # once each: had the center's command come back down the bridge (up by "out", down by "in"),
            # that copy would be here before the province's commands (one bridge session, in order)
            seen = [request_id_of(payload) for _, payload in watch.received]
            assert sorted(seen) == sorted([ours, shot, notice]), seen
            assert len(app.called("app.print_test_ticket")) == 1
    finally:
        if watch is not None:
            watch.close()
        center_store.close()
        province_store.close()


def test_another_centers_commands_and_configuration_do_not_come_down_the_bridge(
    brokers: tuple[Broker, Broker], pki: Pki
) -> None:
    """On the province broker, a command for another center's kiosk (even one of the same id) and
    retained configuration for this center stay there: only this center's cmd/req comes down."""
    center_broker_, province_broker_ = brokers
    watch = fleet = None
    try:
        watch = Client(center_broker_, pki, "fleet-1")
        assert watch.subscribe("motcua/v1/#") == [1]
        fleet = Client(province_broker_, pki, "fleet")
        config = ConfigPush.from_data({"schema": ConfigPush.SCHEMA, "version": 9, "config": {}}).to_payload()
        other = KioskTopics(OTHER_CENTER, KIOSK).cmd_req
        own = KioskTopics(CENTER, "kiosk-b").cmd_req  # no agent runs for kiosk-b: nobody answers it

        def through() -> bool:
            """the province's command for this center reached the center's broker (once the bridge is
            connected and subscribed: sent again until then)"""
            fleet.publish(other, a_command(f"other-{uuid.uuid4().hex[:8]}"))
            fleet.publish(CenterTopics(CENTER).config_set, config, retain=True)
            fleet.publish(KioskTopics(CENTER, KIOSK).config_set, config, retain=True)
            fleet.publish(own, a_command(f"own-{uuid.uuid4().hex[:8]}"))
            return arrives(watch, own, 2)

        eventually(through, 20)
        assert set(watch.topics()) == {own}, watch.topics()
    finally:
        for client in (watch, fleet):
            if client is not None:
                client.close()


def arrives(client: Client, topic: str, seconds: float) -> bool:
    """Whether ``topic`` reaches ``client`` within ``seconds`` (a retry's wait, not an assert)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if topic in client.topics():
            return True
        time.sleep(0.05)
    return False


def provisioned_province(directory: Path) -> tuple[Pki, Path]:
    """The province's PKI made by ``provision province-init``, as a test ``Pki`` (its issuing CA, the
    broker's certificate, the workers fleet-1 and fleet-2), and the province's folder."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from main import main
    from provisioning.center_pki import CenterPki
    from provisioning.pki import CertificateAuthority, Issued
    from tests.provisioning.center import PASSPHRASE

    secret = directory / "passphrase"
    directory.mkdir(parents=True)
    secret.write_bytes(PASSPHRASE)
    root = directory / "province"
    assert main(["provision", "province-init", "--dir", str(root), "--province", "hcm", "--broker-host",
                 "127.0.0.1", "--passphrase-file", str(secret)]) == 0
    made = CenterPki(root / "pki")
    key = serialization.load_pem_private_key(made.issuing_key_file.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    issued = {name: Issued(made.cert_file(name), made.key_file(name)) for name in ("fleet-1", "fleet-2")}
    pki = Pki(made.directory, CertificateAuthority(key, made.issuing_cert(), made.chain_file),
              Issued(made.cert_file("broker"), made.key_file("broker")), issued)
    return pki, root


def test_the_bridge_runs_on_the_certificates_and_files_the_provision_commands_make(
    pki: Pki, tmp_path: Path
) -> None:
    """``provision province-init`` and ``bridge-cert`` instead of openssl: the province broker runs on
    the province's CA and server certificate, with the ACL block bridge-cert wrote; the center's broker
    (its own CA) with the bridge section bridge-cert wrote appended as it is (its paths: the folder of
    the files to copy), dialling with the bridge's certificate and checking the province's. A message
    of the center goes up to the province's worker identity fleet-1; the province's command comes down."""
    from main import main

    province_pki, root = provisioned_province(tmp_path / "made")
    province = province_broker(tmp_path / "province", province_pki)
    out = tmp_path / "to-center"
    assert main(["provision", "bridge-cert", "--dir", str(root), "--center", CENTER, "--out", str(out),
                 "--address", f"127.0.0.1:{province.service_port}", "--certs-dir", str(out)]) == 0
    (tmp_path / "province" / "province.acl").write_text(province_acl((out / f"{BRIDGE}.acl").read_text()))
    center = center_broker(tmp_path / "center", pki, province, (out / "center-bridge.conf").read_text())
    watch_province = watch_center = None
    try:
        province.start()
        center.start()
        watch_province = Client(province, province_pki, "fleet-1")
        assert watch_province.subscribe("motcua/v1/#") == [1]
        watch_center = Client(center, pki, "fleet-1")
        assert watch_center.subscribe(f"motcua/v1/{CENTER}/+/cmd/req") == [1]
        up = KioskTopics(CENTER, KIOSK).status

        def went_up() -> bool:
            """a message on the center's broker reached the province through the bridge (sent again
            until the bridge is connected)"""
            assert watch_center is not None and watch_province is not None
            watch_center.publish(up, b"{}")
            return arrives(watch_province, up, 1)

        eventually(went_up, 20)
        down = KioskTopics(CENTER, KIOSK).cmd_req
        watch_province.publish(down, a_command("from-the-province"))
        eventually(lambda: down in watch_center.topics(), 10)
        assert [request_id_of(p) for t, p in watch_center.received if t == down] == ["from-the-province"]
    finally:
        for client in (watch_province, watch_center):
            if client is not None:
                client.close()
        center.stop()
        province.stop()


def mqtt_connect(port: int, ca: Path, cert: Path, key: Path) -> str:
    """A fresh TLS connection (no session to resume) with a client certificate and an MQTT 3.1.1
    CONNECT: ``"connack 0"`` when the broker accepts it, else the TLS or socket error's text."""
    import socket

    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    packet = b"\x10\x11\x00\x04MQTT\x04\x02\x00\x3c\x00\x05probe"
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(packet)  # TLS 1.3: the server checks the certificate after the client's Finished
            answer = tls.recv(4)
            if answer[:1] == b"\x20":
                tls.sendall(b"\xe0\x00")  # DISCONNECT
    except (ssl.SSLError, OSError) as exc:
        return str(exc)
    if len(answer) == 4 and answer[0] == 0x20:
        return f"connack {answer[3]}"
    return f"closed ({answer!r})"


def generated_province(tmp_path: Path, *log_types: str) -> tuple[Pki, Path, Broker]:
    """``provisioned_province`` and its broker on the configuration ``province-init`` wrote (its CRL on
    the services listener, its pid file, its generated ACL), this user instead of ``mosquitto``, test
    ports, a log file (error and notice, and ``log_types``); not started."""
    import getpass

    province_pki, root = provisioned_province(tmp_path / "made")
    province = Broker(tmp_path / "province", province_pki)
    conf = (root / "broker" / "mosquitto.conf").read_text()
    for old, new in {
        "user mosquitto\n": f"user {getpass.getuser()}\n",
        "listener 8883 127.0.0.1\n": f"listener {province.kiosk_port} 127.0.0.1\n",
        "listener 8884\n": f"listener {province.service_port} 127.0.0.1\n",
    }.items():
        assert old in conf, f"the province broker's configuration no longer contains {old!r}"
        conf = conf.replace(old, new)
    logging = "".join(f"log_type {kind}\n" for kind in ("error", "notice", *log_types))
    province.conf.write_text(conf + f"\nlog_dest file {province.log}\n{logging}")
    return province_pki, root, province


def test_a_revoked_bridge_certificate_no_longer_connects_to_the_province_broker(tmp_path: Path) -> None:
    """The province broker on the configuration ``province-init`` wrote (its CRL on the services
    listener): ``bridge-revoke`` refuses the revoked bridge certificate's next handshake without a
    restart, while another center's and the center's new certificate connect; and after a restart
    (``crl-compact`` first, as before each start) it stays refused."""
    from main import main

    _pki, root, province = generated_province(tmp_path)

    def bridge_cert(center: str, out: Path, *extra: str) -> Path:
        assert main(["provision", "bridge-cert", "--dir", str(root), "--center", center, "--out", str(out),
                     *extra]) == 0
        assert f"user bridge-{center}\n" in (root / "broker" / "motcua.acl").read_text()  # generated
        return out

    def connects(out: Path) -> str:
        return mqtt_connect(province.service_port, out / "province-ca.crt", out / "bridge.crt",
                            out / "bridge.key")

    def refused(out: Path) -> bool:
        """no CONNACK, and the broker logged this handshake's failed certificate check (Mosquitto
        closes the connection without an alert the client could read)"""
        failed = "certificate verify failed"
        before = province.log.read_text().count(failed)
        answer = connects(out)
        return not answer.startswith("connack") and eventually(
            lambda: province.log.read_text().count(failed) == before + 1, 5
        )

    first = bridge_cert(CENTER, tmp_path / "first")
    other = bridge_cert(OTHER_CENTER, tmp_path / "other")
    try:
        province.start()
        assert connects(first) == "connack 0"
        assert connects(other) == "connack 0"
        assert main(["provision", "bridge-revoke", "--dir", str(root), "--center", CENTER, "--broker",
                     f"127.0.0.1:{province.service_port}"]) == 0
        assert f"user bridge-{CENTER}\n" not in (root / "broker" / "motcua.acl").read_text()
        assert refused(first)
        assert connects(other) == "connack 0"
        renewed = bridge_cert(CENTER, tmp_path / "renewed")
        assert connects(renewed) == "connack 0"
        # --force on the other center: its replaced certificate is refused too, its new one connects
        assert main(["provision", "bridge-cert", "--dir", str(root), "--center", OTHER_CENTER, "--out",
                     str(tmp_path / "other-2"), "--force", "--grace-hours", "0"]) == 0
        assert refused(other)
        assert connects(tmp_path / "other-2") == "connack 0"
        province.stop()
        assert main(["provision", "crl-compact", "--dir", str(root)]) == 0
        province.start()
        assert refused(first) and refused(other)
        assert connects(renewed) == "connack 0"
    finally:
        province.stop()


def count(path: Path, text: str) -> int:
    return path.read_text().count(text) if path.exists() else 0


def test_bridge_revoke_cuts_a_connected_bridge_and_refuses_its_reconnects(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], record_property: Any
) -> None:
    """Two centers bridged (real Mosquittos, the files ``bridge-cert`` wrote) to the province broker on
    the configuration ``province-init`` wrote, both relaying. ``bridge-revoke`` while the first bridge
    is connected and idle: its connection ends (nothing of the center is published meanwhile, so no
    denied publish ends it: the revocation does), each reconnect of its certificate is refused by the
    CRL, and its messages no longer reach the province; the other center's bridge carries on."""
    from main import main

    province_pki, root, province = generated_province(tmp_path)
    sections = {}
    for center in (CENTER, OTHER_CENTER):
        out = tmp_path / f"to-{center}"
        assert main(["provision", "bridge-cert", "--dir", str(root), "--center", center, "--out", str(out),
                     "--address", f"127.0.0.1:{province.service_port}", "--certs-dir", str(out)]) == 0
        sections[center] = (out / "center-bridge.conf").read_text()
    centers = {c: center_broker(tmp_path / f"center-{c}", pki, province, sections[c]) for c in sections}
    clients: list[Client] = []
    probes = iter(range(1_000_000))

    def relays(center: str, seconds: float = 1.0) -> bool:
        """a fresh message published at ``center``'s broker reaches the province within ``seconds``"""
        topic = KioskTopics(center, f"probe-{next(probes)}").status
        publishers[center].publish(topic, b"{}")
        return arrives(watch, topic, seconds)

    try:
        province.start()
        for broker in centers.values():
            broker.start()
        watch = Client(province, province_pki, "fleet-1")
        clients.append(watch)
        assert watch.subscribe("motcua/v1/#") == [1]
        publishers = {c: Client(b, pki, "fleet-1") for c, b in centers.items()}
        clients += publishers.values()
        eventually(lambda: relays(CENTER) and relays(OTHER_CENTER), 30)
        refused = "certificate verify failed"  # the province's log at a refused handshake
        dialled = "Connecting bridge (step 1)"  # a center's log: its bridge dials the province
        logs = {c: b.log for c, b in centers.items()}
        before = count(province.log, refused)
        dials = {c: count(log, dialled) for c, log in logs.items()}
        capsys.readouterr()
        started = time.monotonic()
        assert main(["provision", "bridge-revoke", "--dir", str(root), "--center", CENTER, "--broker",
                     f"127.0.0.1:{province.service_port}", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["ok"] and result["new"] and result["reloaded"] and result["taken_over"], result

        def redialled_and_refused(times: int) -> bool:
            """the center's bridge dialled again ``times`` times, each refused at the province"""
            again = count(logs[CENTER], dialled) - dials[CENTER]
            return again >= times and count(province.log, refused) - before >= times

        # idle since the revocation (nothing published at the center): only the cut ended its connection
        eventually(lambda: redialled_and_refused(1), 15)
        record_property("revoke_to_refused_reconnect_s", round(time.monotonic() - started, 2))
        assert not any(relays(CENTER) for _ in range(3))
        assert relays(OTHER_CENTER)
        eventually(lambda: redialled_and_refused(2), 30)  # it keeps trying, refused each time
        assert not relays(CENTER) and relays(OTHER_CENTER)
        assert count(logs[OTHER_CENTER], dialled) == dials[OTHER_CENTER]  # never cut
    finally:
        for client in clients:
            client.close()
        for broker in centers.values():
            broker.stop()
        province.stop()


def test_a_sighup_alone_leaves_a_revoked_bridges_idle_connection_open_the_cut_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why ``bridge-revoke`` takes the session over (Mosquitto 2.0.11, measured): a client holding the
    bridge certificate (a stolen one: any MQTT client, not a Mosquitto bridge) stays connected through
    the revocation and a SIGHUP as long as it publishes nothing, and once the center's new certificate
    brings the CN's ACL block back (and a SIGHUP) its old TLS session publishes to the province again.
    ``cut_bridge`` closes that connection; its reconnect is refused, the new certificate connects. The
    two-minute certificate the cut took the session over with is on the CRL once used: its key (had it
    leaked) is refused, though the CN has its ACL block again."""
    from main import main
    from provisioning.broker import reload
    from provisioning.province import ProvinceLayout, cut_bridge, revoke_bridge
    from tests.provisioning.center import keep_takeovers

    takeovers = keep_takeovers(monkeypatch)  # what the cut forgets

    province_pki, root, province = generated_province(tmp_path)
    out = tmp_path / "stolen"
    assert main(["provision", "bridge-cert", "--dir", str(root), "--center", CENTER, "--out", str(out)]) == 0
    pid_file = ProvinceLayout(root).pid_file
    thief = paho.Client(CallbackAPIVersion.VERSION2, client_id=BRIDGE, protocol=MQTTProtocolVersion.MQTTv5)
    thief.tls_set(ca_certs=str(out / "province-ca.crt"), certfile=str(out / "bridge.crt"),
                  keyfile=str(out / "bridge.key"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    thief.reconnect_delay_set(1, 1)
    watch = None
    probes = iter(range(1_000_000))

    def relays() -> bool:
        """the thief's publish reaches the province's worker identity"""
        assert watch is not None
        topic = KioskTopics(CENTER, f"probe-{next(probes)}").status
        if not thief.is_connected():
            return False
        thief.publish(topic, b"{}", qos=1)
        return arrives(watch, topic, 1.5)

    try:
        province.start()
        watch = Client(province, province_pki, "fleet-1")
        assert watch.subscribe("motcua/v1/#") == [1]
        thief.connect("127.0.0.1", province.service_port, clean_start=False)
        thief.loop_start()
        eventually(thief.is_connected, 10)
        assert relays()
        revoke_bridge(root, CENTER)  # the CRL and the ACL, no cut
        reload(pid_file)
        time.sleep(3)
        assert thief.is_connected()  # the SIGHUP closed nothing
        assert main(["provision", "bridge-cert", "--dir", str(root), "--center", CENTER, "--out",
                     str(tmp_path / "renewed")]) == 0
        reload(pid_file)
        time.sleep(0.5)
        assert relays()  # the revoked certificate's session publishes again
        refused = count(province.log, "certificate verify failed")
        cut = cut_bridge(root, CENTER, port=province.service_port)
        assert cut.taken_over and not cut.problem, cut
        eventually(lambda: count(province.log, "certificate verify failed") >= refused + 1, 10)
        assert not relays()
        renewed = tmp_path / "renewed"
        answer = mqtt_connect(province.service_port, renewed / "province-ca.crt", renewed / "bridge.crt",
                              renewed / "bridge.key")
        assert answer == "connack 0"
        # the cut's takeover certificate, used: on the CRL, its handshake refused
        assert len(takeovers) == 1
        cert_pem, key_pem, serial = takeovers[0]
        assert serial in ProvinceLayout(root).pki.revoked_serials()
        (tmp_path / "takeover.crt").write_bytes(cert_pem)
        (tmp_path / "takeover.key").write_bytes(key_pem)
        refused = count(province.log, "certificate verify failed")
        answer = mqtt_connect(province.service_port, renewed / "province-ca.crt", tmp_path / "takeover.crt",
                              tmp_path / "takeover.key")
        assert not answer.startswith("connack"), answer
        eventually(lambda: count(province.log, "certificate verify failed") == refused + 1, 5)
    finally:
        thief.loop_stop()
        if watch is not None:
            watch.close()
        province.stop()
