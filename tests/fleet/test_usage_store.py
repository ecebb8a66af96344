"""The usage figures (``store.usage``) on SQLite and PostgreSQL: a November of a small fleet
(``tests/fleet/usage_data.py``) counted per service, day, hour, outcome, level, reason, counter,
officer and device, within the scope, with Vietnam's days (a ticket at 00:30 on 1 December is not
November's)."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from common.errors import ValidationError
from fleet.queue.engine import Queue
from fleet.store import Scope, Store
from fleet.store.usage import Period, availability_percent, officer_labels, rating_groups, split_day_hour
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.queue_data import issue, setup_center
from tests.fleet.usage_data import event, local, push_officials, push_services, seed

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOVEMBER = Period.month("2026-11", VN)


def test_a_month_is_cut_at_vietnam_midnight() -> None:
    assert NOVEMBER.start == local(1, 0) and NOVEMBER.end == local(1, 0, month=12)
    assert NOVEMBER.day_count == 30 and NOVEMBER.day_labels()[-1] == "2026-11-30"
    assert Period.month("2026-12", VN).last_day == date(2026, 12, 31)
    for bad in ("2026-13", "2026", "nov", "2026-00"):
        with pytest.raises(ValidationError, match="YYYY-MM"):
            Period.month(bad, VN)
    with pytest.raises(ValidationError, match="before"):
        Period.days(date(2026, 11, 2), date(2026, 11, 1), VN)
    with pytest.raises(ValidationError, match="at most 366"):
        Period.days(date(2025, 1, 1), date(2026, 1, 2), VN)
    # a zone with summer time cannot be cut by one offset: refused, not silently wrong
    with pytest.raises(ValidationError, match="offset"):
        Period.days(date(2026, 3, 1), date(2026, 3, 31), ZoneInfo("Europe/Berlin"))


def test_tickets_per_service_day_and_hour(store: Store, clock: FakeClock) -> None:
    f, expected = seed(store, clock)
    center = Scope.center(f.center)
    by_day = {(t.bucket, t.service): (t.issued, t.voided) for t in store.usage.tickets(center, NOVEMBER)}
    assert by_day == {
        ("2026-11-22", "HOTICH"): (2, 0),
        ("2026-11-23", "HOTICH"): (3, 1),
        ("2026-11-23", "DATDAI"): (1, 0),
        ("2026-11-30", "HOTICH"): (1, 0),  # 23:30 on the last evening; 00:30 on 1 December is not here
    }
    assert sum(issued for issued, _ in by_day.values()) == expected.bt_issued
    by_hour = {(t.bucket, t.service): t.issued for t in store.usage.tickets(center, NOVEMBER, by="hour")}
    assert by_hour == {("08", "HOTICH"): 3, ("10", "DATDAI"): 1, ("14", "HOTICH"): 2, ("23", "HOTICH"): 1}
    # one scan for both: day and hour of day together, added up per day and per hour
    by_day_again, by_hour_again = split_day_hour(store.usage.tickets(center, NOVEMBER, by="day_hour"))
    assert by_day_again == store.usage.tickets(center, NOVEMBER)
    assert by_hour_again == store.usage.tickets(center, NOVEMBER, by="hour")
    december = store.usage.tickets(center, Period.month("2026-12", VN))
    assert [(t.bucket, t.issued) for t in december] == [("2026-12-01", 1)]
    # the province: both of its centers, per center; never the other province's
    province = store.usage.tickets(Scope.province(f.province), NOVEMBER)
    per_center: dict[str, int] = {}
    for t in province:
        per_center[t.center_id] = per_center.get(t.center_id, 0) + t.issued
    assert per_center == {f.center: expected.bt_issued, f.other_center: expected.tdm_issued}
    assert {t.center_id for t in store.usage.tickets(Scope.everything(), NOVEMBER)} == {
        f.center,
        f.other_center,
        f.far_center,
    }
    # a manager's scope asking for another center by id gets nothing
    assert store.usage.tickets(center, NOVEMBER, center_id=f.other_center) == []
    with pytest.raises(ValidationError):
        store.usage.tickets(center, NOVEMBER, by="week")


def test_lookups_and_card_reads_by_outcome_with_their_times(store: Store, clock: FakeClock) -> None:
    f, _ = seed(store, clock)
    scope = Scope.center(f.center)
    lookups = {o.outcome: (o.count, o.mean_ms, o.max_ms) for o in store.usage.lookups(scope, NOVEMBER)}
    assert lookups == {"found": (2, 50.0, 60.0), "not_found": (1, 20.0, 20.0)}
    cards = {o.outcome: (o.count, o.mean_ms, o.max_ms) for o in store.usage.card_reads(scope, NOVEMBER)}
    assert cards == {"ok": (2, 900.0, 1000.0), "CardRemovedError": (1, 300.0, 300.0)}
    assert store.usage.lookups(Scope.center(f.other_center), NOVEMBER) == []


def test_ratings_per_level_reason_counter_officer_and_satisfaction(store: Store, clock: FakeClock) -> None:
    f, expected = seed(store, clock)
    scope = Scope.center(f.center)
    levels = store.usage.ratings(scope, NOVEMBER, by="level")
    assert sum(r.count for r in levels) == expected.bt_ratings
    assert sum(r.count for r in levels if r.satisfied) == expected.bt_satisfied
    assert {(r.key, r.level): r.count for r in levels} == {
        ("very_satisfied", 4): 2,
        ("satisfied", 3): 1,
        ("dissatisfied", 2): 1,
        ("very_dissatisfied", 1): 2,
        ("phone", 4): 1,  # the phone page's rating of ticket A050
    }
    reasons = {
        g.key: (g.count, g.satisfied)
        for g in rating_groups(store.usage.ratings(scope, NOVEMBER, by="reason"))
    }
    assert reasons == {"long_wait": (2, 0), "staff_attitude": (2, 0)}
    counters = rating_groups(store.usage.ratings(scope, NOVEMBER, by="counter"))
    # counter 2: one kiosk rating aimed at it and the phone rating of the ticket it served
    assert [(g.key, g.count, g.satisfied_percent) for g in counters] == [("2", 2, 100.0)]
    officers = {
        g.key: (g.count, g.mean_score)
        for g in rating_groups(store.usage.ratings(scope, NOVEMBER, by="officer"))
    }
    assert officers == {"canbo01.bt": (1, 100.0), "cb-017": (1, 0.0)}
    assert store.usage.ratings(Scope.center(f.other_center), NOVEMBER) == []
    with pytest.raises(ValidationError):
        store.usage.ratings(scope, NOVEMBER, by="mood")


def test_downtime_per_kiosk_and_device_from_the_alarms(store: Store, clock: FakeClock) -> None:
    f, expected = seed(store, clock)
    scope = Scope.center(f.center)
    spans = {s.kiosk_id: s.span_s for s in store.usage.kiosk_spans(scope, NOVEMBER)}
    assert spans == {"kiosk-bt-01": 30 * 86400.0, "kiosk-bt-02": 30 * 86400.0, "kiosk-bt-03": 30 * 86400.0}
    down = {(d.kiosk_id, d.type): (d.alarms, d.down_s) for d in store.usage.downtime(scope, NOVEMBER)}
    assert down == {
        ("kiosk-bt-01", "printer"): (1, expected.printer_down_s),
        ("kiosk-bt-02", "offline"): (1, expected.offline_down_s),
    }
    assert availability_percent(spans["kiosk-bt-02"], expected.offline_down_s) == pytest.approx(
        100 * (1 - 1800 / (30 * 86400))
    )
    # an alarm still active counts up to now, and only the part inside the period
    clock.now = local(2, 12, month=12)
    store.alarms.raise_alarm("kiosk-bt-03", "card_reader", "major", device="card_reader", at=local(30, 22))
    seconds = {(d.kiosk_id, d.type): d.down_s for d in store.usage.downtime(scope, NOVEMBER)}
    assert seconds[("kiosk-bt-03", "card_reader")] == 2 * 3600.0  # 22:00 to midnight of 30 November
    december = Period.month("2026-12", VN)
    seconds = {(d.kiosk_id, d.type): d.down_s for d in store.usage.downtime(scope, december)}
    assert seconds[("kiosk-bt-03", "card_reader")] == 36 * 3600.0  # 1 Dec 00:00 to now (2 Dec 12:00)
    spans = {s.kiosk_id: s.span_s for s in store.usage.kiosk_spans(scope, december)}
    assert spans["kiosk-bt-03"] == 36 * 3600.0  # the month so far, not its 31 days
    alarms = store.usage.alarms(scope, NOVEMBER)
    assert [(a.kiosk_id, a.type) for a in alarms] == [
        ("kiosk-bt-01", "printer"),
        ("kiosk-bt-02", "offline"),
        ("kiosk-bt-03", "card_reader"),
    ]
    assert store.usage.alarms(Scope.center(f.other_center), NOVEMBER) == []
    assert store.usage.alarm_counts(Scope.province(f.province), NOVEMBER) == {f.center: 3}
    assert store.usage.alarm_counts(Scope.center(f.other_center), NOVEMBER) == {}


def test_numbers_waiting_and_the_live_watermark(store: Store, clock: FakeClock) -> None:
    f, _ = seed(store, clock)
    scope = Scope.center(f.center)
    Queue(store)  # the center's services exist from the seed
    before = store.usage.watermark(scope)
    today = clock.now.astimezone(VN).date()
    for number in ("A101", "A102"):
        issue(store, number, "HOTICH", day=today.isoformat(), at=clock.now)
    issue(store, "B101", "CHUNGTHUC", day=today.isoformat(), at=clock.now)
    waiting = {(w.service, w.waiting) for w in store.usage.waiting(scope, today)}
    assert waiting == {("HOTICH", 2), ("CHUNGTHUC", 1)}
    assert store.usage.waiting(Scope.center(f.other_center), today) == []
    after_queue = store.usage.watermark(scope)
    assert after_queue != before  # the queue's steps moved it
    clock.advance(seconds=1)
    event(store, f.center, f.kiosk, "lookup", clock.now, outcome="found", source="camera")
    assert store.usage.watermark(scope) != after_queue  # an event received moved it
    # another center's event does not wake this center's page
    other = store.usage.watermark(scope)
    clock.advance(seconds=1)
    event(store, f.other_center, f.other_kiosk, "lookup", clock.now, outcome="found", source="camera")
    assert store.usage.watermark(scope) == other
    assert store.usage.watermark(Scope.center(f.other_center)) != other
    names = store.usage.service_names(scope)
    assert names[(f.center, "HOTICH")] == "Hộ tịch"
    assert store.usage.service_names(Scope.center(f.other_center)) == {}


def test_service_names_fall_back_to_the_centers_pushed_services(store: Store) -> None:
    """A center without the queue (no ``queue_services``) whose kiosks got their services by a
    configuration push: its codes are named from the push, center-wide first, in the page's language;
    the queue's names win where both exist; another center's push never names this center's codes."""
    f = build(store)
    setup_center(Queue(store))  # Bến Thành's queue: HOTICH "Hộ tịch" / "Civil status", ...
    tdm, bt = f.other_center, f.center
    push_services(
        store, tdm, [("HOTICH", "A", "Hộ tịch", "Civil status"), ("CHUNGTHUC", "B", "Chứng thực", "")]
    )
    # a kiosk's own push: its HOTICH loses to the center-wide one, its extra code is named
    push_services(
        store,
        tdm,
        [
            ("HOTICH", "A", "Hộ tịch (máy 1)", "Civil status (kiosk 1)"),
            ("KHIEUNAI", "K", "Khiếu nại", "Complaints"),
        ],
        target=f.other_kiosk,
    )
    # Bến Thành pushes other names for its queue's code, and a code its queue does not have
    push_services(
        store, bt, [("HOTICH", "A", "Tên đẩy xuống", "Pushed name"), ("LAODONG", "L", "Lao động", "Labour")]
    )
    # Hoàn Kiếm (another province) names a code Thủ Dầu Một's events also use
    push_services(store, f.far_center, [("DATDAI", "C", "Đất đai (Hoàn Kiếm)", "Land (Hoan Kiem)")])

    def names(scope: Scope, language: str = "vi", center_id: str | None = None) -> dict[tuple[str, str], str]:
        return store.usage.service_names(scope, center_id=center_id, language=language)

    assert names(Scope.center(tdm)) == {
        (tdm, "HOTICH"): "Hộ tịch",
        (tdm, "CHUNGTHUC"): "Chứng thực",
        (tdm, "KHIEUNAI"): "Khiếu nại",
    }
    assert names(Scope.center(tdm), "en") == {
        (tdm, "HOTICH"): "Civil status",
        (tdm, "CHUNGTHUC"): "Chứng thực",  # no English name pushed: the Vietnamese
        (tdm, "KHIEUNAI"): "Complaints",
    }
    province = names(Scope.province(f.province))
    assert province[(bt, "HOTICH")] == "Hộ tịch"  # the queue's, not the push's
    assert province[(bt, "LAODONG")] == "Lao động"  # only the push names it
    assert names(Scope.province(f.province), "en")[(bt, "HOTICH")] == "Civil status"
    assert {center for center, _ in province} == {bt, tdm}  # never Hoàn Kiếm's
    assert names(Scope.center(tdm), center_id=f.far_center) == {}  # asked by id: nothing out of scope
    assert names(Scope.center(f.far_center)) == {(f.far_center, "DATDAI"): "Đất đai (Hoàn Kiếm)"}

    # the newest push of a target that carries services: a rename wins, a push without them keeps them
    push_services(store, tdm, [("HOTICH", "A", "Hộ tịch – Khai sinh", "Civil status – births")])
    store.configs.record_push(Scope.everything(), tdm, "_center", {"kiosk": {"idle_timeout_s": 90}}, None)
    assert names(Scope.center(tdm)) == {
        (tdm, "HOTICH"): "Hộ tịch – Khai sinh",
        (tdm, "KHIEUNAI"): "Khiếu nại",
    }


