"""The change log's ids in commit order: what a live page's stream relies on to never skip a change.

On PostgreSQL a sequence hands out ids when a row is inserted, not when its transaction commits: with
several writers (ingest workers, web processes) the transaction that took id N could commit after the
one that took N+1, and a stream polling in between moved its cursor past N for good."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from fleet.store import Scope, Store
from fleet.store.changes import Gaps
from tests.fleet.data import build

ALL = Scope.everything()


@pytest.fixture
def pg_fleet(pg_store: Store) -> Store:
    build(pg_store)
    return pg_store


def test_a_change_committed_after_a_newer_one_still_reaches_the_stream(
    pg_fleet: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ingest batch logs kiosk-bt-01's alarm and is still open; a web process logs kiosk-bt-03's and
    commits; the center page's stream polls (it sees kiosk-bt-03's change); then the batch commits.
    kiosk-bt-01's row must be sent too. (SQLite cannot show this: its writers take turns.)"""
    from fleet.web.core import WebSettings
    from tests.fleet.server import payload, sse_events
    from tests.fleet.web import browser

    store = pg_fleet
    start = store.changes.latest_id()
    logged, commit = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def slow_batch() -> None:  # a worker's batch: its change is logged early, committed late
        try:
            with store.db.batch():
                store.alarms.raise_alarm("kiosk-bt-01", "app_down", "major")
                logged.set()
                assert commit.wait(10)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
            logged.set()

    batch = threading.Thread(target=slow_batch)
    batch.start()
    assert logged.wait(10) and not failures
    store.alarms.raise_alarm("kiosk-bt-03", "app_down", "major")  # another process, committed first

    original = store.changes.since
    polls: list[list[str | None]] = []

    def since(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        polls.append([c.kiosk_id for c in found[0]])
        if found[0] and not commit.is_set():  # the stream has seen the newer change: now the batch commits
            commit.set()
            batch.join(10)
        return found

    monkeypatch.setattr(store.changes, "since", since)
    # the stream's life: long enough for a poll after the batch's commit on a loaded machine (0.6 s
    # was not, in a CI run: one poll only, the batch's commit and join took the rest)
    settings = WebSettings(live_max_s=2.0, live_poll_s=0.05)
    with browser(store, "quanly.bt", settings=settings) as manager:
        response = manager.client.get(f"/live?view=center&center=hcm-ben-thanh&from={start}")
    commit.set()
    batch.join(10)
    assert not failures, failures
    assert polls and polls[0] == ["kiosk-bt-03"], polls  # the stream polled between the two commits
    targets = [payload(e).get("target") for e in sse_events(iter(response.text.splitlines()))]
    assert "kiosk-row:kiosk-bt-03" in targets
    assert "kiosk-row:kiosk-bt-01" in targets, (targets, polls)


def test_a_change_undone_with_its_savepoint_or_batch_is_not_logged(store: Store) -> None:
    """A store call that fails inside a batch undoes its change-log row with its savepoint; a batch that
    fails leaves none for the next transaction (its pooled connection) to log."""
    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    store.registry.add_kiosk("k1", "c1")
    store.registry.add_kiosk("k2", "c1")
    start = store.changes.latest_id()

    class Undo(Exception):
        pass

    with store.db.batch():
        store.alarms.raise_alarm("k1", "app_down", "major")
        with pytest.raises(Undo), store.db.write():  # a savepoint of the batch
            store.alarms.raise_alarm("k2", "app_down", "major")
            raise Undo
    logged, _ = store.changes.since(ALL, start)
    assert [(c.kiosk_id, c.topic) for c in logged] == [("k1", "alarm")]
    after_batch = store.changes.latest_id()
    with pytest.raises(Undo), store.db.batch():
        store.alarms.raise_alarm("k2", "printer", "minor")
        raise Undo
    assert store.alarms.active_for_kiosk("k2") == []
    store.alarms.clear_alarm("k1", "app_down")
    logged, _ = store.changes.since(ALL, after_batch)
    assert [(c.kiosk_id, c.topic) for c in logged] == [("k1", "alarm")]  # the clear only


def test_a_page_drawn_while_a_change_is_uncommitted_streams_from_below_it(pg_fleet: Store) -> None:
    """The id a page streams from (``stream_start``, read before its rows) stays below a change whose
    transaction took its id and has not committed yet, so the stream sends it once it is there."""
    store = pg_fleet
    logged, commit = threading.Event(), threading.Event()

    def slow_batch() -> None:
        with store.db.batch():
            store.alarms.raise_alarm("kiosk-bt-01", "app_down", "major")
            logged.set()
            commit.wait(10)

    batch = threading.Thread(target=slow_batch)
    batch.start()
    try:
        assert logged.wait(10)
        store.alarms.raise_alarm("kiosk-bt-03", "app_down", "major")  # committed first, a higher id
        start = store.changes.stream_start()
        assert start < store.changes.latest_id()  # below the id the open batch holds
    finally:
        commit.set()
        batch.join(10)
    found, _ = store.changes.since(ALL, start, gaps=Gaps())
    assert {c.kiosk_id for c in found} == {"kiosk-bt-01", "kiosk-bt-03"}


def test_a_follower_waits_at_a_missing_id_hands_out_what_is_above_once_and_moves_on_after_the_wait() -> None:
    gaps = Gaps(wait_s=10.0)
    # ids 1-3 there, 4 missing (a transaction still open), 5-6 there
    assert gaps.advance(0, {1, 2, 3, 5, 6}, 6, now=100.0) == 3
    assert gaps.missing == {4: 100.0}
    assert gaps.advance(3, {5, 6}, 6, now=105.0) == 3  # still worth waiting for
    assert gaps.advance(3, {4, 5, 6}, 6, now=106.0) == 6  # it came: past it and what is above
    assert gaps.missing == {}
    # two ids missing at once wait side by side, not one after the other
    assert gaps.advance(6, {8, 10}, 10, now=200.0) == 6
    assert gaps.missing == {7: 200.0, 9: 200.0}
    assert gaps.advance(6, {8, 10}, 10, now=210.0) == 10  # both rolled back: moved past them together
    assert gaps.missing == {} and gaps.sent == set()


def test_a_stream_sends_what_is_above_a_missing_id_once(store: Store) -> None:
    """What a follower found above a missing id is handed out once, not again at each poll while it
    waits; the cursor stays below the missing id until the wait is over."""
    from sqlalchemy import delete

    from fleet.store.schema import changes

    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    store.registry.add_kiosk("k1", "c1")
    start = store.changes.latest_id()
    for alarm in ("app_down", "reader_missing", "scanner_missing"):
        store.alarms.raise_alarm("k1", alarm, "major")
    logged, _ = store.changes.since(ALL, start)
    first, hole, last = (c.id for c in logged)
    with store.db.write() as conn:  # the id of a transaction rolled back (or not committed yet)
        conn.execute(delete(changes).where(changes.c.id == hole))
    gaps = Gaps(wait_s=3600.0)
    found, cursor = store.changes.since(ALL, start, gaps=gaps)
    assert [c.id for c in found] == [first, last] and cursor == first
    found, cursor = store.changes.since(ALL, cursor, gaps=gaps)
    assert found == [] and cursor == first  # waiting, and nothing sent twice
    gaps.wait_s = 0.0  # the wait is over
    found, cursor = store.changes.since(ALL, cursor, gaps=gaps)
    assert found == [] and cursor == last


def test_a_stream_resuming_below_the_pruned_ids_does_not_wait_for_them(store: Store) -> None:
    """Ids below the oldest row were pruned (a day old), not in flight: a browser back with yesterday's
    Last-Event-ID gets today's changes at once, and a page's start is not held below them."""
    from sqlalchemy import delete

    from fleet.store.schema import changes

    store.registry.ensure_province("hcm", "TP. Hồ Chí Minh")
    store.registry.add_center("c1", "hcm", "Trung tâm 1")
    store.registry.add_kiosk("k1", "c1")
    before = store.changes.latest_id()
    for alarm in ("app_down", "reader_missing"):
        store.alarms.raise_alarm("k1", alarm, "major")
    logged, _ = store.changes.since(ALL, before)
    with store.db.write() as conn:  # the retention's prune of everything older
        conn.execute(delete(changes).where(changes.c.id < logged[0].id))
    found, cursor = store.changes.since(ALL, 0, gaps=Gaps(wait_s=3600.0))
    assert [c.id for c in found] == [c.id for c in logged] and cursor == logged[-1].id
    assert store.changes.stream_start() == logged[-1].id
