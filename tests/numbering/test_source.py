"""The kiosk's ticket source alone: with no agent at all it still prints, from its own block, durably."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kiosk.config import NumberingSection
from kiosk.error_screens import screen_key
from kiosk.numbering import CenterTicketSource, agent_ask
from kiosk.ticketing import TicketingError
from tests.numbering.conftest import SERVICES

NOON = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
NEXT_DAY = datetime(2026, 11, 23, 17, 0, 1, tzinfo=UTC)  # 00:00:01 on the 24th in Hồ Chí Minh City


def open_source(path: Path, slot: int = 3, block: int = 3) -> CenterTicketSource:
    numbering = NumberingSection(mode="center", slot=slot, offline_base=800, offline_block=block)
    # The real client of the agent's socket, pointed where no agent runs.
    return CenterTicketSource(
        path / "t.sqlite", kiosk_id="kiosk-9", numbering=numbering, ask=agent_ask(path / "agent.sock")
    )


def test_without_an_agent_numbers_come_from_the_block_at_once_and_survive_restarts(tmp_path: Path) -> None:
    source = open_source(tmp_path)
    started = time.monotonic()
    first = source.allocate(SERVICES[0], False, NOON)
    assert time.monotonic() - started < 0.2  # no socket: no waiting for the budget
    assert (first.number, first.day, first.waiting_ahead) == ("A809", "2026-11-23", None)  # 800 + 3*3
    source.confirm(first)
    second = source.allocate(SERVICES[0], False, NOON)  # killed before printing: never confirmed
    source.close()
    source = open_source(tmp_path)  # restart
    third = source.allocate(SERVICES[0], False, NOON)
    assert (second.number, third.number) == ("A810", "A811")
    rows = {t["number"]: (t["status"], t["reason"], t["source"]) for t in source.tickets()}
    assert rows == {
        "A809": ("printed", None, "offline"),
        "A810": ("voided", "interrupted", "offline"),
        "A811": ("allocated", None, "offline"),
    }
    assert source.allocate(SERVICES[1], False, NOON).number == "B809"  # per service
    assert source.allocate(SERVICES[0], False, NEXT_DAY).number == "A809"  # a new day, a new block
    with pytest.raises(TicketingError) as used_up:
        source.allocate(SERVICES[0], False, NOON)
    assert screen_key(used_up.value) == "error.network"
    assert source.issued_today(NOON) == 1
    assert source.pending_reports() == 5  # every number waits for the allocator; the refusal has none
    source.close()
