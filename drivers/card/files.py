"""Read whole elementary files through a (secure) transport with as few APDUs as possible.

Strategy: READ BINARY with the short file id in P1 at offset 0 asking for a full block (no SELECT; the
SFI read makes the file current, so later blocks use plain offsets). The first block's TLV header gives
the file size, so a file takes ceil(size / block) READ BINARYs. Fallbacks: 6282 (file shorter than Le:
data complete), 6Cxx (card names the right Le), 6700 (wrong length: leave extended length, then
shrink the block), 6A86/6B00/6D00 on an SFI read (card without SFI support: SELECT by file id).
"""

from __future__ import annotations

from drivers.card import tlv
from drivers.card.apdu import (
    SW_DATA_OK,
    SW_END_OF_FILE,
    SW_FILE_NOT_FOUND,
    SW_SECURITY_NOT_SATISFIED,
    SW_WRONG_LENGTH,
    CommandApdu,
)
from drivers.card.errors import MalformedDataError, StatusWordError
from drivers.card.lds import Ef
from drivers.card.sm import max_plain_block
from drivers.card.transport import CardTransport

#: JMRTD's default block (bytes of plaintext per protected short READ BINARY)
JMRTD_BLOCK = 223
SHORT_BLOCK = max_plain_block()  # 231
#: offsets above this need the odd READ BINARY (INS B1) which CCCD files (< 32 KB) never need
MAX_OFFSET = 0x7FFF
_NO_SFI = {0x6A86, 0x6B00, 0x6D00, 0x6A81, 0x6E00}


class FileAccessError(StatusWordError):
    """The card refused a file (6A82 not found, 6982 access denied, e.g. DG3 without EAC)."""


class FileReader:
    """Reads files over ``transport``; remembers what the card does not support, for the session."""

    def __init__(
        self, transport: CardTransport, block: int = SHORT_BLOCK, extended_block: int | None = None
    ) -> None:
        self.transport = transport
        self.block = block
        self.extended_block = extended_block if transport.supports_extended else None
        self.use_sfi = True

    def _le(self, remaining: int | None) -> tuple[int, bool]:
        size = self.extended_block or self.block
        le = size if remaining is None else min(size, remaining)
        return le, self.extended_block is not None and le > self.block

    def _read(self, p1: int, p2: int, remaining: int | None) -> tuple[bytes, int]:
        """One READ BINARY with fallbacks; returns (data, sw)."""
        exact_le_tried = False
        while True:
            le, extended = self._le(remaining)
            answer = self.transport.transmit(CommandApdu(0x00, 0xB0, p1, p2, le=le, extended=extended))
            sw = answer.sw
            if sw in SW_DATA_OK and answer.data:
                return answer.data, sw
            if sw == SW_WRONG_LENGTH:
                if self.extended_block is not None:
                    self.extended_block = None  # the card (or reader) has no extended length after all
                    continue
                if self.block > JMRTD_BLOCK:
                    self.block = JMRTD_BLOCK
                    continue
                if self.block > 0x20:
                    self.block //= 2
                    continue
            if sw & 0xFF00 == 0x6C00 and sw & 0xFF and not exact_le_tried:
                remaining = sw & 0xFF  # the card names the Le it wants, for this read only
                exact_le_tried = True
                continue
            return answer.data, sw

    def read(self, ef: Ef) -> bytes:
        """The whole file; FileAccessError when the card refuses it, MalformedDataError when truncated."""
        data = b""
        sw = 0
        if self.use_sfi:
            data, sw = self._read(0x80 | ef.sfi, 0x00, None)
            if sw in _NO_SFI:
                self.use_sfi = False  # some chips lack SFI support: select by file id from now on
        if not self.use_sfi:
            selected = self.transport.transmit(CommandApdu(0x00, 0xA4, 0x02, 0x0C, ef.fid.to_bytes(2, "big")))
            if selected.sw != 0x9000:
                raise FileAccessError(f"SELECT {ef.name} refused", selected.sw)
            data, sw = self._read(0x00, 0x00, None)
        if sw in (SW_FILE_NOT_FOUND, SW_SECURITY_NOT_SATISFIED) or sw not in SW_DATA_OK:
            raise FileAccessError(f"READ BINARY {ef.name} refused", sw)
        try:
            _tag, header, length = tlv.parse_header(data)
        except MalformedDataError as exc:
            raise MalformedDataError(f"{ef.name}: unreadable TLV header ({exc.message})") from exc
        total = header + length
        while len(data) < total:
            if sw == SW_END_OF_FILE:
                raise MalformedDataError(f"{ef.name}: file ends at {len(data)} of {total} bytes (truncated)")
            offset = len(data)
            if offset > MAX_OFFSET:
                raise MalformedDataError(
                    f"{ef.name}: {total} bytes is beyond what READ BINARY B0 can address"
                )
            chunk, sw = self._read(offset >> 8, offset & 0xFF, total - offset)
            if sw not in SW_DATA_OK:
                raise FileAccessError(f"READ BINARY {ef.name} at {offset} refused", sw)
            if not chunk:
                raise MalformedDataError(f"{ef.name}: card returned no data at offset {offset}")
            data += chunk
        return data[:total]
