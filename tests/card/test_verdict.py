"""The verdict on a card: genuine only with a validated DS path AND an authenticated chip; failed on any
proof against the card (altered data, bad or expired or revoked DS, failed chip or active
authentication); not verified when the trust folder cannot vouch. Full reads over the virtual chip."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from drivers.card.errors import ChipAuthenticationError
from drivers.card.identity import IdentityRecord
from drivers.card.keys import AccessKey
from drivers.card.reader import ReadOptions, read_identity_over
from drivers.card.sim.chip import CardFaults
from drivers.card.sim.pki import PkiFaults, TestPki
from drivers.card.sim.profile import CardProfile
from drivers.card.sim.vicc import VirtualCard
from drivers.card.transport import DirectTransport
from drivers.card.trust import TrustStore, load_trust_store, validate_document_signer
from drivers.card.verdict import Authenticity, Verdict, overall

GENUINE, NOT_VERIFIED, FAILED = Authenticity.GENUINE, Authenticity.NOT_VERIFIED, Authenticity.FAILED


def _key(profile: CardProfile) -> AccessKey:
    return AccessKey.from_mrz(
        profile.document_number, profile.birth_date.strftime("%y%m%d"), profile.mrz_expiry
    )


def _read(
    profile: CardProfile,
    pki: TestPki,
    faults: CardFaults | None = None,
    *,
    trust: bool = True,
    **options: object,
) -> IdentityRecord:
    card = VirtualCard(profile, pki, faults)  # the chip engine of the vpcd card, in-process
    opts = ReadOptions(trust=load_trust_store(pki.trust_dir) if trust else None, **options)  # type: ignore[arg-type]
    return read_identity_over(DirectTransport(card.chip.process), [_key(profile)], opts)[0]


def _outcome(record: IdentityRecord) -> tuple[Authenticity, str]:
    return record.authenticity, record.authenticity_code


def test_genuine_card_with_chip_authentication(adult: CardProfile, pki: TestPki) -> None:
    record = _read(adult, pki)
    assert _outcome(record) == (GENUINE, "verified")
    assert record.chip_auth == "passed" and record.birth_date_trusted
    assert record.authenticity_reason == (
        "hashes, EF.SOD signature and DS certificate path to a trusted CSCA verified; "
        "chip authentication passed"
    )
    assert record.to_json()["birth_date_trusted"] is True


def test_genuine_card_with_active_authentication(married: CardProfile, pki: TestPki) -> None:
    record = _read(married, pki, chip_auth=False)
    assert record.active_auth == "passed" and _outcome(record) == (GENUINE, "verified")
    assert record.authenticity_reason.endswith("active authentication passed")


def test_no_trust_folder_is_never_genuine(elderly: CardProfile, pki: TestPki) -> None:
    record = _read(elderly, pki, trust=False)
    assert record.chip_auth == "passed"  # the chip is fine, the data cannot be vouched for
    assert _outcome(record) == (NOT_VERIFIED, "no_trust_store")
    assert not record.birth_date_trusted and record.age_on(dt.date(2026, 1, 1)) == 77
    out = record.to_json()
    assert (out["authenticity"], out["authenticity_code"], out["birth_date_trusted"]) == (
        "not_verified",
        "no_trust_store",
        False,
    )


def test_empty_trust_folder_is_not_verified(adult: CardProfile, pki: TestPki, tmp_path: Path) -> None:
    card = VirtualCard(adult, pki)
    empty = load_trust_store(tmp_path)
    record, _ = read_identity_over(
        DirectTransport(card.chip.process), [_key(adult)], ReadOptions(trust=empty)
    )
    assert _outcome(record) == (NOT_VERIFIED, "no_trust_store")


def test_data_verified_but_chip_not_authenticated_is_not_genuine(adult: CardProfile, pki: TestPki) -> None:
    """Passive authentication alone cannot tell a copy of the chip from the chip."""
    record = _read(adult, pki, chip_auth=False, active_auth=False)
    assert (record.chip_auth, record.active_auth) == ("not_supported", "not_supported")
    assert _outcome(record) == (NOT_VERIFIED, "chip_not_authenticated")


PKI_CASES = [
    (PkiFaults(ds_expired=True), FAILED, "ds_expired", "the DS certificate expired on 2023-01-01"),
    (PkiFaults(ds_not_yet_valid=True), FAILED, "ds_not_yet_valid", "valid only from 2090-01-01"),
    (
        PkiFaults(ds_by_unknown_csca=True),
        NOT_VERIFIED,
        "ds_issuer_unknown",
        "the DS certificate was not issued by a CSCA of the trust folder",
    ),
    (
        PkiFaults(ds_without_digital_signature=True),
        FAILED,
        "ds_key_usage",
        "the DS certificate lacks keyUsage digitalSignature",
    ),
    (PkiFaults(csca_not_ca=True), NOT_VERIFIED, "csca_not_ca", "basicConstraints cA not TRUE"),
    (
        PkiFaults(csca_without_key_cert_sign=True),
        NOT_VERIFIED,
        "csca_no_key_cert_sign",
        "lacks keyUsage keyCertSign",
    ),
    (PkiFaults(ds_revoked=True), FAILED, "ds_revoked", "revoked by its CSCA's CRL (since 2024-06-01)"),
]


@pytest.mark.parametrize(("faults", "outcome", "code", "reason"), PKI_CASES, ids=[c[2] for c in PKI_CASES])
def test_certificate_path_failures(
    adult: CardProfile, tmp_path: Path, faults: PkiFaults, outcome: Authenticity, code: str, reason: str
) -> None:
    bad = TestPki.create(tmp_path / "pki", faults)
    record = _read(adult, bad)  # chip authentication passes: only the path is wrong
    assert record.chip_auth == "passed"
    assert _outcome(record) == (outcome, code)
    assert reason in record.authenticity_reason
    assert not record.birth_date_trusted


def test_revocation_is_decided_by_the_crl_in_the_folder(adult: CardProfile, tmp_path: Path) -> None:
    bad = TestPki.create(tmp_path / "pki", PkiFaults(ds_revoked=True))
    assert (bad.trust_dir / "csca.crl").exists()
    assert _outcome(_read(adult, bad)) == (FAILED, "ds_revoked")
    (bad.trust_dir / "csca.crl").unlink()  # no CRL: nothing says the DS is revoked
    assert _outcome(_read(adult, bad)) == (GENUINE, "verified")


def test_an_out_of_date_crl_cannot_vouch_for_the_ds(adult: CardProfile, tmp_path: Path) -> None:
    """Seen: a CRL past its nextUpdate counted as current. Before its nextUpdate it decides as before."""
    pki = TestPki.create(tmp_path / "pki", PkiFaults(crl_out_of_date=True))
    assert _outcome(_read(adult, pki, at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))) == (
        NOT_VERIFIED,
        "crl_out_of_date",
    )
    assert _outcome(_read(adult, pki, at=dt.datetime(2024, 12, 1, tzinfo=dt.UTC))) == (GENUINE, "verified")


def test_crl_not_signed_by_the_csca_is_ignored(
    adult: CardProfile, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pki = TestPki.create(tmp_path / "pki")
    forger = ec.generate_private_key(ec.SECP256R1())
    entry = (
        x509.RevokedCertificateBuilder()
        .serial_number(pki.ds_cert.serial_number)
        .revocation_date(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        .build()
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.csca_cert.subject)
        .last_update(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        .next_update(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
        .add_revoked_certificate(entry)
        .sign(forger, hashes.SHA256())
    )
    (pki.trust_dir / "forged.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    assert len(load_trust_store(pki.trust_dir).crls) == 1
    assert _outcome(_read(adult, pki)) == (GENUINE, "verified")
    assert "CRL whose signature does not verify" in caplog.text


def test_time_of_the_check(adult: CardProfile, pki: TestPki) -> None:
    """Validity is checked at the time of the check (``ReadOptions.at``; default now)."""
    assert _outcome(_read(adult, pki, at=dt.datetime(2039, 12, 31, tzinfo=dt.UTC))) == (GENUINE, "verified")
    assert _outcome(_read(adult, pki, at=dt.datetime(2040, 6, 1, tzinfo=dt.UTC))) == (FAILED, "ds_expired")
    # before 2020 the CSCA itself is not valid yet: the folder cannot vouch (checked before the DS)
    assert _outcome(_read(adult, pki, at=dt.datetime(2019, 6, 1, tzinfo=dt.UTC))) == (
        NOT_VERIFIED,
        "csca_not_yet_valid",
    )


def test_chip_failing_active_authentication_fails(married: CardProfile, pki: TestPki) -> None:
    record = _read(married, pki, CardFaults(wrong_aa_key=True), chip_auth=False)
    assert record.active_auth == "failed"
    assert _outcome(record) == (FAILED, "active_auth_failed")
    assert "cloned chip?" in record.authenticity_reason


def test_chip_refusing_chip_authentication_fails(adult: CardProfile, pki: TestPki) -> None:
    """The chip lists DG14 in EF.SOD but will not run chip authentication: the data is read (the
    channel is still BAC's) and the verdict is failed, not genuine."""
    record = _read(adult, pki, CardFaults(refuse_chip_auth=True))
    assert record.chip_auth == "failed" and record.full_name == "Nguyễn Văn An"
    assert _outcome(record) == (FAILED, "chip_auth_failed")


def test_clone_without_the_dg14_key_ends_the_read_with_a_failed_verdict(
    adult: CardProfile, pki: TestPki
) -> None:
    with pytest.raises(ChipAuthenticationError) as info:
        _read(adult, pki, CardFaults(wrong_ca_key=True, wrong_aa_key=True))
    assert info.value.code == "card_chip_auth_failed"
    assert info.value.code == "card_chip_auth_failed"  # the kiosk maps the type to its screen
    assert (info.value.verdict.authenticity, info.value.verdict.code) == (FAILED, "chip_auth_failed")


def test_failures_come_before_not_verified(adult: CardProfile, married: CardProfile, pki: TestPki) -> None:
    # altered data and a failing AA: the first failure decides
    record = _read(married, pki, CardFaults(alter_dg13=True, wrong_aa_key=True), chip_auth=False)
    assert _outcome(record) == (FAILED, "hash_mismatch")
    # no trust folder but a failing chip: failed, not merely not verified
    record = _read(adult, pki, CardFaults(refuse_chip_auth=True), trust=False)
    assert _outcome(record) == (FAILED, "chip_auth_failed")


def test_overall_table() -> None:
    ok = Verdict(GENUINE, "verified", "path ok")
    unverified = Verdict(NOT_VERIFIED, "no_trust_store", "no folder")
    bad = Verdict(FAILED, "hash_mismatch", "hash")
    assert overall(ok, "passed", "not_checked").genuine
    assert overall(ok, "not_supported", "passed").genuine
    assert overall(ok, "not_supported", "not_supported").code == "chip_not_authenticated"
    assert overall(ok, "not_checked", "not_checked").code == "chip_not_authenticated"
    assert overall(ok, "failed", "not_checked").code == "chip_auth_failed"
    assert overall(ok, "not_supported", "failed").code == "active_auth_failed"
    assert overall(unverified, "passed", "not_checked") == unverified
    assert overall(unverified, "not_supported", "failed").code == "active_auth_failed"
    assert overall(bad, "failed", "failed") == bad
    for verdict in (overall(ok, "passed", "x"), unverified, bad):
        assert verdict.birth_date_trusted is (verdict.authenticity is GENUINE)


# -- path validation on chains built here (curves and extensions the test PKI does not use) -----------
def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _chain(
    csca_key: Key,
    ds_key: Key,
    *,
    csca_ski: bool = True,
    ds_aki: bool = True,
    ds_extra: Callable[[x509.CertificateBuilder], x509.CertificateBuilder] = lambda b: b,
) -> tuple[x509.Certificate, x509.Certificate]:
    start, end = dt.datetime(2020, 1, 1, tzinfo=dt.UTC), dt.datetime(2040, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("CSCA"))
        .issuer_name(_name("CSCA"))
        .public_key(csca_key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    )
    if csca_ski:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(csca_key.public_key()), critical=False
        )
    csca = builder.sign(csca_key, hashes.SHA256())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("DS"))
        .issuer_name(_name("CSCA"))
        .public_key(ds_key.public_key())
        .serial_number(2)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
    )
    if ds_aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(csca_key.public_key()), critical=False
        )
    return csca, ds_extra(builder).sign(csca_key, hashes.SHA256())


