"""Property test of the uniqueness argument (docs/numbering.md): many kiosks, the real allocator book
and the real kiosk stores, joined by a lossy channel that drops requests or answers, restarts kiosks
mid-issue and moves the clock over midnight, in orders chosen by Hypothesis.

The channel stands in for agent + broker only (they are tested for real in test_online/test_chaos);
everything that decides a number is the production code.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import NetworkError
from contract.tickets import NumberPlan, center_zone
from fleet.allocator import AllocatorBook
from kiosk.config import NumberingSection
from kiosk.numbering import CenterTicketSource
from kiosk.ticketing import TicketingError
from tests.numbering.conftest import SERVICES, check_books

PLAN = NumberPlan(60, 6)  # small ranges, so exhaustion and block use-up happen too
START = datetime(2026, 11, 23, 16, 59, 0, tzinfo=UTC)  # 23:59 in Hồ Chí Minh City


class Channel:
    """agent + broker + allocator service, reduced to what can go wrong: a lost request, a lost answer."""

    def __init__(self, book: AllocatorBook, kiosk: str) -> None:
        self.book, self.kiosk = book, kiosk
        self.clock = START
        self.fate = "ok"  # ok | drop_request | drop_answer | down

    def __call__(self, cmd: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        fate, self.fate = self.fate, "ok"
        if fate in ("down", "drop_request"):
            raise NetworkError("no answer")
        payload = json.dumps(args["request"]).encode()
        handle = self.book.handle
        answer = self.book.transaction(lambda: [handle(self.kiosk, payload, self.clock).to_data()])[0]
        if fate == "drop_answer":
            raise NetworkError("answer lost")
        return answer


class World:
    def __init__(self, directory: Path, kiosks: int) -> None:
        self.directory = directory
        self.book = AllocatorBook(directory / "book.sqlite", PLAN, center_zone())
        self.clock = START
        self.channels = [Channel(self.book, f"kiosk-{i}") for i in range(kiosks)]
        self.sources = [self._open(i) for i in range(kiosks)]

    def _open(self, i: int) -> CenterTicketSource:
        numbering = NumberingSection(mode="center", slot=i, offline_base=PLAN.offline_base,
                                     offline_block=PLAN.offline_block)
        return CenterTicketSource(self.directory / f"k{i}.sqlite", kiosk_id=f"kiosk-{i}",
                                  numbering=numbering, ask=self.channels[i])

    def step(self, op: str, kiosk: int, service: int, fate: str) -> None:
        source, channel = self.sources[kiosk], self.channels[kiosk]
        channel.clock = self.clock
        channel.fate = fate
        if op == "issue":
            try:
                allocated = source.allocate(SERVICES[service], service == 3, self.clock)
            except TicketingError:
                return  # exhausted / block used up: refused, nothing printed
            source.confirm(allocated)
        elif op == "print_fails":
            try:
                allocated = source.allocate(SERVICES[service], False, self.clock)
            except TicketingError:
                return
            source.void(allocated, "PrinterPaperOutError")
        elif op == "crash_mid_issue":
            # The request is stored, the allocator may answer, the kiosk dies before storing it.
            crash = _Crash()
            real, source.ask = source.ask, crash.wrap(source.ask)
            with contextlib.suppress(_Crash):
                source.allocate(SERVICES[service], False, self.clock)
            source.ask = real
            source._db.close()  # no clean close: the process is gone
            self.sources[kiosk] = self._open(kiosk)
        elif op == "sync":
            source.sync_once()
        elif op == "tick":
            channel.fate = "ok"
            self.clock += timedelta(seconds=20 * (service + 1))

    def settle(self) -> None:
        for channel in self.channels:
            channel.clock = self.clock
            channel.fate = "ok"  # the center is back for good
        for source in self.sources:
            assert source.sync_once(), source.tickets()


class _Crash(BaseException):
    def wrap(self, ask: Any) -> Any:
        def crashing(cmd: str, args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
            with contextlib.suppress(NetworkError):
                ask(cmd, args, timeout_s)
            raise self

        return crashing


steps = st.lists(
    st.tuples(
        st.sampled_from(["issue"] * 6 + ["print_fails", "crash_mid_issue", "sync", "tick"]),
        st.integers(0, 2),
        st.integers(0, 3),
        st.sampled_from(["ok"] * 5 + ["drop_request", "drop_answer", "down"]),
    ),
    min_size=5,
    max_size=120,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_no_number_twice_whatever_fails_and_in_whatever_order(
    script: list[tuple[str, int, int, str]],
) -> None:
    with tempfile.TemporaryDirectory(prefix="nbprop-") as tmp:
        world = World(Path(tmp), 3)
        try:
            for op, kiosk, service, fate in script:
                world.step(op, kiosk, service, fate)
            world.settle()
            days = sorted({t["day"] for s in world.sources for t in s.tickets() if t["number"]})
            pairs = [(f"kiosk-{i}", s) for i, s in enumerate(world.sources)]
            check_books(pairs, world.book, days or [START.date().isoformat()])
            assert world.book.conflicts() == []
        finally:
            for source in world.sources:
                source.close()
            world.book.close()
