"""The card fuzz targets (fuzz/card.py) and a regression test for each thing they found.

Every finding escaped the card stack's error family (and so the read): UnsupportedAlgorithm from an
unknown DS or DG14 key type/curve, x509.InvalidVersion from a DS certificate, AttributeError from
asn1crypto's ``.native`` on a REAL in EF.CardAccess, ValueError from a scanned MRZ. The inputs the
fuzzer wrote are kept as ``finding-*`` seeds; the tests below also build each case from scratch and
run it through a full read where the card can send it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509

from drivers.card import lds, tlv
from drivers.card.ca import parse_dg14
from drivers.card.errors import MalformedDataError
from drivers.card.keys import AccessKey
from drivers.card.mrz import build_td1, parse_td1
from drivers.card.pace import EF_CARD_ACCESS_FID, build_card_access, parse_card_access
from drivers.card.reader import ReadOptions, read_identity_over
from drivers.card.sim.chip import DEFAULT_PACE, VirtualChip
from drivers.card.sim.pki import TestPki
from drivers.card.sim.profile import CardProfile, build_files, build_sod
from drivers.card.sod import parse_sod, passive_authentication
from drivers.card.transport import DirectTransport
from drivers.card.trust import load_trust_store
from drivers.card.verdict import Authenticity
from fuzz import card as fuzz_card
from fuzz.registry import corpus_dir, targets

P256 = bytes.fromhex("06082A8648CE3D030107")  # OID prime256v1
UNKNOWN_CURVE = bytes.fromhex("06082A8648CE3D030119")  # 1.2.840.10045.3.1.25
EC_PUBLIC_KEY = bytes.fromhex("06072A8648CE3D0201")  # OID id-ecPublicKey
UNKNOWN_KEY_TYPE = bytes.fromhex("06072A8648CE3D0219")  # 1.2.840.10045.2.25


@pytest.fixture
def default_recursion_limit() -> Iterator[None]:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(old)


def _key(profile: CardProfile) -> AccessKey:
    return AccessKey.from_mrz(
        profile.document_number, profile.birth_date.strftime("%y%m%d"), profile.mrz_expiry
    )


def _read(files: dict[int, bytes], profile: CardProfile, pki: TestPki, **options: object) -> object:
    chip = VirtualChip(files, _key(profile), pki.aa_key, ca_key=pki.ca_key)
    opts = ReadOptions(trust=load_trust_store(pki.trust_dir), **options)  # type: ignore[arg-type]
    return read_identity_over(DirectTransport(chip.process), [_key(profile)], opts)[0]


# -- the targets themselves ----------------------------------------------------------------------------
def test_registry_lists_the_card_targets() -> None:
    names = {n for n in targets() if n.startswith("card.")}
    assert names == {f"card.{t}" for t in ("tlv", "dg1", "dg13", "dg2", "dg14", "sod", "card_access", "sm")}
    for name in names:
        assert len(list(corpus_dir(name).iterdir())) >= 2, name


@pytest.mark.usefixtures("default_recursion_limit")
def test_every_committed_seed_replays_quietly() -> None:
    count = 0
    for name, target in targets().items():
        if not name.startswith("card."):
            continue
        for seed in sorted(corpus_dir(name).iterdir()):
            target(seed.read_bytes())
            count += 1
    assert count >= 40


def test_sod_seeds_exercise_path_validation_not_just_parsing() -> None:
    """The seeds are signed by the fuzz PKI, whose keys are fixed: on any machine they verify."""
    sod = parse_sod((corpus_dir("card.sod") / "adult.sod").read_bytes())
    verdict = passive_authentication(sod, {}, fuzz_card.fuzz_trust(), fuzz_card.CHECK_TIME)
    assert (verdict.authenticity, verdict.code) == (Authenticity.GENUINE, "verified")
    assert len(fuzz_card.fuzz_trust().crls) == 1  # the revocation check runs on every input


def test_targets_swallow_card_errors_only(monkeypatch: pytest.MonkeyPatch) -> None:
    fuzz_card.fuzz_dg2(b"\x75\x00")  # refused with MalformedDataError: quiet

    def broken(data: bytes) -> None:
        raise ZeroDivisionError("a parser bug")

    monkeypatch.setattr(lds, "parse_dg2", broken)
    with pytest.raises(ZeroDivisionError):
        fuzz_card.fuzz_dg2(b"\x75\x00")


def test_sm_target_reaches_decryption_behind_a_valid_mac() -> None:
    """Mode bit 1 re-MACs the input: a garbage cryptogram then fails on padding, not on the MAC."""
    from drivers.card.apdu import ResponseApdu
    from drivers.card.sm import SmSession

    body = tlv.encode(0x87, b"\x01" + bytes(16)) + tlv.encode(0x99, b"\x90\x00") + tlv.encode(0x8E, bytes(8))
    raw = ResponseApdu(body, 0x9000).encode()
    fuzz_card.fuzz_sm(b"\x02" + raw)  # quiet: refused with SecureMessagingError
    calls: list[str] = []
    original = SmSession._decrypt

    def spy(self: SmSession, ssc: bytes, data: bytes) -> bytes:
        calls.append(self.cipher)
        return original(self, ssc, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SmSession, "_decrypt", spy)
        fuzz_card.fuzz_sm(b"\x02" + raw)
        fuzz_card.fuzz_sm(b"\x00" + raw)  # no re-MAC: stops at the MAC check
    assert calls == ["3des"]


# -- findings --------------------------------------------------------------------------------------------
def test_finding_ds_with_unknown_curve_or_key_type_is_not_verified(adult: CardProfile, pki: TestPki) -> None:
    for name, code in (
        ("finding-unknown-curve.sod", "sod_algorithm_unsupported"),
        ("finding-unknown-key-type.sod", "sod_algorithm_unsupported"),
    ):
        sod = parse_sod((corpus_dir("card.sod") / name).read_bytes())
        verdict = passive_authentication(sod, {}, fuzz_card.fuzz_trust(), fuzz_card.CHECK_TIME)
        assert (verdict.authenticity, verdict.code) == (Authenticity.NOT_VERIFIED, code)
    files = build_files(adult, pki)
    for genuine, unknown in ((P256, UNKNOWN_CURVE), (EC_PUBLIC_KEY, UNKNOWN_KEY_TYPE)):
        assert genuine in files[lds.EF_SOD.fid]
        hostile = dict(files)
        hostile[lds.EF_SOD.fid] = files[lds.EF_SOD.fid].replace(genuine, unknown)
        record = _read(hostile, adult, pki)  # the read used to end with UnsupportedAlgorithm
        assert (record.authenticity, record.authenticity_code) == (  # type: ignore[attr-defined]
            Authenticity.NOT_VERIFIED,
            "sod_algorithm_unsupported",
        )


def test_finding_ds_certificate_of_unknown_x509_version_fails(adult: CardProfile, pki: TestPki) -> None:
    sod = parse_sod((corpus_dir("card.sod") / "finding-ds-unknown-x509-version.sod").read_bytes())
    verdict = passive_authentication(sod, {}, fuzz_card.fuzz_trust(), fuzz_card.CHECK_TIME)
    assert (verdict.authenticity, verdict.code) == (Authenticity.FAILED, "sod_unusable")
    files = build_files(adult, pki)
    version_3 = bytes.fromhex("A003020102")  # [0] EXPLICIT INTEGER 2 (v3): the DS's first TBS field
    assert files[lds.EF_SOD.fid].count(version_3) == 1
    hostile = dict(files)
    hostile[lds.EF_SOD.fid] = files[lds.EF_SOD.fid].replace(version_3, bytes.fromhex("A003020142"))
    record = _read(hostile, adult, pki)  # the read used to end with x509.InvalidVersion
    assert (record.authenticity, record.authenticity_code) == (Authenticity.FAILED, "sod_unusable")  # type: ignore[attr-defined]


def test_finding_dg14_key_of_unknown_type(married: CardProfile, pki: TestPki) -> None:
    infos = parse_dg14((corpus_dir("card.dg14") / "finding-unknown-key-type.dg14").read_bytes())
    with pytest.raises(MalformedDataError, match="chip authentication key unusable"):
        infos[0].public_key()
    # a card whose (signed) DG14 names a key type this reader lacks: no CA, active authentication instead
    files = build_files(married, pki)
    dgs = {n: files[lds.DATA_GROUPS[n].fid] for n in (1, 2, 13, 14, 15)}
    dgs[14] = dgs[14].replace(EC_PUBLIC_KEY, UNKNOWN_KEY_TYPE)
    files[lds.DG14.fid], files[lds.EF_SOD.fid] = dgs[14], build_sod(dgs, pki)
    record = _read(files, married, pki)  # the read used to end with UnsupportedAlgorithm
    assert (record.chip_auth, record.active_auth) == ("not_supported", "passed")  # type: ignore[attr-defined]
    assert record.authenticity is Authenticity.GENUINE  # type: ignore[attr-defined]


def test_finding_real_in_card_access_optional_data(married: CardProfile, pki: TestPki) -> None:
    raw = (corpus_dir("card.card_access") / "finding-real-in-optional-data.cardaccess").read_bytes()
    with pytest.raises(MalformedDataError, match=r"EF\.CardAccess"):
        parse_card_access(raw)
    genuine = build_card_access([DEFAULT_PACE])
    real = genuine[:-3] + bytes.fromhex("090100")  # optional data: REAL 0 instead of INTEGER 13
    assert genuine[-3:] == bytes.fromhex("02010D")
    with pytest.raises(MalformedDataError):
        parse_card_access(real)
    files = build_files(married, pki)
    chip = VirtualChip(files, _key(married), pki.aa_key, ca_key=pki.ca_key)
    chip.files[EF_CARD_ACCESS_FID] = real
    can = AccessKey.from_can(married.id_number[-6:])
    record, report = read_identity_over(DirectTransport(chip.process), [can, _key(married)], ReadOptions())
    assert report.access_control == "BAC" and record.full_name == "Trần Thị Bích Ngọc"  # no PACE offered


def test_finding_scanned_mrz_with_letters_where_a_date_belongs() -> None:
    text = (corpus_dir("card.dg1") / "finding-mrz-letters-in-expiry.txt").read_bytes().decode("latin-1")
    assert parse_td1(text).expiry_yymmdd == "3005VM"  # check digits right, not a date
    with pytest.raises(MalformedDataError, match="expiry date must be YYMMDD"):
        AccessKey.from_mrz_text(text)
    built = build_td1(
        document_code="ID",
        issuing_state="VNM",
        document_number="090001234",
        optional_data_1="079090001234",
        birth_yymmdd="90AB17",
        sex="M",
        expiry_yymmdd="300517",
        nationality="VNM",
        optional_data_2="",
        name_mrz="NGUYEN<<VAN<AN",
    )
    with pytest.raises(MalformedDataError, match="birth date must be YYMMDD"):
        AccessKey.from_mrz_text(built)


def test_finding_ds_certificate_with_a_malformed_issuer_name_fails(adult: CardProfile, pki: TestPki) -> None:
    """cryptography parses a certificate's names on first access: the ValueError came from path
    validation, after the EF.SOD signature had verified."""
    sod = parse_sod((corpus_dir("card.sod") / "finding-ds-malformed-issuer.sod").read_bytes())
    verdict = passive_authentication(sod, {}, fuzz_card.fuzz_trust(), fuzz_card.CHECK_TIME)
    assert (verdict.authenticity, verdict.code) == (Authenticity.FAILED, "ds_certificate_unusable")
    files = build_files(adult, pki)
    # the fuzzer's change: organizationName's OID and string tag zeroed in the DS issuer (the first
    # name in EF.SOD); asn1crypto still parses the certificate lazily, cryptography does not
    organization = bytes.fromhex("060355040A0C")
    sod_bytes = files[lds.EF_SOD.fid]
    at = sod_bytes.index(organization)
    hostile = dict(files)
    hostile[lds.EF_SOD.fid] = sod_bytes[:at] + bytes.fromhex("060300000000") + sod_bytes[at + 6 :]
    record = _read(hostile, adult, pki)
    assert (record.authenticity, record.authenticity_code) == (  # type: ignore[attr-defined]
        Authenticity.FAILED,
        "ds_certificate_unusable",
    )


def test_trust_folder_skips_a_csca_that_does_not_parse_whole(pki: TestPki, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    der = pki.csca_cert.public_bytes(Encoding.DER)
    at = der.index(bytes.fromhex("060355040A0C"))  # the finding's change, in the CSCA's issuer name
    broken = der[:at] + bytes.fromhex("060300000000") + der[at + 6 :]
    (tmp_path / "broken.cer").write_bytes(broken)
    (tmp_path / "good.cer").write_bytes(der)
    assert load_trust_store(tmp_path).cscas == (pki.csca_cert,)


def test_finding_ds_issuer_attribute_of_a_forbidden_type_fails(adult: CardProfile, pki: TestPki) -> None:
    """cryptography raises TypeError (not ValueError) for a name attribute whose value type its OID does
    not allow (here a BIT STRING): it used to escape passive authentication and the read."""
    sod = parse_sod((corpus_dir("card.sod") / "finding-ds-issuer-bitstring-attribute.sod").read_bytes())
    verdict = passive_authentication(sod, {}, fuzz_card.fuzz_trust(), fuzz_card.CHECK_TIME)
    assert (verdict.authenticity, verdict.code) == (Authenticity.FAILED, "ds_certificate_unusable")
    files = build_files(adult, pki)
    cn = bytes.fromhex("0603550403") + bytes([0x0C, 18]) + b"CSCA TEST Viet Nam"  # the DS issuer's CN
    sod_bytes = files[lds.EF_SOD.fid]
    at = sod_bytes.index(cn) + 2  # the fuzzer's change: OID 55 04 03 + UTF8String -> 04 0C 55 + BIT STRING
    hostile = dict(files)
    hostile[lds.EF_SOD.fid] = sod_bytes[:at] + bytes.fromhex("040C5503") + sod_bytes[at + 4 :]
    record = _read(hostile, adult, pki)
    assert (record.authenticity, record.authenticity_code) == (  # type: ignore[attr-defined]
        Authenticity.FAILED,
        "ds_certificate_unusable",
    )


def test_finding_sod_whose_econtent_is_not_an_octet_string(adult: CardProfile, pki: TestPki) -> None:
    """asn1crypto's ``.native`` on the eContent raised AttributeError ('InstanceOf' has no 'native')."""
    with pytest.raises(MalformedDataError, match="eContent is not an OCTET STRING"):
        parse_sod((corpus_dir("card.sod") / "finding-econtent-not-octet-string.sod").read_bytes())
    sod_bytes = build_files(adult, pki)[lds.EF_SOD.fid]
    lds_oid = bytes.fromhex("0606678108010101")  # 2.23.136.1.1.1, then [0] { OCTET STRING { LSO } }
    at = sod_bytes.index(lds_oid) + len(lds_oid)
    assert sod_bytes[at] == 0xA0 and sod_bytes[at + 3] == 0x04
    as_sequence = sod_bytes[: at + 3] + b"\x30" + sod_bytes[at + 4 :]
    with pytest.raises(MalformedDataError):
        parse_sod(as_sequence)


