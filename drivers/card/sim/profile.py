"""A person on a virtual CCCD: the TOML profile, and the LDS files (signed EF.SOD included) built from it.

Profiles hold fictional people only (glossary.md names, CCCD number rules). The face is drawn, not
photographed: a simple portrait padded with a JPEG comment to the requested size, so DG2 has a
realistic length (15 KB by default) without shipping an image of anyone.
"""

from __future__ import annotations

import hashlib
import io
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from drivers.card import lds, tlv
from drivers.card.ca import build_dg14
from drivers.card.errors import MalformedDataError
from drivers.card.keys import NO_EXPIRY_FIELDS
from drivers.card.mrz import build_td1, name_to_mrz
from drivers.card.sim.pki import TestPki
from drivers.card.sod import LDS_SECURITY_OBJECT_OID, LdsSecurityObject

#: chip authentication the virtual CCCD offers in DG14: ECDH on P-256, then AES-128 secure messaging
CA_PROTOCOL = "0.4.0.127.0.7.2.2.3.2.2"
PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"


@dataclass(frozen=True, repr=False)
class CardProfile:
    """The printed and chip data of one fictional citizen (``repr`` hides it like a real one's)."""

    id_number: str
    full_name: str
    birth_date: date
    sex: str  # "Nam" / "Nữ"
    issue_date: date
    expiry_date: date | None  # None: "Không thời hạn"
    nationality: str = "Việt Nam"
    ethnicity: str = "Kinh"
    religion: str = "Không"
    place_of_origin: str = ""
    place_of_residence: str = ""
    identifying_marks: str = ""
    father_name: str = ""
    mother_name: str = ""
    spouse_name: str = ""
    old_id_number: str = ""
    photo_bytes: int = 15000

    def __repr__(self) -> str:
        return "CardProfile(<personal data hidden>)"

    @property
    def document_number(self) -> str:
        return self.id_number[-9:]

    @property
    def mrz_expiry(self) -> str:
        return self.expiry_date.strftime("%y%m%d") if self.expiry_date else NO_EXPIRY_FIELDS[0]

    @property
    def qr_text(self) -> str:
        """The QR printed on the card's front."""
        return "|".join(
            [
                self.id_number,
                self.old_id_number,
                self.full_name,
                self.birth_date.strftime("%d%m%Y"),
                self.sex,
                self.place_of_residence,
                self.issue_date.strftime("%d%m%Y"),
            ]
        )

    def mrz(self) -> str:
        ascii_name = _ascii(self.full_name).upper().split()
        return build_td1(
            document_code="ID",
            issuing_state="VNM",
            document_number=self.document_number,
            optional_data_1=self.id_number,
            birth_yymmdd=self.birth_date.strftime("%y%m%d"),
            sex="F" if self.sex.lower().startswith("n\u1eef") else "M",
            expiry_yymmdd=self.mrz_expiry,
            nationality="VNM",
            optional_data_2="",
            name_mrz=name_to_mrz(ascii_name[0], " ".join(ascii_name[1:])),
        )


def _ascii(text: str) -> str:
    text = text.replace("Đ", "D").replace("đ", "d")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _date(value: object, key: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value)
    raise MalformedDataError(f"profile: {key} must be a date (YYYY-MM-DD)")


def load_profile(path: Path | str) -> CardProfile:
    """Read a TOML profile; the [person] table holds the fields of ``CardProfile``."""
    path = Path(path)
    if not path.exists() and (PROFILES_DIR / f"{path}.toml").exists():
        path = PROFILES_DIR / f"{path}.toml"  # a bare demo profile name: "adult", "elderly", ...
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MalformedDataError(f"profile {path}: {exc}") from exc
    person = dict(data.get("person", {}))
    try:
        expiry = person.pop("expiry_date", None)
        profile = CardProfile(
            **{k: v for k, v in person.items() if k not in ("birth_date", "issue_date")},
            birth_date=_date(person["birth_date"], "birth_date"),
            issue_date=_date(person["issue_date"], "issue_date"),
            expiry_date=None if expiry in (None, "none", "") else _date(expiry, "expiry_date"),
        )
    except (KeyError, TypeError) as exc:
        raise MalformedDataError(f"profile {path}: {exc}") from exc
    if len(profile.id_number) != 12 or not profile.id_number.isdigit():
        raise MalformedDataError(f"profile {path}: id_number must be 12 digits")
    return profile


