"""Untrusted text on tickets and slips (security review): control codes, format characters and huge
fields must not reach the printer as commands or as metres of paper. The virtual printer parses the
exact program; it must contain only the commands the layout itself emits."""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.printer import DocumentContent, PrinterConfig, TicketContent, VirtualPrinter, open_printer
from drivers.printer.encode import native_program, raster_program
from drivers.printer.layout import Line, RasterLayout, document_elements, ticket_elements
from drivers.printer.text import (
    MAX_DOCUMENT_LINES,
    MAX_FIELD_CHARS,
    MAX_LINE_CHARS,
    PrinterContentError,
    printable,
)

from .conftest import vietnamese_letters

DRAWER_PULSE = "\x1bp\x00\x19\xfa"  # ESC p 0 25 250: opens a cash drawer
FEED_A_METRE = "\x1bd\xff"  # ESC d 255: feeds 255 lines
CUT = "\x1dVA\x00"  # GS V: cuts mid-ticket
BOLD_ON = "\x1bE\x01"  # a command the layout itself uses: only counts reveal it
#: Control codes only: every character here has a CP1258 byte, so nothing but filtering stops them.
CONTROLS = f"Nguyễn Văn An {DRAWER_PULSE} {FEED_A_METRE} {CUT}{BOLD_ON}"
#: ... and format characters too (bidi overrides, zero-width, BOM), C1 controls, NUL, BEL.
HOSTILE = (
    f"Nguyễn Văn An {DRAWER_PULSE} {FEED_A_METRE} {CUT}{BOLD_ON}"
    "\u202eTrung tâm\u202c\u200b\u2066\x00\x07\x85\x9b\ufeff"
)
#: What is left of it: the commands' printable parameter bytes, as harmless letters.
HOSTILE_PRINTED = "Nguyễn Văn An pú dÿ  VAETrung tâm"

#: What each mode's encoder sends (and the status queries around a print), by command name.
NATIVE_COMMANDS = {"ESC @", "ESC t", "ESC 3", "ESC a", "GS !", "ESC E", "LF", "text", "ESC J", "GS ( k",
                   "GS V", "DLE EOT"}
RASTER_COMMANDS = {"ESC @", "ESC a", "GS v 0", "ESC J", "GS ( k", "GS V", "DLE EOT"}


def native_config(tmp_path: Path) -> PrinterConfig:
    return PrinterConfig(mode="native", native_verified=True, output_dir=str(tmp_path / "n"),
                         status_timeout=0.2)


def hostile_ticket(ticket: TicketContent, text: str = HOSTILE) -> TicketContent:
    return replace(
        ticket,
        center_name=text,
        service_name=text,
        number=f"B0{text}23",
        counters=[text, "4"],
        citizen_name=text,
        priority_label=text,
        footer=text,
        labels={"your_number": text, "waiting": text + " {n}", "counter": text, "time": text,
                "citizen": text, "scan_qr": text},
    )


def parsed(program: bytes, tmp_path: Path) -> VirtualPrinter:
    printer = VirtualPrinter(tmp_path / "parsed")
    printer.receive(program)
    return printer


@pytest.mark.parametrize("text", [CONTROLS, HOSTILE], ids=["controls", "controls+format"])
def test_native_program_carries_no_command_from_text(ticket: TicketContent, tmp_path: Path,
                                                     text: str) -> None:
    with open_printer(native_config(tmp_path)) as printer:
        printer.print_ticket(hostile_ticket(ticket, text))
        sim = printer.simulator
        assert sim is not None
        assert sim.unknown == []  # ESC p and stray control bytes would land here
        assert set(sim.commands_seen) <= NATIVE_COMMANDS
        assert "ESC d" not in sim.commands_seen
        assert sim.commands_seen["GS V"] == 1 and len(sim.printed) == 1  # one ticket, one cut
        assert any("Nguyễn Văn An" in line for line in sim.text_lines)  # the text itself survives


def test_injected_layout_commands_show_in_the_counts(ticket: TicketContent, tmp_path: Path) -> None:
    """ESC E is a command the layout uses too, so a set check cannot see an injected one: the count of
    every command except text and line feeds depends only on the ticket's structure, not its text."""
    config = native_config(tmp_path)
    hostile = native_program(ticket_elements(hostile_ticket(ticket, CONTROLS)), config)
    plain = native_program(ticket_elements(hostile_ticket(ticket, "x")), config)

    def structure(program: bytes) -> Counter[str]:
        seen = parsed(program, tmp_path).commands_seen
        return Counter({k: v for k, v in seen.items() if k not in ("text", "LF")})

    assert structure(hostile) == structure(plain)
    assert b"\x1bp" not in hostile and b"\x1bd" not in hostile and b"\x1dVA" not in hostile


