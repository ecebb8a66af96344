"""A small certificate authority: the center's CA, the broker's server certificate, one per kiosk.

Tests use it to run Mosquitto with real TLS and client certificates; the provisioning issue can use it
to issue a kiosk's identity. The client certificate's CN is the kiosk id, which Mosquitto turns into
the username (``use_identity_as_username``) that the ACL pattern ``%u`` confines, and the client id
(``use_username_as_clientid``). EC P-256 keys: fast to generate and to handshake on a small board.

- A kiosk certificate is valid at most ``MAX_KIOSK_DAYS`` (365) days, and its CN must be a kiosk id
  that is none of the center's names (``contract.wire.RESERVED_IDS``) nor one of their instance forms
  (``fleet-1``, ``allocator-hcm``...): such a kiosk would take that service's client id.
- A service certificate (``service=True``: ``fleet``, ``fleet-2``, ``allocator``, ``counter``...) must
  carry exactly such a name.
- Private keys are written 0600 (also over an existing file) in a 0700 folder. A kiosk's key is not
  encrypted at rest: the kiosk must use it unattended after a reboot, so the passphrase would lie on the
  same disk; its protection is the file's mode, the short validity and revocation.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from contract.wire import ID_RE, RESERVED_IDS, is_kiosk_id
from provisioning.center_pki import certificate_builder, host_names

#: longest validity of a kiosk's client certificate (renewed by provisioning before it ends)
MAX_KIOSK_DAYS = 365
DEFAULT_DAYS = 365


class PkiError(ValueError):
    """A certificate that must not be issued (a reserved name for a kiosk, too long a validity)."""


def is_service_name(name: str) -> bool:
    """One of the center's names (``fleet``) or an instance of one (``fleet-2``, ``allocator-hcm``)."""
    if ID_RE.fullmatch(name) is None:
        return False
    return name in RESERVED_IDS or any(name.startswith(f"{reserved}-") for reserved in RESERVED_IDS)


def check_kiosk_name(name: str) -> None:
    if not is_kiosk_id(name) or is_service_name(name):
        raise PkiError(
            f"{name!r} cannot be a kiosk's certificate name: a kiosk id is a-z, 0-9, - (2-63 characters) "
            f"and none of the center's names ({', '.join(sorted(RESERVED_IDS))}) nor '<name>-...'"
        )


@dataclass(frozen=True)
class Issued:
    """PEM files of one issued certificate and its key."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    cert_file: Path

    @classmethod
    def create(cls, directory: Path, name: str = "Mot Cua Test CA", days: int = 3650) -> CertificateAuthority:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            certificate_builder(subject, subject, key.public_key(), now, now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        cert_file = directory / "ca.crt"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(directory / "ca.key", key)
        return cls(key, cert, cert_file)

    def issue(
        self,
        directory: Path,
        common_name: str,
        *,
        server: bool = False,
        service: bool = False,
        hosts: tuple[str, ...] = (),
        days: int = DEFAULT_DAYS,
    ) -> Issued:
        """Issue ``<directory>/<common_name>.crt/.key``: a kiosk's client cert (the default), a center
        service's (``service``), or a server cert for ``hosts`` (``server``). PkiError for a name or a
        validity the kind does not allow."""
        if not server:
            if service:
                if not is_service_name(common_name):
                    reserved = ", ".join(sorted(RESERVED_IDS))
                    raise PkiError(f"{common_name!r} is not a center service name: {reserved}, '<name>-...'")
            else:
                check_kiosk_name(common_name)
                if days > MAX_KIOSK_DAYS:
                    raise PkiError(f"a kiosk certificate is valid at most {MAX_KIOSK_DAYS} days, not {days}")
        if days < 1:
            raise PkiError("days: at least 1")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            certificate_builder(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
                self.cert.subject,
                key.public_key(),
                now,
                now + dt.timedelta(days=days),
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName(host_names(hosts)), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_file = directory / f"{common_name}.crt"
        key_file = directory / f"{common_name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_file, key)
        return Issued(cert_file, key_file)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Private keys are readable by their owner only."""
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT keeps the mode of a file that was already there
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
