"""Real wires: TCP 9100 through python-escpos Network, a serial pty through pyserial, USB not present,
and python-escpos' import side effects kept out of the app."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from common.errors import DeviceUnavailableError
from drivers.printer import PrinterConfig, PrinterOfflineError, TicketContent, VirtualPrinter, open_printer
from drivers.printer.layout import RasterLayout, preview, ticket_elements
from drivers.printer.transport import escpos_printer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def network_printer(tmp_path: Path) -> Iterator[tuple[VirtualPrinter, int]]:
    vp = VirtualPrinter(tmp_path / "net")
    _, port = vp.serve_tcp("127.0.0.1", 0)
    yield vp, port
    vp.close()


def paper_of(content: TicketContent, width: int = 576) -> bytes:
    return preview(RasterLayout(width).blocks(ticket_elements(content)), width).tobytes()


def test_ticket_over_tcp_9100(network_printer: tuple[VirtualPrinter, int], ticket: TicketContent) -> None:
    vp, port = network_printer
    config = PrinterConfig(backend="network", host="127.0.0.1", port=port, status_timeout=0.5)
    with open_printer(config) as p:
        assert p.simulator is None
        assert p.status().problem is None
        report = p.print_ticket(ticket)
        assert report.bytes_sent == vp.bytes_received - 3 * 9  # three status queries
        vp.set_paper("out")
        assert p.status().problem == "paper_out"
    assert vp.last_png is not None
    assert Image.open(vp.last_png).convert("1").tobytes() == paper_of(ticket)


def test_python_escpos_network_reads_the_virtual_printer_status(
    network_printer: tuple[VirtualPrinter, int],
) -> None:
    vp, port = network_printer
    net = escpos_printer().Network("127.0.0.1", port=port, timeout=2)
    net.open()
    try:
        assert net.is_online() is True
        assert net.paper_status() == 2
        vp.set_paper("near_end")
        assert net.paper_status() == 1
        vp.set_paper("out")
        assert net.paper_status() == 0
        assert net.is_online() is False  # paper end puts the printer offline
    finally:
        net.close()


def test_network_printer_missing_is_named_not_simulated() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = PrinterConfig(backend="network", host="127.0.0.1", port=port)
    with pytest.raises(DeviceUnavailableError, match=f"network printer 127.0.0.1:{port}"):
        open_printer(config)


def test_usb_printer_missing_is_named() -> None:
    config = PrinterConfig(backend="usb", vendor_id=0x04B8, product_id=0x0E15)
    with pytest.raises(DeviceUnavailableError, match="USB printer 04b8:0e15"):
        open_printer(config)


def test_serial_device_missing_is_named(tmp_path: Path) -> None:
    config = PrinterConfig(backend="serial", device=str(tmp_path / "ttyUSB9"))
    with pytest.raises(DeviceUnavailableError, match=r"serial printer .*ttyUSB9 at 115200 baud"):
        open_printer(config)


def test_ticket_over_a_serial_line(tmp_path: Path, ticket: TicketContent) -> None:
    """pyserial on the slave side of a pty; the virtual printer reads the master side."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    vp = VirtualPrinter(tmp_path / "serial")
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            answer = vp.receive(data)
            if answer:
                os.write(master, answer)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    config = PrinterConfig(backend="serial", device=os.ttyname(slave), baudrate=115200, status_timeout=1.0)
    try:
        with open_printer(config) as p:
            assert p.status().problem is None
            p.print_ticket(ticket)
            vp.set_cover_open(True)
            assert p.status().problem == "cover_open"
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
        thread.join(timeout=2)
    assert vp.last_png is not None
    assert Image.open(vp.last_png).convert("1").tobytes() == paper_of(ticket)


def test_python_escpos_import_is_contained(tmp_path: Path) -> None:
    """No root logging handler, no stray temp dir; the capabilities pickle lands in the cache once."""
    code = (
        "import logging, drivers.printer.transport as t\n"
        "t.escpos_printer()\n"
        "print(len(logging.getLogger().handlers))\n"
    )
    env = {
        **os.environ,
        "TMPDIR": str(tmp_path / "tmp"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    env.pop("ESCPOS_CAPABILITIES_PICKLE_DIR", None)
    (tmp_path / "tmp").mkdir()
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "0"
        assert list((tmp_path / "tmp").iterdir()) == []
    pickles = list((tmp_path / "cache" / "motcua-kiosk" / "escpos").iterdir())
    assert [p.suffix for p in pickles] == [".pickle"]


def test_importing_the_package_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, drivers.printer\n"
        "print(sorted(m for m in ('escpos', 'PIL', 'segno', 'serial', 'usb') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_two_printers_by_role(tmp_path: Path, ticket: TicketContent) -> None:
    from drivers.printer import DocumentContent, open_printers

    printers = open_printers(
        [
            PrinterConfig(role="ticket", output_dir=str(tmp_path / "t")),
            PrinterConfig(role="receipt", output_dir=str(tmp_path / "r"), width_dots=384),
        ]
    )
    try:
        printers["ticket"].print_ticket(ticket)
        printers["receipt"].print_document(DocumentContent(title="Biên nhận", lines=[("Mã hồ sơ", "X-1")]))
        assert [p.name for p in (tmp_path / "t").iterdir()] == ["ticket-0001.png"]
        assert [p.name for p in (tmp_path / "r").iterdir()] == ["receipt-0001.png"]
    finally:
        for p in printers.values():
            p.close()


def test_a_printer_that_stops_reading_does_not_hang_the_kiosk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers the first status query, then never reads again (like a jammed network printer)."""
    import socket
    import time

    from drivers.printer import transport
    from drivers.printer.errors import PrinterError

    monkeypatch.setattr(transport, "NETWORK_WRITE_TIMEOUT", 0.5)
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def stuck() -> None:
        conn, _ = server.accept()
        held.append(conn)
        conn.recv(9)
        conn.sendall(b"\x12\x12\x12")

    thread = threading.Thread(target=stuck, daemon=True)
    thread.start()
    config = PrinterConfig(backend="network", port=server.getsockname()[1])
    try:
        with open_printer(config) as p:
            t0 = time.perf_counter()
            with pytest.raises(PrinterError, match="write failed"):
                p.print_raw(b"\x1bJ\x01" * 30_000_000)
            assert time.perf_counter() - t0 < 5
    finally:
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        server.close()


def test_network_printer_power_cycle_reconnects(tmp_path: Path, ticket: TicketContent) -> None:
    first = VirtualPrinter(tmp_path / "a")
    _, port = first.serve_tcp("127.0.0.1", 0)
    config = PrinterConfig(backend="network", port=port, status_timeout=0.3)
    with open_printer(config) as p:
        assert p.status().problem is None
        first.close()  # switched off
        assert p.status().problem == "offline"
        with pytest.raises(PrinterOfflineError):
            p.print_ticket(ticket)
        second = VirtualPrinter(tmp_path / "b")
        second.serve_tcp("127.0.0.1", port)  # switched on again
        try:
            assert p.status().problem is None
            p.print_ticket(ticket)
            assert second.last_png is not None
        finally:
            second.close()
    assert first.printed == []
