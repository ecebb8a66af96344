"""5 counters calling 1,000 tickets as fast as they can through ``main.py fleet serve`` (HTTP, the
counter app's JSON answers), once straight and once with the server SIGKILLed and started again in the
middle: no ticket is called twice and none is lost. The store is the one truth: sessions, counters'
tickets and the queue survive the restart; a call whose answer was lost is finished by the next one."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from fleet.queue.engine import Queue
from fleet.store import open_store
from tests.fleet.conftest import FakeClock
from tests.fleet.data import build
from tests.fleet.queue_data import CENTER, add_officers, issue, setup_center
from tests.fleet.server import login, running_server

TICKETS = 1000
COUNTERS = 5


def _seed(url: str) -> None:
    seeding = open_store(url, clock=FakeClock())
    build(seeding)
    seeding.close()
    store = open_store(url)
    queue = Queue(store)
    setup_center(queue)
    officers = add_officers(store, COUNTERS, prefix="ban")
    day = queue.today()
    for n in range(1, TICKETS + 1):
        service = "HOTICH" if n % 2 else "CHUNGTHUC"
        issue(store, f"{'A' if n % 2 else 'B'}{n:03d}", service, day=day, priority=n % 50 == 0)
    for i, person in enumerate(officers, start=1):
        queue.set_counter(CENTER, f"8{i}", f"Quầy 8{i}", ["HOTICH", "CHUNGTHUC"])
        queue.open_session(person, f"8{i}", ["HOTICH", "CHUNGTHUC"])
    store.close()


@pytest.mark.parametrize("restart", [False, True], ids=["straight", "restarted"])
def test_five_counters_call_a_thousand_tickets(tmp_path: Path, sqlite_template: Path, restart: bool) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "fleet.sqlite")
    url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    _seed(url)
    seen: list[str] = []
    lost_answers = [0]
    lock = threading.Lock()
    state = {"base": ""}
    stop = threading.Event()
    errors: list[str] = []

    def counter(index: int) -> None:
        with httpx.Client(base_url=state["base"], timeout=10) as client:
            login(client, f"ban{index:02d}.bt")
            csrf = client.get("/counter").text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            while not stop.is_set():
                client.base_url = httpx.URL(state["base"])
                try:
                    answer = client.post(
                        "/counter/next", data={"csrf": csrf}, headers={"Accept": "application/json"}
                    )
                except httpx.HTTPError:
                    with lock:
                        lost_answers[0] += 1  # the server went away: the call may or may not be in the store
                    time.sleep(0.2)
                    continue
                if answer.status_code != 200:
                    errors.append(f"{answer.status_code} {answer.text[:200]}")
                    return
                number = answer.json()["number"]
                if number is None:
                    return
                with lock:
                    seen.append(number)

    started = time.monotonic()
    with running_server(url, tmp_path, "queue-a") as server:
        state["base"] = server.base
        threads = [threading.Thread(target=counter, args=(i,)) for i in range(1, COUNTERS + 1)]
        for t in threads:
            t.start()
        if restart:
            while len(seen) < TICKETS * 0.4 and any(t.is_alive() for t in threads):
                time.sleep(0.01)
            server.process.send_signal(signal.SIGKILL)  # no goodbye: a power cut of the center's PC
            server.process.wait()
        else:
            for t in threads:
                t.join(300)
    if restart:
        with running_server(url, tmp_path, "queue-b") as second:
            state["base"] = second.base
            for t in threads:
                t.join(300)
    stop.set()
    elapsed = time.monotonic() - started
    assert errors == []
    counts = Counter(seen)
    assert counts and counts.most_common(1)[0][1] == 1, "a number was called twice"
    store = open_store(url)
    try:
        queue = Queue(store)
        tickets = queue.tickets(CENTER, queue.today())
        assert len(tickets) == TICKETS
        assert Counter(t.state for t in tickets) == {"done": TICKETS}  # every ticket called and finished
        calls = Counter(
            s.ticket_id for s in queue.steps_since(CENTER, 0, limit=100_000) if s.kind == "called"
        )
        assert len(calls) == TICKETS and set(calls.values()) == {1}  # each called exactly once
        # what the counters saw is the store's calls, less the answers the kill swallowed
        assert len(seen) >= TICKETS - lost_answers[0] * 1 - COUNTERS
        assert set(seen) <= {t.number for t in tickets}
    finally:
        store.close()
    print(
        f"\n{TICKETS} tickets by {COUNTERS} counters over HTTP, restart={restart}: {elapsed:.1f} s, "
        f"{len(seen)} answers seen, {lost_answers[0]} lost to the kill"
    )
