"""Blocks or elements -> the ESC/POS byte program of one ticket (init ... cut)."""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Sequence

from . import commands as cmd
from .errors import PrinterTextError
from .layout import Block, Element, Line, Qr, QrBlock, RasterBlock, Rule, Space, nfc, wrap
from .model import PrinterConfig
from .text import printable

LINE_SPACING = 30  # dots; set explicitly (ESC 3 n) because printers' defaults differ
CELL_W = 12  # font A: 12x24 dots


def packed_rows(image: object) -> list[bytes]:
    """PIL "1" image (0 = ink) -> rows of ESC/POS raster bytes (1 = ink, MSB leftmost)."""
    from PIL.Image import Image

    assert isinstance(image, Image) and image.mode == "1"
    inverted = bytes(b ^ 0xFF for b in image.tobytes())
    stride = (image.width + 7) // 8
    return [inverted[i : i + stride] for i in range(0, len(inverted), stride)]


def raster_program(blocks: Sequence[Block], config: PrinterConfig) -> bytes:
    """Raster mode: text as bands of GS v 0, blank rows as ESC J, QR as GS ( k."""
    out = bytearray(cmd.INIT + cmd.ALIGN["left"])
    for block in blocks:
        if isinstance(block, RasterBlock):
            for chunk in cmd.raster_bands(
                packed_rows(block.image),
                scale=block.scale,
                units_per_dot=config.feed_units_per_dot,
                centering=config.raster_centering,
                head_bytes=config.width_dots // 8,
            ):
                out += chunk
        elif isinstance(block, QrBlock):
            out += cmd.ALIGN["center"] + cmd.qr(block.data, block.module_dots, block.ecc) + cmd.ALIGN["left"]
    out += cmd.FULL_CUT_AFTER_FEED
    return bytes(out)


# --- native text mode ----------------------------------------------------------------------------------


def encode_native(text: str, codepage: str) -> bytes:
    """Vietnamese text in a printer code page; CP1258 has few precomposed toned letters, so a letter it
    lacks is sent as base letter + combining tone mark (ấ -> â + U+0301), which CP1258 printers overlay.
    """
    out = bytearray()
    # Lines are filtered already (layout.Line); this keeps any other caller from sending control codes.
    for ch in printable(text, limit=len(text) + 1):
        try:
            out += ch.encode(codepage)
            continue
        except UnicodeEncodeError:
            pass
        decomposed = unicodedata.normalize("NFD", ch)
        base, marks = decomposed[0], decomposed[1:]
        # Absorb as many marks as the code page has precomposed (ộ -> ô + dot below), send the rest.
        subsets = sorted(
            itertools.chain.from_iterable(
                itertools.combinations(range(len(marks)), k) for k in range(len(marks) + 1)
            ),
            key=len,
            reverse=True,
        )
        for keep in subsets:
            head = unicodedata.normalize("NFC", base + "".join(marks[i] for i in keep))
            rest = "".join(m for i, m in enumerate(marks) if i not in keep)
            try:
                out += head.encode(codepage) + rest.encode(codepage)
                break
            except UnicodeEncodeError:
                continue
        else:
            raise PrinterTextError(
                f"character U+{ord(ch):04X} has no form in code page {codepage}; use raster mode"
            )
    return bytes(out)


def decode_native(data: bytes, codepage: str) -> str:
    """Inverse of :func:`encode_native` (the virtual printer reads its text back with it)."""
    return nfc(data.decode(codepage, errors="replace"))


#: native style -> (width multiplier, height multiplier, bold)
NATIVE_STYLES = {
    "title": (1, 1, True),
    "counter": (2, 2, True),
    "bold": (1, 1, True),
    "body": (1, 1, False),
    "small": (1, 1, False),
}


def native_program(elements: Sequence[Element], config: PrinterConfig) -> bytes:
    """Native mode: the printer's own font in the configured (and verified) Vietnamese code page."""
    columns = config.width_dots // CELL_W
    out = bytearray(cmd.INIT + cmd.select_codepage(config.codepage_table) + b"\x1b3" + bytes((LINE_SPACING,)))
    for element in elements:
        if isinstance(element, Space):
            out += cmd.feed(element.dots, config.feed_units_per_dot)
        elif isinstance(element, Rule):
            out += cmd.ALIGN["left"] + b"-" * columns + b"\n"
        elif isinstance(element, Qr):
            out += cmd.ALIGN["center"] + cmd.qr(element.payload, config.qr_module_dots, "M")
        elif isinstance(element, Line):
            if element.style == "big":
                mul = max(1, min(6, columns // max(1, len(element.text))))
                wmul, hmul, bold = mul, mul, True
            else:
                wmul, hmul, bold = NATIVE_STYLES[element.style]
            per_line = columns // wmul
            out += cmd.ALIGN[element.align] + cmd.char_size(wmul, hmul) + cmd.bold(bold)
            for text in wrap(nfc(element.text), lambda s, n=per_line: len(s) <= n):  # type: ignore[misc]
                out += encode_native(text, config.codepage) + b"\n"
            out += cmd.char_size(1, 1) + cmd.bold(False)
    out += cmd.ALIGN["left"] + cmd.FULL_CUT_AFTER_FEED
    return bytes(out)
