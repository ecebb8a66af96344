"""Chip authentication (ICAO 9303 Part 11, 6.2) with ECDH: the chip proves it holds the private key whose
public half is in DG14 (signed through EF.SOD), and secure messaging restarts with keys from that
exchange, so a cloned chip without the key cannot answer any further command.

Supported: id-CA-ECDH-AES-CBC-CMAC-128/192/256 (MSE:Set AT + GENERAL AUTHENTICATE) and
id-CA-ECDH-3DES-CBC-CBC (MSE:Set KAT), with the curves ``cryptography`` knows (NIST, brainpool).
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import core
from asn1crypto import keys as asn1_keys
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from drivers.card import tlv
from drivers.card.apdu import SW_OK, CommandApdu
from drivers.card.crypto import KDF_ENC, KDF_MAC, kdf, kdf_aes
from drivers.card.errors import MalformedDataError
from drivers.card.sm import SmSession
from drivers.card.transport import CardTransport

#: protocol OID -> (cipher, key bits)
CA_PROTOCOLS = {
    "0.4.0.127.0.7.2.2.3.2.1": ("3des", 128),
    "0.4.0.127.0.7.2.2.3.2.2": ("aes", 128),
    "0.4.0.127.0.7.2.2.3.2.3": ("aes", 192),
    "0.4.0.127.0.7.2.2.3.2.4": ("aes", 256),
}
ID_PK_ECDH = "0.4.0.127.0.7.2.2.1.2"


@dataclass(frozen=True)
class ChipAuthInfo:
    protocol: str
    public_key_der: bytes  # SubjectPublicKeyInfo of the chip's static key
    key_id: int | None = None

    @property
    def cipher(self) -> str:
        return CA_PROTOCOLS[self.protocol][0]

    @property
    def key_bits(self) -> int:
        return CA_PROTOCOLS[self.protocol][1]

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The chip's static key; MalformedDataError when it is not an EC key this reader can use."""
        try:
            key = serialization.load_der_public_key(self.public_key_der)
        except (ValueError, UnsupportedAlgorithm) as exc:  # e.g. an unknown curve or key type
            raise MalformedDataError(f"DG14: chip authentication key unusable ({exc})") from exc
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise MalformedDataError("DG14: chip authentication key is not an EC key")
        return key


class _Info(core.Sequence):
    _fields = [  # noqa: RUF012 - asn1crypto spec
        ("protocol", core.ObjectIdentifier),
        ("required_data", core.Any),
        ("optional_data", core.Any, {"optional": True}),
    ]


class _Infos(core.SetOf):
    _child_spec = _Info


def parse_dg14(data: bytes) -> list[ChipAuthInfo]:
    """ECDH chip authentication options of DG14 (a SET of SecurityInfos), AES first."""
    body = tlv.parse_one(data, 0x6E).value
    tlv.check_nesting(body, "DG14")  # asn1crypto's .native recurses on nesting
    try:
        infos = _Infos.load(body, strict=True)
        protocols: list[tuple[str, int | None]] = []
        public_keys: dict[int | None, bytes] = {}
        for info in infos:
            oid = info["protocol"].dotted
            optional = info["optional_data"]
            # not optional.native: asn1crypto's .native fails with AttributeError on some types (REAL)
            key_id = None
            if not isinstance(optional, core.Void):
                key_id = int(core.Integer.load(optional.dump()).native)
            if key_id is not None and key_id < 0:
                raise MalformedDataError("DG14: negative key id")
            if oid in CA_PROTOCOLS:
                protocols.append((oid, key_id))
            elif oid == ID_PK_ECDH:
                spki = asn1_keys.PublicKeyInfo.load(info["required_data"].dump())
                public_keys[key_id] = spki.dump()
    except (ValueError, TypeError) as exc:
        raise MalformedDataError(f"DG14: cannot parse ({exc.__class__.__name__})") from exc
    found = []
    for oid, key_id in protocols:
        der = public_keys.get(key_id) or (next(iter(public_keys.values())) if len(public_keys) == 1 else None)
        if der is not None:
            found.append(ChipAuthInfo(oid, der, key_id))
    return sorted(found, key=lambda i: (i.cipher != "aes", -i.key_bits))


def build_dg14(protocol: str, public_key: ec.EllipticCurvePublicKey) -> bytes:
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    infos = _Infos(
        [
            {"protocol": protocol, "required_data": core.Integer(1)},
            {"protocol": ID_PK_ECDH, "required_data": asn1_keys.PublicKeyInfo.load(spki)},
        ]
    )
    return tlv.encode(0x6E, infos.dump())


def session_after_ca(shared_x: bytes, cipher: str, key_bits: int) -> SmSession:
    """New secure messaging keys from the CA shared secret; the SSC restarts at zero."""
    if cipher == "aes":
        return SmSession(
            kdf_aes(shared_x, KDF_ENC, key_bits), kdf_aes(shared_x, KDF_MAC, key_bits), bytes(16), "aes"
        )
    return SmSession(kdf(shared_x, KDF_ENC), kdf(shared_x, KDF_MAC), bytes(8), "3des")


def ephemeral_public_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def perform_chip_auth(secure: CardTransport, info: ChipAuthInfo) -> SmSession | None:
    """Run CA over the current secure channel; the new session on success, None if the chip refused."""
    chip_key = info.public_key()
    ephemeral = ec.generate_private_key(chip_key.curve)
    public = ephemeral_public_bytes(ephemeral)
    key_ref = b""
    if info.key_id is not None:  # keyId: an INTEGER, sent as its minimal big-endian bytes
        key_ref = tlv.encode(0x84, info.key_id.to_bytes(max(1, (info.key_id.bit_length() + 7) // 8), "big"))
    oid = core.ObjectIdentifier(info.protocol).contents
    if info.cipher == "3des":
        answer = secure.transmit(CommandApdu(0x00, 0x22, 0x41, 0xA6, tlv.encode(0x91, public) + key_ref))
        if answer.sw != SW_OK:
            return None
    else:
        answer = secure.transmit(CommandApdu(0x00, 0x22, 0x41, 0xA4, tlv.encode(0x80, oid) + key_ref))
        if answer.sw != SW_OK:
            return None
        data = tlv.encode(0x7C, tlv.encode(0x80, public))
        answer = secure.transmit(CommandApdu(0x00, 0x86, 0x00, 0x00, data, le=256))
        if answer.sw != SW_OK:
            return None
    shared = ephemeral.exchange(ec.ECDH(), chip_key)
    return session_after_ca(shared, info.cipher, info.key_bits)
