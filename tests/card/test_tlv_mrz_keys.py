"""TLV parser (properties), MRZ check digits and TD1 (ICAO 9303 Part 5 example), access keys from the QR."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.card import tlv
from drivers.card.errors import BadQrError, MalformedDataError
from drivers.card.keys import AccessKey, access_keys_from_cccd_qr, expiry_candidates
from drivers.card.mrz import build_td1, check_digit, parse_td1
from drivers.card.sim.profile import CardProfile

TD1_EXAMPLE = "I<UTOD231458907<<<<<<<<<<<<<<<7408122F1204159UTO<<<<<<<<<<<6ERIKSSON<<ANNA<MARIA<<<<<<<<<<"

tags = st.sampled_from([0x02, 0x04, 0x0C, 0x13, 0x30, 0x31, 0x5F1F, 0x5F2E, 0x7F61, 0x6D, 0x77, 0x9F1F])


@given(st.lists(st.tuples(tags, st.binary(max_size=300)), max_size=6))
def test_tlv_round_trip(items: list[tuple[int, bytes]]) -> None:
    encoded = b"".join(tlv.encode(tag, value) for tag, value in items)
    assert [(t.tag, t.value) for t in tlv.parse_all(encoded)] == items


@given(st.binary(max_size=64))
def test_tlv_parser_only_raises_its_own_error(data: bytes) -> None:
    try:
        parsed = tlv.parse_all(data)
    except MalformedDataError:
        return
    assert tlv.parse_all(b"".join(t.dump() for t in parsed)) == parsed  # minimal re-encoding parses the same


def test_tlv_rejects_length_beyond_buffer() -> None:
    with pytest.raises(MalformedDataError, match="claims 5 bytes"):
        tlv.parse_all(bytes.fromhex("6D05010203"))
    with pytest.raises(MalformedDataError):
        tlv.parse_all(bytes.fromhex("6D84FFFFFFFF00"))
    assert tlv.encode(0x5F1F, bytes(200))[:4] == bytes.fromhex("5F1F81C8")


def test_check_digits_of_icao_examples() -> None:
    assert check_digit("D23145890") == "7"
    assert check_digit("740812") == "2"
    assert check_digit("120415") == "9"
    assert check_digit("L898902C<") == "3"


def test_td1_example_parses_and_verifies() -> None:
    td1 = parse_td1(TD1_EXAMPLE)
    assert (td1.document_code, td1.issuing_state, td1.document_number) == ("I", "UTO", "D23145890")
    assert (td1.birth_yymmdd, td1.sex, td1.expiry_yymmdd, td1.nationality) == ("740812", "F", "120415", "UTO")
    assert (td1.primary_identifier, td1.secondary_identifier) == ("ERIKSSON", "ANNA MARIA")


@pytest.mark.parametrize("position", [14, 36, 44, 59])
def test_td1_every_check_digit_is_verified(position: int) -> None:
    broken = TD1_EXAMPLE[:position] + str((int(TD1_EXAMPLE[position]) + 1) % 10) + TD1_EXAMPLE[position + 1 :]
    with pytest.raises(MalformedDataError, match="check digit"):
        parse_td1(broken)


def test_build_td1_round_trip() -> None:
    mrz = build_td1(
        document_code="ID",
        issuing_state="VNM",
        document_number="090001234",
        optional_data_1="079090001234",
        birth_yymmdd="900517",
        sex="M",
        expiry_yymmdd="300517",
        nationality="VNM",
        optional_data_2="",
        name_mrz="NGUYEN<<VAN<AN",
    )
    assert mrz[:30] == "IDVNM0900012345079090001234<<<"
    td1 = parse_td1(mrz)
    assert td1.optional_data_1 == "079090001234"
    assert td1.name == "NGUYEN VAN AN"


def test_access_key_hides_secret_and_validates() -> None:
    key = AccessKey.from_mrz("090001234", "900517", "300517")
    assert key.secret == "090001234590051783005176"
    assert "0900" not in repr(key)
    with pytest.raises(ValueError):
        AccessKey.from_mrz("090001234", "9005", "300517")
    assert AccessKey.from_can("001234").kind == "can"


def test_expiry_candidates_follow_renewal_ages() -> None:
    # issued at 31: the 40th birthday first, then 60, then the no-expiry encodings
    assert expiry_candidates(date(1990, 5, 17), date(2021, 6, 1)) == ["300517", "500517", "991231", "<<<<<<"]
    # issued at 24 (inside the 2-year grace before 25): valid until 40
    assert expiry_candidates(date(1997, 3, 2), date(2021, 7, 1))[:2] == ["370302", "220302"]
    # issued at 73: no expiry first, nothing else possible
    assert expiry_candidates(date(1948, 2, 29), date(2021, 3, 15)) == ["991231", "<<<<<<"]
    # issued at 59: no expiry is likely, the 60th birthday still possible
    assert expiry_candidates(date(1962, 8, 1), date(2021, 9, 1)) == ["991231", "<<<<<<", "220801"]


def test_keys_from_cccd_qr() -> None:
    qr = "079090001234|025123456|Nguyễn Văn An|17051990|Nam|Phường Bến Thành, TP. Hồ Chí Minh|01062021"
    keys = access_keys_from_cccd_qr(qr)
    assert keys[0] == AccessKey.from_mrz("090001234", "900517", "300517", label="qr:candidate0")
    assert len(keys) == 4


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "07909000123|x|y|17051990|Nam|z|01062021",
        "079090001234||A|32131990|Nam|z|01062021",
        "079090001234||A|17051990|Nam|z|01061980",
    ],
)
def test_bad_qr_raises_bad_qr(text: str) -> None:
    with pytest.raises(BadQrError) as info:
        access_keys_from_cccd_qr(text)
    assert info.value.code == "card_bad_qr"


def test_key_from_scanned_mrz_text(adult: CardProfile) -> None:
    mrz = adult.mrz()
    scanned = "\n".join([mrz[:30], " " + mrz[30:60], mrz[60:] + "  "])  # OCR lines with stray spaces
    key = AccessKey.from_mrz_text(scanned)
    assert key == AccessKey.from_mrz("090001234", "900517", "300517", label="mrz-scan")
    with pytest.raises(MalformedDataError, match="check digit"):
        AccessKey.from_mrz_text(mrz[:14] + "0" + mrz[15:])
