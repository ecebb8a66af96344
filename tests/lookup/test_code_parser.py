"""The dossier code parser on real-format and hostile inputs, plus properties (hypothesis)."""

from __future__ import annotations

import json
import unicodedata
from datetime import date
from urllib.parse import quote, unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.dossier import DossierCode, InvalidDossierCode, parse_dossier_code
from kiosk.error_screens import screen_key

GLOSSARY = "000.00.10.H12-210901-0001"
EXPECTED = DossierCode("000.00.10.H12", date(2021, 9, 1), "0001")


@pytest.mark.parametrize(
    "text",
    [
        GLOSSARY,
        "  000.00.10.H12-210901-0001\r\n",
        "000.00.10.h12-210901-0001",  # typed in lower case on the on-screen keyboard
        "\ufeff000.00.10.H12-210901-0001",
        "https://motcua.hcm.gov.vn/tra-cuu?maHoSo=000.00.10.H12-210901-0001",
        "https://motcua.example.vn/tra-cuu?lang=vi&ma_ho_so=000.00.10.H12-210901-0001&src=qr",
        "HTTPS://motcua.example.vn/hoso/000.00.10.H12-210901-0001",
        "https://motcua.example.vn/tra-cuu#code=000.00.10.H12-210901-0001",
        "https://motcua.example.vn/x?q=000.00.10.H12-210901-0001",
        '{"maHoSo": "000.00.10.H12-210901-0001"}',
        '{"code": "000.00.10.H12-210901-0001", "name": "Đăng ký khai sinh"}',
        '{"data": {"dossierCode": "000.00.10.H12-210901-0001"}}',
        '{"maHoSo": "000.00.10.H12-210901-0001", "soHoSo": "000.00.10.H12-210901-0001"}',
        "Mã hồ sơ: 000.00.10.H12-210901-0001\nNgày hẹn trả: 03/09/2021",
        "MA HO SO: 000.00.10.H12-210901-0001",
    ],
)
def test_receipt_variants_give_the_code(text: str) -> None:
    assert parse_dossier_code(text) == EXPECTED
    assert str(parse_dossier_code(text)) == GLOSSARY


@pytest.mark.parametrize(
    ("text", "agency", "day", "seq"),
    [
        ("G22.35-201030-0001234", "G22.35", date(2020, 10, 30), "0001234"),
        ("000.31.25.H29-260105-000041", "000.31.25.H29", date(2026, 1, 5), "000041"),
        ("H26.99-240229-12345", "H26.99", date(2024, 2, 29), "12345"),  # a leap day
    ],
)
def test_sequence_lengths_and_agencies(text: str, agency: str, day: date, seq: str) -> None:
    code = parse_dossier_code(text)
    assert (code.agency, code.received_on, code.sequence, code.text) == (agency, day, seq, text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\x00",
        "000.00.10.H12-210901-001",  # 3-digit sequence
        "000.00.10.H12-210901-00000001",  # 8-digit sequence
        "000.00.10.H12-210231-0001",  # 31 February
        "000.00.10.H12-211301-0001",  # month 13
        "000.00.10.H12-230229-0001",  # 2023 is no leap year
        "000.00.10.H12–210901–0001",  # en dashes
        "000.00.10.H12-２１０９０１-0001",  # full-width digits
        "000.00.10.H12-٢١٠٩٠١-0001",  # Arabic-Indic digits
        "000.00.10.H12 210901 0001",
        "000.00.10.H12-210901-0001; DROP TABLE dossiers",
        "000.00.10.H12-210901-0001\x00",
        "000.00.10.H12-210901-0001\x1b[2J",
        ".000.00.10.H12-210901-0001",
        "000..00.10.H12-210901-0001",
        "A" * 5000,
        GLOSSARY + " " * 3000,
        "[" * 1500 + "]" * 1500,  # nesting bomb
        "{" * 3000,
        '{"maHoSo": 12345}',
        '{"maHoSo": "000.00.10.H12-210901-0001", "code": "000.00.10.H12-210901-0002"}',  # two codes
        '{"ten": "000.00.10.H12-210901-0001"}',  # not under a code key
        "https://motcua.example.vn/?a=000.00.10.H12-210901-0001&b=000.00.10.H12-210901-0002",
        "https://www.google.com/search?q=ho+so",
        "javascript:alert(1)",
        "Mã hồ sơ: 000.00.10.H12-210901-0001\nMã hồ sơ: 000.00.10.H12-210901-0002",
        # VietQR payment code (EMVCo) and a CCCD QR: real QR codes citizens carry, not receipts
        "00020101021238570010A00000072701270006970436011300110123456780208QRIBFTTA53037045802VN6304ABCD",
        "079123456789|123456789|Nguyễn Văn An|01011990|Nam|Phường Bến Thành, TP. Hồ Chí Minh|01012021",
        "MOTCUA-TICKET:hcm-ben-thanh/2026-11-23/A012",
        "\ud800",
    ],
)
def test_hostile_and_foreign_inputs_are_not_a_dossier(text: str) -> None:
    with pytest.raises(InvalidDossierCode) as info:
        parse_dossier_code(text)
    assert screen_key(info.value) == "lookup.not_a_dossier"


