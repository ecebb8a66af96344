"""Fuzz targets for untrusted text where it enters the kiosk (security review, docs/lookup.md and
docs/printing.md): the province's HTTP answers, receipt codes, scanned text, serial framing, printer
text in both modes, and the control socket's requests.

Each target returns quietly when the input was accepted, or refused with the error its code
documents; anything else escapes (an unexpected exception, or an ``AssertionError`` from a check of
what was accepted). Nothing runs at import: the local HTTP server and the adapter start on first use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.ipc import ControlServer
from drivers.printer.encode import native_program, raster_program
from drivers.printer.errors import PrinterError
from drivers.printer.layout import Element, RasterLayout, document_elements, ticket_elements
from drivers.printer.model import DocumentContent, PrinterConfig, TicketContent
from drivers.printer.simulator import VirtualPrinter
from drivers.printer.text import MAX_LINE_CHARS
from drivers.scanner.base import MAX_SCAN_CHARS, ScanRefused, normalize_scan
from drivers.scanner.decode import bytes_to_text
from drivers.scanner.serial_line import MAX_LINE_BYTES, LineFramer
from kiosk.dossier.backend import DossierNotFound, LookupUnavailable
from kiosk.dossier.code import InvalidDossierCode, parse_dossier_code
from kiosk.dossier.http import HttpDossierBackend
from kiosk.errors import KioskError

_CODE = parse_dossier_code("000.00.10.H12-260105-0007")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Refused input is logged by the code under test; millions of log lines would only slow the run."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


# --- the HTTP adapter, against a real local socket -----------------------------------------------------


class _RawServer:
    """TCP on 127.0.0.1: reads a request head, answers with ``reply`` exactly as given, closes."""

    def __init__(self) -> None:
        self.reply = b""
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, name="fuzz-http", daemon=True).start()

    def _serve(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(1.0)
                head = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in head and len(head) < 65536:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        head += chunk
                    conn.sendall(self.reply)
                    conn.shutdown(socket.SHUT_WR)


_HTTP: list[tuple[_RawServer, HttpDossierBackend]] = []


def _http() -> tuple[_RawServer, HttpDossierBackend]:
    if not _HTTP:
        server = _RawServer()
        adapter = HttpDossierBackend(f"http://127.0.0.1:{server.port}/api/v1", auth_header="Bearer fuzz",
                                     timeout_s=0.5, retries=0, cache_ttl_s=0, allow_insecure_http=True)
        _HTTP.append((server, adapter))
    return _HTTP[0]


def http_response(data: bytes) -> None:
    """Status line, headers and body from the fuzzer, parsed by http.client and mapped by the adapter."""
    server, adapter = _http()
    server.reply = data
    with _quiet():
        try:
            status = adapter.lookup(_CODE)
        except (DossierNotFound, LookupUnavailable):
            return
    assert status.code == _CODE


# --- receipt codes and scanned text ----------------------------------------------------------------------


def dossier_code(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        code = parse_dossier_code(text)
    except InvalidDossierCode:
        return
    assert parse_dossier_code(code.text) == code, code


def _check_scan(text: str) -> None:
    """What normalize_scan promises about text it passes on."""
    assert len(text) <= MAX_SCAN_CHARS
    assert unicodedata.is_normalized("NFC", text)
    for ch in text:
        category = unicodedata.category(ch)
        assert category not in ("Cf", "Cs") and (category != "Cc" or ch in "\t\r\n"), hex(ord(ch))
    assert normalize_scan(text) == text  # idempotent


def qr_text(data: bytes) -> None:
    """A QR symbol's bytes as the decoders hand them over: decoded, then normalised or refused."""
    try:
        text = normalize_scan(bytes_to_text(data))
    except ScanRefused:
        return
    _check_scan(text)


def serial_framing(data: bytes) -> None:
    """The bytes as a line scanner sends them, split into reads and silences chosen by the input."""
    framer = LineFramer(idle_end_s=0.25)
    lines: list[bytes] = []
    now = 0.0
    pos = 0
    sizes = data[:8] or b"\x01"
    step = 0
    body = data[8:]
    while pos < len(body):
        size = sizes[step % len(sizes)] % 97 + 1
        step += 1
        lines += framer.feed(body[pos : pos + size], now)
        pos += size
        now += 0.01
        if size % 5 == 0:  # a pause: a line without a suffix ends here
            now += 0.3
            lines += framer.idle(now)
    lines += framer.idle(now + 1.0)
    assert sum(len(line) for line in lines) <= len(body)
    for line in lines:
        assert b"\r" not in line and b"\n" not in line and line.strip(), line[:40]
        assert len(line) <= MAX_LINE_BYTES
        with contextlib.suppress(ScanRefused):
            _check_scan(normalize_scan(bytes_to_text(line)))


# --- printer text, raster and native -----------------------------------------------------------------------

_NATIVE_COMMANDS = {"ESC @", "ESC t", "ESC 3", "ESC a", "GS !", "ESC E", "LF", "text", "ESC J", "GS ( k",
                    "GS V"}
_RASTER_COMMANDS = {"ESC @", "ESC a", "GS v 0", "ESC J", "GS ( k", "GS V"}


