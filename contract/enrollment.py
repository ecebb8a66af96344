"""Enrollment and certificates: how a bare PC becomes a kiosk of its center, and how it stays one.

One schema for both sides (docs/mqtt.md, "Enrollment and certificates"; docs/provisioning.md):

- ``EnrollmentCode``: what the dashboard's QR code (and the text beside it) carries: the address of the
  center's enrollment endpoint, the center id, a one-time token (or none: the kiosk then waits as
  "pending" until someone approves it) and the SHA-256 fingerprint of the center's root CA, so the kiosk
  trusts the center without trusting the first server that answers;
- over HTTPS (the kiosk has no certificate yet, so no MQTT): ``enroll-challenge/1`` (a fresh nonce),
  ``enroll-request/1`` (the nonce, the token, a CSR made on the kiosk whose challengePassword is the
  nonce: the CSR's signature proves the key and binds it to this one request), ``enroll-poll/1``
  (a pending kiosk asks again) and ``enroll-answer/1`` (certificate, CA chain and the kiosk's bundle);
- over MQTT, once enrolled: ``cert-request/1`` on ``{kiosk}/cert/req`` (the agent renews its own
  certificate with a key it made) and ``cert-response/1`` on ``{kiosk}/cert/res``;
- ``EnrolledKiosks`` (``enrolled-kiosks/1``): the file the provisioning service keeps for the center's
  other services (the allocator: which kiosk may use which numbering slot).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, get_args
from urllib.parse import parse_qs, quote, urlsplit

from contract.config import PushedConfig
from contract.errors import ContractError
from contract.message import Message
from contract.schema import parse_dataclass, to_data
from contract.wire import (
    ID_HINT,
    ID_PATTERN,
    REQUEST_ID_HINT,
    REQUEST_ID_PATTERN,
    dumps,
    is_kiosk_id,
    loads_object,
    now_iso,
)

#: one-time enrollment tokens: 20 base32 letters (100 bits) in groups of five, easy to type
TOKEN_PATTERN = r"[A-Z2-7]{5}(?:-[A-Z2-7]{5}){3}"
TOKEN_RE = re.compile(TOKEN_PATTERN)
#: a nonce of the center (base64url, >= 192 bits)
NONCE_PATTERN = r"[A-Za-z0-9_-]{32,86}"
#: SHA-256 of the root CA certificate (DER), lowercase hex
FINGERPRINT_PATTERN = r"[0-9a-f]{64}"
#: a certificate serial number, lowercase hex
SERIAL_PATTERN = r"[0-9a-f]{1,40}"
CODE_SCHEME = "motcua-enroll"
DEFAULT_ENROLL_PORT = 8443

_ID = {"pattern": ID_PATTERN, "pattern_hint": ID_HINT}
_REQUEST_ID = {"pattern": REQUEST_ID_PATTERN, "pattern_hint": REQUEST_ID_HINT}
_NONCE = {"pattern": NONCE_PATTERN, "pattern_hint": "the center's nonce (base64url)"}
_TIME = {"time": True, "max_len": 40}
_CSR = {
    "max_len": 4096,
    "pattern": r"-----BEGIN CERTIFICATE REQUEST-----[A-Za-z0-9+/=\r\n]+"
    r"-----END CERTIFICATE REQUEST-----\s*",
    "pattern_hint": "a PEM certificate request",
}
_CERT = {
    "max_len": 8192,
    "pattern": r"(-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\r\n]+"
    r"-----END CERTIFICATE-----\s*)?",
    "pattern_hint": "a PEM certificate",
}
_CHAIN = {
    "max_len": 16384,
    "pattern": r"(-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\r\n]+"
    r"-----END CERTIFICATE-----\s*){0,4}",
    "pattern_hint": "PEM certificates",
}
_SERIAL = {"pattern": SERIAL_PATTERN, "pattern_hint": "a certificate serial (hex)"}
_TEXT = {"max_len": 300, "text": True}
_MACHINE = {"max_len": 128, "pattern": r"[\x20-\x7e]{0,128}", "pattern_hint": "printable ASCII"}
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")

#: why the center refused an enrollment (``enroll-answer/1`` reason, and the CLI's message key)
Refusal = Literal[
    "token_unknown",
    "token_used",
    "token_expired",
    "token_wrong_center",
    "nonce_unknown",
    "replayed",
    "csr_invalid",
    "proof_failed",
    "key_reused",
    "not_allowlisted",
    "rejected",
    "center_unknown",
    "kiosk_revoked",
    "unknown_request",
]
#: the same reasons as a tuple, in the Literal's order (listed once: the two cannot drift apart)
REFUSALS: tuple[str, ...] = get_args(Refusal)


def normalise_token(text: str) -> str:
    """A token as typed (any case, spaces, with or without dashes) in its one written form."""
    letters = re.sub(r"[\s-]", "", str(text)).upper()
    if not re.fullmatch(r"[A-Z2-7]{20}", letters):
        raise ContractError("token: expected 20 letters A-Z and digits 2-7 (groups of five)")
    return "-".join(letters[i : i + 5] for i in range(0, 20, 5))


def _check_host(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOST.fullmatch(host):
        raise ContractError(f"enrollment code: {host[:60]!r} is not a host name or an IP address")
    return host.lower()


@dataclass(frozen=True)
class EnrollmentCode:
    """``motcua-enroll://HOST:PORT/CENTER?t=TOKEN&f=FINGERPRINT`` (``t`` absent: enroll as pending)."""

    host: str
    port: int
    center_id: str
    ca_fingerprint: str
    token: str | None = None

    def __post_init__(self) -> None:
        _check_host(self.host)
        if not 1 <= self.port <= 65535:
            raise ContractError(f"enrollment code: port {self.port} out of range")
        if not re.fullmatch(ID_PATTERN, self.center_id):
            raise ContractError(f"enrollment code: {self.center_id[:40]!r} is not a center id")
        if not re.fullmatch(FINGERPRINT_PATTERN, self.ca_fingerprint):
            raise ContractError("enrollment code: the CA fingerprint must be 64 lowercase hex digits")
        if self.token is not None and not TOKEN_RE.fullmatch(self.token):
            raise ContractError("enrollment code: malformed token")

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def to_text(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = (f"t={self.token}&" if self.token else "") + f"f={self.ca_fingerprint}"
        return f"{CODE_SCHEME}://{host}:{self.port}/{quote(self.center_id)}?{query}"

    @classmethod
    def from_text(cls, text: str) -> EnrollmentCode:
        """The code read by the scanner or typed; ContractError saying what is wrong with it."""
        if not isinstance(text, str) or len(text) > 512:
            raise ContractError("enrollment code: expected text of at most 512 characters")
        raw = text.strip()
        try:
            parts = urlsplit(raw)
            port = parts.port
        except ValueError as exc:
            raise ContractError(f"enrollment code: {exc}") from None
        if parts.scheme.lower() != CODE_SCHEME or not parts.hostname:
            raise ContractError(f"enrollment code: expected {CODE_SCHEME}://HOST:PORT/CENTER?...")
        try:
            query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=4)
        except ValueError:  # "Max number of fields exceeded" (found by fuzz/contract.py)
            raise ContractError("enrollment code: unexpected parameters (only t and f)") from None
        if any(len(v) != 1 for v in query.values()) or set(query) - {"t", "f"}:
            raise ContractError("enrollment code: unexpected parameters (only t and f)")
        fingerprint = query.get("f", [""])[0].lower().replace(":", "")
        token = query.get("t", [None])[0]
        return cls(
            _check_host(parts.hostname),
            port or DEFAULT_ENROLL_PORT,
            parts.path.strip("/"),
            fingerprint,
            normalise_token(token) if token else None,
        )


