"""VietQR: the EMVCo merchant-presented QR that every Vietnamese banking app scans (docs/visit.md).

NAPAS's VietQR is EMVCo's "QR Code Specification for Payment Systems: Merchant-Presented Mode" with
the NAPAS 247 account-transfer service in merchant account template 38. A payload is a string of
TLV data objects: a 2-digit tag, a 2-digit length (in characters) and the value, ending in a CRC:

====  =================================  ======================================================
tag   what                               here
====  =================================  ======================================================
00    payload format indicator           ``01``
01    point of initiation                ``12`` with an amount (one payment), ``11`` without
38    merchant account information       00 GUID ``A000000727`` (NAPAS); 01 beneficiary: 00 BIN
                                         (6 digits), 01 account number; 02 service ``QRIBFTTA``
                                         (transfer to an account)
53    transaction currency               ``704`` (VND, ISO 4217)
54    transaction amount                 whole đồng, digits only (VND has no minor unit)
58    country code                       ``VN``
62    additional data field template     08 purpose of transaction: the payment reference the
                                         bank shows as the transfer's content (the dossier code)
63    CRC                                CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of the
                                         whole payload up to and including ``6304``, 4 hex digits
====  =================================  ======================================================

No maintained Python library was found that we could check against the published examples (the
PyPI packages are single releases without a test suite); this is TLV building, not cryptography,
and the tests hold it to NAPAS's and independent encoders' published payloads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiosk.errors import KioskError

NAPAS_GUID = "A000000727"
SERVICE_TO_ACCOUNT = "QRIBFTTA"
CURRENCY_VND = "704"
COUNTRY_VN = "VN"
#: EMVCo: every sub-field of the additional data template (tag 62) holds at most 25 characters
MAX_REFERENCE = 25
MAX_AMOUNT_VND = 10**13 - 1  # tag 54 holds at most 13 characters

_BIN = re.compile(r"97\d{4}")  # NAPAS member BINs are 970xxx/971xxx
_ACCOUNT = re.compile(r"[0-9A-Za-z]{1,19}")
#: what every bank app accepts in a transfer's content: unaccented letters, digits, space . - /
_REFERENCE = re.compile(r"[0-9A-Za-z .\-/]{1,25}")


class VietQrError(KioskError):
    """A payment code that cannot be built from these values, or a payload that is not a valid VietQR."""

    code = "vietqr_invalid"


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _tlv(tag: str, value: str) -> str:
    if len(value) > 99:
        raise VietQrError(f"VietQR tag {tag}: value of {len(value)} characters, at most 99")
    return f"{tag}{len(value):02d}{value}"


@dataclass(frozen=True)
class VietQrPayment:
    """One transfer to the payee's account. ``amount_vnd`` None: a static code (the payer types it)."""

    bank_bin: str
    account: str
    amount_vnd: int | None = None
    reference: str = ""

    def __post_init__(self) -> None:
        if not _BIN.fullmatch(self.bank_bin):
            raise VietQrError(f"VietQR: bank BIN must be 6 digits starting 97, got {self.bank_bin!r:.20}")
        if not _ACCOUNT.fullmatch(self.account):
            raise VietQrError("VietQR: account number must be 1-19 letters or digits")
        if self.amount_vnd is not None and not 0 < self.amount_vnd <= MAX_AMOUNT_VND:
            raise VietQrError(f"VietQR: amount must be 1..{MAX_AMOUNT_VND} đồng, got {self.amount_vnd}")
        if self.reference and not _REFERENCE.fullmatch(self.reference):
            raise VietQrError(f"VietQR: reference must be at most {MAX_REFERENCE} unaccented letters, "
                              f"digits, spaces or . - / (got {len(self.reference)} characters)")


