"""Ticket and slip layout: content -> logical elements -> 1-bit raster blocks (+ native QR).

The layout is decided once, as elements (text lines, rules, spaces, a QR); the raster renderer turns
them into blocks the encoder sends and :func:`preview` composes the same blocks into the image the
paper should show, which is what the virtual printer's PNG is compared against.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from . import fonts
from .model import DocumentContent, TicketContent
from .text import (
    ELLIPSIS,
    MAX_COUNTERS,
    MAX_DOCUMENT_LINES,
    MAX_FIELD_CHARS,
    MAX_LINE_CHARS,
    printable,
    qr_payload,
)

if TYPE_CHECKING:
    from PIL import ImageDraw
    from PIL.Image import Image
    from PIL.ImageFont import FreeTypeFont

Style = Literal["title", "big", "counter", "bold", "body", "small"]
Align = Literal["left", "center"]
LOCAL_TZ = "Asia/Ho_Chi_Minh"
MARGIN = 8  # dots left and right of the text
TAIL = 24  # dots between the last line and the cut, on top of the printer's own head-to-cutter feed
QR_ECC = "M"

#: style -> (weight, pixel size); "big" is drawn at half size and printed 2x2 (GS v 0 m=3)
STYLES: dict[Style, tuple[str, int]] = {
    "title": ("bold", 26),
    "big": ("bold", 80),
    "counter": ("bold", 40),  # where to go: the line a citizen looks for after the number
    "bold": ("bold", 28),
    "body": ("regular", 24),
    "small": ("regular", 20),
}


@dataclass(frozen=True)
class Line:
    """One text element; its text is filtered on construction (``text.printable``), so whoever builds
    a line, raster and native mode only ever see printable text."""

    text: str
    style: Style = "body"
    align: Align = "left"
    framed: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", printable(self.text, MAX_LINE_CHARS))


@dataclass(frozen=True)
class Rule:
    """A thin horizontal line across the text area."""


@dataclass(frozen=True)
class Space:
    dots: int


@dataclass(frozen=True)
class Qr:
    data: str

    def __post_init__(self) -> None:
        qr_payload(self.data)  # refuse at layout time what the encoder could not send

    @property
    def payload(self) -> bytes:
        return qr_payload(self.data)


Element = Line | Rule | Space | Qr


@dataclass(frozen=True)
class RasterBlock:
    """A 1-bit image (PIL mode "1", 0 = ink) of width ``width_dots // scale``, printed at ``scale``."""

    image: Image
    scale: int = 1


@dataclass(frozen=True)
class QrBlock:
    data: bytes
    module_dots: int
    ecc: str = QR_ECC


Block = RasterBlock | QrBlock


def nfc(text: str) -> str:
    """One precomposed code point per Vietnamese letter (see fonts.load)."""
    return unicodedata.normalize("NFC", text)


def _field(text: str | None) -> str:
    """A content field as it may be printed: filtered and cut to MAX_FIELD_CHARS."""
    return printable(text or "", MAX_FIELD_CHARS)


def _waiting_line(content: TicketContent, waiting: int) -> str:
    label = _field(content.label("waiting"))
    try:
        return label.format(n=waiting)
    except (KeyError, IndexError, ValueError, AttributeError):  # a translated label without {n}
        return f"{label} {waiting}"


def _time_line(content: TicketContent, local: datetime) -> str:
    """The issue time; a label with ``{date}`` and ``{time}`` is the whole line ("Ngày {date}, {time}")."""
    label = _field(content.label("time"))
    if "{date}" in label:
        try:
            return label.format(date=f"{local:%d/%m/%Y}", time=f"{local:%H:%M}")
        except (KeyError, IndexError, ValueError, AttributeError):
            pass
    return f"{label}: {local:%H:%M %d/%m/%Y}"