@dataclass(frozen=True)
class EnrollChallenge(Message):
    """``enroll-challenge/1``: a nonce the center will accept once, in one enrollment request."""

    SCHEMA: ClassVar[str] = "enroll-challenge/1"
    MAX_BYTES: ClassVar[int] = 1024
    STRICT: ClassVar[bool] = True

    nonce: str = field(metadata=_NONCE)
    expires_at: str = field(metadata=_TIME)


@dataclass(frozen=True)
class MachineInfo:
    """What the kiosk says about its hardware: the allowlist and the replacement history use it."""

    serial: str = field(default="", metadata=_MACHINE)
    vendor: str = field(default="", metadata=_MACHINE)
    product: str = field(default="", metadata=_MACHINE)
    hostname: str = field(default="", metadata=_MACHINE)
    macs: list[str] = field(
        default_factory=list,
        metadata={"max_items": 8},
    )


@dataclass(frozen=True)
class EnrollRequest(Message):
    """``enroll-request/1``: the kiosk asks for its certificate (POST /enroll/v1/request)."""

    SCHEMA: ClassVar[str] = "enroll-request/1"
    MAX_BYTES: ClassVar[int] = 8 * 1024

    center_id: str = field(metadata=_ID)
    nonce: str = field(metadata=_NONCE)
    #: PEM; its challengePassword attribute is ``nonce`` (proof of possession bound to this request)
    csr: str = field(metadata=_CSR)
    token: str | None = field(default=None, metadata={"pattern": TOKEN_PATTERN, "pattern_hint": "a token"})
    machine: MachineInfo = field(default_factory=MachineInfo)
    sent_at: str = field(default_factory=now_iso, metadata=_TIME)


