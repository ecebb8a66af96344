"""Alarm notifications: the queue in the store (both backends), and the senders against a real local
SMTP server (aiosmtpd) and a real local HTTP server, with retries and giving up."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import timedelta

import pytest

from fleet.notify.notifier import Notifier, NotifySettings
from fleet.notify.senders import SmtpSettings
from fleet.store import Scope, Store
from tests.fleet.conftest import FakeClock
from tests.fleet.receivers import Smtp, Webhook, smtp_server, webhook_server

ALL = Scope.everything()
C, K = "hcm-ben-thanh", "kiosk-bt-01"


@pytest.fixture
def fleet(store: Store) -> Store:
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center(C, "hcm", "Trung tâm Phục vụ hành chính công phường Bến Thành")
    store.registry.add_center("hcm-thu-duc", "hcm", "Trung tâm Thủ Đức")
    store.registry.add_kiosk(K, C, slot=0, label="Sảnh tầng 1")
    return store


@pytest.fixture(scope="module")
def smtp() -> Iterator[Smtp]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def hook() -> Iterator[Webhook]:
    with webhook_server() as server:
        yield server


def test_leases_one_holder_at_a_time(fleet: Store, clock: FakeClock) -> None:
    ttl = timedelta(seconds=15)
    assert fleet.ingest.acquire_lease("duties", "w1", ttl)
    assert not fleet.ingest.acquire_lease("duties", "w2", ttl)
    clock.advance(seconds=10)
    assert fleet.ingest.acquire_lease("duties", "w1", ttl)  # renewed
    clock.advance(seconds=14)
    assert not fleet.ingest.acquire_lease("duties", "w2", ttl)
    clock.advance(seconds=2)  # w1 died: its lease ran out
    assert fleet.ingest.acquire_lease("duties", "w2", ttl)
    assert fleet.ingest.lease_holder("duties") == ("w2", clock.now + ttl)
    fleet.ingest.release_lease("duties", "w1")  # not the holder: nothing happens
    assert fleet.ingest.lease_holder("duties") is not None
    fleet.ingest.release_lease("duties", "w2")
    assert fleet.ingest.acquire_lease("duties", "w1", ttl)


def test_announcements_queue_a_delivery_per_route_that_wants_the_severity(
    fleet: Store, clock: FakeClock
) -> None:
    fleet.routes.add(ALL, C, "email", "truongtrung.tam@example.vn", min_severity="major")
    fleet.routes.add(ALL, C, "webhook", "https://hooks.example.vn/x", min_severity="critical")
    off = fleet.routes.add(ALL, C, "email", "nghi.phep@example.vn", min_severity="warning")
    fleet.routes.set_active(ALL, off.id, False)
    fleet.routes.add(ALL, "hcm-thu-duc", "email", "thuduc@example.vn", min_severity="warning")
    major, _ = fleet.alarms.raise_alarm(K, "offline", "major")
    critical, _ = fleet.alarms.raise_alarm(K, "printer", "critical", device="printer")
    assert fleet.notices.announce(major.id, "raised") == 1  # e-mail only: the webhook wants critical
    assert fleet.notices.announce(critical.id, "raised") == 2
    assert fleet.notices.announce(critical.id, "raised") is None  # announced once, whoever asks again
    assert fleet.notices.remind(critical.id, at=clock.advance(hours=1)) == 2
    assert fleet.alarms.get(ALL, critical.id).reminders == 1
    fleet.alarms.clear_alarm(K, "printer")
    new, ended = fleet.notices.unannounced(0)
    assert [a.id for a in new] == [] and [a.id for a in ended] == [critical.id]
    assert fleet.notices.announce(critical.id, "cleared") == 2
    due = fleet.notices.due(now=clock.now)
    assert sorted((d.event, d.kind, d.alarm.type) for d in due) == sorted(
        [
            ("raised", "email", "offline"),
            ("raised", "email", "printer"),
            ("raised", "webhook", "printer"),
            ("reminder", "email", "printer"),
            ("reminder", "webhook", "printer"),
            ("cleared", "email", "printer"),
            ("cleared", "webhook", "printer"),
        ]
    )
    assert {d.kiosk_label for d in due} == {"Sảnh tầng 1"}
    assert {d.target for d in fleet.notices.deliveries(Scope.center(C), C)} == {
        "truongtrung.tam@example.vn",
        "https://hooks.example.vn/x",
    }
    assert fleet.notices.deliveries(Scope.center("hcm-thu-duc"), C) == []  # not their center


def test_notifier_sends_mail_and_webhooks_and_retries_with_backoff(
    sqlite_store: Store, clock: FakeClock, smtp: Smtp, hook: Webhook
) -> None:
    fleet = sqlite_store
    fleet.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    fleet.registry.add_center(C, "hcm", "Trung tâm Phục vụ hành chính công phường Bến Thành")
    fleet.registry.add_kiosk(K, C, slot=0, label="Sảnh tầng 1")
    fleet.routes.add(ALL, C, "email", "kythuat@example.vn", min_severity="minor")
    fleet.routes.add(ALL, C, "webhook", hook.url, min_severity="minor")
    alarm, _ = fleet.alarms.raise_alarm(
        K, "printer", "critical", device="printer", detail={"state": "paper_out"}
    )
    fleet.notices.announce(alarm.id, "raised")
    settings = NotifySettings(
        smtp=SmtpSettings(smtp.host, smtp.port, sender="giamsat@trungtam.example.vn"),
        webhook_secret=b"bi-mat-chung",
        public_url="https://giamsat.example.vn",
    )
    notifier = Notifier(fleet, settings, lambda: True)
    hook.fail_with = [500]
    before_mail, before_hooks = len(smtp.box.messages), len(hook.received)
    assert notifier.run_once(now=clock.now) == 2
    mail = smtp.wait_for(before_mail + 1)[-1]
    assert mail["To"] == "kythuat@example.vn" and mail["From"] == "giamsat@trungtam.example.vn"
    assert mail["Subject"] == (
        "[Giám sát kiosk] Cảnh báo mới: Máy in phiếu (Hết giấy) – kiosk-bt-01 (Nghiêm trọng)"
    )
    body = mail.get_content()
    assert (
        "Kiosk: kiosk-bt-01 – Sảnh tầng 1" in body and "https://giamsat.example.vn/kiosks/kiosk-bt-01" in body
    )
    rows = {d.kind: d for d in fleet.notices.deliveries(ALL, C)}
    assert rows["email"].status == "sent" and rows["webhook"].status == "pending"
    assert rows["webhook"].last_error == f"webhook {hook.url}: HTTP 500"
    assert rows["webhook"].next_attempt_at == clock.now + timedelta(seconds=30)
    assert notifier.run_once(now=clock.now + timedelta(seconds=29)) == 0  # not due yet
    assert notifier.run_once(now=clock.advance(seconds=31)) == 1
    headers, payload = hook.wait_for(before_hooks + 1)[-1]
    assert payload["event"] == "raised" and payload["alarm"]["type"] == "printer"
    assert payload["alarm"]["detail"] == {"state": "paper_out"} and payload["schema"] == "fleet-alarm/1"
    signature = hmac.new(b"bi-mat-chung", headers["x-raw-body"].encode(), hashlib.sha256).hexdigest()
    assert headers["x-fleet-signature"] == f"sha256={signature}"
    assert {d.status for d in fleet.notices.deliveries(ALL, C)} == {"sent"}
    # a webhook that says the address is gone (404) is given up at once; an unreachable one after retries
    gone, _ = fleet.alarms.raise_alarm(K, "scanner", "minor", device="scanner", detail={"state": "missing"})
    fleet.routes.add(ALL, C, "webhook", "http://127.0.0.1:9/nothing-listens", min_severity="minor")
    hook.fail_with = [404]
    fleet.notices.announce(gone.id, "raised")
    short = NotifySettings(retry_after=(timedelta(seconds=1),), webhook_timeout_s=1.0)
    Notifier(fleet, short, lambda: True).run_once(now=clock.advance(seconds=1))
    found = {(d.target, d.alarm_id): d for d in fleet.notices.deliveries(ALL, C)}
    assert found[(hook.url, gone.id)].status == "failed" and found[(hook.url, gone.id)].attempts == 1
    unreachable = found[("http://127.0.0.1:9/nothing-listens", gone.id)]
    assert unreachable.status == "pending" and "ConnectError" in (unreachable.last_error or "")
    email_without_server = found[("kythuat@example.vn", gone.id)]
    assert email_without_server.last_error == "no SMTP server configured (--smtp HOST:PORT)"
    Notifier(fleet, short, lambda: True).run_once(now=clock.advance(seconds=2))
    found = {(d.target, d.alarm_id): d for d in fleet.notices.deliveries(ALL, C)}
    assert (
        found[("http://127.0.0.1:9/nothing-listens", gone.id)].status == "failed"
    )  # one retry, then given up
    assert found[("http://127.0.0.1:9/nothing-listens", gone.id)].attempts == 2


@pytest.fixture
def sqlite_store(sqlite_url: str, clock: FakeClock) -> Iterator[Store]:
    from fleet.store import open_store

    opened = open_store(sqlite_url, clock=clock)
    yield opened
    opened.close()
