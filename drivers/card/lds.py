"""LDS files of the eMRTD application (ICAO 9303 Part 10) and the Vietnamese DG13: bytes in, values out.

Each structure has ``parse_*`` (validates, raises MalformedDataError) and, where the virtual chip needs
it, ``build_*``; round trips are tested. No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from drivers.card import tlv
from drivers.card.errors import MalformedDataError
from drivers.card.mrz import Td1, parse_td1

EMRTD_AID = bytes.fromhex("A0000002471001")


@dataclass(frozen=True)
class Ef:
    """An elementary file: name, file id, short file id, LDS tag."""

    name: str
    fid: int
    sfi: int
    tag: int


EF_COM = Ef("EF.COM", 0x011E, 0x1E, 0x60)
EF_SOD = Ef("EF.SOD", 0x011D, 0x1D, 0x77)
DG1 = Ef("DG1", 0x0101, 0x01, 0x61)
DG2 = Ef("DG2", 0x0102, 0x02, 0x75)
DG3 = Ef("DG3", 0x0103, 0x03, 0x63)
DG13 = Ef("DG13", 0x010D, 0x0D, 0x6D)
DG14 = Ef("DG14", 0x010E, 0x0E, 0x6E)
DG15 = Ef("DG15", 0x010F, 0x0F, 0x6F)
DATA_GROUPS = {1: DG1, 2: DG2, 3: DG3, 13: DG13, 14: DG14, 15: DG15}
BY_SFI = {ef.sfi: ef for ef in (EF_COM, EF_SOD, *DATA_GROUPS.values())}
DG_NUMBER_BY_TAG = {ef.tag: number for number, ef in DATA_GROUPS.items()}


# -- EF.COM -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Com:
    lds_version: str
    unicode_version: str
    tags: tuple[int, ...]

    def data_groups(self) -> list[int]:
        return sorted(DG_NUMBER_BY_TAG[t] for t in self.tags if t in DG_NUMBER_BY_TAG)


def parse_com(data: bytes) -> Com:
    body = tlv.parse_one(data, 0x60).value
    return Com(
        tlv.find(body, 0x5F01).decode("ascii", "replace"),
        tlv.find(body, 0x5F36).decode("ascii", "replace"),
        tuple(tlv.find(body, 0x5C)),
    )


def build_com(data_groups: list[int]) -> bytes:
    tags = bytes(DATA_GROUPS[n].tag for n in data_groups)
    body = tlv.encode(0x5F01, b"0107") + tlv.encode(0x5F36, b"040000") + tlv.encode(0x5C, tags)
    return tlv.encode(0x60, body)


# -- DG1 ----------------------------------------------------------------------------------------------
def parse_dg1(data: bytes) -> Td1:
    body = tlv.parse_one(data, 0x61).value
    return parse_td1(tlv.find(body, 0x5F1F).decode("ascii", "replace"))


def build_dg1(mrz: str) -> bytes:
    return tlv.encode(0x61, tlv.encode(0x5F1F, mrz.encode("ascii")))


# -- DG13 (Vietnam) -----------------------------------------------------------------------------------
#: DG13 field numbers (design note; 15 and 16 are kept raw, their meaning is not confirmed)
DG13_FIELDS = {
    1: "id_number",
    2: "full_name",
    3: "birth_date",
    4: "sex",
    5: "nationality",
    6: "ethnicity",
    7: "religion",
    8: "place_of_origin",
    9: "place_of_residence",
    10: "identifying_marks",
    11: "issue_date",
    12: "expiry_date",
    13: "parents",
    14: "spouse_name",
    15: "other_document_number",
    16: "old_id_number",
}
#: placeholder OID the virtual chip writes; the real cards' OID is not published, the parser ignores it
DG13_OID = bytes.fromhex("0606") + bytes([0x28, 0x85, 0x40, 0x01, 0x01, 0x0D])  # 1.0.704.1.1.13
_STRING_TAGS = {0x0C, 0x13, 0x16, 0x1E, 0x14, 0x1A}


@dataclass
class Dg13:
    """Field number -> list of text values (field 13 has two: father, mother); ``raw`` for the rest."""

    values: dict[int, list[str]] = field(default_factory=dict, repr=False)  # personal data
    raw: dict[int, bytes] = field(default_factory=dict, repr=False)
    version: int = 1

    def text(self, number: int) -> str | None:
        found = self.values.get(number)
        return found[0] if found else None

    def wipe(self) -> None:
        self.values.clear()
        self.raw.clear()


def _decode_string(item: tlv.Tlv) -> str:
    if item.tag == 0x1E:  # BMPString
        return item.value.decode("utf-16-be", "replace")
    return item.value.decode("utf-8", "replace")


def _strings(items: list[tlv.Tlv], depth: int) -> list[str]:
    if items:
        tlv.check_depth(depth, "DG13")
    out: list[str] = []
    for item in items:
        if item.tag in _STRING_TAGS:
            out.append(_decode_string(item))
        elif item.constructed:
            out.extend(_strings(item.children(), depth + 1))
    return out


def _collect_fields(items: list[tlv.Tlv], dg: Dg13, depth: int) -> None:
    if items:
        tlv.check_depth(depth, "DG13")
    for item in items:
        if not item.constructed:
            continue
        kids = item.children()
        if item.tag == 0x30 and len(kids) >= 2 and kids[0].tag == 0x02 and len(kids[0].value) <= 2:
            number = int.from_bytes(kids[0].value, "big")
            rest = kids[1:]
            if rest and (rest[0].tag == 0x06):  # the top-level header SEQUENCE {version, OID, ...}
                dg.version = number
                _collect_fields(rest[1:], dg, depth + 1)
                continue
            dg.raw[number] = b"".join(k.dump() for k in rest)
            texts = _strings(rest, depth + 1)
            if texts or number in DG13_FIELDS:
                dg.values[number] = texts
        else:
            _collect_fields(kids, dg, depth + 1)


def parse_dg13(data: bytes) -> Dg13:
    """Parse DG13 leniently: fields are SEQUENCE {INTEGER number, value...} wherever they are nested
    (at most ``tlv.MAX_DEPTH`` levels deep)."""
    body = tlv.parse_one(data, 0x6D).value
    dg = Dg13()
    _collect_fields(tlv.parse_all(body), dg, 2)  # the elements of 6D are the second level
    if 1 not in dg.values:
        raise MalformedDataError("DG13: field 1 (ID number) missing")
    return dg


def _utf8(text: str) -> bytes:
    return tlv.encode(0x0C, text.encode("utf-8"))


def build_dg13(values: dict[int, list[str]]) -> bytes:
    """DG13 as the design note describes it: SEQUENCE { version, OID, SET { SEQUENCE {n, value} } }."""
    entries = b""
    for number in sorted(values):
        texts = values[number]
        num = tlv.encode(0x02, bytes([number]))
        if number == 13:
            value = tlv.encode(0x30, b"".join(_utf8(t) for t in texts))
        elif number == 1:
            value = tlv.encode(0x13, texts[0].encode("ascii"))
        else:
            value = b"".join(_utf8(t) for t in texts)
        entries += tlv.encode(0x30, num + value)
    inner = tlv.encode(0x02, b"\x01") + DG13_OID + tlv.encode(0x31, entries)
    return tlv.encode(0x6D, tlv.encode(0x30, inner))


_DATE_DMY = re.compile(r"^(\d{2})[/.-]?(\d{2})[/.-]?(\d{4})$")


def parse_vn_date(text: str | None) -> date | None:
    """dd/mm/yyyy (DG13's form; also ddmmyyyy). None for 'Không thời hạn' or anything else."""
    if not text:
        return None
    match = _DATE_DMY.match(text.strip())
    if not match:
        return None
    day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


# -- DG2 (face) ---------------------------------------------------------------------------------------
_JPEG = b"\xff\xd8\xff"
_JP2 = (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")


@dataclass(frozen=True)
class FaceImage:
    data: bytes = field(repr=False)  # the face: biometric data
    mime: str  # image/jpeg or image/jp2


def _find_biometric_data(items: list[tlv.Tlv], depth: int) -> bytes | None:
    if items:
        tlv.check_depth(depth, "DG2")
    for item in items:
        if item.tag in (0x5F2E, 0x7F2E):
            return item.value
        if item.constructed:
            found = _find_biometric_data(item.children(), depth + 1)
            if found is not None:
                return found
    return None


def parse_dg2(data: bytes) -> FaceImage:
    """First face image: ISO/IEC 19794-5 record inside the biometric data block (5F2E)."""
    body = tlv.parse_one(data, 0x75).value
    block = _find_biometric_data(tlv.parse_all(body), 2)
    if block is None or not block.startswith(b"FAC\x00") or len(block) < 14:
        raise MalformedDataError("DG2: no ISO 19794-5 facial record")
    pos = 14  # general header: 'FAC\0', version 4, record length 4, number of faces 2
    if len(block) < pos + 20:
        raise MalformedDataError("DG2: facial record truncated")
    features = int.from_bytes(block[pos + 4 : pos + 6], "big")
    pos += 20 + 8 * features + 12  # facial information, feature points, image information
    image = block[pos:]
    if image.startswith(_JPEG):
        return FaceImage(image, "image/jpeg")
    if image.startswith(_JP2):
        return FaceImage(image, "image/jp2")
    raise MalformedDataError("DG2: image is neither JPEG nor JPEG 2000")


def build_dg2(jpeg: bytes, width: int, height: int) -> bytes:
    image_info = (
        bytes([1, 0]) + width.to_bytes(2, "big") + height.to_bytes(2, "big") + bytes([1, 2, 0, 0, 0, 0])
    )
    facial = bytes(20) + image_info + jpeg
    facial = (len(facial)).to_bytes(4, "big") + facial[4:]
    record = b"FAC\x00" + b"010\x00" + (14 + len(facial)).to_bytes(4, "big") + b"\x00\x01" + facial
    header = tlv.encode(0x80, b"\x01\x01") + tlv.encode(0x87, b"\x01\x01") + tlv.encode(0x88, b"\x00\x08")
    template = tlv.encode(0x7F60, tlv.encode(0xA1, header) + tlv.encode(0x5F2E, record))
    return tlv.encode(0x75, tlv.encode(0x7F61, tlv.encode(0x02, b"\x01") + template))


# -- DG15 ---------------------------------------------------------------------------------------------
def parse_dg15(data: bytes) -> bytes:
    """The active authentication public key (DER SubjectPublicKeyInfo)."""
    return tlv.parse_one(data, 0x6F).value


def build_dg15(spki_der: bytes) -> bytes:
    return tlv.encode(0x6F, spki_der)