@dataclass(frozen=True)
class EnrollPoll(Message):
    """``enroll-poll/1``: a pending kiosk asks whether it was approved (POST /enroll/v1/poll)."""

    SCHEMA: ClassVar[str] = "enroll-poll/1"
    MAX_BYTES: ClassVar[int] = 1024

    center_id: str = field(metadata=_ID)
    request_id: str = field(metadata={"pattern": r"[0-9a-f]{32}", "pattern_hint": "32 hex digits"})


@dataclass(frozen=True)
class EnrollmentBundle:
    """Everything a kiosk needs to run in its center, besides its certificate."""

    kiosk_id: str = field(metadata=_ID)
    center_id: str = field(metadata=_ID)
    center_name: str = field(metadata={"max_len": 200, "text": True})
    broker_host: str = field(metadata={"max_len": 253, "pattern": r"[A-Za-z0-9.:\[\]-]{1,253}"})
    broker_port: int = field(metadata={"min": 1, "max": 65535})
    slot: int = field(metadata={"min": 0, "max": 999})
    offline_base: int = field(default=800, metadata={"min": 2, "max": 9000})
    offline_block: int = field(default=20, metadata={"min": 1, "max": 1000})
    topic_root: str = field(default="motcua/v1", metadata={"pattern": r"[a-z0-9/_-]+[a-z0-9]"})
    #: what the center owns (services, rating, citizen settings): the kiosk's file starts from it
    config: PushedConfig | None = None

    def __post_init__(self) -> None:
        if not is_kiosk_id(self.kiosk_id):
            raise ValueError(f"kiosk_id: {self.kiosk_id!r} is reserved for the center's own services")


@dataclass(frozen=True)
class EnrollAnswer(Message):
    """``enroll-answer/1``: issued (certificate + bundle), pending (ask again later) or refused (why)."""

    SCHEMA: ClassVar[str] = "enroll-answer/1"
    MAX_BYTES: ClassVar[int] = 256 * 1024
    STRICT: ClassVar[bool] = True

    status: Literal["issued", "pending", "refused"]
    #: the request's id at the center (a pending kiosk polls with it); "" when refused before storing
    request_id: str = field(default="", metadata={"pattern": r"([0-9a-f]{32})?"})
    reason: Refusal | None = None
    message_vi: str = field(default="", metadata=_TEXT)
    message_en: str = field(default="", metadata=_TEXT)
    retry_after_s: int = field(default=0, metadata={"min": 0, "max": 3600})
    certificate: str = field(default="", metadata=_CERT)
    #: the issuing CA then the root: what the kiosk trusts for the broker and sends nothing else to
    ca_chain: str = field(default="", metadata=_CHAIN)
    bundle: EnrollmentBundle | None = None
    at: str = field(default_factory=now_iso, metadata=_TIME)

    def __post_init__(self) -> None:
        if self.status == "issued" and (not self.certificate or not self.ca_chain or self.bundle is None):
            raise ValueError("an issued answer carries certificate, ca_chain and bundle")
        if self.status == "refused" and self.reason is None:
            raise ValueError("a refused answer names its reason")