def _sod_with_ds(sod_bytes: bytes, edit: Callable[[asn1_x509.Certificate], None]) -> bytes:
    """EF.SOD with its DS certificate edited (the certificate's own signature no longer matters: the
    SOD signature covers the signed attributes, and the finding is met before the DS signature check)."""
    info = cms.ContentInfo.load(tlv.parse_one(sod_bytes, 0x77).value)
    cert = info["content"]["certificates"][0].chosen
    edit(cert)
    info["content"]["certificates"] = [asn1_x509.Certificate.load(cert.dump(force=True))]
    return tlv.encode(0x77, info.dump(force=True))


def test_finding_ds_with_a_duplicate_extension_fails(adult: CardProfile, pki: TestPki) -> None:
    """cryptography raises x509.DuplicateExtension (an Exception, not a ValueError) on first access."""
    sod = parse_sod((corpus_dir("card.sod") / "finding-ds-duplicate-extension.sod").read_bytes())
    verdict = passive_authentication(sod, {}, fuzz_card.fuzz_trust(), fuzz_card.CHECK_TIME)
    assert (verdict.authenticity, verdict.code) == (Authenticity.FAILED, "ds_signature_invalid")

    def duplicate_first_extension(cert: asn1_x509.Certificate) -> None:
        extensions = cert["tbs_certificate"]["extensions"]
        extensions.append(asn1_x509.Extension.load(extensions[0].dump()))

    files = build_files(adult, pki)
    hostile = dict(files)
    hostile[lds.EF_SOD.fid] = _sod_with_ds(files[lds.EF_SOD.fid], duplicate_first_extension)
    # the duplicate used to escape the read from the key identifier look-up; now the look-up gives up
    # and the edited certificate's signature decides
    record = _read(hostile, adult, pki)
    assert (record.authenticity, record.authenticity_code) == (  # type: ignore[attr-defined]
        Authenticity.FAILED,
        "ds_signature_invalid",
    )


