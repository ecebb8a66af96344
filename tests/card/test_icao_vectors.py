"""ICAO Doc 9303 Part 11 Appendix D worked example: BAC key derivation, mutual authentication and
secure messaging, byte for byte."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from drivers.card import crypto
from drivers.card.apdu import CommandApdu, ResponseApdu
from drivers.card.bac import BacKeys, perform_bac
from drivers.card.keys import AccessKey
from drivers.card.sm import SmSession
from drivers.card.transport import DirectTransport

H = bytes.fromhex

KEY = AccessKey.from_mrz("L898902C", "690806", "940623")
RND_IC = H("4608F91988702212")
RND_IFD = H("781723860C06C226")
K_IFD = H("0B795240CB7049B01C19B33E32804F0B")
KS_ENC = H("979EC13B1CBFE9DCD01AB0FED307EAE5")
KS_MAC = H("F1CB1F1FB5ADF208806B89DC579DC1F8")
SSC = H("887022120C06C226")


def test_mrz_information_and_key_seed() -> None:
    assert KEY.secret == "L898902C<369080619406236"
    assert KEY.bac_seed() == H("239AB9CB282DAF66231DC5A4DF6BFBAE")
    assert hashlib.sha1(KEY.secret.encode()).digest()[:16] == KEY.bac_seed()


def test_basic_access_keys() -> None:
    keys = BacKeys.from_access_key(KEY)
    assert keys.k_enc == H("AB94FDECF2674FDFB9B391F85D7F76F2")
    assert keys.k_mac == H("7962D9ECE03D1ACD4C76089DCE131543")


def test_mutual_authentication_exchange() -> None:
    keys = BacKeys.from_access_key(KEY)
    s = RND_IFD + RND_IC + K_IFD
    e_ifd = crypto.tdes_encrypt(keys.k_enc, s)
    assert e_ifd == H("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2")
    assert crypto.retail_mac(keys.k_mac, e_ifd) == H("5F1448EEA8AD90A7")


def _scripted(script: list[tuple[bytes, bytes]]) -> DirectTransport:
    steps: Iterator[tuple[bytes, bytes]] = iter(script)

    def process(apdu: bytes) -> bytes:
        expected, answer = next(steps)
        assert apdu.hex().upper() == expected.hex().upper()
        return answer

    return DirectTransport(process)


def test_perform_bac_derives_session_keys_and_ssc() -> None:
    randoms = iter([RND_IFD, K_IFD])
    transport = _scripted(
        [
            (H("0084000008"), RND_IC + H("9000")),
            (
                H("0082000028")
                + H("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F25F1448EEA8AD90A7")
                + H("28"),
                H("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F2F2D235D074D7449")
                + H("9000"),
            ),
        ]
    )
    session = perform_bac(transport, KEY, random=lambda n: next(randoms))
    assert session.ks_enc == KS_ENC
    assert session.ks_mac == KS_MAC
    assert session.ssc.to_bytes(8, "big") == SSC
    assert transport.stats.apdus == 2


def test_secure_messaging_select_and_read_binary() -> None:
    session = SmSession(KS_ENC, KS_MAC, SSC)
    select = session.wrap_command(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    assert select.encode() == H("0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800")
    answer = session.unwrap_response(ResponseApdu.decode(H("990290008E08FA855A5D4C50A8ED9000")))
    assert answer == ResponseApdu(b"", 0x9000)

    read = session.wrap_command(CommandApdu(0x00, 0xB0, 0x00, 0x00, le=4))
    assert read.encode() == H("0CB000000D9701048E08ED6705417E96BA5500")
    data = session.unwrap_response(
        ResponseApdu.decode(H("8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000"))
    )
    assert data == ResponseApdu(H("60145F01"), 0x9000)

    read = session.wrap_command(CommandApdu(0x00, 0xB0, 0x00, 0x04, le=0x12))
    assert read.encode() == H("0CB000040D9701128E082EA28A70F3C7B53500")
    data = session.unwrap_response(
        ResponseApdu.decode(
            H("871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000")
        )
    )
    assert data.data == H("04303130365F36063034303030305C026175")
    assert session.ssc.to_bytes(8, "big") == H("887022120C06C22C")


def test_card_side_reproduces_the_example_response() -> None:
    """The virtual chip's half of the channel produces the example's protected answer exactly."""
    reader = SmSession(KS_ENC, KS_MAC, SSC)
    card = SmSession(KS_ENC, KS_MAC, SSC)
    protected = reader.wrap_command(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    plain = card.unwrap_command(protected)
    assert (plain.ins, plain.p1, plain.p2, plain.data) == (0xA4, 0x02, 0x0C, H("011E"))
    assert card.wrap_response(ResponseApdu(b"", 0x9000)).encode() == H("990290008E08FA855A5D4C50A8ED9000")


def test_tampered_response_mac_is_rejected() -> None:
    from drivers.card.errors import SecureMessagingError

    session = SmSession(KS_ENC, KS_MAC, SSC)
    session.wrap_command(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    with pytest.raises(SecureMessagingError):
        session.unwrap_response(ResponseApdu.decode(H("990290008E08FA855A5D4C50A8EC9000")))
