"""Every Vietnamese letter with every tone prints: none missing (tofu), none replaced ('?', bare base)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from drivers.printer import DocumentContent, PrinterConfig, TicketPrinter, fonts, open_printer
from drivers.printer.layout import STYLES, Line, RasterLayout, document_elements, preview

from .conftest import vietnamese_letters


def glyph(ch: str, weight: str, size: int) -> bytes:
    """The 1-bit picture of one character as the layout draws it."""
    font = fonts.load(weight, size)
    img = Image.new("1", (size * 2, size * 2), 1)
    ImageDraw.Draw(img).text((size // 2, size * 3 // 2), ch, font=font, fill=0, anchor="ls")
    return img.tobytes()


def test_letter_set_is_complete() -> None:
    letters = vietnamese_letters()
    assert len(letters) == len(set(letters)) == 146
    assert all(len(c) == 1 for c in letters)  # all precomposed


def test_every_letter_has_its_own_glyph_in_every_style() -> None:
    letters = vietnamese_letters()
    for weight, size in sorted(set(STYLES.values())):
        missing = glyph("\ue000", weight, size)  # a private-use code point: the font's .notdef box
        question = glyph("?", weight, size)
        pictures = {c: glyph(c, weight, size) for c in letters}
        assert [c for c, p in pictures.items() if p in (missing, question)] == [], (weight, size)
        # no tone dropped: 146 letters give 146 different pictures (ấ differs from â and from a)
        assert len(set(pictures.values())) == len(letters), (weight, size)


def test_all_letters_print_through_the_virtual_printer(printer: TicketPrinter) -> None:
    letters = vietnamese_letters()
    rows = [("".join(letters[i : i + 12]), "".join(letters[i + 12 : i + 24])) for i in range(0, 144, 24)]
    doc = DocumentContent(title="Bảng chữ cái tiếng Việt", lines=[*rows, ("đ", "Đ")])
    report = printer.print_document(doc)
    want = preview(RasterLayout(printer.config.width_dots).blocks(document_elements(doc)), 576)
    assert report.png is not None
    assert Image.open(report.png).convert("1").tobytes() == want.tobytes()


def test_native_cp1258_reads_back_every_letter(tmp_path: Path) -> None:
    """Native mode: the virtual printer decodes its CP1258 bytes back to exactly the same letters."""
    config = PrinterConfig(output_dir=str(tmp_path), mode="native", native_verified=True)
    letters = vietnamese_letters()
    with open_printer(config) as p:
        p.print_document(DocumentContent(title="".join(letters[:40]), lines=[("x", "".join(letters[40:]))]))
        assert p.simulator is not None
        text = "".join(p.simulator.text_lines).replace(" ", "")
    assert all(c in text for c in letters)
    assert "?" not in text and "\ufffd" not in text


def test_a_line_without_a_label_prints_its_value_alone() -> None:
    """Seen on the dossier slip: ": Quá hạn (trễ 3 ngày)" when the status line had no label."""
    lines = [("", "Quá hạn (trễ 3 ngày)"), ("Mã hồ sơ", "H12-0001")]
    doc = DocumentContent(title="Tình trạng hồ sơ", lines=lines)
    texts = [e.text for e in document_elements(doc) if isinstance(e, Line)]
    assert "Quá hạn (trễ 3 ngày)" in texts and "Mã hồ sơ: H12-0001" in texts
    assert not any(t.startswith(":") for t in texts)
