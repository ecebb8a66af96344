"""Paper out, near end, cover open, offline, paper ending mid-print: a failed print raises, prints nothing
countable, and the status changes become device events for the fleet."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from drivers.printer import (
    PrinterConfig,
    PrinterCoverOpenError,
    PrinterOfflineError,
    PrinterPaperOutError,
    PrinterStatus,
    TicketContent,
    TicketPrinter,
    VirtualPrinter,
    open_printer,
)
from drivers.printer import commands as cmd
from drivers.printer.errors import PrinterError


def sim(printer: TicketPrinter) -> VirtualPrinter:
    assert printer.simulator is not None
    return printer.simulator


def test_status_follows_the_modelled_state(printer: TicketPrinter) -> None:
    vp = sim(printer)
    assert printer.status() == PrinterStatus(online=True, paper="ok", cover_open=False)
    vp.set_paper("near_end")
    assert printer.status().paper == "near_end" and printer.status().problem is None
    vp.set_paper("out")
    assert printer.status().problem == "paper_out"
    vp.set_paper("ok")
    vp.set_cover_open(True)
    assert printer.status().problem == "cover_open"
    vp.set_cover_open(False)
    vp.set_online(False)
    t0 = time.perf_counter()
    assert printer.status().problem == "offline"
    assert 0.15 < time.perf_counter() - t0 < 1.0  # waited status_timeout (0.2 s), no longer


def test_paper_out_before_print_raises_and_prints_nothing(
    printer: TicketPrinter, ticket: TicketContent
) -> None:
    vp = sim(printer)
    vp.set_paper("out")
    with pytest.raises(PrinterPaperOutError) as info:
        printer.print_ticket(ticket)
    assert isinstance(info.value, PrinterPaperOutError)
    assert info.value.stage == "before" and info.value.code == "printer_paper_out"
    assert vp.printed == [] and vp.torn == []
    assert vp.bytes_received == len(cmd.STATUS_QUERY)  # only the status query went out


def test_paper_runs_out_mid_print(printer: TicketPrinter, ticket: TicketContent) -> None:
    vp = sim(printer)
    vp.run_out_after(300)  # the ticket is ~800 rows long
    with pytest.raises(PrinterPaperOutError) as info:
        printer.print_ticket(ticket)
    assert info.value.stage == "after"
    assert vp.printed == [] and len(vp.torn) == 1
    from PIL import Image

    assert Image.open(vp.torn[0]).height == 300  # what came out before the roll ended
    vp.set_paper("ok")  # new roll: the same number is reprinted
    report = printer.print_ticket(ticket)
    assert report.png == vp.printed[0]


def test_cover_open(printer: TicketPrinter, ticket: TicketContent) -> None:
    vp = sim(printer)
    vp.set_cover_open(True)
    with pytest.raises(PrinterCoverOpenError) as info:
        printer.print_ticket(ticket)
    assert isinstance(info.value, PrinterError) and info.value.code == "printer_cover_open"
    assert vp.printed == []


def test_offline_printer(printer: TicketPrinter, ticket: TicketContent) -> None:
    vp = sim(printer)
    vp.set_online(False)
    with pytest.raises(PrinterOfflineError, match="offline or not answering before printing"):
        printer.print_ticket(ticket)
    assert vp.printed == [] and vp.bytes_received == 0


def test_near_end_still_prints(printer: TicketPrinter, ticket: TicketContent) -> None:
    sim(printer).set_paper("near_end")
    report = printer.print_ticket(ticket)
    assert report.status_after.paper == "near_end" and report.png is not None


def test_cover_opened_during_a_slow_serial_transfer(tmp_path: Path, ticket: TicketContent) -> None:
    config = PrinterConfig(output_dir=str(tmp_path), line_baud=115200, status_timeout=0.2)
    with open_printer(config) as p:
        vp = sim(p)
        timer = threading.Timer(0.3, vp.set_cover_open, args=(True,))
        timer.start()
        with pytest.raises(PrinterCoverOpenError) as info:
            p.print_ticket(ticket)
        timer.join()
        assert info.value.stage == "after"
        assert vp.printed == [] and len(vp.torn) == 1


def test_line_speed_is_modelled(tmp_path: Path, ticket: TicketContent) -> None:
    config = PrinterConfig(output_dir=str(tmp_path), line_baud=115200)
    with open_printer(config) as p:
        report = p.print_ticket(ticket)
    wire = (report.bytes_sent + 2 * len(cmd.STATUS_QUERY)) * 10 / 115200
    assert wire <= report.seconds < wire + 0.5


def test_stale_status_bytes_are_dropped(printer: TicketPrinter) -> None:
    transport = printer._transport
    transport._answers.extend(b"\x12\x12")  # type: ignore[attr-defined]
    assert printer.status() == PrinterStatus(online=True)


def test_a_failing_listener_does_not_stop_printing(tmp_path: Path, ticket: TicketContent) -> None:
    def broken(old: PrinterStatus | None, new: PrinterStatus) -> None:
        raise RuntimeError("bug in the app's handler")

    with open_printer(PrinterConfig(output_dir=str(tmp_path)), on_status=broken) as p:
        assert p.print_ticket(ticket).png is not None