def test_officers_are_named_by_their_account_or_the_centers_pushed_officials(store: Store) -> None:
    """The ratings by officer key a queue officer by user name and a kiosk's rating of an official by
    the pushed list's id: both named, the account first; another center's list never names them."""
    f = build(store)  # canbo.bt: an officer of Bến Thành, "Phạm Thu Hà"
    bt, tdm = f.center, f.other_center
    push_officials(store, bt, [("cb-017", "Võ Minh Tuấn"), ("canbo.bt", "Tên trong danh sách")])
    push_officials(store, tdm, [("cb-020", "Đặng Thị Mai")])
    push_officials(store, f.far_center, [("cb-017", "Người ở Hoàn Kiếm")])
    malformed = {"officials": [{"id": 5, "name": "số"}, "x", {"id": "cb-9"}]}  # each entry skipped
    store.configs.record_push(Scope.everything(), bt, f.kiosk, malformed, None)

    named = store.usage.officer_names(Scope.center(bt))
    assert named[(bt, "canbo.bt")] == "Phạm Thu Hà"  # the account's display name wins
    assert named[(bt, "cb-017")] == "Võ Minh Tuấn"
    assert (tdm, "cb-020") not in named and (f.far_center, "cb-017") not in named
    assert store.usage.officer_names(Scope.center(bt), center_id=tdm) == {}  # out of scope by id
    province = store.usage.officer_names(Scope.province(f.province))
    assert province[(tdm, "cb-020")] == "Đặng Thị Mai"
    assert all(center != f.far_center for center, _ in province)
    assert officer_labels(named)["cb-017"] == "Võ Minh Tuấn (cb-017)"


def test_a_malformed_pushed_services_section_is_skipped(store: Store) -> None:
    f = build(store)
    tdm = f.other_center
    push_services(store, tdm, [("HOTICH", "A", "Hộ tịch", "Civil status")], target=f.other_kiosk)
    bad_bodies: list[Any] = [
        {"services": [{"code": "X1"}, "DATDAI", {"code": 5, "name_vi": "Số"}, {"code": "OK", "name_vi": 7}]},
        {"services": {"HOTICH": "Sai"}},  # not a list: not a services section
        ["services"],
        "services",
    ]
    for body in bad_bodies:
        store.configs.record_push(Scope.everything(), tdm, "_center", body, None)
    expected = {(tdm, "HOTICH"): "Hộ tịch"}
    assert store.usage.service_names(Scope.center(tdm)) == expected
    if not store.db.is_postgres:  # text on SQLite (JSONB on PostgreSQL cannot hold broken JSON)
        broken = push_services(store, tdm, [("HOTICH", "A", "Sai", "Wrong")])
        with store.db.write() as conn:
            conn.exec_driver_sql("UPDATE config_pushes SET body = '{\"services\": [' WHERE id = ?", (broken,))
        assert store.usage.service_names(Scope.center(tdm)) == expected
