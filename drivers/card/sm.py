"""Secure messaging (ICAO 9303 Part 11, 9.8), 3DES (after BAC or PACE) and AES (after PACE): both sides.

The reader side (``wrap_command``/``unwrap_response``) is used by ``SecureTransport``; the card side
(``unwrap_command``/``wrap_response``) by the virtual chip, so both are tested against each other and
against the worked example of Doc 9303 Part 11 Appendix D. The send sequence counter (SSC) is
incremented before every MAC, on both sides; any MAC failure ends the session.
"""

from __future__ import annotations

from drivers.card import tlv
from drivers.card.apdu import CommandApdu, ResponseApdu
from drivers.card.crypto import (
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    aes_cmac,
    aes_ecb_encrypt,
    mac_equal,
    pad,
    retail_mac,
    tdes_decrypt,
    tdes_encrypt,
    unpad,
)
from drivers.card.errors import SecureMessagingError
from drivers.card.transport import CardTransport

TAG_CRYPTOGRAM = 0x87  # padding-content indicator 01 + ciphertext
TAG_LE = 0x97
TAG_STATUS = 0x99
TAG_MAC = 0x8E


def max_plain_block(extended: bool = False, limit: int | None = None, block: int = 8) -> int:
    """Largest plaintext a protected READ BINARY answer can carry in one response.

    Response = DO87 (tag, length, 01, ciphertext) + DO99 (4) + DO8E (10) must fit 256 bytes (short)
    or ``limit`` bytes (extended). Short APDUs: 231 with 3DES (8-byte blocks), 223 with AES (16-byte
    blocks): JMRTD's 223 is the AES figure, used for both.
    """
    budget = limit if limit is not None else (65536 if extended else 256)
    cipher = (budget // block) * block
    while cipher > 0:
        do87 = len(tlv.encode_tag(TAG_CRYPTOGRAM)) + len(tlv.encode_length(cipher + 1)) + cipher + 1
        if do87 + 4 + 10 <= budget:
            return cipher - 1  # padding always adds at least one byte
        cipher -= block
    return 0


class SmSession:
    """Session keys and SSC of one secure channel; ``cipher`` is "3des" (8-byte SSC) or "aes" (16)."""

    def __init__(self, ks_enc: bytes, ks_mac: bytes, ssc: bytes, cipher: str = "3des") -> None:
        if cipher == "3des" and (len(ks_enc) != 16 or len(ks_mac) != 16 or len(ssc) != 8):
            raise ValueError("3DES SM needs 16-byte keys and an 8-byte SSC")
        if cipher == "aes" and (
            len(ks_enc) not in (16, 24, 32) or len(ks_mac) != len(ks_enc) or len(ssc) != 16
        ):
            raise ValueError("AES SM needs 16/24/32-byte keys and a 16-byte SSC")
        if cipher not in ("3des", "aes"):
            raise ValueError(f"unknown SM cipher {cipher!r}")
        self.cipher = cipher
        self.block = 8 if cipher == "3des" else 16
        self.ks_enc = ks_enc
        self.ks_mac = ks_mac
        self.ssc = int.from_bytes(ssc, "big")

    def _next_ssc(self) -> bytes:
        self.ssc = (self.ssc + 1) % (1 << (8 * self.block))
        return self.ssc.to_bytes(self.block, "big")

    def _mac(self, ssc: bytes, data: bytes) -> bytes:
        message = pad(ssc + data, self.block)
        if self.cipher == "3des":
            return retail_mac(self.ks_mac, message, padded=True)
        return aes_cmac(self.ks_mac, message)[:8]

    def _encrypt(self, ssc: bytes, data: bytes) -> bytes:
        if self.cipher == "3des":
            return tdes_encrypt(self.ks_enc, pad(data))
        return aes_cbc_encrypt(self.ks_enc, pad(data, 16), aes_ecb_encrypt(self.ks_enc, ssc))

    def _decrypt(self, ssc: bytes, data: bytes) -> bytes:
        if self.cipher == "3des":
            return unpad(tdes_decrypt(self.ks_enc, data))
        if len(data) % 16:
            raise SecureMessagingError("secure messaging: ciphertext is not a whole number of blocks")
        return unpad(aes_cbc_decrypt(self.ks_enc, data, aes_ecb_encrypt(self.ks_enc, ssc)))

    def max_plain_block(self, extended: bool = False, limit: int | None = None) -> int:
        return max_plain_block(extended, limit, self.block)

    def wipe(self) -> None:
        self.ks_enc = bytes(len(self.ks_enc))
        self.ks_mac = bytes(len(self.ks_mac))
        self.ssc = 0

    # -- reader side --------------------------------------------------------------------------------
    def wrap_command(self, apdu: CommandApdu) -> CommandApdu:
        ssc = self._next_ssc()
        cla = apdu.cla | 0x0C
        header = pad(bytes([cla, apdu.ins, apdu.p1, apdu.p2]), self.block)
        body = b""
        if apdu.data:
            body += tlv.encode(TAG_CRYPTOGRAM, b"\x01" + self._encrypt(ssc, apdu.data))
        extended = apdu.extended or (apdu.le is not None and apdu.le > 256)
        if apdu.le is not None:
            le = apdu.le & (0xFFFF if extended else 0xFF)
            body += tlv.encode(TAG_LE, le.to_bytes(2 if extended else 1, "big"))
        body += tlv.encode(TAG_MAC, self._mac(ssc, header + body))
        return CommandApdu(cla, apdu.ins, apdu.p1, apdu.p2, body, 65536 if extended else 256, extended)

    def unwrap_response(self, response: ResponseApdu) -> ResponseApdu:
        ssc = self._next_ssc()
        if not response.data:
            # A bare status word: the card aborted secure messaging (6987/6988) or refused the command
            # without protection. The SSC still advances, as the card's did.
            if response.sw == 0x9000:
                raise SecureMessagingError("secure messaging: unprotected 9000 answer")
            if response.sw in (0x6987, 0x6988):
                raise SecureMessagingError(f"secure messaging: the card rejected our MAC ({response.sw:04X})")
            return response
        objects = {item.tag: item.value for item in tlv.iter_tlv(response.data)}
        if TAG_MAC not in objects or TAG_STATUS not in objects:
            raise SecureMessagingError("secure messaging: response lacks DO99 or DO8E")
        macced = b"".join(
            tlv.encode(tag, objects[tag]) for tag in (TAG_CRYPTOGRAM, TAG_STATUS) if tag in objects
        )
        if not mac_equal(self._mac(ssc, macced), objects[TAG_MAC]):
            raise SecureMessagingError("secure messaging: response MAC does not verify")
        status = objects[TAG_STATUS]
        if len(status) != 2:
            raise SecureMessagingError("secure messaging: DO99 is not two bytes")
        data = b""
        if TAG_CRYPTOGRAM in objects:
            crypto = objects[TAG_CRYPTOGRAM]
            if not crypto or crypto[0] != 0x01:
                raise SecureMessagingError("secure messaging: DO87 lacks padding indicator 01")
            data = self._decrypt(ssc, crypto[1:])
        return ResponseApdu(data, int.from_bytes(status, "big"))

    # -- card side (virtual chip) -------------------------------------------------------------------
    def unwrap_command(self, apdu: CommandApdu) -> CommandApdu:
        ssc = self._next_ssc()
        if apdu.cla & 0x0C != 0x0C:
            raise SecureMessagingError("secure messaging: command not protected")
        objects = {item.tag: item.value for item in tlv.iter_tlv(apdu.data)}
        if TAG_MAC not in objects:
            raise SecureMessagingError("secure messaging: command lacks DO8E")
        header = pad(bytes([apdu.cla, apdu.ins, apdu.p1, apdu.p2]), self.block)
        macced = b"".join(tlv.encode(t, objects[t]) for t in (TAG_CRYPTOGRAM, TAG_LE) if t in objects)
        if not mac_equal(self._mac(ssc, header + macced), objects[TAG_MAC]):
            raise SecureMessagingError("secure messaging: command MAC does not verify")
        data = b""
        if TAG_CRYPTOGRAM in objects:
            data = self._decrypt(ssc, objects[TAG_CRYPTOGRAM][1:])
        le: int | None = None
        if TAG_LE in objects:
            raw_le = int.from_bytes(objects[TAG_LE], "big")
            le = raw_le or (65536 if len(objects[TAG_LE]) == 2 else 256)
        return CommandApdu(apdu.cla & ~0x0C & 0xFF, apdu.ins, apdu.p1, apdu.p2, data, le, apdu.extended)

    def wrap_response(self, response: ResponseApdu, *, corrupt_mac: bool = False) -> ResponseApdu:
        ssc = self._next_ssc()
        body = b""
        if response.data:
            body += tlv.encode(TAG_CRYPTOGRAM, b"\x01" + self._encrypt(ssc, response.data))
        body += tlv.encode(TAG_STATUS, response.sw.to_bytes(2, "big"))
        mac = self._mac(ssc, body)
        if corrupt_mac:
            mac = bytes([mac[0] ^ 0x01]) + mac[1:]
        return ResponseApdu(body + tlv.encode(TAG_MAC, mac), response.sw)


class SecureTransport(CardTransport):
    """A transport that protects every APDU of the inner one; installed after access control."""

    def __init__(self, inner: CardTransport, session: SmSession) -> None:
        super().__init__()
        self.inner = inner
        self.session = session
        self.supports_extended = inner.supports_extended
        self.stats = inner.stats  # one count per physical APDU

    def transmit(self, apdu: CommandApdu) -> ResponseApdu:
        protected = self.session.wrap_command(apdu)
        return self.session.unwrap_response(self.inner.transmit(protected))

    def _raw(self, apdu: bytes) -> bytes:  # pragma: no cover - transmit is overridden
        raise NotImplementedError

    def close(self) -> None:
        self.session.wipe()
        self.inner.close()
