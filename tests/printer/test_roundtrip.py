"""The virtual printer's PNG, decoded from the ESC/POS bytes, equals the layout's own rendering."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from drivers.printer import DocumentContent, PrinterConfig, TicketContent, TicketPrinter, open_printer
from drivers.printer.layout import RasterLayout, document_elements, preview, ticket_elements
from drivers.printer.transport import escpos_printer


def expected(content: TicketContent | DocumentContent, config: PrinterConfig) -> Image.Image:
    elements = ticket_elements(content) if isinstance(content, TicketContent) else document_elements(content)
    return preview(RasterLayout(config.width_dots, config.qr_module_dots).blocks(elements), config.width_dots)


def assert_same_paper(png: Path | None, want: Image.Image) -> None:
    assert png is not None and png.is_file()
    got = Image.open(png).convert("1")
    assert got.size == want.size
    assert got.tobytes() == want.tobytes(), "printed pixels differ from the layout"


def test_standard_ticket_round_trip(printer: TicketPrinter, ticket: TicketContent) -> None:
    report = printer.print_ticket(ticket)
    assert_same_paper(report.png, expected(ticket, printer.config))
    assert printer.simulator is not None
    assert printer.simulator.unknown == []
    assert report.bytes_sent == len(printer.render(ticket)) < 12_000
    assert report.png is not None
    symbols = zxingcpp.read_barcodes(Image.open(report.png).convert("L"))
    assert [s.text for s in symbols] == [ticket.qr_data]


def test_full_ticket_round_trip_and_qr(printer: TicketPrinter, full_ticket: TicketContent) -> None:
    report = printer.print_ticket(full_ticket)
    assert_same_paper(report.png, expected(full_ticket, printer.config))
    assert report.png is not None
    symbols = zxingcpp.read_barcodes(Image.open(report.png).convert("L"))
    assert [s.text for s in symbols] == [full_ticket.qr_data]


@pytest.mark.parametrize("width", [576, 384])
@pytest.mark.parametrize("centering", [True, False])
def test_widths_and_centering(
    tmp_path: Path, full_ticket: TicketContent, width: int, centering: bool
) -> None:
    config = PrinterConfig(output_dir=str(tmp_path), width_dots=width, raster_centering=centering)
    with open_printer(config) as p:
        report = p.print_ticket(full_ticket)
    assert_same_paper(report.png, expected(full_ticket, config))
    assert report.png is not None and Image.open(report.png).width == width


def test_centering_saves_bytes(tmp_path: Path, ticket: TicketContent) -> None:
    on = open_printer(PrinterConfig(output_dir=str(tmp_path))).render(ticket)
    off = open_printer(PrinterConfig(output_dir=str(tmp_path), raster_centering=False)).render(ticket)
    assert len(on) < len(off)


def test_document_round_trip(printer: TicketPrinter) -> None:
    doc = DocumentContent(
        title="Kết quả tra cứu hồ sơ",
        lines=[
            ("Mã hồ sơ", "000.00.10.H12-210901-0001"),
            ("Thủ tục", "Cấp giấy phép xây dựng nhà ở riêng lẻ"),
            ("Trạng thái", "Đang xử lý"),
            ("Ngày hẹn trả kết quả", "05/12/2026"),
        ],
        qr_data="https://dichvucong.example.vn/h/000.00.10.H12-210901-0001",
        footer="In từ ki-ốt Một Cửa",
    )
    report = printer.print_document(doc)
    assert_same_paper(report.png, expected(doc, printer.config))


def test_long_words_and_empty_optionals(printer: TicketPrinter, ticket: TicketContent) -> None:
    odd = replace(
        ticket,
        center_name="Trung-tâm-Phục-vụ-hành-chính-công-tỉnh-Lâm-Đồng-và-các-xã-trực-thuộc",
        counters=[],
        qr_data=None,
        footer="",
        waiting_ahead=0,
    )
    report = printer.print_ticket(odd)
    assert_same_paper(report.png, expected(odd, printer.config))


def test_python_escpos_full_raster_prints_the_same_paper(
    printer: TicketPrinter, ticket: TicketContent
) -> None:
    """The side-by-side baseline: escpos image() of the same picture, QR included as pixels."""
    want = expected(ticket, printer.config)
    dummy = escpos_printer().Dummy()
    dummy.image(want, impl="bitImageRaster")
    dummy.cut()
    printer.print_raw(b"\x1b@" + dummy.output)
    assert printer.simulator is not None
    png = printer.simulator.last_png
    assert png is not None
    got = Image.open(png).convert("1")
    # escpos' cut() feeds 6 lines before cutting; the picture itself is identical
    assert got.crop((0, 0, want.width, want.height)).tobytes() == want.tobytes()
    assert len(dummy.output) > 3 * len(printer.render(ticket))


def test_decomposed_input_prints_like_precomposed(printer: TicketPrinter, ticket: TicketContent) -> None:
    import unicodedata

    nfd = replace(ticket, service_name=unicodedata.normalize("NFD", "Đăng ký kinh doanh hộ kinh doanh"))
    nfc = replace(ticket, service_name="Đăng ký kinh doanh hộ kinh doanh")
    assert printer.render(nfd) == printer.render(nfc)
