"""PACE with generic mapping over ECDH (ICAO 9303 Part 11, 4.4), reader side, plus the pieces the
virtual chip shares: EF.CardAccess (PACEInfo), password keys, key derivation and authentication tokens.

Supported: id-PACE-ECDH-GM-AES-CBC-CMAC-128/192/256 and -3DES-CBC-CBC, on NIST P-256 and
brainpoolP256r1 (standardized domain parameters 12 and 13). Password: the MRZ information or the CAN.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import core

from drivers.card import tlv
from drivers.card.apdu import SW_OK, CommandApdu
from drivers.card.crypto import (
    KDF_ENC,
    KDF_MAC,
    KDF_PACE,
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    aes_cmac,
    kdf,
    kdf_aes,
    mac_equal,
    retail_mac,
    tdes_decrypt,
    tdes_encrypt,
)
from drivers.card.ec import CURVES_BY_PARAMETER_ID, Curve, Point
from drivers.card.errors import CardProtocolError, MalformedDataError, StatusWordError, WrongKeyError
from drivers.card.keys import AccessKey
from drivers.card.sm import SmSession
from drivers.card.transport import CardTransport

#: protocol OID -> (cipher, key bits)
PACE_PROTOCOLS = {
    "0.4.0.127.0.7.2.2.4.2.1": ("3des", 128),
    "0.4.0.127.0.7.2.2.4.2.2": ("aes", 128),
    "0.4.0.127.0.7.2.2.4.2.3": ("aes", 192),
    "0.4.0.127.0.7.2.2.4.2.4": ("aes", 256),
}
PASSWORD_MRZ = 1
PASSWORD_CAN = 2
EF_CARD_ACCESS_FID = 0x011C
EF_CARD_ACCESS_SFI = 0x1C


@dataclass(frozen=True)
class PaceInfo:
    protocol: str  # dotted OID
    version: int
    parameter_id: int

    @property
    def cipher(self) -> str:
        return PACE_PROTOCOLS[self.protocol][0]

    @property
    def key_bits(self) -> int:
        return PACE_PROTOCOLS[self.protocol][1]

    @property
    def curve(self) -> Curve:
        return CURVES_BY_PARAMETER_ID[self.parameter_id]

    def oid_bytes(self) -> bytes:
        return core.ObjectIdentifier(self.protocol).contents


class _SecurityInfo(core.Sequence):
    _fields = [  # noqa: RUF012 - asn1crypto spec
        ("protocol", core.ObjectIdentifier),
        ("required_data", core.Any),
        ("optional_data", core.Any, {"optional": True}),
    ]


class _SecurityInfos(core.SetOf):
    _child_spec = _SecurityInfo


def parse_card_access(data: bytes) -> list[PaceInfo]:
    """The PACEInfos of EF.CardAccess that this reader supports (others are ignored), best first."""
    tlv.check_nesting(data, "EF.CardAccess")  # asn1crypto's .native recurses on nesting
    try:
        infos = _SecurityInfos.load(data, strict=True)
        found: list[PaceInfo] = []
        for info in infos:
            oid = info["protocol"].dotted
            if oid not in PACE_PROTOCOLS:
                continue
            version = core.Integer.load(info["required_data"].dump()).native
            optional = info["optional_data"]
            # not optional.native: asn1crypto's .native fails with AttributeError on some types (REAL)
            parameter = 0 if isinstance(optional, core.Void) else core.Integer.load(optional.dump()).native
            if parameter in CURVES_BY_PARAMETER_ID:
                found.append(PaceInfo(oid, int(version), int(parameter)))
    except (ValueError, TypeError) as exc:
        raise MalformedDataError(f"EF.CardAccess: cannot parse ({exc.__class__.__name__})") from exc
    return sorted(found, key=lambda i: (i.cipher != "aes", -i.key_bits))


def build_card_access(infos: list[PaceInfo]) -> bytes:
    return _SecurityInfos(
        [
            {
                "protocol": i.protocol,
                "required_data": core.Integer(i.version),
                "optional_data": core.Integer(i.parameter_id),
            }
            for i in infos
        ]
    ).dump()


def password_key(key: AccessKey, info: PaceInfo) -> bytes:
    """K_pi = KDF_pi(f(pi)): f is SHA-1 of the MRZ information, or the CAN's characters."""
    secret = hashlib.sha1(key.secret.encode()).digest() if key.kind == "mrz" else key.secret.encode()
    return derive(secret, KDF_PACE, info)


def derive(secret: bytes, counter: int, info: PaceInfo) -> bytes:
    if info.cipher == "aes":
        return kdf_aes(secret, counter, info.key_bits)
    return kdf(secret, counter)


