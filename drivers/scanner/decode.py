"""Frame decoding with zxing-cpp or zbar, returning exact text from the symbol's raw bytes.

zbar guesses the charset of byte-mode QR codes and gets short Vietnamese payloads wrong (UTF-8 read
as Shift-JIS/Big5: "Đức" came back as "ﾄ雪ｻｩc" here), so zbar runs in binary mode (ZBAR_CFG_BINARY,
zbar >= 0.23) and we decode the bytes ourselves. One rule for both decoders: strict UTF-8 if the bytes
are valid UTF-8 (multi-byte UTF-8 by accident is vanishingly rare), else ISO-8859-1, the QR default
charset that segno and others use when every character fits in it ("Bích" arrives as b"B\\xedch").
zxing-cpp's own text is used only when the symbol declares an ECI charset (symbology id ]Q2).
"""

from __future__ import annotations

import ctypes
import unicodedata
from contextlib import suppress
from dataclasses import dataclass
from typing import Literal, Protocol

from PIL.Image import Image as Frame

from drivers.scanner.errors import ScannerError

DecoderName = Literal["zxing", "zbar"]

#: zbar's ``zbar_config_t`` value of ZBAR_CFG_BINARY (zbar.h of 0.23; pyzbar 0.1.9 predates it).
ZBAR_CFG_BINARY = 4
_ZBAR_CFG_ENABLE = 0
_ZBAR_FOURCC_Y800 = 808466521
#: zbar symbol types we enable: QR on receipts, Code 128/39 on older receipts and tickets.
_ZBAR_SYMBOLS = {64: "QRCode", 128: "Code128", 39: "Code39"}


@dataclass(frozen=True)
class Decoded:
    """One symbol found in a frame: exact text (NFC), the raw bytes, and the symbology name."""

    text: str
    raw: bytes
    symbology: str


def bytes_to_text(raw: bytes) -> str:
    """The payload as text: strict UTF-8, else ISO-8859-1 (the QR default); NFC-normalised."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    return unicodedata.normalize("NFC", text.removeprefix("\ufeff"))


class FrameDecoder(Protocol):
    name: str

    def decode(self, frame: Frame) -> list[Decoded]: ...


class ZxingDecoder:
    """zxing-cpp; the faster path (docs/lookup.md has the numbers)."""

    name = "zxing"

    def __init__(self) -> None:
        try:
            import zxingcpp
        except ImportError as exc:  # the venv lacks zxing-cpp: a setup error, say so
            raise ScannerError(f"decoder 'zxing' needs the zxing-cpp package: {exc}") from exc
        self._zx = zxingcpp
        # Kept as text: a BarcodeFormats object alive at interpreter exit makes nanobind print leak
        # warnings; converting per frame costs microseconds.
        self._formats = "QRCode,Code128,Code39"

    def decode(self, frame: Frame) -> list[Decoded]:
        grey = frame if frame.mode == "L" else frame.convert("L")
        results = []
        for barcode in self._zx.read_barcodes(
            grey, formats=self._zx.barcode_formats_from_str(self._formats), try_rotate=True
        ):
            raw = bytes(barcode.bytes)
            if barcode.symbology_identifier == "]Q2":
                text = unicodedata.normalize("NFC", barcode.text)  # ECI: the symbol names its charset
            else:
                text = bytes_to_text(raw)
            results.append(Decoded(text, raw, barcode.format.name))
        return results


class ZbarDecoder:
    """zbar through pyzbar's ctypes bindings, with binary mode on (see module docstring).

    One zbar image scanner is created per decoder and reused for every frame; a decoder is used by
    one worker thread only.
    """

    name = "zbar"

    def __init__(self) -> None:
        try:
            from pyzbar import wrapper
        except ImportError as exc:  # libzbar0 missing raises ImportError from pyzbar
            raise ScannerError(f"decoder 'zbar' needs pyzbar and libzbar0: {exc}") from exc
        self._w = wrapper
        self._scanner = wrapper.zbar_image_scanner_create()
        if not self._scanner:
            raise ScannerError("zbar could not create an image scanner")
        wrapper.zbar_image_scanner_set_config(self._scanner, 0, _ZBAR_CFG_ENABLE, 0)  # all off
        for symbol in _ZBAR_SYMBOLS:
            wrapper.zbar_image_scanner_set_config(self._scanner, symbol, _ZBAR_CFG_ENABLE, 1)
        if wrapper.zbar_image_scanner_set_config(self._scanner, 64, ZBAR_CFG_BINARY, 1) != 0:
            raise ScannerError("this zbar has no binary mode (needs libzbar >= 0.23): Vietnamese "
                               "QR text would be garbled; use decoder = 'zxing'")

    def decode(self, frame: Frame) -> list[Decoded]:
        w = self._w
        grey = frame if frame.mode == "L" else frame.convert("L")
        width, height = grey.size
        pixels = grey.tobytes()
        image = w.zbar_image_create()
        if not image:
            raise ScannerError("zbar could not create an image")
        results = []
        try:
            w.zbar_image_set_format(image, _ZBAR_FOURCC_Y800)
            w.zbar_image_set_size(image, width, height)
            data = ctypes.cast(ctypes.c_char_p(pixels), ctypes.c_void_p)  # no copy; pixels outlives it
            w.zbar_image_set_data(image, data, len(pixels), None)
            if w.zbar_scan_image(self._scanner, image) < 0:
                raise ScannerError("zbar rejected the frame format")
            symbol = w.zbar_image_first_symbol(image)
            while symbol:
                raw = ctypes.string_at(w.zbar_symbol_get_data(symbol), w.zbar_symbol_get_data_length(symbol))
                name = _ZBAR_SYMBOLS.get(symbol.contents.type, f"zbar-{symbol.contents.type}")
                results.append(Decoded(bytes_to_text(raw), raw, name))
                symbol = w.zbar_symbol_next(symbol)
        finally:
            w.zbar_image_destroy(image)
        return results

    def close(self) -> None:
        if self._scanner:
            with suppress(Exception):
                self._w.zbar_image_scanner_destroy(self._scanner)
            self._scanner = None

    def __del__(self) -> None:
        self.close()


def make_decoder(name: DecoderName) -> FrameDecoder:
    if name == "zxing":
        return ZxingDecoder()
    if name == "zbar":
        return ZbarDecoder()
    raise ScannerError(f"unknown decoder {name!r}; expected 'zxing' or 'zbar'")