def test_refusal_message_never_repeats_the_scan() -> None:
    """A CCCD's QR held to the camera must not put the ID number or name into a log line."""
    cccd = "079123456789|123456789|Nguyễn Văn An|01011990|Nam|Phường Bến Thành, TP. Hồ Chí Minh|01012021"
    with pytest.raises(InvalidDossierCode) as info:
        parse_dossier_code(cccd)
    assert info.value.message == f"not a dossier code (|-separated text of {len(cccd)} characters)"


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidDossierCode):
        parse_dossier_code(b"000.00.10.H12-210901-0001")  # type: ignore[arg-type]


# -- properties ---------------------------------------------------------------------------------
segment = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=1, max_size=5)
agencies = st.lists(segment, min_size=1, max_size=5).map(".".join)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
sequences = st.integers(min_value=4, max_value=7).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)
)
codes = st.builds(DossierCode, agencies, days, sequences)


@given(codes)
def test_every_valid_code_round_trips(code: DossierCode) -> None:
    assert parse_dossier_code(code.text) == code
    assert parse_dossier_code(code.text.lower()) == code


@given(codes, st.sampled_from(["maHoSo", "code", "ma_ho_so", "dossierCode"]))
def test_wrapped_codes_round_trip(code: DossierCode, key: str) -> None:
    assert parse_dossier_code(json.dumps({key: code.text, "ten": "Đăng ký khai sinh"})) == code
    assert parse_dossier_code(f"https://motcua.example.vn/tra-cuu?{key}={quote(code.text)}&x=1") == code
    assert parse_dossier_code(f"Mã hồ sơ: {code.text}\nNgày hẹn: 01/01/2030") == code


@settings(max_examples=400)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_and_never_invents_a_code(text: str) -> None:
    try:
        code = parse_dossier_code(text)
    except InvalidDossierCode:
        return
    folded = unicodedata.normalize("NFC", text).upper()
    assert code.text in folded or code.text in unquote(folded)


@given(codes, st.text(min_size=1, max_size=3, alphabet=st.characters(codec="utf-8")))
def test_garbage_glued_to_a_code_is_refused_or_the_same_code(code: DossierCode, junk: str) -> None:
    """A scan with stray characters either still names exactly this code or is refused."""
    for text in (junk + code.text, code.text + junk):
        try:
            parsed = parse_dossier_code(text)
        except InvalidDossierCode:
            continue
        assert parsed.text in unicodedata.normalize("NFC", text).upper()


@pytest.mark.parametrize(
    "text",
    [
        "http://[",  # urlsplit: "Invalid IPv6 URL"
        "https://[::1/000.00.10.H12-210901-0001",
        "http://a\uff0fb/000.00.10.H12-210901-0001",  # netloc with a full-width solidus (NFKC check)
    ],
)
def test_urls_that_urlsplit_rejects_are_not_a_dossier(text: str) -> None:
    """urlsplit raises ValueError for these; it escaped the parser (found in the security review)."""
    with pytest.raises(InvalidDossierCode):
        parse_dossier_code(text)


def test_format_characters_do_not_hide_a_code() -> None:
    """The parser is given scanner-normalised text, but a typed or pushed code may still hold an
    invisible character: it is refused, not looked up as something else."""
    with pytest.raises(InvalidDossierCode):
        parse_dossier_code("000.00.10.H12-210901-0001\u200b")