def test_document_slip_carries_no_command_from_text(tmp_path: Path) -> None:
    doc = DocumentContent(title=HOSTILE, lines=[(HOSTILE, HOSTILE)] * 3, qr_data="000.00.10.H12-210901-0001",
                          footer=HOSTILE)
    program = native_program(document_elements(doc), native_config(tmp_path))
    sim = parsed(program, tmp_path)
    assert sim.unknown == [] and set(sim.commands_seen) <= NATIVE_COMMANDS
    assert "ESC d" not in sim.commands_seen and sim.commands_seen["GS V"] == 1


def test_raster_program_has_only_layout_commands(ticket: TicketContent, tmp_path: Path) -> None:
    config = PrinterConfig(output_dir=str(tmp_path / "r"))
    program = raster_program(RasterLayout(576).blocks(ticket_elements(hostile_ticket(ticket))), config)
    sim = parsed(program, tmp_path)
    assert sim.unknown == [] and set(sim.commands_seen) <= RASTER_COMMANDS
    assert sim.commands_seen["GS V"] == 1 and len(sim.printed) == 1


def test_every_line_is_printable_text(ticket: TicketContent) -> None:
    """Raster mode draws text as pixels, so codes cannot become commands there; format characters
    (bidi overrides, zero-width) would still make the paper differ from what was checked."""
    lines = [e for e in ticket_elements(hostile_ticket(ticket)) if isinstance(e, Line)]
    assert lines
    for line in lines:
        assert not any(unicodedata.category(c)[0] == "C" for c in line.text), ascii(line.text)
    assert lines[0].text == HOSTILE_PRINTED


def test_fields_and_slips_are_capped(ticket: TicketContent, tmp_path: Path) -> None:
    huge = "Trần " * 5000  # 25,000 characters
    lines = [e for e in ticket_elements(hostile_ticket(ticket, huge)) if isinstance(e, Line)]
    assert all(len(line.text) <= MAX_LINE_CHARS for line in lines)
    assert len(lines[0].text) == MAX_FIELD_CHARS and lines[0].text.endswith("…")
    doc = DocumentContent(title="Tra cứu", lines=[("Bước", huge)] * 10_000)
    doc_lines = [e for e in document_elements(doc) if isinstance(e, Line)]
    assert len(doc_lines) == 1 + MAX_DOCUMENT_LINES + 1  # title, the lines, one "…"
    with open_printer(PrinterConfig(output_dir=str(tmp_path / "c"), status_timeout=0.2)) as printer:
        report = printer.print_document(replace(doc, lines=[("Bước", huge)] * 3))
        assert report.png is not None
        from PIL import Image

        with Image.open(report.png) as png:
            assert png.height < 2000  # a capped slip, not metres of paper


@pytest.mark.parametrize("data", ["\ud800", "x" * 70_000])
def test_unprintable_qr_payload_is_refused_before_sending(ticket: TicketContent, tmp_path: Path,
                                                          data: str) -> None:
    with open_printer(native_config(tmp_path)) as printer:
        with pytest.raises(PrinterContentError) as info:
            printer.print_ticket(replace(ticket, qr_data=data))
        assert info.value.code == "printer_content_refused"
        assert printer.simulator is not None and printer.simulator.bytes_received == 0


def test_vietnamese_is_kept_exactly() -> None:
    letters = "".join(vietnamese_letters())
    assert printable(letters, 1000) == letters
    decomposed = unicodedata.normalize("NFD", letters)
    assert printable(decomposed, 1000) == letters
    assert printable("Nguye\u0302\u200b\u0303n") == "Nguyễn"  # a zero-width space between the marks
    assert printable("a" + "\u0301" * 500) == "á\u0301\u0301"  # after NFC, a stack is cut to two


#: Letters a CP1258 printer can print, plus every C0/C1 control and the format characters of the review.
_HOSTILE_ALPHABET = st.sampled_from(
    sorted(
        set("".join(vietnamese_letters()) + "0123456789 ABCxyz:.,-/()")
        | {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)}
        | set("\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")
    )
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(_HOSTILE_ALPHABET, max_size=120))
def test_any_text_in_any_field_sends_only_layout_commands(
    ticket: TicketContent, tmp_path: Path, text: str
) -> None:
    config = native_config(tmp_path)
    program = native_program(ticket_elements(hostile_ticket(ticket, text)), config)
    sim = parsed(program, tmp_path)
    assert sim.unknown == [] and set(sim.commands_seen) <= NATIVE_COMMANDS
    shape = "x" if text else ""  # the same optional lines present (they follow the raw field)
    plain = parsed(native_program(ticket_elements(hostile_ticket(ticket, shape)), config), tmp_path)
    for name in NATIVE_COMMANDS - {"text", "LF", "DLE EOT"}:
        assert sim.commands_seen[name] == plain.commands_seen[name], name
