"""VietQR: the published payloads byte for byte, the CRC, refusals, and codes that both decoders
(zxing-cpp and zbar through pyzbar) read back field by field from the screen's PNG."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from drivers.scanner.decode import ZbarDecoder, ZxingDecoder
from kiosk.payments import (
    VietQrError,
    VietQrPayment,
    build_vietqr,
    crc16_ccitt_false,
    parse_vietqr,
    render_png,
)
from kiosk.payments.vietqr import format_vnd, parse_tlv

#: payloads published with NAPAS-conformant encoders (vietnam-qr-pay's README for ACB, dynamic-vietqr's,
#: subiz/vietqr's), each from its stated inputs: BIN, account, amount, purpose
PUBLISHED = [
    (("970416", "257678859", None, ""),
     "00020101021138530010A0000007270123000697041601092576788590208QRIBFTTA53037045802VN6304AE9F"),
    (("970416", "257678859", 10000, "Chuyen tien"),
     "00020101021238530010A0000007270123000697041601092576788590208QRIBFTTA53037045405100005802VN"
     "62150811Chuyen tien630453E6"),
    (("970416", "257678859", 1000, "Chuyen tien"),
     "00020101021238530010A0000007270123000697041601092576788590208QRIBFTTA5303704540410005802VN"
     "62150811Chuyen tien6304BBB8"),
    (("970403", "0011012345678", 180000, "thanh toan don hang"),
     "00020101021238570010A00000072701270006970403011300110123456780208QRIBFTTA530370454061800005802VN"
     "62230819thanh toan don hang63045FAB"),
    (("970415", "0011001932418", 120000, "ung ho lu lut"),
     "00020101021238570010A00000072701270006970415011300110019324180208QRIBFTTA530370454061200005802VN"
     "62170813ung ho lu lut6304C15C"),
]


@pytest.mark.parametrize(("inputs", "payload"), PUBLISHED)
def test_published_payloads_byte_for_byte(inputs: tuple[str, str, int | None, str], payload: str) -> None:
    payment = VietQrPayment(*inputs)
    assert build_vietqr(payment) == payload
    parsed = parse_vietqr(payload)
    assert parsed.payment == payment and parsed.crc == payload[-4:]
    assert parsed.initiation == ("12" if payment.amount_vnd else "11")


def test_crc_is_ccitt_false() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1  # the catalogue's check value
    assert crc16_ccitt_false(b"") == 0xFFFF


def test_tampered_or_broken_payloads_are_refused() -> None:
    good = PUBLISHED[1][1]
    with pytest.raises(VietQrError, match="CRC"):
        parse_vietqr(good.replace("5405100005802", "5405900005802"))  # the amount changed
    with pytest.raises(VietQrError, match="CRC data object"):
        parse_vietqr(good[:-8])
    body = "000201010212" + "5303704" + "5802VN" + "6304"
    with pytest.raises(VietQrError, match="38"):
        parse_vietqr(body + f"{crc16_ccitt_false(body.encode()):04X}")
    with pytest.raises(VietQrError, match="cut short"):
        parse_tlv("0005ab")
    with pytest.raises(VietQrError, match="twice"):
        parse_tlv("000201000201")


@pytest.mark.parametrize("kwargs", [
    {"bank_bin": "12345"}, {"bank_bin": "123456"}, {"account": ""}, {"account": "12 34"},
    {"account": "1" * 20}, {"amount_vnd": 0}, {"amount_vnd": 10**13}, {"reference": "Lệ phí"},
    {"reference": "x" * 26}, {"reference": "a;b"},
])
def test_values_no_bank_app_would_take_are_refused(kwargs: dict[str, object]) -> None:
    values: dict[str, object] = {"bank_bin": "970415", "account": "113366668888", "amount_vnd": 75000,
                                 "reference": "000.31.25.H29-261106-0102", **kwargs}
    with pytest.raises(VietQrError):
        VietQrPayment(**values)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    bank_bin=st.from_regex(r"97[0-9]{4}", fullmatch=True),
    account=st.from_regex(r"[0-9A-Za-z]{1,19}", fullmatch=True),
    amount=st.one_of(st.none(), st.integers(1, 10**13 - 1)),
    reference=st.from_regex(r"[0-9A-Za-z .\-/]{0,25}", fullmatch=True),
)
def test_what_is_built_parses_back(bank_bin: str, account: str, amount: int | None, reference: str) -> None:
    payment = VietQrPayment(bank_bin, account, amount, reference)
    payload = build_vietqr(payment)
    assert payload.isascii() and parse_vietqr(payload).payment == payment


def test_screen_png_decodes_with_both_decoders() -> None:
    payment = VietQrPayment("970415", "113366668888", 75_000, "000.31.25.H29-261106-0102")
    payload = build_vietqr(payment)
    image = Image.open(io.BytesIO(render_png(payload))).convert("L")
    zbar = ZbarDecoder()
    try:
        for decoder in (ZxingDecoder(), zbar):
            [found] = decoder.decode(image)
            assert found.text == payload, decoder.name
            parsed = parse_vietqr(found.text)
            assert parsed.payment == payment
            assert parsed.crc == f"{crc16_ccitt_false(payload[:-4].encode()):04X}"
    finally:
        zbar.close()


def test_amounts_are_written_as_people_read_them() -> None:
    assert format_vnd(75_000) == "75.000 đồng" and format_vnd(1_250_000, "en") == "1,250,000 VND"