def ticket_elements(content: TicketContent) -> list[Element]:
    """The standard queue ticket, top to bottom."""
    local = content.issued_at.astimezone(ZoneInfo(LOCAL_TZ))
    out: list[Element] = [
        Line(_field(content.center_name), "title", "center"),
        Space(4),
        Rule(),
        Space(6),
        Line(_field(content.label("your_number")), "body", "center"),
        Line(_field(content.number), "big", "center"),
        Line(_field(content.service_name), "bold", "center"),
    ]
    if content.priority_label:
        out += [Space(6), Line(_field(content.priority_label), "bold", "center", framed=True)]
    out.append(Space(10))
    if content.lead:
        out.append(Line(_field(content.lead), "body", "center"))
    if content.counter_text:
        out.append(Line(_field(content.counter_text), "counter", "center"))
    elif content.counters:
        counters = [_field(c) for c in list(content.counters)[:MAX_COUNTERS]]
        if len(content.counters) > MAX_COUNTERS:
            counters.append(ELLIPSIS)
        out.append(Line(f"{_field(content.label('counter'))}: {', '.join(counters)}"))
    if content.waiting_ahead is not None:  # not known (offline issue): not printed at all
        out.append(Line(_waiting_line(content, content.waiting_ahead)))
    if content.notes:
        out.append(Space(6))
        out += [Line(_field(note), "body", "center") for note in content.notes[:MAX_DOCUMENT_LINES]]
    out.append(Line(_time_line(content, local), "body", "center" if content.notes else "left"))
    if content.citizen_name:
        out.append(Line(f"{_field(content.label('citizen'))}: {_field(content.citizen_name)}"))
    if content.qr_data:
        out += [
            Space(14),
            Qr(content.qr_data),
            Space(4),
            Line(_field(content.label("scan_qr")), "small", "center"),
        ]
    if content.footer:
        out += [Space(8), Line(_field(content.footer), "small", "center")]
    out.append(Space(TAIL))
    return out


def document_elements(content: DocumentContent) -> list[Element]:
    """A generic slip: title, label/value lines, optional QR and footer."""
    out: list[Element] = [Line(_field(content.title), "title", "center"), Space(4), Rule(), Space(6)]
    lines = list(content.lines)
    out += [Line(_label_line(label, value)) for label, value in lines[:MAX_DOCUMENT_LINES]]
    if len(lines) > MAX_DOCUMENT_LINES:
        out.append(Line(ELLIPSIS))
    if content.qr_data:
        out += [Space(14), Qr(content.qr_data)]
    if content.footer:
        out += [Space(8), Line(_field(content.footer), "small", "center")]
    out.append(Space(TAIL))
    return out


def _label_line(label: str, value: str) -> str:
    """``Label: value``; a line without a label is its value alone (not ": value")."""
    label = _field(label)
    return f"{label}: {_field(value)}" if label.strip() else _field(value)