@dataclass(frozen=True)
class CertRequest(Message):
    """``cert-request/1`` on ``{kiosk}/cert/req``: the agent asks for a new certificate for a new key."""

    SCHEMA: ClassVar[str] = "cert-request/1"
    MAX_BYTES: ClassVar[int] = 8 * 1024

    request_id: str = field(metadata=_REQUEST_ID)
    csr: str = field(metadata=_CSR)
    #: the serial of the certificate the kiosk connects with now
    current_serial: str = field(metadata=_SERIAL)
    reason: Literal["expiry", "manual"] = "expiry"
    sent_at: str = field(default_factory=now_iso, metadata=_TIME)


@dataclass(frozen=True)
class CertResponse(Message):
    """``cert-response/1`` on ``{kiosk}/cert/res`` (with the request's correlation data)."""

    SCHEMA: ClassVar[str] = "cert-response/1"
    MAX_BYTES: ClassVar[int] = 32 * 1024
    STRICT: ClassVar[bool] = True

    request_id: str = field(metadata=_REQUEST_ID)
    status: Literal["ok", "error"]
    error: Literal["bad_request", "not_enrolled", "wrong_serial", "key_reused", "revoked"] | None = None
    reason: str = field(default="", metadata={"max_len": 500})
    certificate: str = field(default="", metadata=_CERT)
    ca_chain: str = field(default="", metadata=_CHAIN)
    not_after: str = field(default="", metadata={"max_len": 40})
    at: str = field(default_factory=now_iso, metadata=_TIME)

    def __post_init__(self) -> None:
        if self.status == "ok" and not self.certificate:
            raise ValueError("an ok answer carries the certificate")
        if self.status == "error" and self.error is None:
            raise ValueError("an error answer names the error")


@dataclass(frozen=True)
class EnrolledKiosk:
    slot: int | None = field(default=None, metadata={"min": 0, "max": 999})
    #: serials of the certificates that may connect now (active ones; not revoked, not expired)
    serials: list[str] = field(default_factory=list, metadata={"max_items": 8})


@dataclass(frozen=True)
class EnrolledKiosks:
    """``enrolled-kiosks/1``: the enrolled kiosks of one center, as the provisioning service last wrote
    them (atomically, at every change). The allocator reads it to refuse a kiosk that is not enrolled,
    or a slot that is not the kiosk's own (docs/provisioning.md, "What the allocator checks")."""

    SCHEMA: ClassVar[str] = "enrolled-kiosks/1"
    MAX_BYTES: ClassVar[int] = 8 * 1024 * 1024

    center_id: str = field(metadata=_ID)
    generation: int = field(metadata={"min": 0})
    kiosks: dict[str, EnrolledKiosk] = field(default_factory=dict, metadata={"max_items": 20_000})
    updated_at: str = field(default_factory=now_iso, metadata=_TIME)

    def refusal(self, center_id: str, kiosk_id: str, slot: int | None = None) -> str | None:
        """Why ``kiosk_id`` (of ``center_id``, asking with ``slot``) may not be served; None when it may."""
        if center_id != self.center_id:
            return f"center {center_id!r} is not this registry's ({self.center_id!r})"
        entry = self.kiosks.get(kiosk_id)
        if entry is None:
            return f"kiosk {kiosk_id!r} is not enrolled in {self.center_id}"
        if slot is not None and entry.slot != slot:
            return f"slot {slot} is not kiosk {kiosk_id}'s (its slot is {entry.slot})"
        return None

    def to_bytes(self) -> bytes:
        return dumps({"schema": self.SCHEMA, **to_data(self)})

    @classmethod
    def from_bytes(cls, data: bytes) -> EnrolledKiosks:
        body = loads_object(data, "enrolled-kiosks", cls.MAX_BYTES)
        if body.pop("schema", None) != cls.SCHEMA:
            raise ContractError(f"enrolled-kiosks.schema: expected {cls.SCHEMA!r}")
        registry: EnrolledKiosks = parse_dataclass(cls, body, "enrolled-kiosks", lenient=True)
        return registry

    @classmethod
    def load(cls, path: Path) -> EnrolledKiosks:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ContractError(f"{path}: {exc.strerror or exc}") from None
        return cls.from_bytes(data)
