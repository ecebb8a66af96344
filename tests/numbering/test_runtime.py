"""The whole chain: the kiosk runtime in ``[numbering] mode = "center"`` asks the real edge agent, whose
relay asks the allocator over the real broker; the virtual printer's ticket carries the center's number."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from edge_agent.agent import Agent, AgentSettings
from fleet.allocator import Allocator
from kiosk.flows.ticket import IssueTicket
from kiosk.numbering import CenterTicketSource
from kiosk.runtime import KioskRuntime, demo_config
from kiosk.ticketing import ticket_qr_text
from tests.agent.broker import Broker, Pki
from tests.agent.conftest import RunningAgent, agent_config
from tests.numbering.conftest import CENTER, wait_until

pytestmark = pytest.mark.broker


def test_runtime_prints_the_allocator_number_through_the_real_agent(
    broker: Broker, pki: Pki, workdir: Path, allocator_factory: Callable[..., Allocator]
) -> None:
    allocator = allocator_factory(broker)
    data_dir = workdir / "kiosk"
    config = demo_config(data_dir, id="kiosk-1", center_id=CENTER)
    config = dataclasses.replace(
        config,
        numbering=dataclasses.replace(config.numbering, mode="center", slot=4),
        devices=dataclasses.replace(
            config.devices, card_reader=dataclasses.replace(config.devices.card_reader, enabled=False)
        ),
    )
    settings = AgentSettings("kiosk-1", CENTER, data_dir, agent_config(broker, pki, "kiosk-1"))
    with RunningAgent(Agent(settings)) as agent:
        assert wait_until(lambda: agent.tickets.allocator_state == "online")
        runtime = KioskRuntime(config, synchronous=True, wall_clock=lambda: datetime.now(UTC))
        try:
            assert isinstance(runtime.tickets, CenterTicketSource)
            runtime.start()
            service = config.services[0]
            first = runtime.handlers.issue_ticket(IssueTicket(service.code, priority=False))
            second = runtime.handlers.issue_ticket(IssueTicket(service.code, priority=True))
            assert (first.number, first.waiting_ahead) == (f"{service.prefix}001", 0)
            assert (second.number, second.waiting_ahead) == (f"{service.prefix}002", 0)  # priority
            pngs = sorted((data_dir / "printer").glob("*.png"))  # the virtual printer's renderings
            assert len(pngs) == 2
            png = pngs[-1]
            qr = [s.text for s in zxingcpp.read_barcodes(Image.open(png).convert("L"))]
            day = datetime.now(UTC).astimezone(allocator.book.zone).date().isoformat()
            # The demo config holds a phone key: the QR is the queue's phone page (issue 14, docs/ux.md).
            assert qr == [ticket_qr_text(config.queue, CENTER, day, second.number)]
            assert wait_until(lambda: runtime.tickets.pending_reports() == 0)  # type: ignore[union-attr]
            book = {t["number"]: (t["status"], t["priority"]) for t in allocator.book.tickets(day)}
            assert book == {first.number: ("printed", 0), second.number: ("printed", 1)}
            assert runtime.totals()["tickets"] == 2
        finally:
            runtime.stop()