def build_vietqr(payment: VietQrPayment) -> str:
    """The payload text to encode as a QR (ASCII only, so byte and character lengths agree)."""
    beneficiary = _tlv("00", payment.bank_bin) + _tlv("01", payment.account)
    account_info = _tlv("00", NAPAS_GUID) + _tlv("01", beneficiary) + _tlv("02", SERVICE_TO_ACCOUNT)
    parts = [
        _tlv("00", "01"),
        _tlv("01", "12" if payment.amount_vnd is not None else "11"),
        _tlv("38", account_info),
        _tlv("53", CURRENCY_VND),
    ]
    if payment.amount_vnd is not None:
        parts.append(_tlv("54", str(payment.amount_vnd)))
    parts.append(_tlv("58", COUNTRY_VN))
    if payment.reference:
        parts.append(_tlv("62", _tlv("08", payment.reference)))
    body = "".join(parts) + "6304"
    return body + f"{crc16_ccitt_false(body.encode('ascii')):04X}"


def parse_tlv(text: str) -> dict[str, str]:
    """Top-level data objects of an EMVCo payload, by tag; VietQrError for a cut or repeated object."""
    objects: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        head = text[pos : pos + 4]
        if len(head) < 4 or not head.isascii() or not head.isdigit():
            raise VietQrError(f"VietQR: broken data object at character {pos}")
        tag, length = head[:2], int(head[2:])
        value = text[pos + 4 : pos + 4 + length]
        if len(value) != length:
            raise VietQrError(f"VietQR: tag {tag} is cut short")
        if tag in objects:
            raise VietQrError(f"VietQR: tag {tag} appears twice")
        objects[tag] = value
        pos += 4 + length
    return objects


@dataclass(frozen=True)
class ParsedVietQr:
    """What a decoded VietQR says, field by field (``crc`` as sent, already checked)."""

    payment: VietQrPayment
    initiation: str
    guid: str
    service: str
    currency: str
    country: str
    crc: str


def parse_vietqr(text: str) -> ParsedVietQr:
    """Read a VietQR payload back (the tests decode printed codes with it); checks the CRC first."""
    if len(text) < 8 or text[-8:-4] != "6304":
        raise VietQrError("VietQR: no CRC data object (6304....) at the end")
    sent = text[-4:].upper()
    if f"{crc16_ccitt_false(text[:-4].encode('utf-8')):04X}" != sent:
        raise VietQrError("VietQR: CRC does not match the payload")
    top = parse_tlv(text)
    if top.get("00") != "01":
        raise VietQrError("VietQR: payload format indicator is not 01")
    try:
        account_info = parse_tlv(top["38"])
        beneficiary = parse_tlv(account_info["01"])
        extra = parse_tlv(top["62"]) if "62" in top else {}
        amount = top.get("54")
        payment = VietQrPayment(
            bank_bin=beneficiary["00"],
            account=beneficiary["01"],
            amount_vnd=int(amount) if amount is not None and amount.isascii() and amount.isdigit() else None,
            reference=extra.get("08", ""),
        )
        if amount is not None and payment.amount_vnd is None:
            raise VietQrError("VietQR: amount is not whole đồng")
        return ParsedVietQr(
            payment=payment,
            initiation=top["01"],
            guid=account_info["00"],
            service=account_info.get("02", ""),
            currency=top["53"],
            country=top["58"],
            crc=sent,
        )
    except KeyError as exc:
        raise VietQrError(f"VietQR: mandatory data object {exc.args[0]} missing") from exc


def render_png(payload: str, scale: int = 8) -> bytes:
    """The payload as a QR image (PNG) for the screen, by segno, the project's QR encoder; error
    correction M as on the printed slip."""
    import io

    import segno

    buffer = io.BytesIO()
    segno.make_qr(payload, error="m", boost_error=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def format_vnd(amount: int, language: str = "vi") -> str:
    """``75.000 đồng`` (Vietnamese writes thousands with dots) / ``75,000 VND``."""
    if language == "vi":
        return f"{amount:,} đồng".replace(",", ".")
    return f"{amount:,} VND"
