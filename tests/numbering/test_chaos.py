"""Partitions, crashes and midnight: no number is ever held twice, and every ticket still prints in time.

Each test runs 5 simulated kiosks (real paho sessions, the agent's relay on a real Unix socket) and the
allocator against a Mosquitto of its own, which it stops, or kills one side, mid-run.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contract.tickets import NumberPlan, center_zone
from fleet.allocator import Allocator, AllocatorBook
from kiosk.config import NumberingSection
from kiosk.numbering import CenterTicketSource, agent_ask
from tests.agent.broker import ROOT, Broker, Pki
from tests.numbering.conftest import (
    KIOSKS,
    SERVICES,
    Clock,
    SimKiosk,
    check_books,
    spawn_allocator,
    sync_all,
    wait_until,
)

pytestmark = pytest.mark.broker
ZONE = center_zone()
DEADLINE_S = 2.0  # the issue's promise: a ticket prints within 2 s whatever the network does


class Load:
    """Every kiosk issues tickets in its own thread until stopped; records each tap-to-number time."""

    def __init__(self, kiosks: list[SimKiosk], clock: Callable[[], datetime], pace_s: float) -> None:
        self.kiosks = kiosks
        self.clock = clock
        self.pace_s = pace_s
        self.stop = threading.Event()
        self.paused = threading.Event()  # set: the kiosks wait between tickets (nobody at the screen)
        self.latencies: list[tuple[float, str]] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(k, random.Random(i)), daemon=True)
            for i, k in enumerate(kiosks)
        ]

    def _run(self, kiosk: SimKiosk, rng: random.Random) -> None:
        try:
            while not self.stop.is_set():
                if self.paused.is_set():
                    self.stop.wait(0.02)
                    continue
                _day, number, elapsed = kiosk.issue(rng.choice(SERVICES), self.clock())
                with self._lock:
                    self.latencies.append((elapsed, number))
                self.stop.wait(self.pace_s * rng.uniform(0.5, 1.5))
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        assert not self.errors, self.errors

    def count(self) -> int:
        with self._lock:
            return len(self.latencies)

    def offline(self) -> int:
        with self._lock:
            return sum(1 for _e, n in self.latencies if int(n[1:]) >= 800)


def test_broker_stopped_mid_run_offline_blocks_then_reconciled(
    own_broker: Broker, kiosk_factory: Callable[..., SimKiosk], allocator_factory: Callable[..., Allocator]
) -> None:
    allocator = allocator_factory(own_broker)
    kiosks = [kiosk_factory(kid, slot, own_broker).start() for slot, kid in enumerate(KIOSKS)]
    with Load(kiosks, lambda: datetime.now(UTC), pace_s=0.05) as load:
        assert wait_until(lambda: load.count() >= 150, 30)
        own_broker.stop()
        time.sleep(1.5)
        assert wait_until(lambda: load.offline() >= 20, 10)
        # the hall goes quiet until every kiosk is back: at 20 tickets/s a kiosk uses up a service's
        # offline block (20 numbers) in seconds, and a slow reconnect on a busy machine then ran out
        # (NoNumberAvailableError, the designed answer, seen in a full run)
        load.paused.set()
        own_broker.start()
        assert wait_until(lambda: allocator.link.connected and all(k.link.connected for k in kiosks), 20)
        load.paused.clear()
        online_again = load.count()
        assert wait_until(lambda: load.count() >= online_again + 150, 30)
    sync_all(kiosks)
    day = datetime.now(UTC).astimezone(ZONE).date().isoformat()
    counts = check_books(kiosks, allocator.book, [day])
    worst = max(e for e, _n in load.latencies)
    print(f"{load.count()} tickets, {load.offline()} offline, worst {worst * 1000:.0f} ms, {counts}")
    assert worst < DEADLINE_S
    assert counts["offline_printed"] == load.offline() >= 20
    assert counts["online_printed"] == load.count() - load.offline()


def _run_kiosk_proc(
    db: Path, socket: Path, count: int, die_after: int = 0, slot: int = 0
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.numbering.kiosk_proc", "--db", str(db), "--socket", str(socket),
         "--kiosk", "kiosk-1", "--slot", str(slot), "--count", str(count),
         "--die-after-answer", str(die_after)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_kiosk_killed_mid_issue_reasks_with_the_same_id_and_never_reissues(
    broker: Broker, workdir: Path, kiosk_factory: Callable[..., SimKiosk],
    allocator_factory: Callable[..., Allocator],
) -> None:
    allocator = allocator_factory(broker)
    agent = kiosk_factory("kiosk-1", 0, broker).start()  # its relay serves the app process below
    socket, db = agent.directory / "agent.sock", workdir / "app-tickets.sqlite"
    # 1. Killed after the allocator answered its 5th number, before the kiosk stored it.
    first = _run_kiosk_proc(db, socket, count=10, die_after=5)
    out, err = first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL, err.decode()
    printed = out.decode().split()
    assert printed[1::2] == ["A001", "B001", "A002", "B002"]
    # 2. Restarted: it asks again with the stored request id, gets A003 back, voids it, carries on.
    second = _run_kiosk_proc(db, socket, count=4)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err.decode()
    assert out.decode().split()[1::2] == ["A004", "B003", "A005", "B004"]
    assert allocator.book.stats.retried == 1
    # 3. Killed from outside at a random moment of a fast run, then restarted to settle.
    third = _run_kiosk_proc(db, socket, count=400)
    time.sleep(random.uniform(0.3, 1.0))
    third.send_signal(signal.SIGKILL)
    third.communicate(timeout=60)
    source = CenterTicketSource(
        db, kiosk_id="kiosk-1", numbering=NumberingSection(mode="center", slot=0), ask=agent_ask(socket)
    )
    try:
        assert wait_until(lambda: source.sync_once(), 20, 0.1)
        day = datetime.now(UTC).astimezone(ZONE).date().isoformat()
        counts = check_books([("kiosk-1", source)], allocator.book, [day])
        voided = {t["number"]: t["reason"] for t in allocator.book.tickets(day) if t["status"] == "voided"}
        assert voided.get("A003") == "interrupted"
        assert set(voided.values()) <= {"interrupted"}
        assert counts["online_voided"] == len(voided) <= 2
    finally:
        source.close()


def test_numbers_restart_at_the_center_midnight_online_and_offline(
    broker: Broker, kiosk_factory: Callable[..., SimKiosk], allocator_factory: Callable[..., Allocator]
) -> None:
    # 23:59:58.5 in Hồ Chí Minh City; the clock runs on in real time from there.
    clock = Clock(datetime(2026, 11, 23, 16, 59, 58, 500000, tzinfo=UTC))
    allocator = allocator_factory(broker, clock)
    kiosks = [kiosk_factory(kid, slot, broker).start() for slot, kid in enumerate(KIOSKS)]
    with Load(kiosks, clock, pace_s=0.01) as load:
        assert wait_until(lambda: clock() > datetime(2026, 11, 23, 17, 0, 1, tzinfo=UTC), 10)
        assert load.count() > 50
    # Offline across the next midnight: the allocator is away, both days come from the blocks.
    allocator.stop()
    assert wait_until(lambda: all(k.relay.allocator_state == "offline" for k in kiosks))
    clock.set(datetime(2026, 11, 24, 16, 59, 59, 900000, tzinfo=UTC))
    before = [k.issue(SERVICES[0], clock()) for k in kiosks]
    clock.set(datetime(2026, 11, 24, 17, 0, 0, 100000, tzinfo=UTC))
    after = [k.issue(SERVICES[0], clock()) for k in kiosks]
    assert [(d, n) for d, n, _e in before] == [("2026-11-24", f"A{800 + 20 * s}") for s in range(5)]
    assert [(d, n) for d, n, _e in after] == [("2026-11-25", f"A{800 + 20 * s}") for s in range(5)]
    allocator = allocator_factory(broker, clock)
    sync_all(kiosks)
    days = ["2026-11-23", "2026-11-24", "2026-11-25"]
    counts = check_books(kiosks, allocator.book, days)
    first_of_day = {t["number"] for t in allocator.book.tickets("2026-11-24") if t["seq"] == 1}
    assert first_of_day, "nothing was issued after the first midnight"
    # the 10 above, and any the load's kiosks took from their blocks (800 on) when an answer was late
    # under a loaded machine (the relay's 800 ms: "allocator not reached")
    late = [number for _elapsed, number in load.latencies if int(number[1:]) >= 800]
    assert counts["offline_printed"] == 10 + len(late)
    assert sum(len(allocator.book.tickets(d)) for d in days) == load.count() + 10


def test_allocator_killed_and_restarted_keeps_its_book(
    own_broker: Broker, pki: Pki, workdir: Path, kiosk_factory: Callable[..., SimKiosk]
) -> None:
    db = workdir / "center.sqlite"
    log = workdir / "allocator.log"
    process = spawn_allocator(own_broker, pki, db, log)
    try:
        kiosks = [kiosk_factory(kid, slot, own_broker) for slot, kid in enumerate(KIOSKS)]
        for kiosk in kiosks:
            kiosk.start(wait=False)
        ready = wait_until(lambda: all(k.relay.allocator_state == "online" for k in kiosks), 20)
        assert ready, log.read_text()
        with Load(kiosks, lambda: datetime.now(UTC), pace_s=0.05) as load:
            assert wait_until(lambda: load.count() >= 100, 30)
            process.send_signal(signal.SIGKILL)  # no clean stop: the broker publishes its Will
            process.wait(10)
            assert wait_until(lambda: load.offline() >= 10, 10)
            process = spawn_allocator(own_broker, pki, db, log)
            assert wait_until(lambda: all(k.relay.allocator_state == "online" for k in kiosks), 20)
            resumed = load.count()
            assert wait_until(lambda: load.count() >= resumed + 100, 30)
        sync_all(kiosks)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
    book = AllocatorBook(db, NumberPlan(), ZONE)
    try:
        day = datetime.now(UTC).astimezone(ZONE).date().isoformat()
        counts = check_books(kiosks, book, [day])
        assert counts["offline_printed"] == load.offline() >= 10
        assert max(e for e, _n in load.latencies) < DEADLINE_S
        assert book.conflicts() == []
    finally:
        book.close()
