"""Exact ESC/POS bytes: our builders, cross-checked against python-escpos where it has the command."""

from __future__ import annotations

import subprocess

import pytest

from drivers.printer import PrinterConfig, PrinterStatus, TicketContent
from drivers.printer import commands as cmd
from drivers.printer.encode import encode_native, native_program
from drivers.printer.layout import ticket_elements
from drivers.printer.transport import escpos_printer

from .conftest import vietnamese_letters


def test_feed_splits_at_255_units() -> None:
    assert cmd.feed(10) == b"\x1bJ\x0a"
    assert cmd.feed(300) == b"\x1bJ\xff\x1bJ\x2d"
    assert cmd.feed(130, units_per_dot=2) == b"\x1bJ\xff\x1bJ\x05"
    assert cmd.feed(0) == b""


def test_raster_header_and_quadruple_mode() -> None:
    assert cmd.raster(2, 1, b"\xff\x01") == b"\x1dv0\x00\x02\x00\x01\x00\xff\x01"
    assert cmd.raster(1, 2, b"\x80\x80", scale=2) == b"\x1dv0\x03\x01\x00\x02\x00\x80\x80"
    with pytest.raises(ValueError):
        cmd.raster(2, 2, b"\x00")


def test_qr_bytes_equal_python_escpos_native_qr() -> None:
    data = "https://motcua.example.vn/t/79-0001/B023"
    ours = cmd.qr(data.encode(), 6, "M")
    assert ours == (
        b"\x1d(k\x04\x001A2\x00"
        b"\x1d(k\x03\x001C\x06"
        b"\x1d(k\x03\x001E1"
        + b"\x1d(k"
        + bytes((len(data) + 3, 0))
        + b"1P0"
        + data.encode()
        + b"\x1d(k\x03\x001Q0"
    )
    escpos = escpos_printer()
    from escpos.constants import QR_ECLEVEL_M

    dummy = escpos.Dummy()
    dummy.qr(data, ec=QR_ECLEVEL_M, size=6, native=True)
    assert dummy.output == ours


def test_full_width_band_equals_python_escpos_image() -> None:
    from PIL import Image

    img = Image.new("1", (16, 3), 1)
    for x, y in ((0, 0), (15, 0), (3, 1), (8, 2), (15, 2)):
        img.putpixel((x, y), 0)
    rows = [bytes(v ^ 0xFF for v in img.tobytes()[i * 2 : i * 2 + 2]) for i in range(3)]
    ours = b"".join(cmd.raster_bands(rows))
    assert ours == b"\x1dv0\x00\x02\x00\x03\x00\x80\x01\x10\x00\x00\x81"
    dummy = escpos_printer().Dummy()
    dummy.image(img, impl="bitImageRaster")
    assert dummy.output == ours


def test_bands_feed_blank_rows_trim_right_and_centre() -> None:
    stride = 8
    blank = bytes(stride)
    left = b"\xf0" + bytes(stride - 1)  # ink in the first byte only
    middle = bytes(3) + b"\x18\x18" + bytes(3)  # ink in bytes 3-4: a centred line
    out = b"".join(cmd.raster_bands([blank, blank, left, blank, middle, middle]))
    assert out == (
        b"\x1bJ\x02"  # two blank rows: a feed
        + b"\x1dv0\x00\x01\x00\x01\x00\xf0"  # cut to its last inked byte
        + b"\x1bJ\x01"
        + b"\x1ba\x01"  # centred window of bytes 3..4
        + b"\x1dv0\x00\x02\x00\x02\x00\x18\x18\x18\x18"
        + b"\x1ba\x00"
    )
    no_centre = b"".join(cmd.raster_bands([middle], centering=False))
    assert no_centre == b"\x1dv0\x00\x05\x00\x01\x00" + middle[:5]


@pytest.mark.parametrize(
    "status",
    [
        PrinterStatus(online=True),
        PrinterStatus(online=True, paper="near_end"),
        PrinterStatus(online=False, paper="out"),
        PrinterStatus(online=False, cover_open=True),
        PrinterStatus(online=False, paper="out", cover_open=True),
    ],
)
def test_status_bytes_round_trip(status: PrinterStatus) -> None:
    assert cmd.parse_status(cmd.encode_status(status)) == status


