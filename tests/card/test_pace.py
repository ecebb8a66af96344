"""PACE generic mapping (ECDH) with CAN and MRZ passwords, AES and 3DES, brainpool and NIST curves,
against the virtual chip; EF.CardAccess parsing; curve constants checked against ``cryptography``."""

from __future__ import annotations

import math

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from drivers.card import lds
from drivers.card.ec import BRAINPOOL_P256R1, NIST_P256, Curve
from drivers.card.errors import CardProtocolError, NotIdCardError, WrongKeyError
from drivers.card.keys import AccessKey
from drivers.card.pace import PaceInfo, build_card_access, parse_card_access
from drivers.card.reader import ReadOptions, read_identity_over
from drivers.card.sim.chip import CardFaults, VirtualChip
from drivers.card.sim.pki import TestPki
from drivers.card.sim.profile import CardProfile, build_files
from drivers.card.transport import DirectTransport

AES128_BP = PaceInfo("0.4.0.127.0.7.2.2.4.2.2", 2, 13)
AES256_NIST = PaceInfo("0.4.0.127.0.7.2.2.4.2.4", 2, 12)
TDES_NIST = PaceInfo("0.4.0.127.0.7.2.2.4.2.1", 2, 12)


@pytest.mark.parametrize(
    ("curve", "theirs"), [(NIST_P256, ec.SECP256R1()), (BRAINPOOL_P256R1, ec.BrainpoolP256R1())]
)
def test_curve_constants_match_cryptography(curve: Curve, theirs: ec.EllipticCurve) -> None:
    assert curve.contains(curve.g) and curve.mul(curve.n, curve.g) is None
    for k in (1, 2, 3, curve.n - 1, 0xDEADBEEF, curve.random_scalar()):
        numbers = ec.derive_private_key(k, theirs).public_key().public_numbers()
        assert curve.mul(k, curve.g) == (numbers.x, numbers.y)
    a, b = curve.random_scalar(), curve.random_scalar()
    assert curve.add(curve.mul(a, curve.g), curve.mul(b, curve.g)) == curve.mul(a + b, curve.g)


def test_points_off_the_curve_are_refused() -> None:
    encoded = bytearray(NIST_P256.encode(NIST_P256.g))
    encoded[-1] ^= 1
    with pytest.raises(CardProtocolError, match="not on the curve"):
        NIST_P256.decode(bytes(encoded))


def test_card_access_round_trip_and_preference() -> None:
    data = build_card_access([TDES_NIST, AES128_BP, PaceInfo("0.4.0.127.0.7.2.2.4.1.2", 2, 0)])
    assert data[0] == 0x31
    assert parse_card_access(data) == [AES128_BP, TDES_NIST]  # AES first, DH mapping ignored


def _chip(
    profile: CardProfile, pki: TestPki, pace: PaceInfo | None, faults: CardFaults | None = None
) -> VirtualChip:
    key = AccessKey.from_mrz(
        profile.document_number, profile.birth_date.strftime("%y%m%d"), profile.mrz_expiry
    )
    return VirtualChip(
        build_files(profile, pki), key, pki.aa_key, faults, can=profile.id_number[-6:], pace=pace
    )


@pytest.mark.parametrize("info", [AES128_BP, AES256_NIST, TDES_NIST])
def test_pace_with_can_reads_the_identity(adult: CardProfile, pki: TestPki, info: PaceInfo) -> None:
    chip = _chip(adult, pki, info)
    record, report = read_identity_over(
        DirectTransport(chip.process),
        [AccessKey.from_can(adult.id_number[-6:])],
        ReadOptions(active_auth=False, chip_auth=False),
    )
    assert record.full_name == "Nguyễn Văn An"
    assert report.access_control == f"PACE-{info.cipher.upper()}-{info.curve.name}"
    files = build_files(adult, pki)
    block = 223 if info.cipher == "aes" else 231  # the AES channel fits one 16-byte block less
    reads = sum(math.ceil(len(files[ef.fid]) / block) for ef in (lds.EF_SOD, lds.DG1, lds.DG13))
    # EF.CardAccess, MSE:Set AT, 4 GENERAL AUTHENTICATE, SELECT (protected), then the files
    assert report.apdu_count == 7 + reads


def test_pace_with_mrz_when_preferred(married: CardProfile, pki: TestPki) -> None:
    chip = _chip(married, pki, AES128_BP)
    key = AccessKey.from_mrz(married.document_number, "901103", "301103")
    options = ReadOptions(pace="prefer", chip_auth=False)
    record, report = read_identity_over(DirectTransport(chip.process), [key], options)
    assert report.access_control.startswith("PACE-AES") and record.spouse_name == "Lê Hoàng Nam"
    assert record.active_auth == "passed"  # INTERNAL AUTHENTICATE inside the AES channel


def test_wrong_can_then_right_mrz_falls_back_to_bac(adult: CardProfile, pki: TestPki) -> None:
    chip = _chip(adult, pki, AES128_BP)
    keys = [AccessKey.from_can("999999"), AccessKey.from_mrz(adult.document_number, "900517", "300517")]
    record, report = read_identity_over(
        DirectTransport(chip.process), keys, ReadOptions(active_auth=False, chip_auth=False)
    )
    assert (report.access_control, report.keys_tried) == ("BAC", 2)
    assert record.id_number == "079090001234"


def test_wrong_can_alone_is_a_wrong_key(adult: CardProfile, pki: TestPki) -> None:
    chip = _chip(adult, pki, AES128_BP)
    with pytest.raises(WrongKeyError) as info:
        read_identity_over(DirectTransport(chip.process), [AccessKey.from_can("123123")], ReadOptions())
    assert info.value.code == "card_wrong_key"


