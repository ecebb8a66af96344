"""The demo dossier store used by simulate mode, the status model, and the look-up event payload."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from common.journal import EventJournal
from kiosk.dossier import (
    DemoDossierStore,
    DossierNotFound,
    DossierState,
    DossierStatus,
    LookupConfig,
    LookupUnavailable,
    lookup_event,
    open_backend,
    parse_dossier_code,
)

TODAY = date(2026, 11, 23)


@pytest.fixture
def store(tmp_path: Path) -> DemoDossierStore:
    store = DemoDossierStore(tmp_path / "demo.sqlite")
    store.seed(TODAY)
    return store


def test_seed_is_realistic_and_complete(store: DemoDossierStore) -> None:
    codes = store.codes()
    assert len(codes) >= 10
    assert parse_dossier_code("000.00.10.H12-210901-0001") in codes
    statuses = [store.lookup(code) for code in codes]
    assert {s.status for s in statuses} == set(DossierState)
    assert {len(c.sequence) for c in codes} >= {4, 6, 7}
    for status in statuses:
        assert status.code.received_on == status.received_on  # the code carries the received date
        assert status.due_on >= status.received_on
        assert status.procedure_name and status.agency and status.collect_at
        assert [d for d, _ in status.timeline] == sorted(d for d, _ in status.timeline)
    overdue = [s for s in statuses if s.overdue_days(TODAY)]
    assert [(s.code.text, s.overdue_days(TODAY)) for s in overdue] == [("000.00.10.H12-261114-0003", 6)]


def test_round_trip_through_the_wire_form(store: DemoDossierStore) -> None:
    for code in store.codes():
        status = store.lookup(code)
        assert DossierStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status


def test_not_found_and_outage(store: DemoDossierStore) -> None:
    with pytest.raises(DossierNotFound):
        store.lookup(parse_dossier_code("000.00.10.H12-210901-9999"))
    store.set_available(False)
    with pytest.raises(LookupUnavailable):
        store.lookup(parse_dossier_code("000.00.10.H12-210901-0001"))
    store.set_available(True)
    assert store.lookup(parse_dossier_code("000.00.10.H12-210901-0001")).status is DossierState.RETURNED


def test_corrupt_row_is_unavailable_not_a_crash(store: DemoDossierStore) -> None:
    store._db.execute("UPDATE dossiers SET data = '{\"code\": 1}' WHERE code = '000.00.10.H12-210901-0001'")
    with pytest.raises(LookupUnavailable, match="corrupt"):
        store.lookup(parse_dossier_code("000.00.10.H12-210901-0001"))


def test_open_backend_seeds_the_demo_store(tmp_path: Path) -> None:
    backend = open_backend(LookupConfig(backend="demo", demo_path=tmp_path / "d" / "demo.sqlite"))
    assert isinstance(backend, DemoDossierStore)
    seeded = backend.count()
    assert seeded >= 10
    backend.close()
    reopened = DemoDossierStore(tmp_path / "d" / "demo.sqlite")
    assert reopened.count() == seeded


def test_overdue_rules() -> None:
    base = DossierStatus(
        parse_dossier_code("000.00.10.H12-261101-0001"), "Đăng ký khai sinh", "UBND phường",
        date(2026, 11, 1), date(2026, 11, 3), DossierState.IN_PROGRESS, "Đang xử lý",
    )
    assert base.overdue_days(date(2026, 11, 3)) == 0
    assert base.overdue_days(date(2026, 11, 6)) == 3
    expected = {DossierState.RECEIVED: 3, DossierState.AWAITING_DOCUMENTS: 0, DossierState.RESULT_READY: 0,
                DossierState.RETURNED: 0, DossierState.REJECTED: 0}
    for state, late in expected.items():
        assert dataclasses.replace(base, status=state).overdue_days(date(2026, 11, 6)) == late


def test_summary_lines_in_both_languages(store: DemoDossierStore) -> None:
    status = store.lookup(parse_dossier_code("000.00.10.H12-261114-0003"))
    vi = dict(status.summary_lines(TODAY, "vi"))
    assert vi["Mã hồ sơ"] == "000.00.10.H12-261114-0003"
    assert vi["Trạng thái"] == "Đang xử lý"
    assert vi["Ngày hẹn trả kết quả"] == "17/11/2026"
    assert vi[""] == "Quá hạn (trễ 6 ngày)"
    assert vi["Phí, lệ phí"] == "8.000 đồng/bản"
    en = dict(status.summary_lines(TODAY, "en"))
    assert en["Status"] == "In progress" and en[""] == "Overdue (6 days late)"


def test_status_labels_are_the_glossary_words() -> None:
    assert [s.label_vi for s in DossierState] == [
        "Đã tiếp nhận", "Đang xử lý", "Chờ bổ sung hồ sơ", "Đã có kết quả", "Đã trả kết quả", "Từ chối"]
    assert [s.label_en for s in DossierState] == [
        "Received", "In progress", "Awaiting more documents", "Result ready", "Result returned", "Rejected"]


def test_lookup_event_has_no_dossier_code_and_passes_the_journal(
    store: DemoDossierStore, tmp_path: Path
) -> None:
    code = parse_dossier_code("000.00.10.H12-261114-0003")
    status = store.lookup(code)
    payload = lookup_event("found", source="camera", code=code, status=status, today=TODAY, latency_ms=12.345)
    assert payload.to_data() == {"outcome": "found", "source": "camera", "agency_code": "000.00.10.H12",
                                 "status": "in_progress", "overdue_days": 6, "latency_ms": 12.3}
    journal = EventJournal(tmp_path / "events.sqlite")
    event = journal.append(payload)
    assert code.text not in json.dumps(event.payload)
    journal.close()


def test_demo_delay_models_a_slow_system(store: DemoDossierStore) -> None:
    import time

    store.set_delay(0.2)
    started = time.monotonic()
    store.lookup(parse_dossier_code("000.00.10.H12-210901-0001"))
    assert time.monotonic() - started >= 0.2
    status = store.lookup(parse_dossier_code("000.00.10.H12-261114-0003"))
    assert status.received_on == TODAY - timedelta(days=9)


def test_lookup_tally_counts_per_day_and_survives_restart(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from kiosk.dossier import LookupTally

    vn = timezone(timedelta(hours=7))
    tally = LookupTally(tmp_path / "tally.sqlite")
    day1 = datetime(2026, 11, 23, 23, 59, tzinfo=vn)
    for outcome, source in [("found", "camera"), ("found", "serial"), ("not_found", "keyboard"),
                            ("unavailable", "camera"), ("not_a_dossier", "camera")]:
        tally.record(outcome, source, day1)  # type: ignore[arg-type]
    tally.record("found", "camera", day1 + timedelta(minutes=2))  # the next day
    tally.close()
    reopened = LookupTally(tmp_path / "tally.sqlite")
    assert reopened.totals(date(2026, 11, 23)) == {"found": 2, "not_found": 1, "unavailable": 1,
                                                   "not_a_dossier": 1}
    assert reopened.totals(date(2026, 11, 24)) == {"found": 1, "not_found": 0, "unavailable": 0,
                                                   "not_a_dossier": 0}
    assert reopened.totals()["found"] == 3
    assert reopened.by_source(date(2026, 11, 23)) == {"camera": 3, "serial": 1, "keyboard": 1}
    with pytest.raises(ValueError):
        reopened.record("maybe", "camera")  # type: ignore[arg-type]
