"""Machine readable zone: check digits (ICAO 9303 Part 3, 4.9) and the TD1 layout (Part 5) of DG1.

CCCD cards carry a 3-line TD1 MRZ: line 1 holds the 9-digit document number (last 9 digits of the
12-digit personal number) and the personal number again in the optional data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from drivers.card.errors import MalformedDataError

_WEIGHTS = (7, 3, 1)
_MRZ_CHARS = re.compile(r"^[0-9A-Z<]*$")


def char_value(char: str) -> int:
    if char.isdigit():
        return int(char)
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    if char == "<":
        return 0
    raise MalformedDataError(f"MRZ: character {char!r} is not allowed")


def check_digit(field: str) -> str:
    return str(sum(char_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(field)) % 10)


def _verify(name: str, field: str, digit: str) -> None:
    if check_digit(field) != digit:
        raise MalformedDataError(f"MRZ: check digit of {name} does not match")


@dataclass(repr=False)
class Td1:
    """The fields of a TD1 MRZ, as printed (fillers kept in optional data, names split).

    ``repr`` shows none of them: every field but the document code is personal data.
    """

    document_code: str
    issuing_state: str
    document_number: str
    optional_data_1: str
    birth_yymmdd: str
    sex: str
    expiry_yymmdd: str
    nationality: str
    optional_data_2: str
    primary_identifier: str
    secondary_identifier: str

    @property
    def name(self) -> str:
        return f"{self.primary_identifier} {self.secondary_identifier}".strip()

    def __repr__(self) -> str:
        return f"Td1(document_code={self.document_code!r}, <personal data hidden>)"

    def wipe(self) -> None:
        for item in fields(self):
            setattr(self, item.name, "")


def parse_td1(text: str) -> Td1:
    """Parse a 90-character TD1 MRZ and verify all four check digits."""
    text = text.replace("\n", "").replace("\r", "")
    if len(text) != 90 or not _MRZ_CHARS.match(text):
        raise MalformedDataError(f"MRZ: TD1 must be 90 characters of [0-9A-Z<], got {len(text)}")
    l1, l2, l3 = text[:30], text[30:60], text[60:]
    doc_number, doc_cd, opt1 = l1[5:14], l1[14], l1[15:30]
    if doc_cd == "<":
        # Document numbers over 9 characters continue in the optional data, check digit after them.
        rest = opt1.rstrip("<")
        if not rest:
            raise MalformedDataError("MRZ: document number check digit missing")
        doc_number, doc_cd, opt1 = doc_number + rest[:-1], rest[-1], ""
    _verify("document number", doc_number, doc_cd)
    _verify("birth date", l2[0:6], l2[6])
    _verify("expiry date", l2[8:14], l2[14])
    _verify("composite", l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29], l2[29])
    primary, _, secondary = l3.partition("<<")
    return Td1(
        document_code=l1[0:2].rstrip("<"),
        issuing_state=l1[2:5],
        document_number=doc_number.rstrip("<"),
        optional_data_1=opt1.rstrip("<"),
        birth_yymmdd=l2[0:6],
        sex=l2[7].replace("<", "X"),
        expiry_yymmdd=l2[8:14],
        nationality=l2[15:18].rstrip("<"),
        optional_data_2=l2[18:29].rstrip("<"),
        primary_identifier=primary.replace("<", " ").strip(),
        secondary_identifier=secondary.replace("<", " ").strip(),
    )


def _fill(value: str, width: int) -> str:
    if len(value) > width:
        raise ValueError(f"MRZ field {value!r} longer than {width}")
    return value + "<" * (width - len(value))


def build_td1(
    *,
    document_code: str,
    issuing_state: str,
    document_number: str,
    optional_data_1: str,
    birth_yymmdd: str,
    sex: str,
    expiry_yymmdd: str,
    nationality: str,
    optional_data_2: str,
    name_mrz: str,
) -> str:
    """Compose a TD1 MRZ with correct check digits (the simulator's DG1, and test data)."""
    l1 = _fill(document_code, 2) + issuing_state + _fill(document_number, 9)
    l1 += check_digit(_fill(document_number, 9)) + _fill(optional_data_1, 15)
    l2a = birth_yymmdd + check_digit(birth_yymmdd) + sex
    l2b = expiry_yymmdd + check_digit(expiry_yymmdd) + _fill(nationality, 3)
    opt2 = _fill(optional_data_2, 11)
    composite = check_digit(l1[5:30] + l2a[:7] + l2b[:7] + opt2)
    return l1 + l2a + l2b + opt2 + composite + _fill(name_mrz, 30)


def name_to_mrz(primary: str, secondary: str) -> str:
    """ASCII MRZ name field: surname<<given<names, truncated to 30 characters."""
    return _fill(f"{primary.replace(' ', '<')}<<{secondary.replace(' ', '<')}"[:30], 30)