def wrap(text: str, fits: Callable[[str], bool]) -> list[str]:
    """Greedy word wrap; a single word too long for a line is cut by characters."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if fits(candidate):
            current = candidate
            continue
        if current:
            lines.append(current)
        while not fits(word) and len(word) > 1:
            # The longest prefix that fits (at least one character), by bisection: a linear search
            # measured a 200-character word ~2,600 times (180 ms); widths grow with the prefix.
            low, high = 1, len(word) - 1
            while low < high:
                middle = (low + high + 1) // 2
                if fits(word[:middle]):
                    low = middle
                else:
                    high = middle - 1
            lines.append(word[:low])
            word = word[low:]
        current = word
    if current or not lines:
        lines.append(current)
    return lines


class RasterLayout:
    """Turns elements into raster and QR blocks for a head ``width_dots`` wide."""

    def __init__(self, width_dots: int, qr_module_dots: int = 6) -> None:
        self.width = width_dots
        self.qr_module_dots = qr_module_dots

    def blocks(self, elements: Iterable[Element]) -> list[Block]:
        out: list[Block] = []
        pending: list[Element] = []

        def flush() -> None:
            if pending:
                out.append(RasterBlock(self._draw(pending)))
                pending.clear()

        for element in elements:
            if isinstance(element, Qr):
                flush()
                out.append(QrBlock(element.payload, self.qr_module_dots))
            elif isinstance(element, Line) and element.style == "big":
                flush()
                out.append(RasterBlock(self._draw_big(element), scale=2))
            else:
                pending.append(element)
        flush()
        return out

    @staticmethod
    def _font(style: Style) -> FreeTypeFont:
        weight, size = STYLES[style]
        return fonts.load(weight, size)

    @staticmethod
    def _line_box(font: FreeTypeFont) -> tuple[int, int]:
        """(baseline offset, line height): room for stacked marks above capitals (Ẫ, Ỗ) and descenders."""
        ascent, descent = font.getmetrics()
        top = -int(font.getbbox("ẪỖỸ", anchor="ls")[1])
        above = max(ascent, top) + 2
        return above, above + descent + 2

    def _lines(self, element: Line) -> list[str]:
        font = self._font(element.style)
        room = self.width - 2 * MARGIN - (16 if element.framed else 0)
        return wrap(nfc(element.text), lambda s: font.getlength(s) <= room)

    def _draw(self, elements: Sequence[Element]) -> Image:
        from PIL import Image as PILImage
        from PIL import ImageDraw

        heights: list[int] = []
        for element in elements:
            if isinstance(element, Space):
                heights.append(element.dots)
            elif isinstance(element, Rule):
                heights.append(2)
            elif isinstance(element, Line):
                _, line_h = self._line_box(self._font(element.style))
                frame = 12 if element.framed else 0
                heights.append(len(self._lines(element)) * line_h + frame)
        img = PILImage.new("1", (self.width, sum(heights)), 1)
        draw = ImageDraw.Draw(img)
        y = 0
        for element, height in zip(elements, heights, strict=True):
            if isinstance(element, Rule):
                draw.rectangle((MARGIN, y, self.width - MARGIN - 1, y + 1), fill=0)
            elif isinstance(element, Line):
                self._draw_line(draw, element, y)
            y += height
        return img

    def _draw_line(self, draw: ImageDraw.ImageDraw, element: Line, y: int) -> None:
        font = self._font(element.style)
        above, line_h = self._line_box(font)
        pad = 6 if element.framed else 0
        texts = self._lines(element)
        widest = 0
        for i, text in enumerate(texts):
            length = int(font.getlength(text))
            widest = max(widest, length)
            x = MARGIN if element.align == "left" else (self.width - length) // 2
            draw.text((x, y + pad + i * line_h + above), text, font=font, fill=0, anchor="ls")
        if element.framed:
            left = (self.width - widest) // 2 - 8
            right = (self.width + widest) // 2 + 8
            draw.rectangle((left, y, right, y + len(texts) * line_h + 2 * pad - 1), outline=0, width=2)

    def _draw_big(self, element: Line) -> Image:
        """The number, drawn at half resolution: a quarter of the bytes, still 160 dots tall on paper."""
        from PIL import Image as PILImage
        from PIL import ImageDraw

        half = self.width // 2
        weight, size = STYLES["big"]
        text = nfc(element.text)
        font = fonts.load(weight, size)
        while font.getlength(text) > half - MARGIN and size > 20:
            size -= 4
            font = fonts.load(weight, size)
        above, line_h = self._line_box(font)
        img = PILImage.new("1", (half, line_h), 1)
        length = int(font.getlength(text))
        ImageDraw.Draw(img).text(((half - length) // 2, above), text, font=font, fill=0, anchor="ls")
        return img


def qr_image(data: bytes, module_dots: int, ecc: str = QR_ECC) -> Image:
    """The QR symbol a printer draws for GS ( k: model 2, byte mode, no quiet zone (the paper is white)."""
    import segno
    from PIL import Image as PILImage

    code = segno.make_qr(data, error=ecc.lower(), boost_error=False)
    size = int(code.symbol_size(scale=module_dots, border=0)[0])
    img = PILImage.new("1", (size, size), 1)
    pixels = img.load()
    assert pixels is not None
    for y, row in enumerate(code.matrix_iter(scale=module_dots, border=0)):
        for x, dark in enumerate(row):
            if dark:
                pixels[x, y] = 0
    return img


def preview(blocks: Sequence[Block], width_dots: int) -> Image:
    """The paper as the layout means it: blocks stacked, rasters scaled, QR centred like ESC a 1."""
    from PIL import Image as PILImage

    parts: list[Image] = []
    for block in blocks:
        if isinstance(block, RasterBlock):
            img = block.image
            if block.scale != 1:
                size = (img.width * block.scale, img.height * block.scale)
                img = img.resize(size, PILImage.Resampling.NEAREST)
            parts.append(img)
        else:
            symbol = qr_image(block.data, block.module_dots, block.ecc)
            row = PILImage.new("1", (width_dots, symbol.height), 1)
            row.paste(symbol, ((width_dots - symbol.width) // 2, 0))
            parts.append(row)
    out = PILImage.new("1", (width_dots, sum(p.height for p in parts)), 1)
    y = 0
    for part in parts:
        out.paste(part, (0, y))
        y += part.height
    return out
