"""The allocator's book and the shared contract, without a broker: exact answers for exact requests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from contract.errors import ContractError
from contract.tickets import (
    NumberPlan,
    ReportItem,
    TicketRequest,
    center_day,
    center_zone,
    format_number,
)
from fleet.allocator import Allocator, AllocatorBook, AllocatorSettings, Limits

ZONE = center_zone()
PLAN = NumberPlan(800, 20)
NOON = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # 12:00 in Hồ Chí Minh City


def allocate(request_id: str, service: str = "HOTICH", prefix: str = "A", slot: int = 0, **kw: Any) -> bytes:
    plan = kw.pop("plan", PLAN)
    request = TicketRequest(request_id, "allocate", slot, plan, service=service, prefix=prefix, **kw)
    return json.dumps(request.to_data()).encode()


def report(request_id: str, *items: ReportItem, slot: int = 0) -> bytes:
    return json.dumps(TicketRequest(request_id, "report", slot, PLAN, tickets=items).to_data()).encode()


@pytest.fixture
def book(tmp_path: Path) -> AllocatorBook:
    return AllocatorBook(tmp_path / "book.sqlite", PLAN, ZONE)


def ask(book: AllocatorBook, kiosk: str, payload: bytes, now: datetime = NOON) -> dict[str, Any]:
    return book.transaction(lambda: [book.handle(kiosk, payload, now).to_data()])[0]


def test_center_day_turns_at_local_midnight() -> None:
    assert center_day(datetime(2026, 11, 23, 16, 59, 59, 999000, tzinfo=UTC), ZONE) == "2026-11-23"
    assert center_day(datetime(2026, 11, 23, 17, 0, tzinfo=UTC), ZONE) == "2026-11-24"
    assert center_day(datetime(2026, 11, 24, 0, 30), ZONE) == "2026-11-24"  # naive = already local


def test_number_plan_ranges_are_disjoint() -> None:
    blocks = [set(PLAN.offline_range(slot)) for slot in range(60)]
    online = set(range(1, PLAN.online_max + 1))
    seen: set[int] = set(online)
    for block in blocks:
        assert not block & seen
        seen |= block
    assert PLAN.offline_range(0) == range(800, 820)
    assert PLAN.offline_range(9) == range(980, 1000)
    assert PLAN.slot_of(799) is None and PLAN.slot_of(800) == 0 and PLAN.slot_of(1019) == 10
    assert format_number("B", 23) == "B023" and format_number("B", 1005) == "B1005"


def test_topics_name_the_kiosk_only_for_this_center(tmp_path: Path) -> None:
    allocator = Allocator(AllocatorSettings("hcm-ben-thanh", tmp_path / "book.sqlite"))
    try:
        assert allocator._kiosk_of("motcua/v1/hcm-ben-thanh/kiosk-1/ticket/req") == "kiosk-1"
        assert allocator._kiosk_of("motcua/v1/ha-noi/kiosk-1/ticket/req") is None
        assert allocator._kiosk_of("motcua/v1/hcm-ben-thanh/_center/ticket/req") is None
        assert allocator._kiosk_of("motcua/v1/hcm-ben-thanh/kiosk-1/ticket/res") is None
        assert allocator._kiosk_of("motcua/v1/hcm-ben-thanh/allocator/ticket/req") is None  # reserved id
    finally:
        allocator.book.close()


def test_numbers_follow_issue_order_per_service_and_day(book: AllocatorBook) -> None:
    answers = [ask(book, "kiosk-1", allocate(f"r{i}", *(("HOTICH", "A") if i % 2 else ("DATDAI", "C"))))
               for i in range(1, 7)]
    assert [a["number"] for a in answers] == ["A001", "C001", "A002", "C002", "A003", "C003"]
    assert {a["day"] for a in answers} == {"2026-11-23"}
    assert [a["waiting_ahead"] for a in answers] == [0, 0, 1, 1, 2, 2]


def test_a_retried_request_gets_the_same_number_even_after_a_restart(tmp_path: Path) -> None:
    book = AllocatorBook(tmp_path / "book.sqlite", PLAN, ZONE)
    first = ask(book, "kiosk-1", allocate("req-1"))
    ask(book, "kiosk-2", allocate("req-2", slot=1))
    book.close()
    book = AllocatorBook(tmp_path / "book.sqlite", PLAN, ZONE)  # the allocator restarted
    again = ask(book, "kiosk-1", allocate("req-1"), NOON + timedelta(hours=13))  # even on the next day
    assert (again["number"], again["day"]) == (first["number"], first["day"]) == ("A001", "2026-11-23")
    assert ask(book, "kiosk-1", allocate("req-3"))["number"] == "A003"
    # The same request id from another kiosk is another request.
    assert ask(book, "kiosk-2", allocate("req-1", slot=1))["number"] == "A004"
    assert book.stats.retried == 1


def test_the_day_change_restarts_every_sequence(book: AllocatorBook) -> None:
    before = datetime(2026, 11, 23, 16, 59, 59, 900000, tzinfo=UTC)
    after = datetime(2026, 11, 23, 17, 0, 0, 100000, tzinfo=UTC)
    assert ask(book, "kiosk-1", allocate("a"), before)["number"] == "A001"
    assert ask(book, "kiosk-1", allocate("b"), before)["number"] == "A002"
    late = ask(book, "kiosk-1", allocate("c"), after)
    assert (late["number"], late["day"], late["waiting_ahead"]) == ("A001", "2026-11-24", 0)


def test_online_range_ends_below_the_offline_blocks(tmp_path: Path) -> None:
    plan = NumberPlan(4, 2)
    book = AllocatorBook(tmp_path / "b.sqlite", plan, ZONE, limits=Limits(kiosk_quota=10))
    numbers = [ask(book, "kiosk-1", allocate(f"r{i}", plan=plan)) for i in range(4)]
    assert [n.get("number") for n in numbers[:3]] == ["A001", "A002", "A003"]
    assert (numbers[3]["status"], numbers[3]["error"]) == ("error", "exhausted")


def test_slot_is_bound_to_the_first_kiosk_and_plans_must_agree(book: AllocatorBook) -> None:
    assert ask(book, "kiosk-1", allocate("r1", slot=3))["status"] == "ok"
    refused = ask(book, "kiosk-2", allocate("r2", slot=3))
    assert (refused["status"], refused["error"]) == ("error", "slot_conflict")
    assert "kiosk-1" in refused["reason"]
    mismatch = ask(book, "kiosk-1", allocate("r3", slot=3, plan=NumberPlan(900, 20)))
    assert mismatch["error"] == "config_mismatch"
    garbage = ask(book, "kiosk-1", b'{"request_id": "x-1"}')
    assert (garbage["request_id"], garbage["error"]) == ("x-1", "bad_request")
    assert book.summary("2026-11-23")["HOTICH"]["allocated"] == 1


def item(
    request_id: str, seq: int, source: Literal["online", "offline"],
    status: Literal["allocated", "printed", "voided"], **kw: Any,
) -> ReportItem:
    return ReportItem(
        request_id, kw.get("day", "2026-11-23"), "HOTICH", "A", seq, source, status,
        kw.get("priority", False), "2026-11-23T05:00:00.000+00:00", kw.get("reason"),
    )


def test_reports_settle_online_and_offline_numbers(book: AllocatorBook) -> None:
    ask(book, "kiosk-1", allocate("on-1"))
    ask(book, "kiosk-1", allocate("late-1"))  # answered, but the kiosk had already gone offline
    answer = ask(
        book, "kiosk-1",
        report("rep-1", item("on-1", 1, "online", "printed"), item("late-1", 800, "offline", "printed"),
               item("off-2", 801, "offline", "voided", reason="PrinterPaperOutError")),
    )
    assert (answer["accepted"], answer["conflicts"]) == (["on-1", "late-1", "off-2"], [])
    rows = {(t["number"], t["source"]): (t["status"], t["reason"]) for t in book.tickets("2026-11-23")}
    assert rows == {
        ("A001", "online"): ("printed", None),
        ("A002", "online"): ("voided", "superseded_by_offline"),
        ("A800", "offline"): ("printed", None),
        ("A801", "offline"): ("voided", "PrinterPaperOutError"),
    }
    # The same report again changes nothing (at-least-once delivery).
    again = ask(book, "kiosk-1", report("rep-1", item("on-1", 1, "online", "voided")))
    assert again["accepted"] == ["on-1"]
    assert book.tickets("2026-11-23")[0]["status"] == "printed"


def test_reports_outside_the_kiosk_block_or_duplicated_are_conflicts(book: AllocatorBook) -> None:
    ask(book, "kiosk-1", allocate("r1", slot=0))
    ask(book, "kiosk-2", allocate("r2", slot=1))
    outside = ask(book, "kiosk-2", report("rep-2", item("x", 805, "offline", "printed"), slot=1))
    assert outside["accepted"] == [] and "outside the block of slot 1" in outside["conflicts"][0]["reason"]
    never = ask(book, "kiosk-2", report("rep-3", item("nope", 7, "online", "printed"), slot=1))
    assert "never allocated" in never["conflicts"][0]["reason"]
    assert len(book.conflicts()) == 2


def test_called_numbers_stop_waiting_and_priority_waits_only_behind_priority(book: AllocatorBook) -> None:
    for i in range(4):
        ask(book, "kiosk-1", allocate(f"r{i}", priority=(i == 1)))
    called = {"schema": "queue-called/1", "service": "HOTICH", "number": "A001", "day": "2026-11-23",
              "counter": "1"}
    assert book.transaction(lambda: [book.called(json.dumps(called).encode(), NOON)]) == [True]
    assert book.stats.called == 1
    assert ask(book, "kiosk-1", allocate("r9"))["waiting_ahead"] == 3  # A002..A004
    assert ask(book, "kiosk-1", allocate("p9", priority=True))["waiting_ahead"] == 1  # A002 (priority)
    assert book.called(b'{"schema": "queue-called/1", "service": "x"}', NOON) is False


def test_request_parsing_refuses_what_the_contract_does_not_allow() -> None:
    good = json.loads(allocate("r1"))
    for key, value in (("op", "steal"), ("slot", -1), ("service", "hộ tịch"), ("request_id", "a b"),
                       ("schema", "ticket-request/2"), ("offline_block", 0)):
        with pytest.raises(ContractError):
            TicketRequest.parse(json.dumps({**good, key: value}).encode())
    with pytest.raises(ContractError):
        TicketRequest.parse(b"\xff")
