"""The CSCA trust folder and path validation of a document signer (DS) certificate (ICAO 9303-12).

The path of an eMRTD is always CSCA -> DS: the CSCA is a trust anchor from the folder, the DS comes in
EF.SOD. Validated here, explicitly, with ``cryptography`` for every signature:

- chaining: the DS issuer names a CSCA of the folder, and the DS authorityKeyIdentifier (when both
  sides carry one) matches that CSCA's subjectKeyIdentifier (a CSCA renews its key under one name);
- the DS signature verifies with that CSCA's key;
- the CSCA is a CA: basicConstraints cA=TRUE, keyUsage keyCertSign, valid at the time of the check;
- the DS is valid at the time of the check and has keyUsage digitalSignature;
- neither carries a critical extension this code does not know;
- a CRL in the folder issued (and correctly signed) by that CSCA that lists the DS revokes it.

Why not ``cryptography.x509.verification``: it implements the Web PKI profile and refuses what ICAO
PKIs use (seen with cryptography 50: a brainpoolP256r1 chain fails with "Forbidden public key
algorithm"; it also requires an authorityKeyIdentifier on every CSCA-issued certificate as the CA/B
Forum does, and has no CRL support).

Failures of the DS (its signature, dates, keyUsage, revocation) make the card ``failed``; a missing or
unusable anchor (no CSCA of that name and key, a CSCA that is not a CA or has expired) makes it
``not_verified``: the folder, not the card, is what cannot vouch.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from drivers.card.verdict import Verdict, failed, genuine, not_verified

log = logging.getLogger(__name__)

CSCA_MASTER_LIST_OID = "2.23.136.1.1.2"
#: ICAO private extensions a DS or CSCA may carry (Doc 9303-12 7.1.1.3): name change, document type list
ICAO_EXTENSIONS = frozenset({"2.23.136.1.1.6.1", "2.23.136.1.1.6.2"})
#: what cryptography raises, on first access, for a certificate or CRL field it cannot parse: not only
#: ValueError (fuzz card.sod found TypeError, DuplicateExtension and InvalidVersion reaching the read)
MALFORMED: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
)
_MALFORMED_OR_UNSUPPORTED: tuple[type[Exception], ...] = (*MALFORMED, UnsupportedAlgorithm)
_NOT_ISSUED_BY: tuple[type[Exception], ...] = (*MALFORMED, InvalidSignature)
_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


class _CertificateSet(core.SetOf):
    _child_spec = asn1_x509.Certificate


class CscaMasterList(core.Sequence):
    _fields = [("version", core.Integer), ("cert_list", _CertificateSet)]  # noqa: RUF012 - asn1crypto spec


@dataclass(frozen=True)
class TrustStore:
    """CSCA certificates (trust anchors) and the CRLs found beside them."""

    cscas: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.cscas)


def load_trust_store(directory: Path) -> TrustStore:
    """CSCA certificates (PEM/DER files, ICAO master lists ``.ml``) and CRLs (PEM, or DER ``.crl``)."""
    certs: list[x509.Certificate] = []
    crls: list[x509.CertificateRevocationList] = []
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        raw = path.read_bytes()
        try:
            if b"-----BEGIN " in raw:
                if b"-----BEGIN CERTIFICATE-----" in raw:
                    certs.extend(x509.load_pem_x509_certificates(raw))
                crls.extend(x509.load_pem_x509_crl(block) for block in _PEM_CRL.findall(raw))
            elif path.suffix.lower() == ".ml":
                certs.extend(_master_list_certs(raw))
            elif path.suffix.lower() == ".crl":
                crls.append(x509.load_der_x509_crl(raw))
            else:
                certs.append(x509.load_der_x509_certificate(raw))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("trust store: skipping %s (%s)", path.name, exc)
    return TrustStore(tuple(c for c in certs if _parses(c)), tuple(c for c in crls if _crl_parses(c)))


def _parses(cert: x509.Certificate) -> bool:
    """cryptography parses a certificate's fields on first access: a CSCA that cannot be read whole is
    left out here (with a warning), so path validation never meets a ValueError from the folder."""
    try:
        _ = (
            cert.subject,
            cert.issuer,
            cert.serial_number,
            cert.not_valid_before_utc,
            cert.not_valid_after_utc,
        )
        _ = list(cert.extensions)
        cert.public_key()
    except _MALFORMED_OR_UNSUPPORTED as exc:
        log.warning("trust store: skipping a CSCA certificate (%s)", exc)
        return False
    return True


def _crl_parses(crl: x509.CertificateRevocationList) -> bool:
    try:
        _ = (crl.issuer, crl.last_update_utc, list(crl.extensions))
        for entry in crl:
            _ = (entry.serial_number, entry.revocation_date_utc, list(entry.extensions))
    except MALFORMED as exc:
        log.warning("trust store: skipping a CRL (%s)", exc)
        return False
    return True


def _master_list_certs(raw: bytes) -> list[x509.Certificate]:
    """Certificates of an ICAO CSCA master list. Its own signature is not checked here (the list is
    placed by the technician); each CSCA is then only trusted to sign DS certificates."""
    info = cms.ContentInfo.load(raw)
    encap = info["content"]["encap_content_info"]
    if encap["content_type"].dotted != CSCA_MASTER_LIST_OID:
        raise ValueError("not a CSCA master list")
    content = encap["content"]
    payload = content.parsed.dump() if isinstance(content, core.ParsableOctetString) else content.native
    master = CscaMasterList.load(payload)
    return [x509.load_der_x509_certificate(c.dump()) for c in master["cert_list"]]


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _key_identifier(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> bytes | None:
    try:
        value = _extension(cert, kind)
    except MALFORMED:  # malformed extensions: reported by the checks that follow
        return None
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return value.key_identifier
    return None


def _unknown_critical(cert: x509.Certificate) -> str | None:
    for ext in cert.extensions:
        unknown = (
            isinstance(ext.value, x509.UnrecognizedExtension) and ext.oid.dotted_string not in ICAO_EXTENSIONS
        )
        if ext.critical and unknown:
            return ext.oid.dotted_string
    return None


def _day(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _issuers(ds: x509.Certificate, trust: TrustStore) -> list[x509.Certificate]:
    """CSCAs of the folder that may have issued ``ds``: same name, and matching key identifiers."""
    aki = _key_identifier(ds, x509.AuthorityKeyIdentifier)
    found = []
    for csca in trust.cscas:
        if csca.subject != ds.issuer:
            continue
        ski = _key_identifier(csca, x509.SubjectKeyIdentifier)
        if aki is not None and ski is not None and aki != ski:
            continue  # another key of a CSCA with this name
        found.append(csca)
    return found


def _check_csca(csca: x509.Certificate, at: dt.datetime) -> Verdict | None:
    """Why this anchor cannot vouch for anything (None: it can)."""
    constraints = _extension(csca, x509.BasicConstraints)
    if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
        return not_verified(
            "csca_not_ca", "the CSCA certificate of the DS issuer is not a CA (basicConstraints cA not TRUE)"
        )
    usage = _extension(csca, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not usage.key_cert_sign:
        return not_verified(
            "csca_no_key_cert_sign", "the CSCA certificate of the DS issuer lacks keyUsage keyCertSign"
        )
    if at < csca.not_valid_before_utc:
        return not_verified(
            "csca_not_yet_valid", f"the CSCA certificate is valid only from {_day(csca.not_valid_before_utc)}"
        )
    if at > csca.not_valid_after_utc:
        return not_verified(
            "csca_expired", f"the CSCA certificate expired on {_day(csca.not_valid_after_utc)}"
        )
    unknown = _unknown_critical(csca)
    if unknown is not None:
        return not_verified(
            "csca_unknown_critical_extension",
            f"the CSCA certificate has an unknown critical extension {unknown}",
        )
    return None


def _check_ds(ds: x509.Certificate, at: dt.datetime) -> Verdict | None:
    if at < ds.not_valid_before_utc:
        return failed(
            "ds_not_yet_valid", f"the DS certificate is valid only from {_day(ds.not_valid_before_utc)}"
        )
    if at > ds.not_valid_after_utc:
        return failed("ds_expired", f"the DS certificate expired on {_day(ds.not_valid_after_utc)}")
    usage = _extension(ds, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not usage.digital_signature:
        return failed("ds_key_usage", "the DS certificate lacks keyUsage digitalSignature")
    unknown = _unknown_critical(ds)
    if unknown is not None:
        return failed(
            "ds_unknown_critical_extension", f"the DS certificate has an unknown critical extension {unknown}"
        )
    return None


def _revocation(
    ds: x509.Certificate, csca: x509.Certificate, trust: TrustStore, at: dt.datetime
) -> Verdict | None:
    """The CSCA's CRLs in the folder: a correctly signed one listing the DS revokes it (an out-of-date
    CRL too: a revocation is never undone). When the CSCA's only CRLs are past their nextUpdate, that
    the DS is not listed proves nothing (RFC 5280 §6.3.3): not verified. No CRL at all for the CSCA is
    the folder's choice (many inspection systems get none from the PKD): it decides nothing."""
    usage = _extension(csca, x509.KeyUsage)
    may_sign_crls = isinstance(usage, x509.KeyUsage) and usage.crl_sign
    stale_until: dt.datetime | None = None
    current = False
    for crl in trust.crls:
        if crl.issuer != csca.subject:
            continue
        if not may_sign_crls:
            log.warning("trust store: CRL of a CSCA without keyUsage cRLSign ignored")
            continue
        try:
            signed = crl.is_signature_valid(csca.public_key())  # type: ignore[arg-type]
        except (TypeError, ValueError, UnsupportedAlgorithm):
            signed = False
        if not signed:
            log.warning("trust store: CRL whose signature does not verify with its CSCA ignored")
            continue
        entry = crl.get_revoked_certificate_by_serial_number(ds.serial_number)
        if entry is not None:
            since = _day(entry.revocation_date_utc)
            return failed("ds_revoked", f"the DS certificate is revoked by its CSCA's CRL (since {since})")
        due = crl.next_update_utc
        if due is None or due >= at:  # ICAO 9303-12 requires nextUpdate; a CRL without one is taken as is
            current = True
        elif stale_until is None or due > stale_until:
            stale_until = due
    if stale_until is not None and not current:
        return not_verified(
            "crl_out_of_date",
            f"the CSCA's CRL was due to be renewed on {_day(stale_until)}: revocation unknown",
        )
    return None


