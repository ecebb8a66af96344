"""Fixtures for queue numbering: a real Mosquitto (tests/agent's Broker and Pki, the shipped config and
ACL), the allocator in-process or as its own process, and simulated kiosks: each one a real paho session
with its own certificate, the agent's relay on a real Unix socket, and a ``CenterTicketSource``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from common.mqtt import Backoff, MqttLink, Will
from contract.tickets import NumberPlan
from contract.topics import KioskTopics
from edge_agent.config import TlsConfig
from edge_agent.tickets import TicketRelay, wait_for
from fleet.allocator import Allocator, AllocatorSettings, Limits
from kiosk.config import NumberingSection, ServiceArea
from kiosk.numbering import CenterTicketSource, agent_ask
from tests.agent.broker import ROOT, Broker, Pki, running_broker, temporary_pki
from tests.agent.conftest import exception_guard, wait_until

__all__ = ["exception_guard", "wait_until"]

CENTER = "hcm-ben-thanh"
ROOT_TOPIC = "motcua/v1"
SERVICES = [
    ServiceArea("HOTICH", "A", "Hộ tịch", "Civil status", ["1", "2"]),
    ServiceArea("CHUNGTHUC", "B", "Chứng thực", "Certification", ["3"]),
    ServiceArea("DATDAI", "C", "Đất đai", "Land", ["4"]),
    ServiceArea("KINHDOANH", "D", "Đăng ký kinh doanh", "Business registration", ["5"]),
]
KIOSKS = tuple(f"kiosk-{i}" for i in range(1, 6))
#: limits for tests that issue hundreds of numbers a second (the defaults are for people)
FAST = Limits(burst=100_000, rate_per_s=100_000.0)


class Clock:
    """An injectable wall clock shared by the allocator and the simulated kiosks (midnight tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._offset = 0.0 if start is None else (start - datetime.now(UTC)).total_seconds()
        self._lock = threading.Lock()

    def set(self, when: datetime) -> None:
        with self._lock:
            self._offset = (when - datetime.now(UTC)).total_seconds()

    def __call__(self) -> datetime:
        from datetime import timedelta

        with self._lock:
            return datetime.now(UTC) + timedelta(seconds=self._offset)


@pytest.fixture(scope="session")
def pki() -> Iterator[Pki]:
    with temporary_pki((*KIOSKS, "allocator", "fleet"), "nbpki-") as made:
        yield made


@pytest.fixture(scope="session")
def broker(pki: Pki) -> Iterator[Broker]:
    with running_broker(pki, "nbbrk-") as instance:
        yield instance


@pytest.fixture
def own_broker(pki: Pki) -> Iterator[Broker]:
    """A broker this test may stop and restart."""
    with running_broker(pki, "nbbrk-") as instance:
        yield instance


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Short path: Unix sockets live here (108-byte limit).
    directory = Path(tempfile.mkdtemp(prefix="nb-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def allocator_settings(broker: Broker, pki: Pki, db: Path, **overrides: Any) -> AllocatorSettings:
    identity = pki.client("allocator")
    values: dict[str, Any] = {
        "center_id": CENTER,
        "db_path": db,
        "host": "127.0.0.1",
        "port": broker.service_port,
        "ca_file": pki.ca.cert_file,
        "cert_file": identity.cert_file,
        "key_file": identity.key_file,
        "plan": NumberPlan(800, 20),
        # these tests drive kiosks far faster than citizens can tap: the rate limit has its own tests
        "limits": FAST,
    }
    values.update(overrides)
    return AllocatorSettings(**values)


class SimKiosk:
    """One kiosk as the center sees it: its agent's MQTT session + relay, and the app's ticket source."""

    def __init__(
        self,
        kiosk_id: str,
        slot: int,
        broker: Broker,
        pki: Pki,
        directory: Path,
        *,
        budget_ms: int = 800,
        sync_interval_s: float = 0.2,
        protocol: Literal["5", "3.1.1"] = "5",
    ) -> None:
        identity = pki.client(kiosk_id)
        self.kiosk_id = kiosk_id
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        topics = KioskTopics(CENTER, kiosk_id, ROOT_TOPIC)
        self.link = MqttLink(
            client_id=kiosk_id,
            host="127.0.0.1",
            port=broker.kiosk_port,
            tls=TlsConfig(pki.ca.cert_file, identity.cert_file, identity.key_file),
            protocol=protocol,
            backoff=Backoff(0.1, 0.3),
            will=lambda: Will(f"{ROOT_TOPIC}/{CENTER}/{kiosk_id}/status", b'{"state":"offline"}'),
        )
        self.relay = TicketRelay(self.link, topics, directory)
        self.numbering = NumberingSection(
            mode="center", slot=slot, online_budget_ms=budget_ms, offline_base=800, offline_block=20,
            sync_interval_s=sync_interval_s,
        )
        self.source = CenterTicketSource(
            directory / "tickets.sqlite",
            kiosk_id=kiosk_id,
            numbering=self.numbering,
            ask=agent_ask(directory / "agent.sock"),
        )

    def start(self, wait: bool = True) -> SimKiosk:
        self.relay.start()
        self.link.start()
        self.source.start()
        if wait:
            assert wait_for(self.relay, 10), f"{self.kiosk_id}: relay not ready ({self.link.last_error})"
        return self

    def issue(self, service: ServiceArea, now: datetime, priority: bool = False) -> tuple[str, str, float]:
        """Take a number and 'print' it: (day, number, seconds from tap to number)."""
        started = time.monotonic()
        allocated = self.source.allocate(service, priority, now)
        elapsed = time.monotonic() - started
        self.source.confirm(allocated)
        return allocated.day, allocated.number, elapsed

    def stop(self) -> None:
        self.source.close()
        self.relay.stop()
        self.link.stop()


@pytest.fixture
def kiosk_factory(pki: Pki, workdir: Path) -> Iterator[Callable[..., SimKiosk]]:
    made: list[SimKiosk] = []

    def make(kiosk_id: str, slot: int, broker: Broker, **kwargs: Any) -> SimKiosk:
        kiosk = SimKiosk(kiosk_id, slot, broker, pki, workdir / kiosk_id, **kwargs)
        made.append(kiosk)
        return kiosk

    yield make
    for kiosk in made:
        kiosk.stop()


@pytest.fixture
def allocator_factory(pki: Pki, workdir: Path) -> Iterator[Callable[..., Allocator]]:
    made: list[Allocator] = []

    def make(broker: Broker, clock: Callable[[], datetime] | None = None, **overrides: Any) -> Allocator:
        settings = allocator_settings(broker, pki, workdir / "allocator.sqlite", **overrides)
        allocator = Allocator(settings, clock)
        allocator.start()
        assert allocator.wait_connected(10), allocator.link.last_error
        made.append(allocator)
        return allocator

    yield make
    for allocator in made:
        if allocator._thread is not None and allocator._thread.is_alive():
            allocator.stop()


def spawn_allocator(broker: Broker, pki: Pki, db: Path, log_file: Path) -> subprocess.Popen[bytes]:
    """``python main.py fleet allocator`` as its own process, so a test can SIGKILL it."""
    identity = pki.client("allocator")
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable, "main.py", "fleet", "allocator", "--center", CENTER, "--db", str(db),
                "--broker", f"127.0.0.1:{broker.service_port}", "--ca", str(pki.ca.cert_file),
                "--cert", str(identity.cert_file), "--key", str(identity.key_file), "--no-registry",
                "--rate", "1000", "--burst", "1000",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def sync_all(kiosks: list[SimKiosk], timeout: float = 30.0) -> None:
    """Until every kiosk has told the allocator everything (reconcile)."""
    for kiosk in kiosks:
        kiosk.source.wake()
    assert wait_until(lambda: all(k.source.pending_reports() == 0 for k in kiosks), timeout, 0.05), {
        k.kiosk_id: k.source.pending_reports() for k in kiosks
    }


def check_books(kiosks: list[Any], book: Any, days: list[str]) -> dict[str, int]:
    """The invariants of docs/numbering.md, on both sides; returns counts by source and status.

    ``kiosks``: SimKiosks or (kiosk id, CenterTicketSource) pairs.
    - no (day, number) is held by two tickets, on any kiosk or in the allocator's book;
    - the allocator's online numbers of each service and day are 1..N without a hole;
    - after reconcile both sides agree on every ticket's number and status, and none is left open; the
      only numbers the kiosks do not know are online answers that came too late and were superseded by
      an offline number (voided in the book with that reason).
    """
    kiosk_side: dict[tuple[str, str], tuple[str, str, str]] = {}
    for entry in kiosks:
        kiosk_id, source = (entry.kiosk_id, entry.source) if isinstance(entry, SimKiosk) else entry
        for t in source.tickets():
            if t["number"] is None:
                continue
            key = (t["day"], t["number"])
            assert key not in kiosk_side, f"duplicate {key}: {kiosk_side[key]} and {kiosk_id}"
            kiosk_side[key] = (kiosk_id, t["status"], t["source"])
    book_side: dict[tuple[str, str], tuple[str, str, str]] = {}
    counts: dict[str, int] = {}
    for day in days:
        by_service: dict[str, list[int]] = {}
        for t in book.tickets(day):
            key = (t["day"], t["number"])
            assert key not in book_side, f"duplicate in the allocator's book: {key}"
            if key not in kiosk_side:
                assert (t["status"], t["reason"]) == ("voided", "superseded_by_offline"), t
                counts["superseded"] = counts.get("superseded", 0) + 1
            else:
                book_side[key] = (t["kiosk"], t["status"], t["source"])
            counts[f"{t['source']}_{t['status']}"] = counts.get(f"{t['source']}_{t['status']}", 0) + 1
            if t["source"] == "online":
                by_service.setdefault(t["service"], []).append(t["seq"])
        for service, seqs in by_service.items():
            assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"gap in {service} on {day}"
    assert book_side == {k: v for k, v in kiosk_side.items() if k[0] in days}
    assert counts.get("online_allocated", 0) == counts.get("offline_allocated", 0) == 0
    return counts
