"""Basic Access Control (ICAO 9303 Part 11, 4.3): mutual authentication and session keys.

Reader side only; the card side lives in the virtual chip. ``BacResult`` carries the session for the
secure transport; randomness can be injected so the worked example of Appendix D is a unit test.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from drivers.card.apdu import SW_OK, CommandApdu
from drivers.card.crypto import KDF_ENC, KDF_MAC, kdf, mac_equal, retail_mac, tdes_decrypt, tdes_encrypt
from drivers.card.errors import CardProtocolError, StatusWordError, WrongKeyError
from drivers.card.keys import AccessKey
from drivers.card.sm import SmSession
from drivers.card.transport import CardTransport

GET_CHALLENGE = CommandApdu(0x00, 0x84, 0x00, 0x00, le=8)


@dataclass(frozen=True)
class BacKeys:
    k_enc: bytes
    k_mac: bytes

    @classmethod
    def from_access_key(cls, key: AccessKey) -> BacKeys:
        seed = key.bac_seed()
        return cls(kdf(seed, KDF_ENC), kdf(seed, KDF_MAC))


def session_from_exchange(k_ifd: bytes, k_ic: bytes, rnd_ic: bytes, rnd_ifd: bytes) -> SmSession:
    """Session keys (KDF over K.IFD xor K.IC) and SSC = RND.IC[-4:] || RND.IFD[-4:]."""
    seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic, strict=True))
    return SmSession(kdf(seed, KDF_ENC), kdf(seed, KDF_MAC), rnd_ic[-4:] + rnd_ifd[-4:])


def perform_bac(
    transport: CardTransport, key: AccessKey, random: Callable[[int], bytes] = os.urandom
) -> SmSession:
    """Run GET CHALLENGE + EXTERNAL AUTHENTICATE; WrongKeyError when the card rejects the key."""
    keys = BacKeys.from_access_key(key)
    challenge = transport.transmit(GET_CHALLENGE)
    if challenge.sw != SW_OK or len(challenge.data) != 8:
        raise StatusWordError("BAC: GET CHALLENGE refused", challenge.sw)
    rnd_ic = challenge.data
    rnd_ifd = random(8)
    k_ifd = random(16)
    e_ifd = tdes_encrypt(keys.k_enc, rnd_ifd + rnd_ic + k_ifd)
    m_ifd = retail_mac(keys.k_mac, e_ifd)
    answer = transport.transmit(CommandApdu(0x00, 0x82, 0x00, 0x00, e_ifd + m_ifd, le=40))
    if answer.sw in (0x6300, 0x6982) or (answer.sw & 0xFFF0) == 0x63C0:
        raise WrongKeyError(f"BAC: card rejected the access key ({key.label or key.kind})")
    if answer.sw != SW_OK:
        raise StatusWordError("BAC: EXTERNAL AUTHENTICATE failed", answer.sw)
    if len(answer.data) != 40:
        raise CardProtocolError(f"BAC: EXTERNAL AUTHENTICATE answered {len(answer.data)} bytes, 40 expected")
    e_ic, m_ic = answer.data[:32], answer.data[32:]
    if not mac_equal(retail_mac(keys.k_mac, e_ic), m_ic):
        raise CardProtocolError("BAC: the card's cryptogram MAC does not verify")
    plain = tdes_decrypt(keys.k_enc, e_ic)
    if plain[:8] != rnd_ic or plain[8:16] != rnd_ifd:
        raise CardProtocolError("BAC: the card's cryptogram does not return our challenge")
    return session_from_exchange(k_ifd, plain[16:32], rnd_ic, rnd_ifd)
