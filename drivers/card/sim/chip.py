"""The APDU engine of the virtual CCCD: eMRTD application, BAC, secure messaging, READ BINARY, AA.

It answers the way the design note says real CCCDs do (6D00 for a master-file SELECT, 6982 on DG3,
6A82 for files it lacks) and can be told to misbehave (``CardFaults``) for the failure paths.
Card-side only; the reader never imports this module.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from asn1crypto import core
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from drivers.card import aa, lds, tlv
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
from drivers.card.ca import CA_PROTOCOLS, session_after_ca
from drivers.card.crypto import mac_equal, retail_mac, tdes_decrypt, tdes_encrypt
from drivers.card.errors import CardError
from drivers.card.keys import AccessKey
from drivers.card.pace import (
    EF_CARD_ACCESS_FID,
    EF_CARD_ACCESS_SFI,
    PASSWORD_CAN,
    PASSWORD_MRZ,
    PaceInfo,
    auth_token,
    build_card_access,
    mapped_generator,
    new_session,
    nonce_encrypt,
    password_key,
    session_keys,
)
from drivers.card.sm import SmSession, max_plain_block

SW_FUNC_NOT_SUPPORTED = 0x6A81
SW_INCORRECT_P1P2 = 0x6A86
SW_WRONG_DATA = 0x6A80
SW_REF_DATA_NOT_FOUND = 0x6A88
#: what the virtual CCCD offers in EF.CardAccess: PACE-ECDH-GM-AES-128 on brainpoolP256r1
DEFAULT_PACE = PaceInfo("0.4.0.127.0.7.2.2.4.2.2", 2, 13)


def _dynamic(tag: int, value: bytes) -> ResponseApdu:
    """A GENERAL AUTHENTICATE answer: dynamic authentication data 7C { tag value }."""
    return ResponseApdu(tlv.encode(0x7C, tlv.encode(tag, value)), SW_OK)


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
    no_pace: bool = False  # a BAC-only card: no EF.CardAccess, MSE:Set AT refused
    wrong_aa_key: bool = False  # a clone: DG15 copied, but the chip signs with a key of its own
    wrong_ca_key: bool = False  # a clone: DG14 copied, but the chip's key agreement uses its own key
    refuse_chip_auth: bool = False  # MSE:Set AT / KAT for chip authentication answers 6A88
    #: "DG13", "DG2", "DG14" or "EF.CardAccess": that file carries an element nested thousands of levels
    #: deep (signed into EF.SOD like the genuine content), to attack recursive parsers
    deep_nesting: str | None = None

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
        aa_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        faults: CardFaults | None = None,
        can: str | None = None,
        ca_key: ec.EllipticCurvePrivateKey | None = None,
        pace: PaceInfo | None = DEFAULT_PACE,
    ) -> None:
        self.files = dict(files)
        self.faults = faults or CardFaults()
        self._keys = BacKeys.from_access_key(access_key)
        self._aa_key = aa_key
        self.can = can
        self._access_key = access_key
        self._ca_key = ca_key
        self.pace = None if self.faults.no_pace else pace
        if self.pace is not None:
            self.files[EF_CARD_ACCESS_FID] = build_card_access([self.pace])
            if self.faults.deep_nesting == "EF.CardAccess":
                from drivers.card.sim.hostile import with_deep_nesting

                # 90 levels: the reader reads EF.CardAccess with one plain READ BINARY of 256 bytes
                self.files[EF_CARD_ACCESS_FID] = with_deep_nesting(
                    "EF.CardAccess", self.files[EF_CARD_ACCESS_FID], depth=90
                )
        self.apdu_count = 0
        self._removed_once = False
        self.reset()

    def reset(self) -> None:
        """Power-up state: nothing selected, no challenge, no secure channel."""
        self._app_selected = False
        self._current: int | None = None
        self._challenge: bytes | None = None
        self._sm: SmSession | None = None
        self._pace_state: dict[str, Any] = {}
        self._ca_protocol: str | None = None
        self._pending_sm: SmSession | None = None

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
        wrapped = self._sm.wrap_response(response, corrupt_mac=faults.bad_mac).encode()
        if self._pending_sm is not None:  # chip authentication: the answer goes out under the old keys
            self._sm, self._pending_sm = self._pending_sm, None
        return wrapped

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
        if apdu.ins == 0x22 and apdu.p1 == 0xC1 and apdu.p2 == 0xA4:
            return self._mse_set_at(apdu)
        if apdu.ins == 0x86:
            return self._general_authenticate(apdu)
        if apdu.ins == 0xB0 and apdu.p1 == 0x80 | EF_CARD_ACCESS_SFI and EF_CARD_ACCESS_FID in self.files:
            data = self.files[EF_CARD_ACCESS_FID][apdu.p2 : apdu.p2 + (apdu.le or 256)]
            return ResponseApdu(data, SW_OK if len(data) == (apdu.le or 256) else SW_END_OF_FILE)
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

    # -- PACE (generic mapping, ECDH) -------------------------------------------------------------------
    def _mse_set_at(self, apdu: CommandApdu) -> ResponseApdu:
        self._pace_state = {}
        if self.pace is None:
            return ResponseApdu(b"", SW_FUNC_NOT_SUPPORTED)
        try:
            objects = {item.tag: item.value for item in tlv.iter_tlv(apdu.data)}
        except CardError:
            return ResponseApdu(b"", SW_WRONG_DATA)
        if objects.get(0x80) != self.pace.oid_bytes() or objects.get(0x84, b"\x0d") != bytes(
            [self.pace.parameter_id]
        ):
            return ResponseApdu(b"", SW_REF_DATA_NOT_FOUND)
        reference = objects.get(0x83, b"")
        if reference == bytes([PASSWORD_MRZ]):
            password = self._access_key
        elif reference == bytes([PASSWORD_CAN]) and self.can:
            password = AccessKey.from_can(self.can)
        else:
            return ResponseApdu(b"", SW_REF_DATA_NOT_FOUND)
        self._pace_state = {"step": 1, "k_pi": password_key(password, self.pace)}
        return ResponseApdu(b"", SW_OK)

    def _general_authenticate(self, apdu: CommandApdu) -> ResponseApdu:
        state, info = self._pace_state, self.pace
        if not state or info is None:
            return ResponseApdu(b"", SW_SECURITY_NOT_SATISFIED)
        curve = info.curve
        try:
            inner = tlv.parse_one(apdu.data, 0x7C).value
            step = state["step"]
            if step == 1:
                nonce = os.urandom(16 if info.cipher == "aes" else 8)
                state.update(step=2, nonce=nonce)
                return _dynamic(0x80, nonce_encrypt(state["k_pi"], nonce, info))
            if step == 2:
                pk_map_ifd = curve.decode(tlv.find(inner, 0x81))
                sk_map = curve.random_scalar()
                generator = mapped_generator(curve, state["nonce"], curve.mul(sk_map, pk_map_ifd))
                state.update(step=3, generator=generator)
                return _dynamic(0x82, curve.encode(curve.mul(sk_map, curve.g)))
            if step == 3:
                pk_eph_ifd = tlv.find(inner, 0x83)
                sk_eph = curve.random_scalar()
                pk_eph_ic = curve.encode(curve.mul(sk_eph, state["generator"]))
                if pk_eph_ic == pk_eph_ifd:
                    raise CardError("PACE: equal ephemeral keys")
                shared = curve.mul(sk_eph, curve.decode(pk_eph_ifd))
                if shared is None:
                    raise CardError("PACE: shared secret at infinity")
                ks_enc, ks_mac = session_keys(shared[0].to_bytes(curve.size, "big"), info)
                state.update(step=4, ks_enc=ks_enc, ks_mac=ks_mac, pk_eph_ifd=pk_eph_ifd, pk_eph_ic=pk_eph_ic)
                return _dynamic(0x84, pk_eph_ic)
            if step == 4 and apdu.cla & 0x10 == 0:
                self._pace_state = {}
                if not mac_equal(
                    tlv.find(inner, 0x85), auth_token(state["ks_mac"], state["pk_eph_ic"], info)
                ):
                    return ResponseApdu(b"", SW_AUTH_FAILED)  # wrong CAN or MRZ
                answer = _dynamic(0x86, auth_token(state["ks_mac"], state["pk_eph_ifd"], info))
                self._sm = new_session(state["ks_enc"], state["ks_mac"], info)
                return answer
        except CardError:
            self._pace_state = {}
            return ResponseApdu(b"", SW_WRONG_DATA)
        self._pace_state = {}
        return ResponseApdu(b"", SW_SECURITY_NOT_SATISFIED)

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
        if apdu.ins == 0x22 and apdu.p1 == 0x41:
            return self._chip_auth_mse(apdu)
        if apdu.ins == 0x86 and self._ca_protocol is not None:
            try:
                public = tlv.find(tlv.parse_one(apdu.data, 0x7C).value, 0x80)
            except CardError:
                return ResponseApdu(b"", SW_WRONG_DATA)
            return self._chip_auth_exchange(public, self._ca_protocol)
        return ResponseApdu(b"", SW_INS_NOT_SUPPORTED)

    # -- chip authentication (inside the channel) ---------------------------------------------------
    def _chip_auth_mse(self, apdu: CommandApdu) -> ResponseApdu:
        if self._ca_key is None:
            return ResponseApdu(b"", SW_FUNC_NOT_SUPPORTED)
        if self.faults.refuse_chip_auth:
            return ResponseApdu(b"", SW_REF_DATA_NOT_FOUND)
        try:
            objects = {item.tag: item.value for item in tlv.iter_tlv(apdu.data)}
        except CardError:
            return ResponseApdu(b"", SW_WRONG_DATA)
        if apdu.p2 == 0xA6 and 0x91 in objects:  # MSE:Set KAT (3DES): the key agreement happens now
            return self._chip_auth_exchange(objects[0x91], "0.4.0.127.0.7.2.2.3.2.1")
        oid = objects.get(0x80)
        protocol = next((p for p in CA_PROTOCOLS if core.ObjectIdentifier(p).contents == oid), None)
        if apdu.p2 != 0xA4 or protocol is None:
            return ResponseApdu(b"", SW_REF_DATA_NOT_FOUND)
        self._ca_protocol = protocol
        return ResponseApdu(b"", SW_OK)

    def _chip_auth_exchange(self, public: bytes, protocol: str) -> ResponseApdu:
        self._ca_protocol = None
        assert self._ca_key is not None
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(self._ca_key.curve, public)
        except ValueError:
            return ResponseApdu(b"", SW_WRONG_DATA)
        shared = self._ca_key.exchange(ec.ECDH(), peer)
        cipher, bits = CA_PROTOCOLS[protocol]
        self._pending_sm = session_after_ca(shared, cipher, bits)
        return ResponseApdu(tlv.encode(0x7C, b"") if protocol != "0.4.0.127.0.7.2.2.3.2.1" else b"", SW_OK)

    def _file(self, fid: int) -> bytes:
        data = self.files[fid]
        if fid == lds.DG13.fid and self.faults.truncate_dg13:
            data = data[: max(4, len(data) - 40)]
        return data

    def _read_binary(self, apdu: CommandApdu) -> ResponseApdu:
        if apdu.p1 & 0x80:
            if self.faults.no_sfi:
                return ResponseApdu(b"", SW_INCORRECT_P1P2)
            ef = lds.BY_SFI.get(apdu.p1 & 0x1F)
            fid = ef.fid if ef is not None else None
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
        """Active authentication: ECDSA (plain r||s, SHA-256) or RSA ISO 9796-2, by the key's type."""
        if len(apdu.data) != 8:
            return ResponseApdu(b"", SW_WRONG_LENGTH)
        return ResponseApdu(aa.sign(self._aa_key, apdu.data), SW_OK)
