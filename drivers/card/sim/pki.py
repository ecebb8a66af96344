"""A test PKI for the virtual chip: a CSCA, a document signer (DS) it issued, and an AA key.

Written once into a folder and reused (``load_or_create``), so a technician can point the reader's
``--trust`` at ``<folder>/trust`` and see "genuine" for virtual cards. ECDSA P-256 keeps signing and
verifying fast; real CSCAs also use RSA and brainpool curves, which the verifier accepts too.
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


@dataclass
class TestPki:
    """CSCA + DS (+ the chip's active authentication key) stored in ``directory``."""

    __test__ = False  # not a pytest test class despite its name

    directory: Path
    csca_cert: x509.Certificate
    ds_cert: x509.Certificate
    ds_key: ec.EllipticCurvePrivateKey
    aa_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey  # EC by default; tests swap in RSA
    ca_key: ec.EllipticCurvePrivateKey  # the chip's static chip-authentication key (DG14)

    @property
    def trust_dir(self) -> Path:
        """Folder with only the CSCA certificate: what ``card read --trust`` takes."""
        return self.directory / "trust"

    @classmethod
    def load_or_create(cls, directory: Path) -> TestPki:
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
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "trust").mkdir(exist_ok=True)
        csca_key = ec.generate_private_key(ec.SECP256R1())
        csca_name = _name("CSCA TEST Viet Nam")
        csca = (
            x509.CertificateBuilder()
            .subject_name(csca_name)
            .issuer_name(csca_name)
            .public_key(csca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_VALID_FROM)
            .not_valid_after(_CSCA_UNTIL)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(csca_key, hashes.SHA256())
        )
        ds_key = ec.generate_private_key(ec.SECP256R1())
        ds = (
            x509.CertificateBuilder()
            .subject_name(_name("Document Signer TEST 01"))
            .issuer_name(csca_name)
            .public_key(ds_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_VALID_FROM)
            .not_valid_after(_DS_UNTIL)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
            )
            .sign(csca_key, hashes.SHA256())
        )
        aa_key = ec.generate_private_key(ec.SECP256R1())
        ca_key = ec.generate_private_key(ec.SECP256R1())
        pem = serialization.Encoding.PEM
        files["csca.pem"].write_bytes(csca.public_bytes(pem))
        (directory / "trust" / "csca.pem").write_bytes(csca.public_bytes(pem))
        files["ds.pem"].write_bytes(ds.public_bytes(pem))
        _write_key(files["ds.key.pem"], ds_key)
        _write_key(files["aa.key.pem"], aa_key)
        _write_key(ca_path, ca_key)
        return cls(directory, csca, ds, ds_key, aa_key, ca_key)
