"""The APDU engine of the virtual CCCD: eMRTD application, BAC, secure messaging, READ BINARY, AA.

It answers the way the design note says real CCCDs do (6D00 for a master-file SELECT, 6982 on DG3,
6A82 for files it lacks) and can be told to misbehave (``CardFaults``) for the failure paths.
Card-side only; the reader never imports this module.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from drivers.card import lds
from drivers.card.apdu import (
    SW_AUTH_FAILED,
    SW_END_OF_FILE,
    SW_FILE_NOT_FOUND,
    SW_INS_NOT_SUPPORTED,
    SW_OK,
    SW_SECURITY_NOT_SATISFIED,
    SW_SM_INCORRECT,
    SW_SM_MISSING,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    CommandApdu,
    ResponseApdu,
)
from drivers.card.bac import BacKeys, session_from_exchange
from drivers.card.crypto import mac_equal, retail_mac, tdes_decrypt, tdes_encrypt
from drivers.card.errors import CardError
from drivers.card.keys import AccessKey
from drivers.card.sm import SmSession, max_plain_block

SW_FUNC_NOT_SUPPORTED = 0x6A81
SW_INCORRECT_P1P2 = 0x6A86


@dataclass
class CardFaults:
    """Switches that make the virtual chip misbehave like worn, hostile or slow cards."""

    bad_mac: bool = False  # corrupt the MAC of every protected response
    alter_dg13: bool = False  # DG13 changed after the SOD was signed: "data altered"
    remove_after_apdus: int | None = None  # the card leaves the field when this APDU arrives (once)
    delay_s: float = 0.0  # slow card: wait this long before every answer
    not_id_card: bool = False  # no eMRTD application: SELECT answers 6A82 (a bank or bus card)
    truncate_dg13: bool = False  # DG13 ends before its TLV length says (a torn write)
    bad_tlv_dg13: bool = False  # DG13's inner TLV lengths are garbage (the SOD is signed over them)
    no_sfi: bool = False  # READ BINARY with a short file id answers 6A86 (SELECT needed)
    no_extended: bool = False  # extended-length APDUs answer 6700

    def active(self) -> list[str]:
        return [name for name, value in vars(self).items() if value not in (False, None, 0.0)]


class CardVanished(Exception):
    """Raised by the engine to tell the vpcd link to drop the connection (card removed)."""


class VirtualChip:
    """State of one powered-up chip. ``process`` takes APDU bytes and returns response bytes."""

    #: largest plain response with extended length; real chips have buffers of 1-4 KB, vpcd passes 64 KB
    EXTENDED_BUFFER = 65536

    def __init__(
        self,
        files: dict[int, bytes],
        access_key: AccessKey,
        aa_key: ec.EllipticCurvePrivateKey,
        faults: CardFaults | None = None,
        can: str | None = None,
    ) -> None:
        self.files = dict(files)
        self.faults = faults or CardFaults()
        self._keys = BacKeys.from_access_key(access_key)
        self._aa_key = aa_key
        self.can = can
        self.apdu_count = 0
        self._removed_once = False
        self.reset()

    def reset(self) -> None:
        """Power-up state: nothing selected, no challenge, no secure channel."""
        self._app_selected = False
        self._current: int | None = None
        self._challenge: bytes | None = None
        self._sm: SmSession | None = None

    # ---------------------------------------------------------------------------------------------
    def process(self, raw: bytes) -> bytes:
        self.apdu_count += 1
        faults = self.faults
        if (
            faults.remove_after_apdus
            and self.apdu_count >= faults.remove_after_apdus
            and not self._removed_once
        ):
            self._removed_once = True
            raise CardVanished()
        if faults.delay_s:
            time.sleep(faults.delay_s)
        try:
            apdu = CommandApdu.decode(raw)
        except CardError:
            return SW_WRONG_LENGTH.to_bytes(2, "big")
        if self._sm is None:
            if apdu.extended and faults.no_extended:
                return SW_WRONG_LENGTH.to_bytes(2, "big")
            return self._plain(apdu).encode()
        if apdu.cla & 0x0C != 0x0C:
            self._sm = None  # an unprotected command ends the session (ICAO 9303-11 9.8.6.1)
            if apdu.ins == 0xA4 and apdu.p1 == 0x04:
                return self._plain(apdu).encode()  # selecting the application starts afresh
            return SW_SM_MISSING.to_bytes(2, "big")
        try:
            inner = self._sm.unwrap_command(apdu)
        except CardError:
            self._sm = None
            return SW_SM_INCORRECT.to_bytes(2, "big")
        if apdu.extended and faults.no_extended:
            response = ResponseApdu(b"", SW_WRONG_LENGTH)  # refused inside the channel: SSCs stay in step
        else:
            response = self._protected(inner)
        return self._sm.wrap_response(response, corrupt_mac=faults.bad_mac).encode()

    # -- before BAC ---------------------------------------------------------------------------------
    def _plain(self, apdu: CommandApdu) -> ResponseApdu:
        if apdu.ins == 0xA4:
            return self._select(apdu)
        if apdu.ins == 0x84:
            if not self._app_selected:
                return ResponseApdu(b"", SW_SECURITY_NOT_SATISFIED)
            self._challenge = os.urandom(8)
            return ResponseApdu(self._challenge, SW_OK)
        if apdu.ins == 0x82:
            return self._external_authenticate(apdu)
        if apdu.ins in (0xB0, 0xB1, 0x88):
            return ResponseApdu(b"", SW_SECURITY_NOT_SATISFIED if self._app_selected else SW_FILE_NOT_FOUND)
        return ResponseApdu(b"", SW_INS_NOT_SUPPORTED)

    def _select(self, apdu: CommandApdu) -> ResponseApdu:
        if apdu.p1 == 0x04:
            if apdu.data != lds.EMRTD_AID or self.faults.not_id_card:
                return ResponseApdu(b"", SW_FILE_NOT_FOUND)
            self._app_selected = True
            self._current = None
            return ResponseApdu(b"", SW_OK)
        if apdu.p1 == 0x00 or not self._app_selected:
            return ResponseApdu(b"", SW_INS_NOT_SUPPORTED)  # CCCD: the master file is not selectable
        if apdu.p1 == 0x02 and len(apdu.data) == 2:
            fid = int.from_bytes(apdu.data, "big")
            if fid not in self.files:
                return ResponseApdu(b"", SW_FILE_NOT_FOUND)
            self._current = fid
            return ResponseApdu(b"", SW_OK)
        return ResponseApdu(b"", SW_INCORRECT_P1P2)

    def _external_authenticate(self, apdu: CommandApdu) -> ResponseApdu:
        challenge, self._challenge = self._challenge, None
        if challenge is None or len(apdu.data) != 40:
            return ResponseApdu(b"", SW_SECURITY_NOT_SATISFIED)
        e_ifd, m_ifd = apdu.data[:32], apdu.data[32:]
        if not mac_equal(retail_mac(self._keys.k_mac, e_ifd), m_ifd):
            return ResponseApdu(b"", SW_AUTH_FAILED)
        plain = tdes_decrypt(self._keys.k_enc, e_ifd)
        rnd_ifd, rnd_ic, k_ifd = plain[:8], plain[8:16], plain[16:32]
        if rnd_ic != challenge:
            return ResponseApdu(b"", SW_AUTH_FAILED)
        k_ic = os.urandom(16)
        e_ic = tdes_encrypt(self._keys.k_enc, rnd_ic + rnd_ifd + k_ic)
        answer = e_ic + retail_mac(self._keys.k_mac, e_ic)
        self._sm = session_from_exchange(k_ifd, k_ic, rnd_ic, rnd_ifd)
        return ResponseApdu(answer, SW_OK)

    # -- inside the secure channel ------------------------------------------------------------------
    def _protected(self, apdu: CommandApdu) -> ResponseApdu:
        if apdu.ins == 0xA4:
            return self._select(apdu)
        if apdu.ins == 0xB0:
            return self._read_binary(apdu)
        if apdu.ins == 0x88:
            return self._internal_authenticate(apdu)
        if apdu.ins == 0x84:
            self._challenge = os.urandom(8)
            return ResponseApdu(self._challenge, SW_OK)
        return ResponseApdu(b"", SW_INS_NOT_SUPPORTED)

    def _file(self, fid: int) -> bytes:
        data = self.files[fid]
        if fid == lds.DG13.fid and self.faults.truncate_dg13:
            data = data[: max(4, len(data) - 40)]
        return data

    def _read_binary(self, apdu: CommandApdu) -> ResponseApdu:
        if apdu.p1 & 0x80:
            if self.faults.no_sfi:
                return ResponseApdu(b"", SW_INCORRECT_P1P2)
            sfi = apdu.p1 & 0x1F
            fid = next(
                (ef.fid for ef in (lds.EF_COM, lds.EF_SOD, *lds.DATA_GROUPS.values()) if ef.sfi == sfi), None
            )
            if fid is None or fid not in self.files:
                return ResponseApdu(b"", SW_FILE_NOT_FOUND)
            self._current = fid  # ISO 7816-4: READ BINARY with an SFI makes it the current EF
            offset = apdu.p2
        else:
            if self._current is None:
                return ResponseApdu(b"", 0x6986)  # command not allowed: no current EF
            fid = self._current
            offset = (apdu.p1 << 8) | apdu.p2
        if fid == lds.DG3.fid:
            return ResponseApdu(b"", SW_SECURITY_NOT_SATISFIED)  # DG3 needs EAC, which we do not offer
        le = apdu.le or 256
        limit = (
            max_plain_block(extended=True, limit=self.EXTENDED_BUFFER) if apdu.extended else max_plain_block()
        )
        if le > limit:
            return ResponseApdu(b"", SW_WRONG_LENGTH)
        data = self._file(fid)
        if offset > len(data):
            return ResponseApdu(b"", SW_WRONG_P1P2)
        chunk = data[offset : offset + le]
        return ResponseApdu(chunk, SW_OK if len(chunk) == le else SW_END_OF_FILE)

    def _internal_authenticate(self, apdu: CommandApdu) -> ResponseApdu:
        """Active authentication, ECDSA flavour: plain r||s over SHA-256 of the 8-byte challenge."""
        if len(apdu.data) != 8:
            return ResponseApdu(b"", SW_WRONG_LENGTH)
        der = self._aa_key.sign(apdu.data, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        size = (self._aa_key.curve.key_size + 7) // 8
        return ResponseApdu(r.to_bytes(size, "big") + s.to_bytes(size, "big"), SW_OK)
