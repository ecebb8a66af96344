"""Cryptographic primitives of BAC and 3DES secure messaging (ICAO 9303 Part 11, sections 4.3 and 9.8).

Only primitives live here (padding, 3DES-CBC, ISO 9797-1 MAC algorithm 3, the key derivation
function); the protocols that use them are in ``bac`` and ``sm``. ``cryptography`` does the block
cipher work; single DES is expressed as 3DES with K||K||K because ``cryptography`` deprecates 8-byte keys.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from drivers.card.errors import SecureMessagingError

BLOCK = 8
ZERO_IV = bytes(BLOCK)

#: KDF counters (ICAO 9303-11, 9.7.1)
KDF_ENC = 1
KDF_MAC = 2
KDF_PACE = 3


def pad(data: bytes, block: int = BLOCK) -> bytes:
    """ISO/IEC 9797-1 padding method 2: 0x80 then zeros up to a whole block."""
    data = data + b"\x80"
    return data + bytes(-len(data) % block)


def unpad(data: bytes) -> bytes:
    """Inverse of ``pad``; a missing 0x80 marker means the plaintext is not what was sent."""
    end = data.rstrip(b"\x00")
    if not end.endswith(b"\x80"):
        raise SecureMessagingError("secure messaging: bad padding in decrypted data")
    return end[:-1]


def adjust_parity(key: bytes) -> bytes:
    """Set DES odd parity in every byte (the KDF output is used as-is by cards, but vectors show parity)."""
    out = bytearray()
    for byte in key:
        high = byte & 0xFE
        out.append(high | (bin(high).count("1") + 1) % 2)
    return bytes(out)


def kdf(seed: bytes, counter: int) -> bytes:
    """3DES key (16 bytes, parity adjusted) from a key seed; counter 1 = ENC, 2 = MAC."""
    digest = hashlib.sha1(seed + counter.to_bytes(4, "big")).digest()
    return adjust_parity(digest[:16])


def _tdes_key(key: bytes) -> bytes:
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 8:
        return key * 3
    return key


def tdes_encrypt(key: bytes, data: bytes, iv: bytes = ZERO_IV) -> bytes:
    enc = Cipher(TripleDES(_tdes_key(key)), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def tdes_decrypt(key: bytes, data: bytes, iv: bytes = ZERO_IV) -> bytes:
    if len(data) % BLOCK:
        raise SecureMessagingError("secure messaging: ciphertext is not a whole number of blocks")
    dec = Cipher(TripleDES(_tdes_key(key)), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def retail_mac(key: bytes, data: bytes, *, padded: bool = False) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES (the "retail MAC"), 8 bytes.

    CBC with K1 over every block, then D(K2) and E(K1) on the last one; that final step equals one
    3DES-EDE(K1, K2) encryption of (previous chaining value XOR last block).
    """
    msg = data if padded else pad(data)
    k1 = key[:8]
    head, last = msg[:-BLOCK], msg[-BLOCK:]
    chain = tdes_encrypt(k1, head)[-BLOCK:] if head else ZERO_IV
    x = bytes(a ^ b for a, b in zip(chain, last, strict=True))
    enc = Cipher(TripleDES(_tdes_key(key[:16])), modes.ECB()).encryptor()
    return enc.update(x) + enc.finalize()


def aes_ecb_encrypt(key: bytes, block: bytes) -> bytes:
    """One AES block: the IV of AES secure messaging is E(KS_enc, SSC) (ICAO 9303-11, 9.8.6.1)."""
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def aes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    if len(data) % 16:
        raise SecureMessagingError("AES: ciphertext is not a whole number of blocks")
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def kdf_aes(secret: bytes, counter: int, key_bits: int) -> bytes:
    """AES keys of PACE: SHA-1 for 128 bits, SHA-256 (truncated) for 192 and 256 (ICAO 9303-11, 9.7.1)."""
    data = secret + counter.to_bytes(4, "big")
    if key_bits == 128:
        return hashlib.sha1(data).digest()[:16]
    return hashlib.sha256(data).digest()[: key_bits // 8]


def mac_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
