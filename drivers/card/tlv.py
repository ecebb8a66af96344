"""BER-TLV as used by ISO 7816-4 and ICAO 9303 LDS files: strict parsing, minimal encoding.

Parsing is strict because the bytes come from a card we do not trust yet: every length is checked
against the buffer, and anything that does not fit raises MalformedDataError instead of IndexError.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from drivers.card.errors import MalformedDataError

#: deepest level of an element accepted in a file from the card (the outermost element is level 1).
#: The LDS needs far less (DG13 6D/30/31/30/30/0C is 6, a CMS EF.SOD about 11); a hostile card nesting
#: thousands of levels would otherwise make a recursive parser raise RecursionError.
MAX_DEPTH = 32


@dataclass(frozen=True)
class Tlv:
    """One decoded element; ``tag`` keeps the tag bytes as an int (0x5F1F, 0x6D, ...)."""

    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        first = self.tag
        while first > 0xFF:
            first >>= 8
        return bool(first & 0x20)

    def children(self) -> list[Tlv]:
        return parse_all(self.value)

    def dump(self) -> bytes:
        return encode(self.tag, self.value)


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise MalformedDataError("TLV: tag expected, data ends")
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:  # multi-byte tag: subsequent bytes while b8 is set
        for _ in range(3):
            if pos >= len(data):
                raise MalformedDataError("TLV: tag truncated")
            byte = data[pos]
            tag = (tag << 8) | byte
            pos += 1
            if not byte & 0x80:
                break
        else:
            raise MalformedDataError("TLV: tag longer than 4 bytes")
    return tag, pos


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise MalformedDataError("TLV: length expected, data ends")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0 or count > 4:
        raise MalformedDataError(f"TLV: unsupported length form {first:02X}")
    if pos + count > len(data):
        raise MalformedDataError("TLV: length truncated")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def parse_header(data: bytes) -> tuple[int, int, int]:
    """Tag, header size and value length of the element at the start of ``data``.

    Used by the file reader to learn a file's full size from its first bytes.
    """
    tag, pos = _read_tag(data, 0)
    length, pos = _read_length(data, pos)
    return tag, pos, length


def iter_tlv(data: bytes) -> Iterator[Tlv]:
    pos = 0
    while pos < len(data):
        tag, pos = _read_tag(data, pos)
        length, pos = _read_length(data, pos)
        end = pos + length
        if end > len(data):
            raise MalformedDataError(f"TLV: tag {tag:X} claims {length} bytes, {len(data) - pos} remain")
        yield Tlv(tag, bytes(data[pos:end]))
        pos = end


def parse_all(data: bytes) -> list[Tlv]:
    return list(iter_tlv(data))


def parse_one(data: bytes, expected_tag: int | None = None) -> Tlv:
    """Exactly one element filling ``data`` (trailing bytes are an error)."""
    tag, pos = _read_tag(data, 0)
    length, pos = _read_length(data, pos)
    if pos + length != len(data):
        raise MalformedDataError(f"TLV: tag {tag:X} claims {length} bytes, {len(data) - pos} present")
    if expected_tag is not None and tag != expected_tag:
        raise MalformedDataError(f"TLV: expected tag {expected_tag:X}, found {tag:X}")
    return Tlv(tag, bytes(data[pos:]))


def check_depth(depth: int, what: str = "TLV") -> None:
    """For recursive walks over ``Tlv.children()``: MalformedDataError for elements at a level (the
    outermost element is level 1) deeper than ``MAX_DEPTH``."""
    if depth > MAX_DEPTH:
        raise MalformedDataError(f"{what}: elements nested deeper than {MAX_DEPTH} levels")


def check_nesting(data: bytes, what: str = "TLV", max_depth: int = MAX_DEPTH) -> None:
    """MalformedDataError when an element anywhere in ``data`` sits deeper than ``max_depth`` levels.

    For bytes handed to a library parser that recurses on nesting (asn1crypto's ``.native``): checked
    first, without recursion. It follows more than the strict parser above accepts (tags and lengths of
    any size, BER indefinite lengths), so nothing a library would parse is skipped; it stops quietly only
    where the bytes end or stop being BER, and leaves that verdict to the parser that follows.
    """
    ends: list[int | None] = []  # end offset of each open constructed element, None: indefinite
    pos, size = 0, len(data)
    while pos < size:
        while ends and ends[-1] is not None and pos >= ends[-1]:
            ends.pop()
        if ends and ends[-1] is None and data[pos : pos + 2] == b"\x00\x00":
            ends.pop()  # end-of-contents of an indefinite-length element
            pos += 2
            continue
        if len(ends) >= max_depth:  # this element is at level max_depth + 1
            raise MalformedDataError(f"{what}: elements nested deeper than {max_depth} levels")
        constructed = bool(data[pos] & 0x20)
        if data[pos] & 0x1F == 0x1F:  # high tag number: base-128 bytes while b8 is set
            pos += 1
            while pos < size and data[pos] & 0x80:
                pos += 1
        pos += 1
        if pos >= size:
            return
        first = data[pos]
        pos += 1
        length: int | None
        if first < 0x80:
            length = first
        elif first == 0x80:  # indefinite length: constructed elements only
            if not constructed:
                return
            length = None
        elif first == 0xFF:
            return
        else:
            count = first & 0x7F
            if pos + count > size:
                return
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        if constructed:
            ends.append(None if length is None else pos + length)
        else:
            assert length is not None
            pos += length


def find(data: bytes, tag: int) -> bytes:
    """Value of the first top-level element with ``tag``; MalformedDataError when absent."""
    for item in iter_tlv(data):
        if item.tag == tag:
            return item.value
    raise MalformedDataError(f"TLV: tag {tag:X} missing")


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode_tag(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode(tag: int, value: bytes) -> bytes:
    return encode_tag(tag) + encode_length(len(value)) + value
