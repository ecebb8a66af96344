"""Access keys for the chip: from the MRZ (BAC), from the CAN, or derived from the QR on the card.

The QR printed on a CCCD (``ID12|oldID9|full name|ddmmyyyy birth|sex|residence|ddmmyyyy issue``)
lacks the expiry date that BAC needs. The expiry follows the renewal ages of the law (Luật Căn cước
công dân 2014 art. 21: 25, 40, 60; Luật Căn cước 2023 art. 21 adds 14): a card expires on the holder's
birthday at the next renewal age, except that a card issued within the two years before that age stays
valid until the following one, and a card issued at 58 or later has no expiry. ``access_keys_from_cccd_qr``
therefore yields a few candidates, the most likely first.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date

from drivers.card.errors import BadQrError, MalformedDataError
from drivers.card.mrz import check_digit, parse_td1

#: Ages at which a CCCD must be renewed (14 only for cards issued under the 2023 law).
RENEWAL_AGES = (14, 25, 40, 60)
#: The two-year grace before a renewal age (card issued then is valid until the next age).
GRACE_YEARS = 2
#: MRZ expiry fields tried for cards "không thời hạn" (no expiry); which one real cards use is not
#: confirmed, so both ICAO-plausible encodings are tried.
NO_EXPIRY_FIELDS = ("991231", "<<<<<<")

_YYMMDD = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class AccessKey:
    """What unlocks the chip. ``secret`` is the MRZ information or the CAN; never logged (repr hides it).

    ``label`` is a non-personal description for logs and the technician screen ("mrz", "can",
    "qr:expiry+25"...).
    """

    kind: str  # "mrz" or "can"
    secret: str = field(repr=False)
    label: str = ""

    @classmethod
    def from_mrz(
        cls, document_number: str, birth_yymmdd: str, expiry_yymmdd: str, label: str = "mrz"
    ) -> AccessKey:
        doc = document_number.strip().upper().replace(" ", "")
        if not doc or not re.fullmatch(r"[0-9A-Z<]+", doc):
            raise ValueError("document number must be letters and digits")
        if not _YYMMDD.match(birth_yymmdd):
            raise ValueError("birth date must be YYMMDD")
        if not (_YYMMDD.match(expiry_yymmdd) or expiry_yymmdd == "<<<<<<"):
            raise ValueError("expiry date must be YYMMDD")
        if len(doc) < 9:
            doc = doc + "<" * (9 - len(doc))
        info = (
            doc
            + check_digit(doc)
            + birth_yymmdd
            + check_digit(birth_yymmdd)
            + expiry_yymmdd
            + check_digit(expiry_yymmdd)
        )
        return cls("mrz", info, label)

    @classmethod
    def from_mrz_text(cls, text: str) -> AccessKey:
        """Key from the 3-line TD1 MRZ on the card's back, as scanned (check digits verified);
        MalformedDataError when a line or check digit is wrong."""
        td1 = parse_td1("".join(line.strip() for line in text.strip().splitlines()).replace(" ", ""))
        try:
            return cls.from_mrz(td1.document_number, td1.birth_yymmdd, td1.expiry_yymmdd, label="mrz-scan")
        except ValueError as exc:  # check digits right, but e.g. letters where a date belongs
            raise MalformedDataError(f"MRZ: {exc}") from exc
        finally:
            td1.wipe()

    @classmethod
    def from_can(cls, can: str) -> AccessKey:
        can = can.strip()
        if not re.fullmatch(r"\d{6}", can):
            raise ValueError("CAN must be 6 digits")
        return cls("can", can, "can")

    def bac_seed(self) -> bytes:
        """K_seed of BAC: SHA-1 of the MRZ information, first 16 bytes (ICAO 9303-11, 9.7.2)."""
        if self.kind != "mrz":
            raise ValueError("BAC needs an MRZ key; a CAN only works with PACE")
        return hashlib.sha1(self.secret.encode("ascii")).digest()[:16]


def _birthday_at(birth: date, age: int) -> date:
    try:
        return birth.replace(year=birth.year + age)
    except ValueError:  # 29 February in a non-leap year: the day before is taken
        return birth.replace(year=birth.year + age, day=28)


def expiry_candidates(birth: date, issue: date) -> list[str]:
    """MRZ expiry fields (YYMMDD or no-expiry encodings) for a card issued on ``issue``, likeliest first."""
    likely: str | None = None
    others: list[str] = []
    for age in RENEWAL_AGES:
        at = _birthday_at(birth, age)
        if at <= issue:
            continue
        text = at.strftime("%y%m%d")
        grace_start = _birthday_at(birth, age - GRACE_YEARS)
        if likely is None and issue < grace_start:
            likely = text
        else:
            others.append(text)
    ordered = ([likely] if likely else []) + others
    age_at_issue = issue.year - birth.year - ((issue.month, issue.day) < (birth.month, birth.day))
    no_expiry = list(NO_EXPIRY_FIELDS)
    # Issued at 58 or later: no expiry is the likely case; otherwise it comes last.
    return no_expiry + ordered if age_at_issue >= 60 - GRACE_YEARS else ordered + no_expiry


def _qr_date(text: str, what: str) -> date:
    if not re.fullmatch(r"\d{8}", text):
        raise BadQrError(f"CCCD QR: {what} is not ddmmyyyy")
    try:
        return date(int(text[4:]), int(text[2:4]), int(text[:2]))
    except ValueError as exc:
        raise BadQrError(f"CCCD QR: {what} is not a valid date") from exc


def access_keys_from_cccd_qr(text: str) -> list[AccessKey]:
    """BAC keys to try for the card whose QR reads ``text`` (see the module doc for the order)."""
    parts = text.strip().split("|")
    if len(parts) < 7:
        raise BadQrError(f"CCCD QR: expected 7 fields separated by '|', got {len(parts)}")
    id12 = parts[0]
    if not re.fullmatch(r"\d{12}", id12):
        raise BadQrError("CCCD QR: first field is not a 12-digit personal number")
    birth = _qr_date(parts[3], "birth date")
    issue = _qr_date(parts[6], "issue date")
    if issue < birth:
        raise BadQrError("CCCD QR: issue date before birth date")
    doc = id12[-9:]
    yymmdd = birth.strftime("%y%m%d")
    return [
        AccessKey.from_mrz(doc, yymmdd, expiry, label=f"qr:candidate{i}")
        for i, expiry in enumerate(expiry_candidates(birth, issue))
    ]
