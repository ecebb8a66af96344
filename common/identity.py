"""A kiosk's own identity: its key pair, made on the kiosk (the key never leaves it), the CSR that asks
the center for a certificate, and what a certificate says about whose it is.

Shared by enrollment (``provisioning.enroll``, a bare PC asking for its first certificate over HTTPS)
and renewal (``edge_agent.renewal``, the agent asking for the next one over MQTT), so both make the same
keys and requests. ``cryptography`` does every cryptographic step; nothing here is hand-written.

A kiosk certificate names the kiosk in its subject's CN (the broker's username and client id) and both
ids in a SAN URI ``urn:motcua:kiosk:<center>:<kiosk>``: the center id is in the certificate too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AttributeOID, NameOID

from common.errors import ConfigError
from common.files import write_atomically

URI_PREFIX = "urn:motcua:kiosk:"


def kiosk_uri(center_id: str, kiosk_id: str) -> str:
    return f"{URI_PREFIX}{center_id}:{kiosk_id}"


def new_key() -> ec.EllipticCurvePrivateKey:
    """EC P-256: fast to make and to handshake on a small board (the center's CA uses the same)."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a readable private key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{path}: expected an EC key")
    return key


def make_csr(key: ec.EllipticCurvePrivateKey, common_name: str, challenge: str) -> str:
    """A PEM CSR for ``common_name`` whose challengePassword is ``challenge`` (the center's nonce, or
    the renewal's request id): signed by ``key``, it proves the key and binds it to that one request."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def spki_sha256(public_key: ec.EllipticCurvePublicKey | object) -> str:
    """SHA-256 of the SubjectPublicKeyInfo: one key, one fingerprint (a reused key is seen)."""
    assert hasattr(public_key, "public_bytes")
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def cert_sha256(cert: x509.Certificate) -> str:
    """The fingerprint a technician compares: SHA-256 of the DER certificate, lowercase hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable certificate ({exc})") from exc


def load_certs(pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ConfigError(f"not PEM certificates: {exc}") from exc


@dataclass(frozen=True)
class CertInfo:
    """What a kiosk certificate says."""

    kiosk_id: str
    center_id: str | None
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    key_sha256: str

    def remaining(self, now: dt.datetime) -> dt.timedelta:
        return self.not_after - now

    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def cert_info(cert: x509.Certificate) -> CertInfo:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    kiosk_id = str(names[0].value) if names else ""
    center_id = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
            if uri.startswith(URI_PREFIX):
                center, _, kiosk = uri[len(URI_PREFIX) :].partition(":")
                if kiosk == kiosk_id:
                    center_id = center
    except x509.ExtensionNotFound:
        pass
    return CertInfo(
        kiosk_id,
        center_id,
        serial_hex(cert.serial_number),
        cert.not_valid_before_utc,
        cert.not_valid_after_utc,
        spki_sha256(cert.public_key()),
    )


def write_private(path: Path, data: bytes) -> None:
    """A key (or anything secret): 0600, written atomically, its folder made 0700 if new."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(path, data, 0o600)


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(path, data, 0o644)


def install_identity(
    key_file: Path,
    cert_file: Path,
    key: ec.EllipticCurvePrivateKey,
    cert_pem: bytes,
    ca_file: Path | None = None,
    ca_pem: bytes | None = None,
) -> None:
    """Put a new key and its certificate in place: each file is replaced atomically; the key first, so
    a reader that sees the new certificate also finds its key (a connection made between the two
    renames fails its handshake and is retried)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    if spki_sha256(cert.public_key()) != spki_sha256(key.public_key()):
        raise ConfigError("the certificate is not for this key")
    write_private(key_file, key_pem(key))
    write_public(cert_file, cert_pem)
    if ca_file is not None and ca_pem is not None:
        write_public(ca_file, ca_pem)
