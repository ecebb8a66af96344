"""ESC/POS byte builders and status decoding: the only place that knows command bytes.

Kept apart from python-escpos on purpose: its ``image()`` sends whole-width rasters (blank rows
included), so the layout would cost ~3x the bytes; its QR builder is cross-checked in the tests.
"""

from __future__ import annotations

from collections.abc import Iterator

from .model import PrinterStatus

ESC = b"\x1b"
GS = b"\x1d"
DLE = b"\x10"
EOT = b"\x04"

INIT = ESC + b"@"
#: real-time status requests: 1 printer, 2 offline cause, 4 roll paper sensor
STATUS_QUERY = DLE + EOT + b"\x01" + DLE + EOT + b"\x02" + DLE + EOT + b"\x04"
FULL_CUT_AFTER_FEED = GS + b"V" + b"\x42" + b"\x00"  # GS V 66 0: feed to the cutter, then cut
ALIGN = {"left": ESC + b"a\x00", "center": ESC + b"a\x01", "right": ESC + b"a\x02"}
QR_ECC = {"L": 48, "M": 49, "Q": 50, "H": 51}
MAX_BAND_ROWS = 255  # small bands keep cheap printers' receive buffers from overflowing


def feed(dots: int, units_per_dot: int = 1) -> bytes:
    """ESC J n, split at 255 units: blank paper for the price of 3 bytes."""
    units = dots * units_per_dot
    out = bytearray()
    while units > 0:
        step = min(units, 255)
        out += ESC + b"J" + bytes((step,))
        units -= step
    return bytes(out)


def select_codepage(table: int) -> bytes:
    """ESC t n with the vendor's table number for the configured code page."""
    return ESC + b"t" + bytes((table,))


def char_size(width_mul: int, height_mul: int) -> bytes:
    """GS ! n: character magnification 1..8 in each direction."""
    return GS + b"!" + bytes((((width_mul - 1) & 7) << 4 | ((height_mul - 1) & 7),))


def bold(on: bool) -> bytes:
    return ESC + b"E" + (b"\x01" if on else b"\x00")


def raster(width_bytes: int, height: int, data: bytes, scale: int = 1) -> bytes:
    """GS v 0 m xL xH yL yH d1...dk; ``scale`` 2 prints each dot as 2x2 (m = 3, quadruple)."""
    if len(data) != width_bytes * height:
        raise ValueError(f"raster data is {len(data)} bytes, expected {width_bytes}x{height}")
    mode = 3 if scale == 2 else 0
    return GS + b"v0" + bytes((mode, width_bytes & 0xFF, width_bytes >> 8, height & 0xFF, height >> 8)) + data


def _gs_k(fn: int, payload: bytes) -> bytes:
    """GS ( k pL pH cn fn [payload] with cn = 49 (QR Code)."""
    size = len(payload) + 2
    return GS + b"(k" + bytes((size & 0xFF, size >> 8, 49, fn)) + payload


def qr(data: bytes, module_dots: int, ecc: str = "M") -> bytes:
    """Native QR (model 2): the printer draws it, ~20 bytes of overhead instead of a ~4.5 KB image."""
    return (
        _gs_k(65, b"\x32\x00")  # select model 2
        + _gs_k(67, bytes((module_dots,)))  # module size in dots
        + _gs_k(69, bytes((QR_ECC[ecc],)))  # error correction level
        + _gs_k(80, b"0" + data)  # store data
        + _gs_k(81, b"0")  # print the stored symbol
    )


def raster_bands(
    rows: list[bytes],
    *,
    scale: int = 1,
    units_per_dot: int = 1,
    centering: bool = True,
    head_bytes: int | None = None,
) -> Iterator[bytes]:
    """Encode packed 1-bit rows (MSB = leftmost dot, full head width) as raster bands and feeds.

    Blank rows become ESC J feeds. Each band of inked rows is cut to its ink: to the last inked byte on
    the right (GS v 0 starts at the left edge), or, when ``centering`` and cheaper, to a window symmetric
    about the centre printed with ESC a 1 (HPRT and Epson manuals: "ESC a is effective to raster bit
    image"), which places it exactly where it was since the window is centred on the head (rows must
    span the head: ``len(row) * scale == head_bytes``).
    Ends with ESC a 0 when it changed the alignment.
    """
    i = 0
    n = len(rows)
    centred = False
    stride = len(rows[0]) if rows else 0
    if head_bytes is not None and stride * scale != head_bytes:
        centering = False  # a window is only exact when the picture spans the whole head
    while i < n:
        if not any(rows[i]):
            j = i
            while j < n and not any(rows[j]):
                j += 1
            yield feed((j - i) * scale, units_per_dot)
            i = j
            continue
        j = i
        while j < n and any(rows[j]) and j - i < MAX_BAND_ROWS:
            j += 1
        band = rows[i:j]
        right = max(len(r.rstrip(b"\x00")) for r in band)
        left = min(len(r) - len(r.lstrip(b"\x00")) for r in band)
        margin = min(left, stride - right)
        if centering and stride - 2 * margin < right:
            if not centred:
                yield ALIGN["center"]
                centred = True
            data = b"".join(r[margin : stride - margin] for r in band)
            yield raster(stride - 2 * margin, len(band), data, scale)
        else:
            if centred:
                yield ALIGN["left"]
                centred = False
            yield raster(right, len(band), b"".join(r[:right] for r in band), scale)
        i = j
    if centred:
        yield ALIGN["left"]


def parse_status(answer: bytes) -> PrinterStatus:
    """Decode the three answers to :data:`STATUS_QUERY` (Epson TM bit layout, shared by the clones).

    n=1 bit 3: offline. n=2 bit 2: cover open, bit 5: stopped by paper end. n=4 bits 2-3: near end,
    bits 5-6: paper end. Every answer has bits 1 and 4 set and bits 0 and 7 clear; anything else is
    not a status byte (a stray byte from a real-time command inside raster data on some Epson models).
    """
    if len(answer) < 3 or any((b & 0x93) != 0x12 for b in answer[:3]):
        return PrinterStatus(online=False)
    printer, offline_cause, paper = answer[0], answer[1], answer[2]
    if paper & 0x60 or offline_cause & 0x20:
        paper_state = "out"
    elif paper & 0x0C:
        paper_state = "near_end"
    else:
        paper_state = "ok"
    return PrinterStatus(
        online=not printer & 0x08,
        paper=paper_state,  # type: ignore[arg-type]
        cover_open=bool(offline_cause & 0x04),
    )


def encode_status(status: PrinterStatus) -> bytes:
    """The three bytes a printer in ``status`` answers to :data:`STATUS_QUERY` (used by the simulator)."""
    offline = (not status.online) or status.cover_open or status.paper == "out"
    printer = 0x12 | (0x08 if offline else 0)
    cause = 0x12 | (0x04 if status.cover_open else 0) | (0x20 if status.paper == "out" else 0)
    paper = 0x12 | (0x60 if status.paper == "out" else 0) | (0x0C if status.paper == "near_end" else 0)
    return bytes((printer, cause, paper))
