"""The runtime with two printers by role: tickets on the ticket printer, dossier slips on the receipt
printer, each on its own lane and in health — the real virtual printers, no window."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.schema import parse_dataclass
from drivers.printer import PrinterConfig
from kiosk.flows.ticket import TicketFlow
from kiosk.runtime import KioskRuntime, demo_config, simulated

DEMO_DOSSIER = "000.00.10.H12-210901-0001"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[KioskRuntime]:
    config = demo_config(tmp_path)
    devices = dataclasses.replace(
        config.devices,
        card_reader=dataclasses.replace(config.devices.card_reader, enabled=False),
        receipt_printer=PrinterConfig(role="receipt", width_dots=384),
    )
    runtime = KioskRuntime(simulated(dataclasses.replace(config, devices=devices)), synchronous=True)
    yield runtime
    runtime.stop()


def test_slips_go_to_the_receipt_printer_and_tickets_to_the_ticket_printer(runtime: KioskRuntime) -> None:
    core = runtime.core
    assert runtime.devices.printer is not None and runtime.devices.receipt_printer is not None
    ticket_printer = runtime.devices.printer.simulator
    receipt_printer = runtime.devices.receipt_printer.simulator
    assert ticket_printer is not None and receipt_printer is not None
    core.start("lookup")
    core.scanned(DEMO_DOSSIER, "camera")
    core.pump()
    core.act("print")
    core.pump()
    assert core.flow is not None and core.flow.printed  # type: ignore[attr-defined]
    assert len(receipt_printer.printed) == 1 and len(ticket_printer.printed) == 0
    core.start("ticket")
    core.act("choose", code="HO_TICH")
    core.pump()
    assert core.flow is not None and core.flow.state == "done"
    assert len(ticket_printer.printed) == 1 and len(receipt_printer.printed) == 1
    receipt_printer.set_paper("out")
    runtime.poll_devices()
    health = runtime.health()["devices"]
    assert health["receipt_printer"]["state"] == "paper_out" and health["printer"]["state"] == "ok"
    core.start("lookup")
    core.scanned(DEMO_DOSSIER, "camera")
    core.pump()
    core.act("print")
    core.pump()
    assert core.flow is not None and core.flow.error_key == "printer.paper_out"
    assert len(receipt_printer.printed) == 1
    results = runtime.handlers.run_self_test()
    assert results["printer"]["ok"] and not results["receipt_printer"]["ok"]


def test_printer_roles_are_checked() -> None:
    from contract.errors import SchemaError
    from kiosk.config import DevicesSection

    with pytest.raises(SchemaError, match=r"receipt_printer\.role: expected \"receipt\""):
        parse_dataclass(DevicesSection, {"receipt_printer": {"role": "ticket"}}, "devices")
    with pytest.raises(SchemaError, match=r"printer\.role"):
        parse_dataclass(DevicesSection, {"printer": {"role": "receipt"}}, "devices")


def test_health_reports_the_receipt_printer_and_numbering(runtime: KioskRuntime) -> None:
    runtime.poll_devices()
    health = runtime.health()
    assert health["numbering"] == {"mode": "local"}
    assert set(health["devices"]) == {"printer", "receipt_printer", "card_reader", "scanner"}
    assert health["devices"]["card_reader"] == {"state": "disabled"}


def test_one_readiness_check_per_ticket(runtime: KioskRuntime) -> None:
    """The printer is asked once before the number is taken and once after the ticket is out: the
    state the screens and the fleet see comes from those two answers, no third or fourth query."""
    assert runtime.devices.printer is not None and runtime.devices.printer.simulator is not None
    printer = runtime.devices.printer.simulator
    core = runtime.core
    before = printer.status_queries
    core.start("ticket")
    core.act("choose", code="HO_TICH")
    core.pump()
    assert core.flow is not None and core.flow.state == "done"
    assert printer.status_queries - before == 2
    printer.set_paper("out")
    before = printer.status_queries
    core.start("ticket")
    core.act("choose", code="HO_TICH")
    core.pump()
    # The readiness check said no: nothing is sent to the printer, and the number is still given, on
    # the screen (issue 14: the citizen keeps the number when the paper runs out).
    flow = core.flow
    assert isinstance(flow, TicketFlow) and flow.state == "done"
    assert flow.ticket is not None and not flow.ticket.printed
    assert printer.status_queries - before == 1
    assert runtime.handlers.device_states()["printer"] == "paper_out"