def validate_document_signer(
    ds: x509.Certificate, trust: TrustStore | None, at: dt.datetime | None = None
) -> Verdict:
    """Path validation of ``ds`` against the folder at time ``at`` (default: now). Genuine only when the
    whole path holds; the returned verdict says which check decided otherwise."""
    try:
        return _validate(ds, trust, at)
    except MALFORMED as exc:  # cryptography parses names, dates, extensions on first access
        return failed("ds_certificate_unusable", f"the DS certificate is malformed ({exc})")


def _validate(ds: x509.Certificate, trust: TrustStore | None, at: dt.datetime | None) -> Verdict:
    if not trust:
        return not_verified("no_trust_store", "no CSCA trust folder configured: the DS cannot be validated")
    at = at or dt.datetime.now(dt.UTC)
    candidates = _issuers(ds, trust)
    if not candidates:
        return not_verified(
            "ds_issuer_unknown", "the DS certificate was not issued by a CSCA of the trust folder"
        )
    issuer = None
    unsupported = ""
    for csca in candidates:
        try:
            ds.verify_directly_issued_by(csca)
        except UnsupportedAlgorithm as exc:
            unsupported = str(exc)
            continue
        except _NOT_ISSUED_BY:
            continue
        issuer = csca
        break
    if issuer is None and unsupported:
        return not_verified(
            "ds_algorithm_unsupported",
            f"the DS certificate's signature uses an algorithm this reader does not support ({unsupported})",
        )
    if issuer is None:
        return failed(
            "ds_signature_invalid",
            "the DS certificate's signature does not verify with the CSCA it names as issuer",
        )
    # cryptography parses extensions on first access: a malformed one raises there
    try:
        problem = _check_csca(issuer, at)
    except MALFORMED as exc:
        return not_verified("csca_unusable", f"the CSCA certificate has a malformed extension ({exc})")
    if problem is None:
        try:
            problem = _check_ds(ds, at) or _revocation(ds, issuer, trust, at)
        except MALFORMED as exc:
            return failed("ds_certificate_unusable", f"the DS certificate has a malformed extension ({exc})")
    if problem is not None:
        return problem
    return genuine("verified", "hashes, EF.SOD signature and DS certificate path to a trusted CSCA verified")