def _validate(ds: x509.Certificate, *cscas: x509.Certificate) -> tuple[Authenticity, str]:
    verdict = validate_document_signer(ds, TrustStore(cscas), dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    return verdict.authenticity, verdict.code


def test_brainpool_and_rsa_chains_validate() -> None:
    """ICAO PKIs use brainpool curves (refused by cryptography.x509.verification) and RSA."""
    csca, ds = _chain(
        ec.generate_private_key(ec.BrainpoolP384R1()), ec.generate_private_key(ec.BrainpoolP256R1())
    )
    assert _validate(ds, csca) == (GENUINE, "verified")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csca, ds = _chain(rsa_key, ec.generate_private_key(ec.SECP256R1()))
    assert _validate(ds, csca) == (GENUINE, "verified")


def test_key_identifiers_pick_the_right_csca_of_one_name() -> None:
    """A CSCA renews its key under the same name: the DS's AKI names the key that signed it."""
    old_key, new_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ds_key = ec.generate_private_key(ec.SECP256R1())
    old_csca, _ = _chain(old_key, ds_key)
    new_csca, ds = _chain(new_key, ds_key)
    assert _validate(ds, old_csca, new_csca) == (GENUINE, "verified")
    assert _validate(ds, old_csca) == (NOT_VERIFIED, "ds_issuer_unknown")  # AKI names a key we lack
    # without key identifiers the name matches, and the signature decides
    _, ds_no_aki = _chain(new_key, ds_key, ds_aki=False)
    assert _validate(ds_no_aki, old_csca, new_csca) == (GENUINE, "verified")
    assert _validate(ds_no_aki, old_csca) == (FAILED, "ds_signature_invalid")


def test_unknown_critical_extensions() -> None:
    key, ds_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def extension(oid: str) -> Callable[[x509.CertificateBuilder], x509.CertificateBuilder]:
        return lambda b: b.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), b"\x30\x00"), critical=True
        )

    csca, ds = _chain(key, ds_key, ds_extra=extension("1.2.3.4.5"))
    assert _validate(ds, csca) == (FAILED, "ds_unknown_critical_extension")
    csca, ds = _chain(key, ds_key, ds_extra=extension("2.23.136.1.1.6.2"))  # ICAO documentTypeList
    assert _validate(ds, csca) == (GENUINE, "verified")