class _ParsingPrinter(VirtualPrinter):
    """The virtual printer's interpreter without the PNG files (a fuzz run prints millions)."""

    def __init__(self) -> None:
        super().__init__(Path("/nonexistent-fuzz-printer"))
        self.cuts = 0

    def _cut(self) -> None:
        self._print_line(only_if_pending=True)
        self._rows, self._job_torn = [], False
        self.cuts += 1


def _contents(data: bytes, plain: bool = False) -> tuple[TicketContent, DocumentContent]:
    """Every text field of a ticket and a slip from the input (fields separated by 0xFE 0xFF)."""
    parts = [p.decode("utf-8", "replace") for p in data.split(b"\xfe\xff")]
    fields = (parts + [""] * 12)[:12]
    if plain:  # same optional parts present, plain text everywhere
        fields = ["x" if f else "" for f in fields]
    issued = datetime(2026, 1, 5, 2, 41, tzinfo=UTC)
    labels = {"your_number": fields[6], "waiting": fields[7], "counter": fields[8], "time": fields[9],
              "citizen": fields[10], "scan_qr": fields[11]}
    ticket = TicketContent(
        center_name=fields[0], service_name=fields[1], number=fields[2], counters=[fields[3], fields[4]],
        issued_at=issued, waiting_ahead=len(data) % 50, citizen_name=fields[5] or None,
        priority_label=fields[4] or None, qr_data=fields[3] or None, footer=fields[5], labels=labels,
    )
    slip = DocumentContent(title=fields[0], lines=[(fields[1], fields[2]), (fields[6], fields[7])],
                           qr_data=fields[11] or None, footer=fields[10])
    return ticket, slip


def _parse(program: bytes) -> _ParsingPrinter:
    printer = _ParsingPrinter()
    printer.receive(program)
    assert printer.unknown == [], printer.unknown[:3]
    assert printer.cuts == 1
    return printer


def _structure(seen: Counter[str]) -> Counter[str]:
    return Counter({k: v for k, v in seen.items() if k not in ("text", "LF")})


def _element_lists(data: bytes, plain: bool = False) -> list[list[Element] | PrinterError]:
    """The ticket's and the slip's elements, or the documented refusal (a QR payload too long)."""
    ticket, slip = _contents(data, plain)
    out: list[list[Element] | PrinterError] = []
    for build in (lambda: ticket_elements(ticket), lambda: document_elements(slip)):
        try:
            out.append(build())
        except PrinterError as exc:
            out.append(exc)
    return out


def printer_native(data: bytes) -> None:
    config = PrinterConfig(mode="native", native_verified=True, width_dots=384)
    for elements, plain in zip(_element_lists(data), _element_lists(data, plain=True), strict=True):
        if isinstance(elements, PrinterError):
            continue
        try:
            program = native_program(elements, config)
        except PrinterError:  # a letter CP1258 has no form for: documented ("use raster mode")
            continue
        seen = _parse(program).commands_seen
        assert set(seen) <= _NATIVE_COMMANDS, seen
        assert not isinstance(plain, PrinterError)
        assert _structure(seen) == _structure(_parse(native_program(plain, config)).commands_seen)


def printer_raster(data: bytes) -> None:
    config = PrinterConfig(width_dots=384)
    layout = RasterLayout(config.width_dots, config.qr_module_dots)
    for elements in _element_lists(data):
        if isinstance(elements, PrinterError):
            continue
        for element in elements:
            text = getattr(element, "text", "")
            assert len(text) <= MAX_LINE_CHARS and not any(unicodedata.category(c)[0] == "C" for c in text)
        seen = _parse(raster_program(layout.blocks(elements), config)).commands_seen
        assert set(seen) <= _RASTER_COMMANDS, seen


# --- the control socket's requests ---------------------------------------------------------------------


def _control() -> ControlServer:
    if not _CONTROL:
        control = ControlServer(Path("/nonexistent-fuzz/app.sock"))  # never started: dispatch only
        control.register("echo", lambda args: {"got": args})
        control.register("boom", lambda args: {"never": 1 // 0})
        control.register("refuse", _refuse)
        control.register("odd", lambda args: {"path": Path("/x"), "set": {1}})  # not JSON-serialisable
        _CONTROL.append(control)
    return _CONTROL[0]


def _refuse(args: dict[str, Any]) -> dict[str, Any]:
    raise KioskError(f"refused {len(args)} arguments")


_CONTROL: list[ControlServer] = []


def ipc_dispatch(data: bytes) -> None:
    """One request line as the socket reads it; the answer must be one JSON object line."""
    with _quiet():
        answer = _control().answer(data)
    assert answer.endswith(b"\n") and answer.count(b"\n") == 1, answer[:80]
    reply = json.loads(answer)
    assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), reply


TARGETS: dict[str, Callable[[bytes], None]] = {
    "http_response": http_response,
    "dossier_code": dossier_code,
    "qr_text": qr_text,
    "serial_framing": serial_framing,
    "printer_native": printer_native,
    "printer_raster": printer_raster,
    "ipc_dispatch": ipc_dispatch,
}
