"""A small fleet in the store, built through the store API only (what the pages and tests show)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher

from fleet.auth import hash_password
from fleet.store import Store
from fleet.store.models import HealthReport, StatusReport
from tests.fleet.conftest import FakeClock

PASSWORD = "Mật-khẩu-thử-2026"  # a test password, on purpose with Vietnamese letters
#: argon2id with small parameters for the seeded accounts: a login then verifies in about a millisecond
#: instead of ~0.25 s, which keeps the many logins of the tests fast. Production hashes (the defaults,
#: m=64 MiB, t=3) are made by every password the tests set through the pages and checked on their own.
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass(frozen=True)
class Fleet:
    province: str = "hcm"
    other_province: str = "hn"
    center: str = "hcm-ben-thanh"
    other_center: str = "hcm-thu-dau-mot"
    far_center: str = "hn-hoan-kiem"
    kiosk: str = "kiosk-bt-01"
    other_kiosk: str = "kiosk-tdm-01"
    far_kiosk: str = "kiosk-hk-01"


def birth(bdseq: int, at: datetime, devices: dict[str, str] | None = None) -> StatusReport:
    return StatusReport(
        "online",
        "birth",
        bdseq,
        boot=bdseq - 1000,
        at=at,
        agent_version="0.1.0",
        app_version="0.1.0",
        config_versions={"center": 3, "kiosk": 2},
        hardware={
            "machine": "x86_64",
            "devices": devices or {"printer": "ok", "card_reader": "ok", "scanner": "ok"},
        },
    )


def health(at: datetime, bdseq: int, printer: str = "ok", **metrics: float) -> HealthReport:
    payload = {
        "schema": "health/1",
        "at": at.isoformat(),
        "bdseq": bdseq,
        "cpu_percent": metrics.get("cpu", 7.5),
        "memory": {"used_percent": metrics.get("memory", 41.2)},
        "disk": {"used_percent": 23.0},
        "temperature_c": metrics.get("temperature", 51.0),
        "app": {"state": "up", "version": "0.1.0"},
        "devices": {
            "printer": {"state": printer, "model": "TM-T82"},
            "card_reader": {"state": "ok"},
            "scanner": {"state": "ok"},
        },
        "outbox": {"pending": int(metrics.get("pending", 0))},
    }
    return HealthReport.from_payload(payload, at)


def build(store: Store, *, users: bool = True) -> Fleet:
    """Two provinces, three centers, kiosks in each, one offline, alarms, one user per role."""
    f = Fleet()
    store.registry.ensure_province(f.province, "TP. Hồ Chí Minh")
    store.registry.ensure_province(f.other_province, "Hà Nội")
    store.registry.add_center(f.center, f.province, "Trung tâm Phục vụ hành chính công phường Bến Thành")
    store.registry.add_center(
        f.other_center, f.province, "Trung tâm Phục vụ hành chính công phường Thủ Dầu Một"
    )
    store.registry.add_center(
        f.far_center, f.other_province, "Trung tâm Phục vụ hành chính công phường Hoàn Kiếm"
    )
    now = store.db.now()
    for center, prefix, count in (
        (f.center, "kiosk-bt", 3),
        (f.other_center, "kiosk-tdm", 2),
        (f.far_center, "kiosk-hk", 1),
    ):
        for i in range(1, count + 1):
            kiosk = f"{prefix}-{i:02d}"
            store.registry.add_kiosk(kiosk, center, slot=i - 1, label=f"Sảnh tầng 1, máy {i}")
            if i < 3:
                store.telemetry.record_status(center, kiosk, birth(1_000 + i, now))
                store.telemetry.record_health(center, kiosk, health(now, 1_000 + i))
    store.telemetry.record_status(f.center, "kiosk-bt-02", StatusReport("offline", "lost", 1_002, at=now))
    store.telemetry.record_health(f.center, f.kiosk, health(now, 1_001, printer="paper_out"))
    store.alarms.raise_alarm(f.kiosk, "printer", "critical", device="printer", detail={"state": "paper_out"})
    store.alarms.raise_alarm("kiosk-bt-02", "offline", "major")
    store.alarms.raise_alarm(
        f.other_kiosk, "printer", "warning", device="printer", detail={"state": "paper_near_end"}
    )
    store.alarms.raise_alarm(f.far_kiosk, "offline", "major")
    if users:
        pw = hash_password(PASSWORD, CHEAP)
        store.accounts.add_user(
            "admin.hcm", pw, "province_admin", province_id=f.province, display_name="Nguyễn Văn An"
        )
        store.accounts.add_user(
            "quanly.bt", pw, "center_manager", center_id=f.center, display_name="Trần Thị Bích Ngọc"
        )
        store.accounts.add_user(
            "kythuat.bt", pw, "technician", center_id=f.center, display_name="Lê Hoàng Nam"
        )
        store.accounts.add_user("canbo.bt", pw, "officer", center_id=f.center, display_name="Phạm Thu Hà")
        store.accounts.add_user("xem.bt", pw, "viewer", center_id=f.center, display_name="Đỗ Quang Đức")
        store.accounts.add_user(
            "xem.hcm", pw, "viewer", province_id=f.province, display_name="Vũ Thị Hồng Nhung"
        )
        store.accounts.add_user("quanly.tdm", pw, "center_manager", center_id=f.other_center)
        store.accounts.add_user("admin.hn", pw, "province_admin", province_id=f.other_province)
    return f


def build_day(store: Store, clock: FakeClock) -> Fleet:
    """``build`` twenty hours ago, then a day of life for kiosk-bt-01: a lost connection and a new
    one, the printer running low then out of paper, events with a gap, a command and its result.
    ``clock`` is the store's FakeClock; it ends at the real time now."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from fleet.store import Scope
    from fleet.store.models import EventRecord

    now = datetime.now(UTC).replace(microsecond=0)

    def at(hours_ago: float) -> datetime:
        clock.now = now - timedelta(hours=hours_ago)
        return clock.now

    at(20)
    f = build(store)
    at(14)
    store.telemetry.record_status(f.center, f.kiosk, StatusReport("offline", "lost", 1_001, at=at(14)))
    store.alarms.raise_alarm(f.kiosk, "offline", "major")
    store.telemetry.record_status(f.center, f.kiosk, birth(1_003, at(13.5)))
    store.alarms.clear_alarm(f.kiosk, "offline")
    store.telemetry.record_health(f.center, f.kiosk, health(at(6), 1_003, printer="paper_near_end"))
    store.telemetry.record_health(f.center, f.kiosk, health(at(2), 1_003, printer="paper_out"))
    journal = uuid.uuid4().hex
    for seq in (1, 2, 3, 4, 7, 8):
        kind = "ticket_issued" if seq % 2 else "rating"
        payload = {"service": "HOTICH", "number": f"A{seq:03d}"} if kind == "ticket_issued" else {"level": 5}
        store.events.insert_event(
            f.center, f.kiosk, EventRecord(uuid.uuid4().hex, journal, seq, kind, at(3 - seq / 10), payload)
        )
    command = store.commands.create(Scope.everything(), f.kiosk, "print_test_ticket", {}, None)
    store.commands.mark_sent(f.kiosk, command.request_id, at=at(1))
    store.commands.record_result(
        f.center,
        f.kiosk,
        command.request_id,
        command="print_test_ticket",
        status="error",
        reason="printer: paper out",
        result={},
        at=at(0.99),
    )
    store.telemetry.record_health(f.center, f.kiosk, health(at(0.01), 1_003, printer="paper_out"))
    at(0)
    return f