def test_trust_folder_with_pem_bundle_der_crl_and_junk(pki: TestPki, tmp_path: Path) -> None:
    revoked = TestPki.create(tmp_path / "revoked", PkiFaults(ds_revoked=True))
    crl = x509.load_der_x509_crl((revoked.trust_dir / "csca.crl").read_bytes())
    folder = tmp_path / "folder"
    folder.mkdir()
    bundle = pki.csca_cert.public_bytes(serialization.Encoding.PEM) + crl.public_bytes(
        serialization.Encoding.PEM
    )
    (folder / "bundle.pem").write_bytes(bundle)
    (folder / "other.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))
    (folder / "broken.crl").write_bytes(b"\x30\x03\x02\x01")
    store = load_trust_store(folder)
    assert store.cscas == (pki.csca_cert,) and store.crls == (crl, crl)


@pytest.mark.pcsc
def test_verdicts_through_pcscd(pcscd: str, adult: CardProfile, pki: TestPki, tmp_path: Path) -> None:
    from drivers.card.service import CardReaderService

    from .conftest import VPCD_PORT, wait_reader_empty

    revoked = TestPki.create(tmp_path / "revoked", PkiFaults(ds_revoked=True))
    for card_pki, trust, expected in (
        (pki, pki.trust_dir, (GENUINE, "verified")),
        (pki, None, (NOT_VERIFIED, "no_trust_store")),
        (revoked, revoked.trust_dir, (FAILED, "ds_revoked")),
    ):
        card = VirtualCard(adult, card_pki)
        card.insert(port=VPCD_PORT)
        try:
            record = CardReaderService(pcscd, trust, timeout_s=5.0).read_identity([_key(adult)])
            assert _outcome(record) == expected
            assert record.birth_date_trusted is (expected[0] is GENUINE)
            record.wipe()
        finally:
            card.close()
            wait_reader_empty(pcscd)


@pytest.mark.pcsc
def test_sim_card_cli_clone_reads_as_failed_through_card_read_cli(pcscd: str, tmp_path: Path) -> None:
    """``main.py sim card --refuse-chip-auth`` in its own process; ``main.py card read --trust``."""
    import json
    import os
    import subprocess
    import sys

    from .conftest import VPCD_PORT, wait_reader_empty

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    sim = subprocess.Popen(
        [
            *(sys.executable, "main.py", "sim", "card", "--profile", "adult", "--print-keys"),
            *("--refuse-chip-auth", "--vpcd", f"127.0.0.1:{VPCD_PORT}", "--pki", str(tmp_path / "pki")),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=root,
    )
    try:
        assert sim.stdout is not None
        keys = json.loads(sim.stdout.readline())
        assert "refuse_chip_auth" in sim.stdout.readline()
        done = subprocess.run(
            [
                *(sys.executable, "main.py", "card", "read", "--reader", pcscd),
                *("--cccd-qr", keys["cccd_qr"], "--trust", keys["trust"], "--json"),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        out = json.loads(done.stdout)
        assert (out["authenticity"], out["authenticity_code"], out["chip_auth"]) == (
            "failed",
            "chip_auth_failed",
            "failed",
        )
        assert out["birth_date_trusted"] is False
    finally:
        sim.terminate()
        sim.wait(10)
        wait_reader_empty(pcscd)
