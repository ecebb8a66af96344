"""A test PKI for the virtual chip: a CSCA, a document signer (DS) it issued, and AA/CA keys.

Written once into a folder and reused (``load_or_create``), so a technician can point the reader's
``--trust`` at ``<folder>/trust`` and see "genuine" for virtual cards. ``create(dir, PkiFaults(...))``
builds broken PKIs (expired or revoked DS, unknown CSCA, ...) for the verdict's failure paths.
ECDSA P-256 keeps signing and verifying fast; real CSCAs also use RSA and brainpool curves, which the
verifier accepts too.
Never use these keys for anything but tests and demos.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

_VALID_FROM = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_CSCA_UNTIL = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)
_DS_UNTIL = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mot Cua Kiosk TEST PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return key


@dataclass(frozen=True)
class PkiFaults:
    """What is wrong with a test PKI, for the verdict's failure paths (all False: a valid PKI)."""

    __test__ = False

    ds_expired: bool = False  # the DS certificate's validity ended in 2023
    ds_not_yet_valid: bool = False  # the DS certificate is valid only from 2090
    ds_without_digital_signature: bool = False  # DS keyUsage lacks digitalSignature (keyEncipherment)
    ds_by_unknown_csca: bool = False  # the DS is issued by another CSCA key under the same name
    csca_not_ca: bool = False  # the CSCA certificate in trust/ has no basicConstraints cA=TRUE
    csca_without_key_cert_sign: bool = False  # the CSCA's keyUsage is digitalSignature only
    ds_revoked: bool = False  # trust/csca.crl, signed by the CSCA, lists the DS
    crl_out_of_date: bool = False  # trust/csca.crl lists another serial and was due again on 2025-01-01

    def active(self) -> list[str]:
        return [name for name, value in vars(self).items() if value]


def csca_certificate(
    key: ec.EllipticCurvePrivateKey, name: x509.Name, *, is_ca: bool = True, cert_sign: bool = True
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_VALID_FROM)
        .not_valid_after(_CSCA_UNTIL)
        .add_extension(
            # keyCertSign + cRLSign (ICAO 9303-12); without keyCertSign: digitalSignature instead
            x509.KeyUsage(not cert_sign, False, False, False, False, cert_sign, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if is_ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    return builder.sign(key, hashes.SHA256())


def ds_certificate(
    csca_key: ec.EllipticCurvePrivateKey,
    csca_name: x509.Name,
    ds_key: ec.EllipticCurvePrivateKey,
    faults: PkiFaults,
) -> x509.Certificate:
    valid_from, valid_until = _VALID_FROM, _DS_UNTIL
    if faults.ds_expired:
        valid_until = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    if faults.ds_not_yet_valid:
        valid_from, valid_until = (
            dt.datetime(2090, 1, 1, tzinfo=dt.UTC),
            dt.datetime(2095, 1, 1, tzinfo=dt.UTC),
        )
    signing = not faults.ds_without_digital_signature
    return (
        x509.CertificateBuilder()
        .subject_name(_name("Document Signer TEST 01"))
        .issuer_name(csca_name)
        .public_key(ds_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_until)
        .add_extension(
            x509.KeyUsage(signing, False, not signing, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(csca_key.public_key()), critical=False
        )
        .sign(csca_key, hashes.SHA256())
    )


def crl_of(
    csca_key: ec.EllipticCurvePrivateKey,
    csca: x509.Certificate,
    revoked_serial: int,
    next_update: dt.datetime = _CSCA_UNTIL,
) -> x509.CertificateRevocationList:
    """A CRL of ``csca`` (signed with its key) listing ``revoked_serial``, revoked on 2024-06-01."""
    entry = (
        x509.RevokedCertificateBuilder()
        .serial_number(revoked_serial)
        .revocation_date(dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
        .build()
    )
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(csca.subject)
        .last_update(dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
        .next_update(next_update)
        .add_revoked_certificate(entry)
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(csca_key, hashes.SHA256())
    )


@dataclass
class TestPki:
    """CSCA + DS (+ the chip's active and chip authentication keys) stored in ``directory``."""

    __test__ = False  # not a pytest test class despite its name

    directory: Path
    csca_cert: x509.Certificate
    ds_cert: x509.Certificate
    ds_key: ec.EllipticCurvePrivateKey
    aa_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey  # EC by default; tests swap in RSA
    ca_key: ec.EllipticCurvePrivateKey  # the chip's static chip-authentication key (DG14)

    @property
    def trust_dir(self) -> Path:
        """Folder with only the CSCA certificate (and its CRL): what ``card read --trust`` takes."""
        return self.directory / "trust"

    @classmethod
    def load_or_create(cls, directory: Path) -> TestPki:
        """A valid PKI: loaded from ``directory`` when it is there, else created (``create``)."""
        directory = Path(directory)
        files = {n: directory / n for n in ("csca.pem", "ds.pem", "ds.key.pem", "aa.key.pem")}
        ca_path = directory / "ca.key.pem"
        if all(p.exists() for p in files.values()):
            if not ca_path.exists():  # a PKI folder from before chip authentication existed
                _write_key(ca_path, ec.generate_private_key(ec.SECP256R1()))
            return cls(
                directory,
                x509.load_pem_x509_certificate(files["csca.pem"].read_bytes()),
                x509.load_pem_x509_certificate(files["ds.pem"].read_bytes()),
                _load_key(files["ds.key.pem"]),
                _load_key(files["aa.key.pem"]),
                _load_key(ca_path),
            )
        return cls.create(directory)

    @classmethod
    def create(cls, directory: Path, faults: PkiFaults | None = None) -> TestPki:
        """A new PKI in ``directory`` (overwriting one there), with ``faults`` built in."""
        faults = faults or PkiFaults()
        directory = Path(directory)
        trust = directory / "trust"
        trust.mkdir(parents=True, exist_ok=True)
        for stale in trust.iterdir():
            stale.unlink()
        csca_key = ec.generate_private_key(ec.SECP256R1())
        csca_name = _name("CSCA TEST Viet Nam")
        csca = csca_certificate(
            csca_key, csca_name, is_ca=not faults.csca_not_ca, cert_sign=not faults.csca_without_key_cert_sign
        )
        # an unknown CSCA: same name, another key, not in trust/ (the DS names it by its key identifier)
        issuer_key = ec.generate_private_key(ec.SECP256R1()) if faults.ds_by_unknown_csca else csca_key
        ds_key = ec.generate_private_key(ec.SECP256R1())
        ds = ds_certificate(issuer_key, csca_name, ds_key, faults)
        aa_key = ec.generate_private_key(ec.SECP256R1())
        ca_key = ec.generate_private_key(ec.SECP256R1())
        pem = serialization.Encoding.PEM
        (directory / "csca.pem").write_bytes(csca.public_bytes(pem))
        (trust / "csca.pem").write_bytes(csca.public_bytes(pem))
        if faults.ds_revoked:
            (trust / "csca.crl").write_bytes(
                crl_of(csca_key, csca, ds.serial_number).public_bytes(serialization.Encoding.DER)
            )
        elif faults.crl_out_of_date:
            old_crl = crl_of(csca_key, csca, ds.serial_number + 1, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
            (trust / "csca.crl").write_bytes(old_crl.public_bytes(serialization.Encoding.DER))
        (directory / "ds.pem").write_bytes(ds.public_bytes(pem))
        _write_key(directory / "ds.key.pem", ds_key)
        _write_key(directory / "aa.key.pem", aa_key)
        _write_key(directory / "ca.key.pem", ca_key)
        return cls(directory, csca, ds, ds_key, aa_key, ca_key)