def test_bac_only_card_skips_can_and_uses_bac(adult: CardProfile, pki: TestPki) -> None:
    chip = _chip(adult, pki, AES128_BP, CardFaults(no_pace=True))
    keys = [
        AccessKey.from_can(adult.id_number[-6:]),
        AccessKey.from_mrz(adult.document_number, "900517", "300517"),
    ]
    _, report = read_identity_over(
        DirectTransport(chip.process), keys, ReadOptions(active_auth=False, chip_auth=False)
    )
    assert report.access_control == "BAC"


def test_can_on_a_card_without_emrtd_is_not_an_id_card(adult: CardProfile, pki: TestPki) -> None:
    chip = _chip(adult, pki, None, CardFaults(not_id_card=True))
    with pytest.raises(NotIdCardError):
        read_identity_over(DirectTransport(chip.process), [AccessKey.from_can("123456")], ReadOptions())


# ICAO Doc 9303 Part 11, worked example "PACE - generic mapping, ECDH" (brainpoolP256r1, AES-128).
H = bytes.fromhex
EXAMPLE_KEY = AccessKey.from_mrz("T22000129", "640812", "101031")
SK_MAP = 0x7F4EF07B9EA82FD78AD689B38D0BC78CF21F249D953BC46F4C6E19259C010F99
SK_EPH = 0xA73FB703AC1436A18E0CFA5ABB3F7BEC7A070E7A6788486BEE230C4A22762595
PK_MAP_IC = H(
    "04824FBA91C9CBE26BEF53A0EBE7342A3BF178CEA9F45DE0B70AA601651FBA3F57"
    "30D8C879AAA9C9F73991E61B58F4D52EB87A0A0C709A49DC63719363CCD13C54"
)
PK_EPH_IC = H(
    "049E880F842905B8B3181F7AF7CAA9F0EFB743847F44A306D2D28C1D9EC65DF6DB"
    "7764B22277A2EDDC3C265A9F018F9CB852E111B768B326904B59A0193776F094"
)
PK_EPH_IFD = H(
    "042DB7A64C0355044EC9DF190514C625CBA2CEA4875488712 2F3A5EF0D5EDD301C"
    "3556F3B3B186DF10B857B58F6A7EB80F20BA5DC7BE1D43D9BF850149FBB36462".replace(" ", "")
)


def test_worked_example_primitives() -> None:
    from drivers.card.pace import auth_token, mapped_generator, nonce_decrypt, password_key, session_keys

    assert EXAMPLE_KEY.secret == "T220001293640812510103" + "18"
    k_pi = password_key(EXAMPLE_KEY, AES128_BP)
    assert k_pi == H("89DED1B26624EC1E634C1989302849DD")
    nonce = nonce_decrypt(k_pi, H("95A3A016522EE98D01E76CB6B98B42C3"), AES128_BP)
    assert nonce == H("3F00C4D39D153F2B2A214A078D899B22")
    bp = BRAINPOOL_P256R1
    assert bp.encode(bp.mul(SK_MAP, bp.g)).hex().upper().startswith("047ACF3EFC982EC45565A4B155129EFBC7")
    shared = bp.mul(SK_MAP, bp.decode(PK_MAP_IC))
    assert bp.encode(shared).hex().upper().startswith("0460332EF2450B5D247EF6D3868397D398")
    generator = mapped_generator(bp, nonce, shared)
    assert bp.encode(generator) == H(
        "048CED63C91426D4F0EB1435E7CB1D74A46723A0AF21C89634F65A9AE87A9265E2"
        "8C879506743F8611AC33645C5B985C80B5F09A0B83407C1B6A4D857AE76FE522"
    )
    assert bp.encode(bp.mul(SK_EPH, generator)) == PK_EPH_IFD
    secret = bp.mul(SK_EPH, bp.decode(PK_EPH_IC))
    assert secret is not None
    x = secret[0].to_bytes(32, "big")
    assert x == H("28768D20701247DAE81804C9E780EDE582A9996DB4A315020B2733197DB84925")
    ks_enc, ks_mac = session_keys(x, AES128_BP)
    assert (ks_enc, ks_mac) == (H("F5F0E35C0D7161EE6724EE513A0D9A7F"), H("FE251C7858B356B24514B3BD5F4297D1"))
    assert auth_token(ks_mac, PK_EPH_IC, AES128_BP) == H("C2B0BD78D94BA866")
    assert auth_token(ks_mac, PK_EPH_IFD, AES128_BP) == H("3ABB9674BCE93C08")


def test_worked_example_as_an_apdu_exchange() -> None:
    """perform_pace against the example's card answers, with the example's private keys injected."""
    from drivers.card.pace import perform_pace

    card_answers = iter(
        [
            "9000",
            "7C12801095A3A016522EE98D01E76CB6B98B42C3" + "9000",
            "7C438241" + PK_MAP_IC.hex() + "9000",
            "7C438441" + PK_EPH_IC.hex() + "9000",
            "7C0A86083ABB9674BCE93C08" + "9000",
        ]
    )
    sent: list[bytes] = []

    def card(apdu: bytes) -> bytes:
        sent.append(apdu)
        return bytes.fromhex(next(card_answers))

    scalars = iter([SK_MAP, SK_EPH])
    session = perform_pace(DirectTransport(card), EXAMPLE_KEY, AES128_BP, scalar=lambda: next(scalars))
    assert sent[0] == H("0022C1A412800A04007F0007020204020283010184010D")
    assert sent[1] == H("10860000027C0000")
    assert sent[4] == H("008600000C7C0A8508C2B0BD78D94BA86600")
    assert (session.ks_enc, session.ks_mac, session.ssc) == (
        H("F5F0E35C0D7161EE6724EE513A0D9A7F"),
        H("FE251C7858B356B24514B3BD5F4297D1"),
        0,
    )