def _portrait(size: int, seed: str) -> tuple[bytes, int, int]:
    """A drawn portrait JPEG of exactly ``size`` bytes (padded with a COM segment)."""
    from PIL import Image, ImageDraw

    width, height = 240, 320
    tone = hashlib.sha256(seed.encode()).digest()
    image = Image.new("RGB", (width, height), (200 + tone[0] % 40, 210, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((60, 50, 180, 200), fill=(230, 190 + tone[1] % 30, 160))
    draw.rectangle((40, 220, 200, 320), fill=(30 + tone[2] % 60, 60, 120))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    jpeg = buf.getvalue()
    padding = size - len(jpeg)
    while padding > 4:  # COM segments of at most 65535 bytes right after SOI
        chunk = min(padding - 4, 65533)
        jpeg = jpeg[:2] + b"\xff\xfe" + (chunk + 2).to_bytes(2, "big") + bytes(chunk) + jpeg[2:]
        padding -= chunk + 4
    return jpeg, width, height


def dg13_values(profile: CardProfile) -> dict[int, list[str]]:
    values = {
        1: [profile.id_number],
        2: [profile.full_name],
        3: [profile.birth_date.strftime("%d/%m/%Y")],
        4: [profile.sex],
        5: [profile.nationality],
        6: [profile.ethnicity],
        7: [profile.religion],
        8: [profile.place_of_origin],
        9: [profile.place_of_residence],
        10: [profile.identifying_marks],
        11: [profile.issue_date.strftime("%d/%m/%Y")],
        12: [profile.expiry_date.strftime("%d/%m/%Y") if profile.expiry_date else "Không thời hạn"],
        13: [profile.father_name, profile.mother_name],
        15: [""],
        16: [profile.old_id_number],
    }
    if profile.spouse_name:
        values[14] = [profile.spouse_name]
    return values


def build_sod(dg_files: dict[int, bytes], pki: TestPki) -> bytes:
    """EF.SOD: SHA-256 hashes of the data groups, CMS-signed (ECDSA) by the test document signer."""
    lso = LdsSecurityObject(
        {
            "version": 0,
            "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "data_group_hash_values": [
                {"data_group_number": n, "data_group_hash_value": hashlib.sha256(d).digest()}
                for n, d in sorted(dg_files.items())
            ],
        }
    )
    econtent = lso.dump()
    signed_attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": [cms.ContentType(LDS_SECURITY_OBJECT_OID)]},
            {"type": "signing_time", "values": [cms.Time({"utc_time": datetime(2024, 1, 1, tzinfo=UTC)})]},
            {"type": "message_digest", "values": [hashlib.sha256(econtent).digest()]},
        ]
    )
    signature = pki.ds_key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
    ds_asn1 = asn1_x509.Certificate.load(pki.ds_cert.public_bytes(serialization.Encoding.DER))
    signer = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": ds_asn1.issuer, "serial_number": ds_asn1.serial_number}
                    )
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
            "signature": signature,
        }
    )
    signed = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {
                "content_type": LDS_SECURITY_OBJECT_OID,
                "content": core.ParsableOctetString(econtent),
            },
            "certificates": [ds_asn1],
            "signer_infos": [signer],
        }
    )
    info = cms.ContentInfo({"content_type": "signed_data", "content": signed})
    return tlv.encode(0x77, info.dump())


def build_files(
    profile: CardProfile,
    pki: TestPki,
    *,
    alter_dg13: bool = False,
    bad_tlv_dg13: bool = False,
    deep_nesting: str | None = None,
) -> dict[int, bytes]:
    """File id -> content of every EF on the virtual chip (EF.COM, DG1, DG2, DG3, DG13, DG14, DG15, EF.SOD).

    ``alter_dg13`` changes DG13 after signing (a forged card); ``bad_tlv_dg13``
    breaks its inner TLV lengths before signing (a hostile card whose SOD still matches);
    ``deep_nesting`` ("DG13", "DG2", "DG14") nests an element thousands of levels deep in that data
    group before signing.
    """
    jpeg, width, height = _portrait(profile.photo_bytes, profile.id_number)
    aa_spki = pki.aa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    dgs = {
        1: lds.build_dg1(profile.mrz()),
        2: lds.build_dg2(jpeg, width, height),
        13: lds.build_dg13(dg13_values(profile)),
        14: build_dg14(CA_PROTOCOL, pki.ca_key.public_key()),
        15: lds.build_dg15(aa_spki),
    }
    if bad_tlv_dg13:
        dg13 = bytearray(dgs[13])
        inner = 1 + (1 + (dg13[1] & 0x7F) if dg13[1] & 0x80 else 1)  # start of the inner SEQUENCE
        dg13[inner + 1 : inner + 3] = b"\x84\xff"  # a 4-byte length form follows, value garbage
        dgs[13] = bytes(dg13)
    if deep_nesting in ("DG13", "DG2", "DG14"):
        from drivers.card.sim.hostile import with_deep_nesting

        number = int(deep_nesting[2:])
        dgs[number] = with_deep_nesting(deep_nesting, dgs[number])
    files = {lds.DATA_GROUPS[n].fid: data for n, data in dgs.items()}
    files[lds.DG3.fid] = tlv.encode(0x63, b"")  # present but protected by EAC: reads answer 6982
    files[lds.EF_COM.fid] = lds.build_com([1, 2, 3, 13, 14, 15])
    files[lds.EF_SOD.fid] = build_sod(dgs, pki)
    if alter_dg13:
        name = profile.full_name.encode("utf-8")
        forged = name[:-1] + bytes([name[-1] ^ 0x01])
        files[lds.DG13.fid] = files[lds.DG13.fid].replace(name, forged, 1)
    return files