def test_trust_folder_skips_a_crl_that_does_not_parse_whole(tmp_path: Path) -> None:
    from asn1crypto import crl as asn1_crl
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    from drivers.card.sim.pki import _name as pki_name
    from drivers.card.sim.pki import crl_of, csca_certificate

    key = ec.generate_private_key(ec.SECP256R1())
    csca = csca_certificate(key, pki_name("CSCA"))
    good = crl_of(key, csca, 7)
    listed = asn1_crl.CertificateList.load(good.public_bytes(Encoding.DER))
    extensions = listed["tbs_cert_list"]["crl_extensions"]
    extensions.append(asn1_crl.TBSCertListExtension.load(extensions[0].dump()))  # CRLNumber twice
    tbs = listed["tbs_cert_list"].dump(force=True)
    listed["signature"] = key.sign(tbs, ec.ECDSA(hashes.SHA256()))  # correctly signed, badly formed
    (tmp_path / "duplicate.crl").write_bytes(listed.dump(force=True))
    (tmp_path / "good.crl").write_bytes(good.public_bytes(Encoding.DER))
    assert x509.load_der_x509_crl((tmp_path / "duplicate.crl").read_bytes()).is_signature_valid(
        key.public_key()
    )
    assert load_trust_store(tmp_path).crls == (good,)