def test_status_bytes_match_python_escpos_masks() -> None:
    from escpos import constants as c

    escpos_printer()
    assert cmd.encode_status(PrinterStatus(online=True))[2] == c.RT_MASK_PAPER
    assert cmd.encode_status(PrinterStatus(online=True, paper="near_end"))[2] == c.RT_MASK_LOWPAPER
    assert cmd.encode_status(PrinterStatus(online=False, paper="out"))[2] == c.RT_MASK_NOPAPER
    assert cmd.encode_status(PrinterStatus(online=True))[0] & c.RT_MASK_ONLINE == 0


def test_silence_or_garbage_is_offline() -> None:
    assert cmd.parse_status(b"").problem == "offline"
    assert cmd.parse_status(b"\x12\x12").problem == "offline"
    assert cmd.parse_status(b"\xff\x12\x12").problem == "offline"  # not a status byte
    assert cmd.parse_status(b"\x12\x12\x12").problem is None


def iconv_cp1258(text: str) -> bytes:
    """glibc's CP1258 converter: an independent encoder (it decomposes toned letters itself)."""
    return subprocess.run(
        ["iconv", "-f", "UTF-8", "-t", "CP1258"], input=text.encode(), capture_output=True, check=True
    ).stdout


def test_cp1258_sends_base_letter_plus_tone_mark() -> None:
    # CP1258: â = E2, ô = F4, ơ = F5, combining acute = EC, tilde = DE, dot below = F2, đ = F0
    assert encode_native("ấ", "cp1258") == b"\xe2\xec"
    assert encode_native("ộ", "cp1258") == b"\xf4\xf2"
    assert encode_native("Xã", "cp1258") == b"Xa\xde"
    assert encode_native("Đơn", "cp1258") == b"\xd0\xf5n"
    assert encode_native("á", "cp1258") == b"\xe1"  # precomposed where the code page has it


def test_cp1258_matches_glibc_iconv_for_every_letter() -> None:
    letters = "".join(vietnamese_letters())
    assert encode_native(letters, "cp1258") == iconv_cp1258(letters)


def test_native_program_exact_bytes(ticket: TicketContent) -> None:
    from dataclasses import replace

    t = replace(ticket, center_name="UBND Xã Tân Hội", qr_data=None, footer="", counters=["5"])
    config = PrinterConfig(mode="native", native_verified=True, width_dots=384)
    program = native_program(ticket_elements(t), config)
    v = iconv_cp1258
    reset = b"\x1d!\x00\x1bE\x00"
    # fmt: off
    assert program == (
        b"\x1b@\x1bt\x34\x1b3\x1e"  # init, code page 52 (CP1258), line spacing 30
        + b"\x1ba\x01\x1d!\x00\x1bE\x01" + v("UBND Xã Tân Hội") + b"\n" + reset
        + b"\x1bJ\x04"
        + b"\x1ba\x00" + b"-" * 32 + b"\n"  # rule: 384 / 12 columns
        + b"\x1bJ\x06"
        + b"\x1ba\x01\x1d!\x00\x1bE\x00" + v("Số thứ tự của quý khách") + b"\n" + reset
        + b"\x1ba\x01\x1d!\x55\x1bE\x01B023\n" + reset  # 6x6 magnified number
        + b"\x1ba\x01\x1d!\x00\x1bE\x01" + v("Hộ tịch") + b"\n" + reset
        + b"\x1bJ\x0a"
        + b"\x1ba\x00\x1d!\x00\x1bE\x00" + v("Quầy: 5") + b"\n" + reset
        + b"\x1ba\x00\x1d!\x00\x1bE\x00" + v("Đang chờ: 12 người") + b"\n" + reset
        + b"\x1ba\x00\x1d!\x00\x1bE\x00" + v("Thời gian: 09:41 23/11/2026") + b"\n" + reset
        + b"\x1bJ\x18"  # tail before the cut
        + b"\x1ba\x00\x1dVB\x00"  # feed to the cutter and cut
    )
    # fmt: on


def test_unknown_waiting_count_is_left_out(ticket: TicketContent) -> None:
    from dataclasses import replace

    config = PrinterConfig(mode="native", native_verified=True)
    known = native_program(ticket_elements(ticket), config)
    unknown = native_program(ticket_elements(replace(ticket, waiting_ahead=None)), config)
    waiting = encode_native("Đang chờ: 12 người", "cp1258")
    assert waiting in known
    assert encode_native("Đang chờ", "cp1258") not in unknown
    assert len(known) - len(unknown) == len(
        b"\x1ba\x00\x1d!\x00\x1bE\x00" + waiting + b"\n\x1d!\x00\x1bE\x00"
    )
