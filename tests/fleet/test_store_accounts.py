"""Users, sessions, login attempts, audit log, notification routes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.errors import ConflictError, NotFoundError, ValidationError
from fleet.store import Scope, Store
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build

ALL = Scope.everything()


def test_users_need_a_valid_role_and_exactly_one_home(store: Store) -> None:
    f = build(store, users=False)
    ok = store.accounts.add_user("Quanly.BT", "h", "center_manager", center_id=f.center, display_name="Ngọc")
    assert ok.username == "quanly.bt" and ok.active
    with pytest.raises(ConflictError):
        store.accounts.add_user("quanly.bt", "h", "viewer", center_id=f.center)
    with pytest.raises(ValidationError):
        store.accounts.add_user("x", "h", "viewer", center_id=f.center)  # too short
    with pytest.raises(ValidationError):
        store.accounts.add_user("root.user", "h", "superuser", center_id=f.center)
    with pytest.raises(ValidationError):
        store.accounts.add_user("admin.x", "h", "province_admin", center_id=f.center)
    with pytest.raises(ValidationError):
        store.accounts.add_user("tech.x", "h", "technician", province_id=f.province)
    with pytest.raises(ValidationError):
        store.accounts.add_user("both.x", "h", "viewer", center_id=f.center, province_id=f.province)
    with pytest.raises(NotFoundError):
        store.accounts.add_user("ghost.x", "h", "viewer", center_id="nowhere")
    store.accounts.add_user("xem.tinh", "h", "viewer", province_id=f.province)
    store.accounts.add_user("xem.hn", "h", "viewer", province_id=f.other_province)
    assert {u.username for u in store.accounts.users(Scope.province(f.province))} == {"quanly.bt", "xem.tinh"}
    assert {u.username for u in store.accounts.users(Scope.center(f.center))} == {"quanly.bt"}
    found = store.accounts.credentials("QUANLY.BT ")
    assert found is not None and found[1] == "h"
    assert "password_hash" not in found[0].__dict__


def test_sessions_expire_and_die_with_deactivation_and_password_change(
    store: Store, clock: FakeClock
) -> None:
    f = build(store, users=False)
    user = store.accounts.add_user("quanly.bt", "h", "center_manager", center_id=f.center)
    for name in ("s1", "s2"):
        store.accounts.create_session(
            name,
            user.id,
            "csrf-" + name,
            expires_at=clock.now + timedelta(hours=1),
            address="10.0.0.5",
            user_agent="test",
        )
    session = store.accounts.session("s1")
    assert session is not None and session.user.username == "quanly.bt" and session.csrf_token == "csrf-s1"
    assert store.accounts.session("nope") is None
    store.accounts.set_password(user.id, "h2", keep_session="s1")
    assert store.accounts.session("s1") is not None and store.accounts.session("s2") is None
    clock.advance(hours=2)
    assert store.accounts.session("s1") is None  # expired
    store.accounts.create_session(
        "s3", user.id, "c", expires_at=clock.now + timedelta(hours=1), address=None, user_agent=None
    )
    before, after = store.accounts.update_user(Scope.province(f.province), user.id, active=False)
    assert before.active and not after.active
    assert store.accounts.session("s3") is None and store.accounts.sessions_of(user.id) == 0
    with pytest.raises(NotFoundError):
        store.accounts.update_user(Scope.province(f.other_province), user.id, active=True)
    _, moved = store.accounts.update_user(ALL, user.id, role="viewer", province_id=f.province, home=True)
    assert (moved.role, moved.center_id, moved.province_id) == ("viewer", None, f.province)
    with pytest.raises(ValidationError):
        store.accounts.update_user(ALL, user.id, role="technician")  # a technician needs a center


def test_failed_logins_count_until_a_success(store: Store, clock: FakeClock) -> None:
    start = clock.now
    for _ in range(3):
        store.accounts.record_attempt("quanly", "10.0.0.5", False)
        clock.advance(seconds=1)
    assert len(store.accounts.recent_failures(start - timedelta(minutes=1), username="quanly")) == 3
    assert len(store.accounts.recent_failures(start - timedelta(minutes=1), address="10.0.0.5")) == 3
    store.accounts.record_attempt("quanly", "10.0.0.5", True)
    store.accounts.record_attempt("quanly", "10.0.0.6", False)
    assert len(store.accounts.recent_failures(start - timedelta(minutes=1), username="quanly")) == 1
    assert store.accounts.recent_failures(clock.now + timedelta(seconds=1), username="quanly") == []


def test_audit_entries_are_scoped_by_center_and_province(store: Store) -> None:
    f = build(store, users=False)
    store.audit.record(
        "alarm.ack",
        username="quanly.bt",
        object_type="alarm",
        object_id="1",
        center_id=f.center,
        before={"acknowledged_at": None},
        after={"acknowledged_at": "now"},
        address="10.0.0.5",
    )
    store.audit.record("user.create", username="admin.hcm", province_id=f.province, object_type="user")
    store.audit.record("alarm.ack", username="quanly.hk", center_id=f.far_center)
    bt = store.audit.page(Scope.center(f.center))
    assert [(e.action, e.province_id, e.address) for e in bt.items] == [("alarm.ack", f.province, "10.0.0.5")]
    assert bt.items[0].before == {"acknowledged_at": None}
    hcm = store.audit.page(Scope.province(f.province))
    assert [e.action for e in hcm.items] == ["user.create", "alarm.ack"]
    assert store.audit.page(ALL, action="alarm.ack").total == 2


def test_notification_routes(store: Store) -> None:
    f = build(store, users=False)
    mine = Scope.center(f.center)
    mail = store.routes.add(mine, f.center, "email", " truongbp@benthanh.gov.vn ", min_severity="major")
    hook = store.routes.add(
        mine, f.center, "webhook", "https://hooks.example.vn/fleet", min_severity="warning"
    )
    assert mail.target == "truongbp@benthanh.gov.vn"
    with pytest.raises(ConflictError):
        store.routes.add(mine, f.center, "email", "truongbp@benthanh.gov.vn")
    with pytest.raises(ValidationError):
        store.routes.add(mine, f.center, "email", "not-an-address")
    with pytest.raises(ValidationError):
        store.routes.add(mine, f.center, "webhook", "ftp://x")
    with pytest.raises(NotFoundError):
        store.routes.add(mine, f.other_center, "email", "a@b.vn")
    assert [r.id for r in store.routes.for_alarm(f.center, "critical")] == [mail.id, hook.id]
    assert [r.id for r in store.routes.for_alarm(f.center, "minor")] == [hook.id]
    store.routes.set_active(mine, hook.id, False)
    assert store.routes.for_alarm(f.center, "warning") == []
    with pytest.raises(NotFoundError):
        store.routes.set_active(Scope.center(f.other_center), mail.id, False)
    assert [r.id for r in store.routes.of_center(mine, f.center)] == [mail.id, hook.id]


def test_change_log_follows_writes_by_scope(store: Store) -> None:
    f = build(store, users=False)
    start = store.changes.latest_id()
    store.alarms.raise_alarm(f.kiosk, "app_down", "major")
    store.alarms.raise_alarm(f.far_kiosk, "app_down", "major")
    mine, upto = store.changes.since(Scope.center(f.center), start)
    assert [(c.kiosk_id, c.topic) for c in mine] == [(f.kiosk, "alarm")]
    assert upto == store.changes.latest_id()  # moved past the other center's change too
    assert store.changes.since(Scope.center(f.center), upto) == ([], upto)
    assert store.settings.get_or_create("secret", "a") == "a"
    assert store.settings.get_or_create("secret", "b") == "a"


def test_production_password_hashes_are_argon2id_with_the_default_cost() -> None:
    from fleet.auth import hash_password, verify_password

    hashed = hash_password("Mật khẩu đủ dài 2026")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(hashed, "Mật khẩu đủ dài 2026")
    assert not verify_password(hashed, "Mật khẩu đủ dài 2025")
    assert not verify_password("not a hash", "x")
    with pytest.raises(ValidationError):
        hash_password("short")
