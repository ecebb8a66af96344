"""Fuzz target of the allocator's request path (docs/fuzzing.md): what a kiosk's certificate can put
on its ``ticket/req``, or a counter on ``_center/queue/called``, through the worker's own per-message
code (``Allocator._one`` inside the book's savepoint), on a real book with the guards on (catalog,
quota, registry).

A finding is anything escaping, and also an exception that the savepoint caught (the service would
survive it, answering ``bad_request``, but it is a bug), an answer that does not parse back as a
``ticket-response/1``, or a number that breaks the plan. The first input byte picks the kiosk (and so
whether it is enrolled and on which slot) and whether the rest is a request or a counter's call.

``python -m fuzz.allocator --write-seeds`` rewrites ``fuzz/corpus/allocator.request``.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from contract.config import ConfigPush, PushedConfig, ServiceArea
from contract.enrollment import EnrolledKiosk, EnrolledKiosks
from contract.tickets import NumberPlan, ReportItem, TicketRequest, TicketResponse
from fleet.allocator import Allocator, AllocatorSettings, Limits
from fleet.allocator.service import _Incoming, _Reply

CENTER = "hcm-ben-thanh"
#: kiosk-0 and kiosk-1 are enrolled (slots 0 and 1), kiosk-2 is not
KIOSKS = ("kiosk-0", "kiosk-1", "kiosk-2")
NOW = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
PLAN = NumberPlan(800, 20)


@cache
def _allocator() -> Allocator:
    """One allocator (never connected) on a book in a temporary folder, fsync off: the fuzzer runs
    thousands of transactions a second and the durability of a fuzz book does not matter."""
    folder = Path(tempfile.mkdtemp(prefix="fuzz-alloc-"))
    registry = folder / "enrolled-kiosks.json"
    entries = {KIOSKS[0]: EnrolledKiosk(0), KIOSKS[1]: EnrolledKiosk(1)}
    registry.write_bytes(EnrolledKiosks(CENTER, 1, entries).to_bytes())
    settings = AllocatorSettings(
        CENTER, folder / "book.sqlite", plan=PLAN, registry_file=registry,
        limits=Limits(kiosk_quota=50, burst=1_000_000_000, rate_per_s=1e9),
    )
    allocator = Allocator(settings, clock=lambda: NOW)
    allocator.book._db.execute("PRAGMA synchronous=OFF")  # a fuzz book only
    services = [ServiceArea("HOTICH", "A", "Hộ tịch", "Civil"), ServiceArea("DATDAI", "C", "Đất đai", "Land")]
    allocator.catalog.on_push(ConfigPush(1, PushedConfig(services=services)).to_payload())
    logging.getLogger("fleet.allocator").setLevel(logging.CRITICAL)  # refusals log; millions would slow it
    return allocator


def request(data: bytes) -> None:
    if not data:
        return
    allocator = _allocator()
    kiosk = KIOSKS[data[0] % len(KIOSKS)]
    called = data[0] & 0x80
    topic = allocator.topics.queue_called if called else allocator.topics.kiosk(kiosk).ticket_req
    message = _Incoming(topic, data[1:], 1, 0, 0, None, None)
    book = allocator.book

    def work() -> list[_Reply | Exception | None]:
        return [book.guarded(lambda: allocator._one(message, NOW))]

    (outcome,) = book.transaction(work)
    if isinstance(outcome, Exception):
        raise outcome  # survived by the service, but a bug all the same
    if called:
        assert outcome is None
        return
    assert outcome is not None
    answer = TicketResponse.parse(outcome[1])
    if answer.status == "ok" and answer.op == "allocate":
        assert answer.seq is not None and 1 <= answer.seq < PLAN.offline_base, answer
        assert answer.number is not None and answer.number[0] in "AC", answer
        assert kiosk != KIOSKS[2], "a kiosk that is not enrolled got a number"


TARGETS: dict[str, Callable[[bytes], None]] = {"request": request}


def _seeds() -> list[bytes]:
    item = ReportItem("r-9", "2026-11-23", "HOTICH", "A", 801, "offline", "printed",
                      issued_at="2026-11-23T05:00:00Z")
    online = ReportItem("r-1", "2026-11-23", "HOTICH", "A", 1, "online", "printed")
    payloads = [
        (0, TicketRequest("r-1", "allocate", 0, PLAN, service="HOTICH", prefix="A").to_payload()),
        (1, TicketRequest("r-2", "allocate", 1, PLAN, service="DATDAI", prefix="C", priority=True)
         .to_payload()),
        (0, TicketRequest("r-3", "report", 0, PLAN, tickets=(item, online)).to_payload()),
        (2, TicketRequest("r-4", "allocate", 2, PLAN, service="HOTICH", prefix="A").to_payload()),
        (1, TicketRequest("r-5", "allocate", 0, PLAN, service="HOTICH", prefix="A").to_payload()),
        (0, TicketRequest("r-6", "allocate", 0, NumberPlan(900, 10), service="HOTICH", prefix="A")
         .to_payload()),
        (0x80, b'{"schema":"queue-called/1","service":"HOTICH","number":"A001","counter":"3"}'),
        (0, b"[" * 5000),
    ]
    return [bytes([selector]) + payload for selector, payload in payloads]


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-seeds"]:
        from fuzz.registry import CORPUS

        folder = CORPUS / "allocator.request"
        folder.mkdir(parents=True, exist_ok=True)
        for index, seed in enumerate(_seeds()):
            (folder / f"seed-{index:02d}").write_bytes(seed)
    else:
        sys.exit("usage: python -m fuzz.allocator --write-seeds")
