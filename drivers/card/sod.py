"""EF.SOD and passive authentication (ICAO 9303 Part 10 4.6.2, Part 11 5.1).

The SOD is a CMS SignedData whose content is the LDSSecurityObject (hash of every data group). Passive
authentication = data group hashes match + the CMS signature verifies with the document signer (DS)
certificate inside + that certificate's path to a CSCA of the trust folder validates (``trust.py``:
dates, keyUsage, basicConstraints, key identifiers, CRL). The result is a ``Verdict``.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from dataclasses import dataclass

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from drivers.card import tlv
from drivers.card.errors import MalformedDataError
from drivers.card.trust import MALFORMED, TrustStore, load_trust_store, validate_document_signer
from drivers.card.verdict import Authenticity, Verdict, failed, not_verified

__all__ = [
    "Authenticity",
    "Sod",
    "TrustStore",
    "Verdict",
    "load_trust_store",
    "parse_sod",
    "passive_authentication",
]

log = logging.getLogger(__name__)

LDS_SECURITY_OBJECT_OID = "2.23.136.1.1.1"


class DataGroupHash(core.Sequence):
    _fields = [("data_group_number", core.Integer), ("data_group_hash_value", core.OctetString)]  # noqa: RUF012 - asn1crypto spec


class DataGroupHashes(core.SequenceOf):
    _child_spec = DataGroupHash


class LdsVersionInfo(core.Sequence):
    _fields = [("lds_version", core.PrintableString), ("unicode_version", core.PrintableString)]  # noqa: RUF012 - asn1crypto spec


class LdsSecurityObject(core.Sequence):
    _fields = [  # noqa: RUF012 - asn1crypto spec
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashes),
        ("lds_version_info", LdsVersionInfo, {"optional": True}),
    ]


#: what makes EF.SOD's signer information unusable (malformed certificate fields included)
_UNUSABLE: tuple[type[Exception], ...] = (*MALFORMED, KeyError, IndexError)
_HASHES = {
    "sha1": hashlib.sha1,
    "sha224": hashlib.sha224,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
_CRYPTO_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),
    "sha224": hashes.SHA224(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


@dataclass
class Sod:
    hash_algorithm: str
    dg_hashes: dict[int, bytes]
    signed_data: cms.SignedData

    def data_groups(self) -> list[int]:
        return sorted(self.dg_hashes)

    def hash(self, data: bytes) -> bytes:
        return _HASHES[self.hash_algorithm](data).digest()


def parse_sod(data: bytes) -> Sod:
    body = tlv.parse_one(data, 0x77).value
    tlv.check_nesting(body, "EF.SOD")  # asn1crypto's .native recurses on nesting
    try:
        info = cms.ContentInfo.load(body)
        if info["content_type"].native != "signed_data":
            raise MalformedDataError("EF.SOD: not a CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].dotted != LDS_SECURITY_OBJECT_OID:
            raise MalformedDataError("EF.SOD: content is not an LDSSecurityObject")
        content = encap["content"]
        if not isinstance(content, core.ParsableOctetString):  # absent, or another type (never .native:
            raise MalformedDataError("EF.SOD: eContent is not an OCTET STRING")  # it fails on some)
        raw = bytes(content)  # the octets the message digest covers (RFC 5652 5.4)
        tlv.check_nesting(raw, "EF.SOD LDSSecurityObject")
        lso = LdsSecurityObject.load(raw)
        algorithm = lso["hash_algorithm"]["algorithm"].native
        hashes_ = {
            int(h["data_group_number"].native): bytes(h["data_group_hash_value"].native)
            for h in lso["data_group_hash_values"]
        }
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedDataError(f"EF.SOD: cannot parse ({exc.__class__.__name__})") from exc
    if algorithm not in _HASHES:
        raise MalformedDataError(f"EF.SOD: unsupported hash algorithm {algorithm}")
    return Sod(algorithm, hashes_, signed)


def _verify(
    public_key: object,
    signature: bytes,
    data: bytes,
    sig_algo: str,
    hash_name: str,
    pss_params: object = None,
) -> None:
    """Raise InvalidSignature unless ``signature`` over ``data`` verifies."""
    digest = _CRYPTO_HASHES[hash_name]
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(digest))
    elif isinstance(public_key, rsa.RSAPublicKey):
        if sig_algo == "rsassa_pss":
            public_key.verify(signature, data, padding.PSS(padding.MGF1(digest), padding.PSS.AUTO), digest)
        else:
            public_key.verify(signature, data, padding.PKCS1v15(), digest)
    else:
        raise InvalidSignature("unsupported key type")


def _signer_certificate(signed: cms.SignedData, signer: cms.SignerInfo) -> asn1_x509.Certificate | None:
    """The certificate the SignerInfo names (issuer and serial), else the first one EF.SOD carries."""
    certs = [c.chosen for c in signed["certificates"] if c.name == "certificate"]
    sid = signer["sid"]
    if sid.name == "issuer_and_serial_number":
        wanted = sid.chosen
        for cert in certs:
            if cert.issuer == wanted["issuer"] and cert.serial_number == wanted["serial_number"].native:
                return cert
    return certs[0] if certs else None


def passive_authentication(
    sod: Sod,
    files: dict[int, bytes],
    trust: TrustStore | None,
    at: datetime.datetime | None = None,
) -> Verdict:
    """Check hashes of ``files`` (DG number -> bytes), the SOD signature and the DS certificate's path
    to a CSCA of ``trust`` at time ``at`` (default: now)."""
    for number, data in sorted(files.items()):
        expected = sod.dg_hashes.get(number)
        if expected is None:
            return failed("dg_not_in_sod", f"DG{number} is not listed in EF.SOD")
        if sod.hash(data) != expected:
            return failed("hash_mismatch", f"hash of DG{number} does not match EF.SOD")
    signed = sod.signed_data
    try:
        signer = signed["signer_infos"][0]
        cert = _signer_certificate(signed, signer)
        if cert is None:
            return not_verified("no_ds_certificate", "EF.SOD carries no DS certificate")
        ds = x509.load_der_x509_certificate(cert.dump())
        digest_name = signer["digest_algorithm"]["algorithm"].native
        sig_algo = signer["signature_algorithm"].signature_algo
        content = signed["encap_content_info"]["content"]
        econtent = bytes(content)  # parse_sod made sure it is an OCTET STRING
        attrs = signer["signed_attrs"]
        if attrs:
            md = next((a["values"][0].native for a in attrs if a["type"].native == "message_digest"), None)
            if md != _HASHES[digest_name](econtent).digest():
                return failed("sod_digest_mismatch", "EF.SOD message digest does not match")
            signed_bytes = b"\x31" + attrs.dump()[1:]  # signed as a SET, stored as [0] IMPLICIT
        else:
            signed_bytes = econtent
        _verify(ds.public_key(), signer["signature"].native, signed_bytes, sig_algo, digest_name)
    except InvalidSignature:
        return failed("sod_signature_invalid", "EF.SOD signature does not verify")
    except UnsupportedAlgorithm as exc:  # e.g. a DS key on a curve OpenSSL does not know
        return not_verified(
            "sod_algorithm_unsupported",
            f"EF.SOD or its DS certificate uses an algorithm this reader does not support ({exc})",
        )
    except _UNUSABLE as exc:  # e.g. a DS of an unknown X.509 version
        return failed("sod_unusable", f"EF.SOD signer info unusable ({exc.__class__.__name__})")
    return validate_document_signer(ds, trust, at)
