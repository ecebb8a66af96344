"""Properties: any 1-bit picture survives band encoding + the virtual printer's decoding, however the
bytes are split on the wire."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from drivers.printer import VirtualPrinter
from drivers.printer import commands as cmd

WIDTH = 128  # dots: 16 bytes per row keeps examples small
STRIDE = WIDTH // 8

row = st.one_of(
    st.just(bytes(STRIDE)),  # blank rows are common on tickets
    st.binary(min_size=STRIDE, max_size=STRIDE),
    st.integers(0, STRIDE - 1).map(lambda i: bytes(i) + b"\x81" + bytes(STRIDE - i - 1)),
)


def printed_rows(program: bytes, chunks: list[int]) -> list[bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        vp = VirtualPrinter(Path(tmp), width_dots=WIDTH)
        pos = 0
        for size in chunks:
            vp.receive(program[pos : pos + size])
            pos += size
        vp.receive(program[pos:])
        assert vp.unknown == []
        if not vp.printed:
            return []
        raw = Image.open(vp.printed[0]).convert("1").tobytes()
    return [bytes(v ^ 0xFF for v in raw[i : i + STRIDE]) for i in range(0, len(raw), STRIDE)]


def upscale(rows: list[bytes], scale: int) -> list[bytes]:
    """What the head prints for ``rows`` under GS v 0 m=3: every dot 2x2."""
    width = len(rows[0]) * 8
    img = Image.frombytes("1", (width, len(rows)), b"".join(bytes(v ^ 0xFF for v in r) for r in rows))
    img = img.resize((width * scale, len(rows) * scale), Image.Resampling.NEAREST)
    raw = img.tobytes()
    stride = width * scale // 8
    return [bytes(v ^ 0xFF for v in raw[i : i + stride]) for i in range(0, len(raw), stride)]


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(row, min_size=1, max_size=300),
    centering=st.booleans(),
    scale=st.sampled_from([1, 2]),
    chunks=st.lists(st.integers(1, 40), max_size=30),
)
def test_bands_round_trip_through_the_virtual_printer(
    rows: list[bytes], centering: bool, scale: int, chunks: list[int]
) -> None:
    rows = [r[: STRIDE // scale] for r in rows]  # a scale-2 picture is half the head wide
    bands = cmd.raster_bands(rows, scale=scale, centering=centering, head_bytes=STRIDE)
    program = b"\x1b@" + b"".join(bands)
    program += b"\x1bJ\x01" + cmd.FULL_CUT_AFTER_FEED  # one fed row so an all-blank picture still cuts
    assert printed_rows(program, chunks) == [*upscale(rows, scale), bytes(STRIDE)]


def test_centring_is_refused_when_the_picture_does_not_span_the_head() -> None:
    narrow = [bytes(3) + b"\x18\x18" + bytes(3)]  # 8 bytes wide on a 16-byte head
    assert b"".join(cmd.raster_bands(narrow, head_bytes=16)) == b"\x1dv0\x00\x05\x00\x01\x00" + narrow[0][:5]


# Opcodes the interpreter knows, so random programs reach its branches and not only "unknown byte".
_fragment = st.one_of(
    st.binary(max_size=12),
    # a function of GS ( k with a length that fits its body: reaches the QR functions' arguments
    st.binary(max_size=6).map(lambda body: b"\x1d(k" + bytes((len(body), 0)) + body),
    st.sampled_from([b"\x1b", b"\x1d", b"\x10", b"\x1d(k", b"\x1dv0", b"\x1dV", b"\x1b@", b"\n"]).flatmap(
        lambda head: st.binary(max_size=10).map(lambda tail: head + tail)
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_fragment, max_size=12), st.integers(1, 7))
def test_any_bytes_are_interpreted_without_an_exception(fragments: list[bytes], split: int) -> None:
    """Seen: ``GS ( k`` with a one-byte body raised IndexError inside the simulator, which ended the
    virtual printer's serial thread. Whatever arrives, however split, ``receive`` returns."""
    program = b"".join(fragments)
    with tempfile.TemporaryDirectory() as tmp:
        vp = VirtualPrinter(Path(tmp), width_dots=WIDTH)
        for start in range(0, len(program), split):
            vp.receive(program[start : start + split])
        assert vp.bytes_received == len(program)


def test_short_and_out_of_range_qr_commands_are_ignored() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vp = VirtualPrinter(Path(tmp), width_dots=WIDTH)
        for body in (b"1", b"1E", b"1E\x07", b"1C\x00", b"1C\xff", b"1Q0"):
            vp.receive(b"\x1d(k" + bytes((len(body), 0)) + body)
        big = b"1P0" + b"x" * 8000  # more than a QR symbol holds, then print it
        vp.receive(b"\x1d(k" + bytes((len(big) & 0xFF, len(big) >> 8)) + big + b"\x1d(k\x03\x001Q0")
        assert len(vp.unknown) >= 5
        vp.receive(b"\x1b@OK\n\x1dV\x00")
        assert len(vp.printed) == 1
