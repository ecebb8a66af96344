"""Command and response APDUs (ISO/IEC 7816-4), short and extended length, as plain values."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.card.errors import CardProtocolError

SW_OK = 0x9000
SW_END_OF_FILE = 0x6282  # end of file reached before Le bytes: data is complete
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_NOT_SATISFIED = 0x6982
SW_AUTH_FAILED = 0x6300
SW_SM_MISSING = 0x6987
SW_SM_INCORRECT = 0x6988
SW_FILE_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00

#: READ BINARY answers that carry (some of) the data
SW_DATA_OK = frozenset({SW_OK, SW_END_OF_FILE})


@dataclass(frozen=True)
class CommandApdu:
    """One command. ``le`` is the expected response length (None: no Le; 256 or 65536 mean "all")."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def encode(self) -> bytes:
        header = bytes([self.cla, self.ins, self.p1, self.p2])
        ext = self.extended or len(self.data) > 255 or (self.le is not None and self.le > 256)
        body = b""
        if ext:
            if self.data:
                body += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                le = self.le & 0xFFFF  # 65536 encodes as 0000
                body += le.to_bytes(2, "big") if self.data else b"\x00" + le.to_bytes(2, "big")
        else:
            if self.data:
                body += bytes([len(self.data)]) + self.data
            if self.le is not None:
                body += bytes([self.le & 0xFF])  # 256 encodes as 00
        return header + body

    @classmethod
    def decode(cls, raw: bytes) -> CommandApdu:
        """Parse the four ISO 7816-3 cases, short and extended (the virtual chip's side)."""
        if len(raw) < 4:
            raise CardProtocolError("APDU shorter than its header")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or 256)
        if body[0] != 0 or len(body) == 2:
            lc = body[0]
            if lc == 0:
                raise CardProtocolError("short APDU with Lc 0")
            data = body[1 : 1 + lc]
            rest = body[1 + lc :]
            if len(data) != lc or len(rest) > 1:
                raise CardProtocolError("short APDU length does not match Lc")
            return cls(cla, ins, p1, p2, data, (rest[0] or 256) if rest else None)
        # extended
        if len(body) == 3:
            return cls(cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or 65536, extended=True)
        lc = int.from_bytes(body[1:3], "big")
        data = body[3 : 3 + lc]
        rest = body[3 + lc :]
        if len(data) != lc or lc == 0 or len(rest) not in (0, 2):
            raise CardProtocolError("extended APDU length does not match Lc")
        le = (int.from_bytes(rest, "big") or 65536) if rest else None
        return cls(cla, ins, p1, p2, data, le, extended=True)


@dataclass(frozen=True)
class ResponseApdu:
    data: bytes
    sw: int

    @classmethod
    def decode(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise CardProtocolError(f"response of {len(raw)} bytes has no status word")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK
