"""The center's public key infrastructure: an offline root, an online issuing CA, and the CRL.

``center-init`` makes (``CenterPki.create``):

- the **root CA** (10 years; its key encrypted with the technician's passphrase, meant to be carried
  away on a USB stick: nothing at the center needs it after init);
- the **issuing CA** (5 years, signed by the root, path length 0): signs the broker's, the enrollment
  endpoint's and the services' certificates at init, and the kiosks' at enrollment and renewal; its key
  stays on the center server, readable by root (and the provisioning service) only;
- ``ca.crt``: issuing + root, what every kiosk and service trusts;
- the **CRL** of the issuing CA, twice: ``crl.pem`` (Mosquitto's ``crlfile``, read once at start) and
  ``crl.d/<hash>.r<N>`` (a ``capath`` folder). OpenSSL's hash-dir lookup loads a CRL file with a higher
  suffix the next time it verifies a certificate of that issuer, and uses the newest: a revocation
  reaches new TLS handshakes at once, without restarting the broker (Mosquitto itself reads CRLs only
  at start, its issue #35). Files must stay contiguous from ``r0`` (the lookup stops at the first gap);
  ``compact`` folds them into one before the broker starts.

Later, ``takeovers.json``: the two-minute certificates with a kiosk's (a bridge's) CN that closed a
revoked certificate's connection (``issue_takeover``), revoked once used (``retire_takeover``): every
CRL ``publish_crl`` signs lists them, until an hour past their end.

Every key, certificate, CSR and CRL is made by ``cryptography``; ``openssl`` is only asked for the
subject hash that names the files of the ``capath`` folder.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AttributeOID, ExtendedKeyUsageOID, NameOID

from common.errors import ConfigError, ConflictError, MotcuaError, ValidationError
from common.identity import cert_sha256, key_pem, kiosk_uri, new_key, serial_hex, spki_sha256, write_private
from common.identity import write_public as _write_public
from contract.wire import ID_RE, is_kiosk_id

ROOT_DAYS = 3650
ISSUING_DAYS = 1825
#: a kiosk certificate lives at most a year (the agent renews it itself before it ends)
KIOSK_DAYS_MAX = 365
KIOSK_DAYS = 365
SERVICE_DAYS = 730
SERVER_DAYS = 730
#: a CRL is valid this long; the provisioning service signs a fresh one long before (``CRL_REFRESH``)
CRL_DAYS = 30
CRL_REFRESH = dt.timedelta(days=7)
#: a takeover certificate's life (``issue_takeover``); once used it is on the CRL (``retire_takeover``)
TAKEOVER_LIFETIME = dt.timedelta(minutes=2)
#: how long past its end a used takeover certificate stays listed: a broker on a clock behind the CA's
#: would still take it for valid; after that the CRL forgets it (a CRL need not list expired ones)
TAKEOVER_LISTED_AFTER = dt.timedelta(hours=1)
#: the center's own identities (certificate CN = MQTT username on the services' listener)
SERVICE_ROLES = ("fleet", "allocator", "counter", "provisioner")


class PkiError(MotcuaError):
    """The center's PKI cannot do what was asked (missing file, wrong passphrase, bad request)."""

    code = "pki"
    exit_code = 78


@dataclass(frozen=True)
class Revoked:
    serial: str
    revoked_at: dt.datetime
    reason: str = "unspecified"


_REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key_compromise": x509.ReasonFlags.key_compromise,
    "superseded": x509.ReasonFlags.superseded,
    "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
}


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = []
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH


def _ski(public_key: ec.EllipticCurvePublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def _aki(public_key: ec.EllipticCurvePublicKey) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def subject_hash(cert_file: Path) -> str:
    """OpenSSL's subject name hash (the file names of a ``capath`` folder)."""
    try:
        out = subprocess.run(
            ["openssl", "x509", "-subject_hash", "-noout", "-in", str(cert_file)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise PkiError(f"openssl cannot hash {cert_file}: {exc} (apt-get install openssl)") from exc
    return out.stdout.strip()


def certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    """The start of every certificate issued here and by the tests' ``provisioning.pki``: a random
    serial, valid from five minutes before ``now`` (a peer whose clock is a little behind takes it
    at once) until ``not_after``; the caller adds the extensions of its kind and signs."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
    )


def host_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """A server certificate's SANs: an IP address entry for an address, a DNS name otherwise."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


@dataclass(frozen=True)
class CsrCheck:
    """A CSR that passed: its public key and the challengePassword it carries."""

    public_key: ec.EllipticCurvePublicKey
    challenge: str
    key_sha256: str


def check_csr(pem: str) -> CsrCheck:
    """Parse a kiosk's CSR: valid signature (the kiosk holds the key), EC P-256/P-384, a challenge."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError as exc:
        raise ValidationError(f"not a certificate request: {exc}") from exc
    if not csr.is_signature_valid:
        raise ValidationError("the request's signature does not verify (no proof of the key)")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in ("secp256r1", "secp384r1"):
        raise ValidationError("expected an EC P-256 or P-384 key")
    try:
        challenge = csr.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD).value
    except x509.AttributeNotFound:
        raise ValidationError("the request carries no challengePassword (the center's nonce)") from None
    text = challenge.decode() if isinstance(challenge, bytes) else str(challenge)
    return CsrCheck(key, text, spki_sha256(key))


class CenterPki:
    """The files of one center's PKI, in ``directory`` (``<center dir>/pki``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    # -- files ------------------------------------------------------------------------------------
    @property
    def root_cert_file(self) -> Path:
        return self.directory / "root-ca.crt"

    @property
    def root_key_file(self) -> Path:
        return self.directory / "root-ca.key"

    @property
    def issuing_cert_file(self) -> Path:
        return self.directory / "issuing-ca.crt"

    @property
    def issuing_key_file(self) -> Path:
        return self.directory / "issuing-ca.key"

    @property
    def chain_file(self) -> Path:
        """What kiosks and services trust, and the broker's ``cafile``: issuing + root."""
        return self.directory / "ca.crt"

    @property
    def crl_file(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def crl_dir(self) -> Path:
        return self.directory / "crl.d"

    @property
    def state_file(self) -> Path:
        return self.directory / "pki-state.json"

    @property
    def takeovers_file(self) -> Path:
        """The used takeover certificates (``retire_takeover``) every CRL lists until they are long over."""
        return self.directory / "takeovers.json"

    def cert_file(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def key_file(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    def exists(self) -> bool:
        return self.root_cert_file.exists()

    # -- create ---------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        directory: Path,
        center_id: str,
        center_name: str,
        passphrase: bytes,
        now: dt.datetime | None = None,
    ) -> CenterPki:
        """Root + issuing CA and an empty CRL; refuses a folder that already holds a root. ``center_id``
        is only what the CAs' names carry (a province's PKI passes ``province <id>``)."""
        pki = cls(directory)
        if pki.exists():
            raise ConflictError(f"{pki.root_cert_file} exists already: this center has its PKI")
        if len(passphrase) < 12:
            raise ValidationError("the root key's passphrase needs at least 12 characters")
        now = now or dt.datetime.now(dt.UTC)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        root_key = new_key()
        root_name = _name(f"Mot Cua Root CA {center_id}", center_name[:64] or center_id)
        root = (
            certificate_builder(
                root_name, root_name, root_key.public_key(), now, now + dt.timedelta(days=ROOT_DAYS)
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(_ski(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        issuing_key = new_key()
        issuing_name = _name(f"Mot Cua Issuing CA {center_id}", center_name[:64] or center_id)
        issuing = (
            certificate_builder(
                issuing_name, root_name, issuing_key.public_key(), now, now + dt.timedelta(days=ISSUING_DAYS)
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(_ski(issuing_key.public_key()), critical=False)
            .add_extension(_aki(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        encrypted = root_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        write_private(pki.root_key_file, encrypted)
        _write_public(pki.root_cert_file, _pem(root))
        write_private(pki.issuing_key_file, key_pem(issuing_key))
        _write_public(pki.issuing_cert_file, _pem(issuing))
        _write_public(pki.chain_file, _pem(issuing) + _pem(root))
        pki.crl_dir.mkdir(mode=0o755, exist_ok=True)
        pki._save_state(
            {"crl_number": 0, "hash": subject_hash(pki.issuing_cert_file), "files": 0, "last_update": 0}
        )
        pki.publish_crl([], now)
        return pki

    # -- loading ----------------------------------------------------------------------------------
    def root_cert(self) -> x509.Certificate:
        return self._load_cert(self.root_cert_file)

    def issuing_cert(self) -> x509.Certificate:
        return self._load_cert(self.issuing_cert_file)

    def _load_cert(self, path: Path) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise PkiError(f"{path}: {exc}") from exc

    def issuing_key(self) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_pem_private_key(self.issuing_key_file.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise PkiError(f"{self.issuing_key_file}: {exc} (the provisioning service needs it)") from exc
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def root_key(self, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_pem_private_key(self.root_key_file.read_bytes(), password=passphrase)
        except FileNotFoundError as exc:
            raise PkiError(f"{self.root_key_file} is not here (the root key is kept offline)") from exc
        except (ValueError, TypeError) as exc:
            raise PkiError("the passphrase does not open the root key") from exc
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def fingerprint(self) -> str:
        """What the QR code carries: SHA-256 of the root CA certificate (DER)."""
        return cert_sha256(self.root_cert())

    def chain_pem(self) -> str:
        return self.chain_file.read_text()

    # -- issuing ----------------------------------------------------------------------------------
    def _leaf(
        self,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        days: float,
        usage: x509.ObjectIdentifier,
        names: list[x509.GeneralName],
        now: dt.datetime,
    ) -> x509.Certificate:
        issuing = self.issuing_cert()
        ca_key = self.issuing_key()
        not_after = min(now + dt.timedelta(days=days), issuing.not_valid_after_utc)
        builder = (
            certificate_builder(subject, issuing.subject, public_key, now, not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_leaf_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(_aki(ca_key.public_key()), critical=False)
            .add_extension(_ski(public_key), critical=False)
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    def issue_kiosk(
        self,
        csr_pem: str,
        center_id: str,
        kiosk_id: str,
        *,
        days: float = KIOSK_DAYS,
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        """A kiosk's certificate for the key of its CSR: CN = kiosk id, SAN URI with both ids."""
        if not is_kiosk_id(kiosk_id):
            raise ValidationError(f"{kiosk_id!r} cannot be a kiosk id (reserved or malformed)")
        if not ID_RE.fullmatch(center_id):
            raise ValidationError(f"{center_id!r} is not a center id")
        if not 0 < days <= KIOSK_DAYS_MAX:
            raise ValidationError(f"a kiosk certificate lives at most {KIOSK_DAYS_MAX} days")
        check = check_csr(csr_pem)
        return self._leaf(
            _name(kiosk_id),
            check.public_key,
            days,
            CLIENT_AUTH,
            [x509.UniformResourceIdentifier(kiosk_uri(center_id, kiosk_id))],
            now or dt.datetime.now(dt.UTC),
        )

    def issue_named(
        self,
        name: str,
        *,
        server_hosts: tuple[str, ...] = (),
        days: float | None = None,
        overwrite: bool = False,
        now: dt.datetime | None = None,
    ) -> tuple[Path, Path]:
        """``<name>.crt/.key`` here: a server certificate for ``server_hosts``, or a service's client
        certificate (CN = name: a reserved role, or ``role.N`` for a second worker of a role)."""
        if not server_hosts:
            role = name.split(".", 1)[0]
            if role not in SERVICE_ROLES:
                raise ValidationError(f"{name!r}: a service certificate is one of {', '.join(SERVICE_ROLES)}")
        cert_file, key_file = self.cert_file(name), self.key_file(name)
        self.issue_files(
            name, cert_file, key_file, server_hosts=server_hosts, days=days, overwrite=overwrite, now=now
        )
        return cert_file, key_file

    def issue_files(
        self,
        common_name: str,
        cert_file: Path,
        key_file: Path,
        *,
        server_hosts: tuple[str, ...] = (),
        days: float | None = None,
        overwrite: bool = False,
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        """A new key and its certificate (CN ``common_name``) written to ``cert_file``/``key_file`` (the
        key 0600): serverAuth for ``server_hosts`` (their SANs), else clientAuth. The caller checks the
        name (``issue_named`` for the center's services, ``provisioning.province`` for a province's)."""
        if cert_file.exists() and not overwrite:
            raise ConflictError(f"{cert_file} exists already")
        key = new_key()
        moment = now or dt.datetime.now(dt.UTC)
        if server_hosts:
            cert = self._leaf(
                _name(common_name), key.public_key(), days or SERVER_DAYS, SERVER_AUTH,
                host_names(server_hosts), moment,
            )
        else:
            cert = self._leaf(
                _name(common_name), key.public_key(), days or SERVICE_DAYS, CLIENT_AUTH, [], moment
            )
        write_private(key_file, key_pem(key))
        _write_public(cert_file, _pem(cert))
        return cert

    def issue_takeover(self, kiosk_id: str, now: dt.datetime | None = None) -> tuple[bytes, bytes, str]:
        """A two-minute certificate with a kiosk's (or a bridge's) CN, to take its MQTT session over (and
        so close the connection of a revoked certificate). Key and certificate stay in memory. The
        caller hands it to ``retire_takeover`` once used (or failed) and publishes the CRL: a leaked key
        would otherwise connect as that CN until the certificate ends. Returns (cert PEM, key PEM,
        serial)."""
        key = new_key()
        moment = now or dt.datetime.now(dt.UTC)
        days = TAKEOVER_LIFETIME / dt.timedelta(days=1)
        cert = self._leaf(_name(kiosk_id), key.public_key(), days, CLIENT_AUTH, [], moment)
        return _pem(cert), key_pem(key), serial_hex(cert.serial_number)

    def _takeovers(self) -> list[dict[str, str]]:
        try:
            data = json.loads(self.takeovers_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise PkiError(f"{self.takeovers_file}: {exc}") from exc
        return list(data)

    def _listed_takeovers(self, moment: dt.datetime) -> list[Revoked]:
        """The used takeover certificates a CRL signed at ``moment`` lists."""
        return [
            Revoked(item["serial"], dt.datetime.fromisoformat(item["revoked_at"]), "cessation_of_operation")
            for item in self._takeovers()
            if dt.datetime.fromisoformat(item["not_after"]) + TAKEOVER_LISTED_AFTER > moment
        ]

    def retire_takeover(self, cert_pem: bytes, now: dt.datetime | None = None) -> str:
        """A takeover certificate done with: its serial into ``takeovers.json`` (those long over left
        out), which every ``publish_crl`` lists from now on; the caller publishes the CRL next (with its
        own list), or its next publish does (``takeovers_unlisted``). Returns the serial."""
        cert = x509.load_pem_x509_certificate(cert_pem)
        serial = serial_hex(cert.serial_number)
        moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        kept = [
            item for item in self._takeovers()
            if dt.datetime.fromisoformat(item["not_after"]) + TAKEOVER_LISTED_AFTER > moment
            and item["serial"] != serial
        ]
        end = cert.not_valid_after_utc.isoformat()
        kept.append({"serial": serial, "revoked_at": moment.isoformat(), "not_after": end})
        write_private(self.takeovers_file, json.dumps(kept, indent=1).encode() + b"\n")
        return serial

    def takeovers_unlisted(self, now: dt.datetime | None = None) -> bool:
        """Whether a used takeover certificate is not on the published CRL yet (a publish is due)."""
        listed = self._listed_takeovers(now or dt.datetime.now(dt.UTC))
        return bool(listed) and not {item.serial for item in listed} <= self.revoked_serials()

    # -- revocation -----------------------------------------------------------------------------------
    def _state(self) -> dict[str, int | str]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError) as exc:
            raise PkiError(f"{self.state_file}: {exc}") from exc
        assert isinstance(data, dict)
        return data

    def _save_state(self, state: dict[str, int | str]) -> None:
        write_private(self.state_file, json.dumps(state, indent=1).encode())

    def crl_number(self) -> int:
        return int(self._state()["crl_number"])

    def publish_crl(self, revoked: Iterable[Revoked], now: dt.datetime | None = None) -> Path:
        """Sign the CRL with every revoked serial and publish it: ``crl.pem`` and the next
        ``crl.d/<hash>.r<N>``. ``revoked`` is the caller's list (the store's at a center, the bridges'
        ledger at a province); the used takeover certificates (``retire_takeover``) are added here, so
        no publish drops one. Each CRL's thisUpdate is later than the previous one's by at least a
        second (OpenSSL takes the newest of equal CRLs by thisUpdate, to the second)."""
        state = self._state()
        last = int(state["last_update"])
        moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        if int(moment.timestamp()) <= last:
            if now is None:  # wait for the next second (at most one)
                time.sleep(max(0.0, last + 1 - time.time()) + 0.01)
                moment = dt.datetime.now(dt.UTC).replace(microsecond=0)
            else:
                moment = dt.datetime.fromtimestamp(last + 1, dt.UTC)
        number = int(state["crl_number"]) + 1
        issuing = self.issuing_cert()
        ca_key = self.issuing_key()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuing.subject)
            .last_update(moment)
            .next_update(moment + dt.timedelta(days=CRL_DAYS))
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(_aki(ca_key.public_key()), critical=False)
        )
        seen: set[str] = set()
        for item in [*revoked, *self._listed_takeovers(moment)]:
            if item.serial in seen:
                continue
            seen.add(item.serial)
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(item.serial, 16))
                .revocation_date(min(item.revoked_at, moment))
                .add_extension(
                    x509.CRLReason(_REASONS.get(item.reason, x509.ReasonFlags.unspecified)), critical=False
                )
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        pem = builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        index = int(state["files"])
        target = self.crl_dir / f"{state['hash']}.r{index}"
        _write_public(target, pem)
        _write_public(self.crl_file, pem)
        state.update(crl_number=number, files=index + 1, last_update=int(moment.timestamp()))
        self._save_state(state)
        return target

    def crl_next_update(self) -> dt.datetime:
        crl = x509.load_pem_x509_crl(self.crl_file.read_bytes())
        next_update = crl.next_update_utc
        assert next_update is not None
        return next_update

    def revoked_serials(self) -> set[str]:
        crl = x509.load_pem_x509_crl(self.crl_file.read_bytes())
        return {serial_hex(r.serial_number) for r in crl}

    def compact(self) -> None:
        """Fold ``crl.d`` into one file ``r0`` (the current CRL). Only while the broker is stopped: a
        running broker's lookup remembers the next suffix it expects (ExecStartPre of the broker)."""
        state = self._state()
        for old in self.crl_dir.glob(f"{state['hash']}.r*"):
            old.unlink()
        _write_public(self.crl_dir / f"{state['hash']}.r0", self.crl_file.read_bytes())
        state["files"] = 1
        self._save_state(state)


def issued_serial(cert: x509.Certificate) -> str:
    return serial_hex(cert.serial_number)


def require_passphrase(text: bytes | None) -> bytes:
    if not text:
        raise ConfigError("the root key needs a passphrase (--passphrase-file FILE, or type it)")
    return text