def nonce_encrypt(k_pi: bytes, nonce: bytes, info: PaceInfo) -> bytes:
    return aes_cbc_encrypt(k_pi, nonce) if info.cipher == "aes" else tdes_encrypt(k_pi, nonce)


def nonce_decrypt(k_pi: bytes, z: bytes, info: PaceInfo) -> bytes:
    return aes_cbc_decrypt(k_pi, z) if info.cipher == "aes" else tdes_decrypt(k_pi, z)


def mapped_generator(curve: Curve, nonce: bytes, shared: Point) -> Point:
    """Generic mapping: G' = s*G + H."""
    mapped = curve.add(curve.mul(int.from_bytes(nonce, "big"), curve.g), shared)
    if mapped is None:
        raise CardProtocolError("PACE: mapped generator is the point at infinity")
    return mapped


def auth_token(ks_mac: bytes, other_public: bytes, info: PaceInfo) -> bytes:
    """T = MAC(KS_mac, 7F49 {06 OID, 86 public point}) truncated to 8 bytes."""
    data = tlv.encode(0x7F49, tlv.encode(0x06, info.oid_bytes()) + tlv.encode(0x86, other_public))
    if info.cipher == "aes":
        return aes_cmac(ks_mac, data)[:8]
    return retail_mac(ks_mac, data)


def session_keys(shared_x: bytes, info: PaceInfo) -> tuple[bytes, bytes]:
    return derive(shared_x, KDF_ENC, info), derive(shared_x, KDF_MAC, info)


def new_session(ks_enc: bytes, ks_mac: bytes, info: PaceInfo) -> SmSession:
    """Secure messaging after PACE starts with an all-zero SSC."""
    return SmSession(ks_enc, ks_mac, bytes(16 if info.cipher == "aes" else 8), info.cipher)


def _general_authenticate(transport: CardTransport, tag: int, value: bytes, last: bool) -> bytes:
    data = tlv.encode(0x7C, tlv.encode(tag, value) if tag else b"")
    answer = transport.transmit(CommandApdu(0x00 if last else 0x10, 0x86, 0x00, 0x00, data, le=256))
    if answer.sw in (0x6300, 0x6982) or answer.sw & 0xFFF0 == 0x63C0:
        raise WrongKeyError("PACE: the card refused the password")
    if answer.sw != SW_OK:
        raise StatusWordError("PACE: GENERAL AUTHENTICATE failed", answer.sw)
    inner = tlv.parse_one(answer.data, 0x7C).value
    return tlv.find(inner, tag + 1) if tag else tlv.find(inner, 0x80)


def perform_pace(
    transport: CardTransport, key: AccessKey, info: PaceInfo, scalar: Callable[[], int] | None = None
) -> SmSession:
    """MSE:Set AT + four GENERAL AUTHENTICATEs; WrongKeyError when the tokens do not match.

    ``scalar`` draws the two private keys (injected by the worked-example test)."""
    curve = info.curve
    draw = scalar or curve.random_scalar
    reference = PASSWORD_MRZ if key.kind == "mrz" else PASSWORD_CAN
    mse = (
        tlv.encode(0x80, info.oid_bytes())
        + tlv.encode(0x83, bytes([reference]))
        + tlv.encode(0x84, bytes([info.parameter_id]))
    )
    answer = transport.transmit(CommandApdu(0x00, 0x22, 0xC1, 0xA4, mse))
    if answer.sw != SW_OK:
        raise StatusWordError("PACE: MSE:Set AT refused", answer.sw)
    nonce = nonce_decrypt(password_key(key, info), _general_authenticate(transport, 0, b"", False), info)
    sk_map = draw()
    pk_map_ic = curve.decode(
        _general_authenticate(transport, 0x81, curve.encode(curve.mul(sk_map, curve.g)), False)
    )
    generator = mapped_generator(curve, nonce, curve.mul(sk_map, pk_map_ic))
    sk_eph = draw()
    pk_eph_ifd = curve.encode(curve.mul(sk_eph, generator))
    pk_eph_ic_bytes = _general_authenticate(transport, 0x83, pk_eph_ifd, False)
    if pk_eph_ic_bytes == pk_eph_ifd:
        raise CardProtocolError("PACE: the card echoed our ephemeral key")
    shared = curve.mul(sk_eph, curve.decode(pk_eph_ic_bytes))
    if shared is None:
        raise CardProtocolError("PACE: shared secret is the point at infinity")
    ks_enc, ks_mac = session_keys(shared[0].to_bytes(curve.size, "big"), info)
    token_ic = _general_authenticate(transport, 0x85, auth_token(ks_mac, pk_eph_ic_bytes, info), True)
    if not mac_equal(token_ic, auth_token(ks_mac, pk_eph_ifd, info)):
        raise CardProtocolError("PACE: the card's authentication token does not verify")
    return new_session(ks_enc, ks_mac, info)
