"""The journal as the durable outbox: privacy guard, batching, size bound, corruption, replay marks."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from common.journal import EventJournal, PrivacyError
from contract.errors import ContractError
from contract.events import MAX_PAYLOAD_BYTES, CardRead, DeviceFault, EventPayload, UnknownPayload
from tests.events import number_of, numbered


@dataclasses.dataclass(frozen=True)
class LeakyCardRead(EventPayload):
    """What a careless new payload type could carry: the journal's own guard must refuse it."""

    KIND: ClassVar[str] = "card_read"
    result: str = "ok"
    card: dict[str, Any] = dataclasses.field(default_factory=dict)
    items: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def test_personal_data_is_refused_anywhere_in_the_payload(tmp_path):
    journal = EventJournal(tmp_path / "e.sqlite")
    with pytest.raises(PrivacyError, match=r"payload.card.full_name"):
        journal.append(LeakyCardRead(card={"full_name": "Nguyễn Văn An"}))
    with pytest.raises(PrivacyError, match=r"payload.items\[1\].id_number"):
        journal.append(LeakyCardRead(items=[{}, {"id_number": "079203001234"}]))
    journal.append(CardRead("ok", duration_ms=812))
    assert [e.kind for e in journal.pending()] == ["card_read"]


def test_oversized_payload_and_unknown_kind_are_refused(tmp_path):
    journal = EventJournal(tmp_path / "e.sqlite")
    with pytest.raises(ContractError, match="larger than"):
        journal.append(LeakyCardRead(card={"trace": "x" * MAX_PAYLOAD_BYTES}))
    with pytest.raises(ValueError, match="unknown event kind"):
        journal.append(UnknownPayload("citizen_profile", {}))
    assert journal.count() == 0


def test_append_many_is_one_transaction(tmp_path):
    journal = EventJournal(tmp_path / "e.sqlite")
    with pytest.raises(PrivacyError):
        journal.append_many([DeviceFault("printer", "paper_out"), LeakyCardRead(card={"phone": "0901234"})])
    assert journal.count() == 0
    events = journal.append_many([numbered("lookup", n) for n in range(5)])
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert len({e.event_id for e in events}) == 5


def test_seq_is_never_reused_after_delete(tmp_path):
    journal = EventJournal(tmp_path / "e.sqlite")
    first = journal.append(numbered("lookup", 0))
    journal.delete([first.seq])
    assert journal.append(numbered("lookup", 0)).seq == first.seq + 1


def test_bounded_drop_oldest_with_a_visible_marker(tmp_path):
    journal = EventJournal(tmp_path / "e.sqlite", max_events=100)
    for n in range(250):
        journal.append(numbered("ticket_issued", n))
    stats = journal.stats()
    assert stats.pending <= 100
    events = journal.pending(limit=1000)
    markers = [e for e in events if e.kind == "outbox_dropped"]
    assert markers, "the drop must be visible upstream"
    # markers still pending; earlier markers may themselves have been dropped later
    assert stats.dropped_total >= 150
    assert sum(m.payload["count"] for m in markers) <= stats.dropped_total
    for marker in markers:
        assert marker.payload["last_seq"] - marker.payload["first_seq"] + 1 >= marker.payload["count"]
    tickets = [number_of("ticket_issued", e.payload) for e in events if e.kind == "ticket_issued"]
    assert tickets == sorted(tickets) and tickets[-1] == 249  # the newest are kept, in order
    assert stats.newest_seq == events[-1].seq


def test_the_bound_set_by_the_agent_applies_to_the_apps_appends(tmp_path):
    app = EventJournal(tmp_path / "e.sqlite")
    assert app.max_events == 200_000
    EventJournal(tmp_path / "e.sqlite", max_events=100, durable=False)  # the agent opens it
    for n in range(150):
        app.append(numbered("lookup", n))
    assert app.max_events == 100 and app.count() <= 100
    assert app.stats().dropped_total >= 50


def test_corrupted_file_is_moved_aside_and_reported(tmp_path):
    path = tmp_path / "events.sqlite"
    journal = EventJournal(path)
    journal.append(numbered("lookup", 0))
    journal.close()
    with path.open("r+b") as handle:  # scribble over the header and the first page
        handle.write(b"\x00garbage" * 512)
    journal = EventJournal(path)
    assert journal.recovered is not None
    moved, _error = journal.recovered
    assert moved.exists() and moved.name.startswith("events.sqlite.corrupt-")
    (event,) = journal.pending()
    assert event.kind == "journal_recovered" and event.payload["moved_to"] == moved.name
    assert journal.append(numbered("lookup", 0)).seq == 2


def test_a_process_follows_the_file_another_process_recovered(tmp_path):
    path = tmp_path / "events.sqlite"
    app = EventJournal(path)
    agent = EventJournal(path, durable=False)
    old_id = app.journal_id
    app.append(numbered("lookup", 1))
    agent.recover("database disk image is malformed (simulated)")
    assert agent.journal_id != old_id
    after = app.append(numbered("lookup", 2))  # the app notices the new inode and writes to the new file
    assert app.journal_id == agent.journal_id
    kinds = [(e.kind, e.payload.get("latency_ms")) for e in agent.pending()]
    assert kinds == [("journal_recovered", None), ("lookup", 2.0)]
    assert after.seq == 2


def test_attempts_mark_replays(tmp_path):
    journal = EventJournal(tmp_path / "e.sqlite")
    a, b = journal.append(numbered("lookup", 0)), journal.append(numbered("lookup", 0))
    journal.mark_attempted(a.seq, a.seq)
    assert [e.attempts for e in journal.pending()] == [1, 0]
    assert [r[5] for r in journal.pending_rows()] == [1, 0]
    del b


def test_journal_of_the_first_skeleton_is_migrated(tmp_path):
    path = tmp_path / "e.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,"
        " kind TEXT NOT NULL, occurred_at TEXT NOT NULL, payload TEXT NOT NULL);"
        "INSERT INTO events (event_id, kind, occurred_at, payload) VALUES ('e1', 'lookup', 't', '{}');"
    )
    db.commit()
    db.close()
    journal = EventJournal(path)
    assert [(e.event_id, e.attempts) for e in journal.pending()] == [("e1", 0)]


def test_two_processes_append_concurrently_without_losing_or_reusing_seq(tmp_path):
    path = tmp_path / "e.sqlite"
    EventJournal(path).close()
    code = (
        "import sys; from pathlib import Path; from common.journal import EventJournal\n"
        "from tests.events import numbered\n"
        "j = EventJournal(Path(sys.argv[1]))\n"
        "for i in range(200): j.append(numbered('card_read', int(sys.argv[2]) * 1000 + i))\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(p)], env=env) for p in range(3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    events = EventJournal(path).pending(limit=10_000)
    assert len(events) == 600 and [e.seq for e in events] == list(range(1, 601))
