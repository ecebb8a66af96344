"""Active authentication signatures (ICAO 9303 Part 11, 6.1): ECDSA (plain r||s) and RSA with
ISO/IEC 9796-2 digital signature scheme 1 (partial message recovery), both sides.

RSA: F = 6A || M1 || H || trailer, with H = hash(M1 || challenge) and trailer BC (SHA-1, implicit) or
<hash id> CC; the chip returns F^d mod n, or n minus it (the verifier accepts both forms).
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

#: ISO/IEC 10118-3 hash identifiers used in the two-byte trailer xx CC
_HASH_IDS = {0x33: "sha1", 0x34: "sha256", 0x35: "sha512", 0x36: "sha384", 0x38: "sha224"}


def verify(public_key: object, challenge: bytes, signature: bytes) -> bool:
    """True when ``signature`` is the chip's answer to ``challenge``; False for any mismatch."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        size = (public_key.curve.key_size + 7) // 8
        if len(signature) != 2 * size:
            return False
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        try:
            public_key.verify(encode_dss_signature(r, s), challenge, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True
    if isinstance(public_key, rsa.RSAPublicKey):
        return _verify_9796_2(public_key, challenge, signature)
    return False


def _verify_9796_2(key: rsa.RSAPublicKey, challenge: bytes, signature: bytes) -> bool:
    numbers = key.public_numbers()
    n, k = numbers.n, (key.key_size + 7) // 8
    s = int.from_bytes(signature, "big")
    if not 0 < s < n:
        return False
    m = pow(s, numbers.e, n)
    if m & 0x0F != 0x0C:
        m = n - m  # the chip may send the smaller of s and n - s
    f = m.to_bytes(k, "big")
    if f[0] & 0xC0 != 0x40 or f[0] & 0x20 == 0:  # header 01, partial recovery
        return False
    if f[-1] == 0xBC:
        name, trailer = "sha1", 1
    elif f[-1] == 0xCC and f[-2] in _HASH_IDS:
        name, trailer = _HASH_IDS[f[-2]], 2
    else:
        return False
    length = hashlib.new(name).digest_size
    digest = f[-trailer - length : -trailer]
    recovered = f[1 : -trailer - length]
    return hashlib.new(name, recovered + challenge).digest() == digest and len(recovered) > 0


def sign(private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, challenge: bytes) -> bytes:
    """The chip's side (virtual CCCD): ECDSA plain r||s over SHA-256, or ISO 9796-2 scheme 1 with SHA-1."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private_key.sign(challenge, ec.ECDSA(hashes.SHA256())))
        size = (private_key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    numbers = private_key.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    k = (private_key.key_size + 7) // 8
    m1 = os.urandom(k - 2 - 20)
    f = b"\x6a" + m1 + hashlib.sha1(m1 + challenge).digest() + b"\xbc"
    s = pow(int.from_bytes(f, "big"), d, n)
    return min(s, n - s).to_bytes(k, "big")
