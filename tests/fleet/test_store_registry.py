"""Registry, the center and kiosk lists, and the scope rule, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from common.errors import ConflictError, NotFoundError, ValidationError
from fleet.store import Scope, Store
from tests.fleet.data import build

EVERYTHING = Scope.everything()


def test_registry_refuses_duplicates_bad_ids_and_unknown_parents(store: Store) -> None:
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    assert store.registry.ensure_province("hcm", "other name").name == "TP. Hồ Chí Minh"
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    with pytest.raises(ConflictError):
        store.registry.add_center("c1", "hcm", "again")
    with pytest.raises(NotFoundError):
        store.registry.add_center("c2", "nowhere", "Trung tâm 2")
    with pytest.raises(ValidationError):
        store.registry.add_center("C 1", "hcm", "bad id")
    with pytest.raises(ValidationError):
        store.registry.add_center("_center", "hcm", "reserved")
    store.registry.add_kiosk("k1", "c1", slot=0)
    with pytest.raises(ConflictError):
        store.registry.add_kiosk("k2", "c1", slot=0)  # slot taken
    with pytest.raises(NotFoundError):
        store.registry.add_kiosk("k3", "c9")
    kiosk = store.registry.kiosk(EVERYTHING, "k1")
    assert (kiosk.state, kiosk.slot, kiosk.last_seen) == ("unknown", 0, None)


def test_center_summaries_count_states_and_active_alarms(store: Store) -> None:
    f = build(store, users=False)
    by_id = {s.center.id: s for s in store.registry.center_summaries(EVERYTHING)}
    bt = by_id[f.center]
    assert (bt.kiosks, bt.online, bt.offline, bt.unknown, bt.active_alarms) == (3, 1, 1, 1, 2)
    assert bt.center.province_name == "TP. Hồ Chí Minh"
    tdm = by_id[f.other_center]
    assert (tdm.kiosks, tdm.online, tdm.offline, tdm.unknown, tdm.active_alarms) == (2, 2, 0, 0, 1)
    store.alarms.clear_alarm(f.kiosk, "printer")
    assert store.registry.center_summaries(EVERYTHING, [f.center])[0].active_alarms == 1


def test_kiosk_rows_page_filter_search_and_attach_devices_and_alarms(store: Store) -> None:
    f = build(store, users=False)
    page = store.registry.kiosk_rows(EVERYTHING, f.center, limit=2)
    assert [r.kiosk.id for r in page.items] == ["kiosk-bt-01", "kiosk-bt-02"]
    assert (page.total, page.pages, page.number) == (3, 2, 1)
    first = page.items[0]
    assert {d.device: d.state for d in first.devices} == {
        "card_reader": "ok",
        "printer": "paper_out",
        "scanner": "ok",
    }
    assert (first.active_alarms, first.worst_severity) == (1, "critical")
    second = store.registry.kiosk_rows(EVERYTHING, f.center, offset=2, limit=2)
    assert [r.kiosk.id for r in second.items] == ["kiosk-bt-03"] and second.number == 2
    offline = store.registry.kiosk_rows(EVERYTHING, f.center, state="offline")
    assert [r.kiosk.id for r in offline.items] == ["kiosk-bt-02"]
    assert [r.kiosk.id for r in store.registry.kiosk_rows(EVERYTHING, f.center, search="BT-03").items] == [
        "kiosk-bt-03"
    ]
    assert [r.kiosk.id for r in store.registry.kiosk_rows(EVERYTHING, f.center, search="máy 2").items] == [
        "kiosk-bt-02"
    ]
    everything = store.registry.kiosk_rows(EVERYTHING, f.center, limit=None)  # export: joins, no IN list
    assert [(r.kiosk.id, r.active_alarms, len(r.devices)) for r in everything.items] == [
        ("kiosk-bt-01", 1, 3),
        ("kiosk-bt-02", 1, 3),
        ("kiosk-bt-03", 0, 0),
    ]
    by_seen = store.registry.kiosk_rows(EVERYTHING, f.center, sort="last_seen")
    assert by_seen.items[-1].kiosk.id == "kiosk-bt-03"  # never seen: last
    with pytest.raises(ValidationError):
        store.registry.kiosk_rows(EVERYTHING, f.center, sort="payload")


def test_a_center_scope_never_reads_another_center(store: Store) -> None:
    f = build(store, users=False)
    mine = Scope.center(f.center)
    assert [c.id for c in store.registry.centers(mine)] == [f.center]
    assert [s.center.id for s in store.registry.center_summaries(mine)] == [f.center]
    with pytest.raises(NotFoundError):
        store.registry.center(mine, f.other_center)
    with pytest.raises(NotFoundError):
        store.registry.kiosk(mine, f.other_kiosk)
    with pytest.raises(NotFoundError):
        store.registry.kiosk_rows(mine, f.other_center)
    with pytest.raises(NotFoundError):
        store.registry.devices(mine, f.other_kiosk)
    with pytest.raises(NotFoundError):
        store.telemetry.status_history(mine, f.other_kiosk)
    assert store.registry.kiosk_rows_by_id(mine, [f.kiosk, f.other_kiosk, f.far_kiosk])[0].kiosk.id == f.kiosk
    assert len(store.registry.kiosk_rows_by_id(mine, [f.kiosk, f.other_kiosk, f.far_kiosk])) == 1
    assert {a.center_id for a in store.alarms.page(mine, active=None).items} == {f.center}
    assert [p.id for p in store.registry.provinces(mine)] == [f.province]


def test_a_province_scope_reads_its_centers_only(store: Store) -> None:
    f = build(store, users=False)
    hcm = Scope.province(f.province)
    assert {c.id for c in store.registry.centers(hcm)} == {f.center, f.other_center}
    store.registry.kiosk(hcm, f.other_kiosk)
    with pytest.raises(NotFoundError):
        store.registry.kiosk(hcm, f.far_kiosk)
    with pytest.raises(NotFoundError):
        store.registry.center(hcm, f.far_center)
    assert {a.center_id for a in store.alarms.page(hcm).items} == {f.center, f.other_center}
    assert [p.id for p in store.registry.provinces(hcm)] == [f.province]
    assert len(store.registry.provinces(EVERYTHING)) == 2


def test_scope_must_be_named() -> None:
    with pytest.raises(ValueError):
        Scope("center")
    with pytest.raises(ValueError):
        Scope("everything", "x")
