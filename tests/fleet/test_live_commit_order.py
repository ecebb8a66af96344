"""The change log's ids in commit order: what a live page's stream relies on to never skip a change.

On PostgreSQL a sequence hands out ids when a row is inserted, not when its transaction commits: with
several writers (ingest workers, web processes) the transaction that took id N could commit after the
one that took N+1, and a stream polling in between moved its cursor past N for good."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from fleet.store import Scope, Store
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
    settings = WebSettings(live_max_s=0.6, live_poll_s=0.05)
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
