"""The kiosk's side of enrollment (``main.py provision enroll``): a bare PC becomes a kiosk of its center.

1. The code (scanned with the kiosk's own scanner, or typed) names the center's enrollment endpoint, the
   center, a one-time token (or none: wait as pending) and the SHA-256 fingerprint of the center's root
   CA. The kiosk fetches the CA chain and refuses the center unless the root's fingerprint is the
   code's; from then on it talks to the endpoint only over TLS verified against that root.
2. A fresh key pair is made here (it never leaves the kiosk) and a CSR whose challengePassword is the
   center's nonce (proof of possession, bound to this one request).
3. The answer carries the certificate (checked: our key, the kiosk id of the bundle, both ids in its
   SAN, issued under the pinned root) and the bundle (kiosk id, broker, slot, the center's settings);
   the kiosk writes its identity (key 0600) and its configuration file (``kiosk.toml``), checks the file
   with the kiosk's own validator (``main.py kiosk --check-config``) and can start its services.

A pending kiosk keeps its key and request id in ``identity/pending.*`` and polls; run the command again
after an interruption and it continues where it was.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from common.errors import ConfigError, MotcuaError, NetworkError, ValidationError
from common.files import write_atomically
from common.identity import (
    cert_info,
    cert_sha256,
    install_identity,
    key_pem,
    load_key,
    make_csr,
    new_key,
    spki_sha256,
    write_private,
)
from contract.enrollment import (
    EnrollAnswer,
    EnrollChallenge,
    EnrollmentBundle,
    EnrollmentCode,
    EnrollPoll,
    EnrollRequest,
    MachineInfo,
)
from contract.errors import ContractError
from contract.schema import read_toml, to_data
from provisioning import tomlw
from provisioning.ui import Console, StepFailed

ROOT = Path(__file__).resolve().parent.parent


class EnrollError(MotcuaError):
    """The center refused, or the kiosk refused the center; ``code`` names the hint (provisioning.ui)."""

    exit_code = 77

    def __init__(self, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class KioskLayout:
    """Where a kiosk keeps what enrollment writes (``/etc/motcua/kiosk.toml``, ``/var/lib/motcua``)."""

    config_file: Path
    data_dir: Path
    key_file: Path
    cert_file: Path
    ca_file: Path

    @classmethod
    def standard(
        cls, config_file: Path, data_dir: Path, identity_dir: Path | None = None, name: str = "kiosk"
    ) -> KioskLayout:
        identity = identity_dir or data_dir / "identity"
        return cls(
            config_file, data_dir, identity / f"{name}.key", identity / f"{name}.crt", identity / "ca.crt"
        )

    @property
    def pending_file(self) -> Path:
        return self.key_file.with_name("pending.json")

    @property
    def pending_key(self) -> Path:
        return self.key_file.with_name("pending.key")


class CenterClient:
    """HTTPS to the enrollment endpoint, pinned: only a CA whose root has the code's fingerprint."""

    def __init__(self, code: EnrollmentCode, timeout_s: float = 15.0) -> None:
        self.code = code
        self.timeout_s = timeout_s
        self.context: ssl.SSLContext | None = None
        self.chain_pem = ""

    def _connection(self, context: ssl.SSLContext) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.code.host, self.code.port, timeout=self.timeout_s, context=context
        )

    def _request(
        self, context: ssl.SSLContext, method: str, path: str, body: bytes | None
    ) -> tuple[int, bytes]:
        conn = self._connection(context)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read(256 * 1024)
        except ssl.SSLCertVerificationError as exc:
            raise EnrollError(
                f"{self.code.base_url}: its certificate is not from the pinned CA ({exc.verify_message})",
                "wrong_ca",
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise NetworkError(f"{self.code.base_url}{path}: {exc}") from exc
        finally:
            conn.close()

    def pin(self) -> str:
        """Fetch the CA chain, keep it only if its root is the code's; a verified TLS context from then on."""
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE  # what comes back is checked against the fingerprint below
        status, body = self._request(unverified, "GET", "/enroll/v1/ca", None)
        if status != 200:
            raise NetworkError(f"{self.code.base_url}/enroll/v1/ca answered {status}")
        try:
            certs = x509.load_pem_x509_certificates(body)
        except ValueError as exc:
            raise EnrollError(f"{self.code.base_url} sent no CA certificates: {exc}", "wrong_ca") from exc
        roots = [c for c in certs if cert_sha256(c) == self.code.ca_fingerprint]
        if not roots:
            got = ", ".join(cert_sha256(c)[:16] + "…" for c in certs) or "none"
            raise EnrollError(
                f"the center at {self.code.base_url} is not the one of the code: its CA fingerprint "
                f"{got} is not {self.code.ca_fingerprint[:16]}…; refusing this center",
                "wrong_ca",
            )
        root = roots[0]
        try:
            root.verify_directly_issued_by(root)
            for cert in certs:
                if cert is not root:
                    cert.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise EnrollError(f"the center's CA chain does not verify: {exc}", "wrong_ca") from exc
        pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)
        context = ssl.create_default_context(cadata=root.public_bytes(serialization.Encoding.PEM).decode())
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context, self.chain_pem = context, pem
        return pem

    def post(self, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.context is None:
            self.pin()
        assert self.context is not None
        status, answer = self._request(self.context, "POST", path, body)
        if status == 429:  # provisioning/api.py: this address sent too many requests
            raise NetworkError(
                f"{self.code.base_url}{path}: the center asks to slow down (429); retry in a minute"
            )
        return status, answer


def _answer(status: int, body: bytes) -> EnrollAnswer:
    try:
        return EnrollAnswer.parse(body)
    except ContractError as exc:
        raise NetworkError(
            f"the center answered {status} with something that is not an answer: {exc.message}"
        ) from exc


@dataclass(frozen=True)
class Outcome:
    kiosk_id: str
    center_id: str
    serial: str
    not_after: str
    slot: int
    config_file: str
    request_id: str


def check_issued(
    answer: EnrollAnswer, key_sha: str, code: EnrollmentCode, pinned_chain: str
) -> x509.Certificate:
    """The certificate is for our key, names the bundle's kiosk and center, and was issued under the root."""
    bundle = answer.bundle
    assert bundle is not None
    cert = x509.load_pem_x509_certificate(answer.certificate.encode())
    info = cert_info(cert)
    if info.key_sha256 != key_sha:
        raise EnrollError("the certificate is not for this kiosk's key", "csr_invalid")
    if (
        info.kiosk_id != bundle.kiosk_id
        or info.center_id != bundle.center_id
        or bundle.center_id != code.center_id
    ):
        raise EnrollError(
            f"the certificate names {info.kiosk_id}@{info.center_id}, the bundle "
            f"{bundle.kiosk_id}@{bundle.center_id}, the code {code.center_id}",
            "wrong_ca",
        )
    issuers = {c.subject: c for c in x509.load_pem_x509_certificates(pinned_chain.encode())}
    issuer = issuers.get(cert.issuer)
    if issuer is None:
        raise EnrollError("the certificate's issuer is not in the pinned chain", "wrong_ca")
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise EnrollError(f"the certificate does not verify: {exc}", "wrong_ca") from exc
    return cert


def default_base() -> dict[str, Any]:
    """A kiosk file without a base: real devices come from ``provision detect``."""
    return {"kiosk": {"language": "vi"}, "display": {"fullscreen": True}}


def kiosk_file(
    base: dict[str, Any] | None,
    bundle: EnrollmentBundle,
    layout: KioskLayout,
    devices: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The kiosk's configuration: the base (display, devices, look-up, PIN) with the bundle's identity,
    the center's settings, center numbering in the bundle's slot, and the agent pointed at the broker."""
    data = copy.deepcopy(base) if base is not None else default_base()
    data.pop("numbering", None)
    kiosk = data.setdefault("kiosk", {})
    kiosk.update(
        id=bundle.kiosk_id,
        center_id=bundle.center_id,
        center_name=bundle.center_name,
        data_dir=str(layout.data_dir),
    )
    if bundle.config is not None:
        overlay = bundle.config.to_overlay()
        for key in ("services", "rating"):
            if key in overlay:
                data[key] = overlay[key]
        kiosk.update(overlay.get("kiosk", {}))
    if devices:
        data["devices"] = copy.deepcopy(devices)
    for role, out_dir in (("printer", "printer"), ("receipt_printer", "receipt-printer")):
        section = (data.get("devices") or {}).get(role)
        if (
            isinstance(section, dict)
            and section.get("backend") == "simulator"
            and not section.get("output_dir")
        ):
            section["output_dir"] = str(layout.data_dir / out_dir)  # printed tickets stay in the data folder
    data["numbering"] = {
        "mode": "center",
        "slot": bundle.slot,
        "offline_base": bundle.offline_base,
        "offline_block": bundle.offline_block,
    }
    agent = dict(data.get("agent") or {})
    agent.update(broker_host=bundle.broker_host, broker_port=bundle.broker_port, topic_root=bundle.topic_root)
    agent["tls"] = {
        "ca_file": str(layout.ca_file),
        "cert_file": str(layout.cert_file),
        "key_file": str(layout.key_file),
    }
    data["agent"] = agent
    return data


def check_config(path: Path) -> None:
    """The kiosk's own validator, through its CLI (provisioning does not import the kiosk)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "kiosk", "--check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise ConfigError(f"{path}: {lines[-1] if lines else 'invalid configuration'}")


class Enroller:
    def __init__(
        self,
        code: EnrollmentCode,
        layout: KioskLayout,
        console: Console,
        *,
        machine: MachineInfo,
        base: dict[str, Any] | None = None,
        devices: dict[str, Any] | None = None,
        wait_s: float = 900.0,
        validate: bool = True,
        client: CenterClient | Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.code = code
        self.layout = layout
        self.console = console
        self.machine = machine
        self.base = base
        self.devices = devices
        self.wait_s = wait_s
        self.validate = validate
        self.client = client or CenterClient(code)
        self.sleep = sleep

    def run(self) -> Outcome:
        c = self.console
        if self.layout.cert_file.exists():
            raise EnrollError(
                f"{self.layout.cert_file} exists: this PC is enrolled already (provision reset first)",
                "conflict",
            )
        with c.step("enroll.pin") as step:
            chain = self.client.pin()
            step["note"] = f"SHA-256 {self.code.ca_fingerprint[:16]}…"
        resumed = self._resume()
        if resumed is not None:
            key, answer = resumed
        else:
            with c.step("enroll.key") as step:
                status, body = self.client.post("/enroll/v1/challenge")
                if status != 200:
                    raise NetworkError(f"challenge: the center answered {status}")
                challenge = EnrollChallenge.parse(body)
                key = new_key()
                # on disk before the center holds a request for it: a request left pending by a power
                # cut is for a key this PC still has
                write_private(self.layout.pending_key, key_pem(key))
                csr = make_csr(key, "enrolling-kiosk", challenge.nonce)
                step["note"] = "EC P-256"
            with c.step("enroll.request") as step:
                request = EnrollRequest(
                    self.code.center_id, challenge.nonce, csr, self.code.token, self.machine
                )
                answer = _answer(*self.client.post("/enroll/v1/request", request.to_payload()))
                step["note"] = answer.status
                if answer.status == "refused":
                    self._clear_pending()  # no request waits for this key
                    raise EnrollError(
                        f"the center refused: {answer.message_en} ({answer.reason})", answer.reason or "error"
                    )
        if answer.status == "pending":
            answer = self._wait(key, answer)
        with c.step("enroll.install") as step:
            key_sha = spki_sha256(key.public_key())
            cert = check_issued(answer, key_sha, self.code, chain)
            assert answer.bundle is not None
            install_identity(
                self.layout.key_file,
                self.layout.cert_file,
                key,
                answer.certificate.encode(),
                self.layout.ca_file,
                answer.ca_chain.encode(),
            )
            self._clear_pending()
            self.layout.data_dir.mkdir(parents=True, exist_ok=True)
            data = kiosk_file(self.base, answer.bundle, self.layout, self.devices)
            self.layout.config_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(
                self.layout.config_file,
                tomlw.dumps(
                    data,
                    f"Kiosk {answer.bundle.kiosk_id} of {answer.bundle.center_id}: written by "
                    "main.py provision enroll.\nIdentity, numbering and [agent] come from the center.",
                ).encode(),
                0o644,
            )
            info = cert_info(cert)
            step["note"] = (
                f"{answer.bundle.kiosk_id} (serial {info.serial[:12]}…, until {info.not_after:%Y-%m-%d})"
            )
        if self.validate:
            with c.step("enroll.check"):
                check_config(self.layout.config_file)
        bundle = answer.bundle
        return Outcome(
            bundle.kiosk_id,
            bundle.center_id,
            info.serial,
            info.not_after.isoformat(),
            bundle.slot,
            str(self.layout.config_file),
            answer.request_id,
        )

    # -- pending --------------------------------------------------------------------------------------
    def _save_pending(self, request_id: str) -> None:
        """The request to resume after a restart; its key was written when it was made."""
        state = {
            "request_id": request_id,
            "base_url": self.code.base_url,
            "center_id": self.code.center_id,
            "ca_fingerprint": self.code.ca_fingerprint,
        }
        write_private(self.layout.pending_file, json.dumps(state).encode())

    def _resume(self) -> tuple[Any, EnrollAnswer] | None:
        try:
            state = json.loads(self.layout.pending_file.read_text())
        except (OSError, ValueError):
            return None
        if (state.get("base_url"), state.get("center_id"), state.get("ca_fingerprint")) != (
            self.code.base_url,
            self.code.center_id,
            self.code.ca_fingerprint,
        ) or self.code.token:
            return None
        key = load_key(self.layout.pending_key)
        self.console.line(f"    … {state['request_id']}")
        return key, EnrollAnswer("pending", state["request_id"], retry_after_s=0)

    def _clear_pending(self) -> None:
        for path in (self.layout.pending_file, self.layout.pending_key):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _wait(self, key: Any, answer: EnrollAnswer) -> EnrollAnswer:
        self._save_pending(answer.request_id)
        c = self.console
        c.line(f"    Mã yêu cầu / request id: {answer.request_id}")
        c.line(
            f"    Máy / machine: {self.machine.serial or '?'} {self.machine.vendor} {self.machine.product}"
        )
        with c.step("enroll.pending") as step:
            started = time.monotonic()
            while True:
                elapsed = time.monotonic() - started
                c.progress(elapsed, self.wait_s, "chờ duyệt / waiting for approval")
                if elapsed > self.wait_s:
                    raise StepFailed(
                        f"not approved within {self.wait_s:.0f} s; run the command again to keep waiting",
                        "rejected",
                    )
                self.sleep(max(0.5, min(answer.retry_after_s or 3, 10)))
                poll = EnrollPoll(self.code.center_id, answer.request_id)
                answer = _answer(*self.client.post("/enroll/v1/poll", poll.to_payload()))
                if answer.status == "refused":
                    self._clear_pending()
                    raise EnrollError(
                        f"the center refused: {answer.message_en} ({answer.reason})", answer.reason or "error"
                    )
                if answer.status == "issued":
                    c.progress(1, 1)
                    step["note"] = "approved"
                    return answer


def read_base(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    data = read_toml(path)
    if not isinstance(data.get("kiosk"), dict):
        raise ValidationError(f"{path}: a kiosk file needs a [kiosk] section")
    return data


def devices_from(path: Path | None) -> dict[str, Any] | None:
    """A ``[devices]`` proposal written by ``provision detect --write`` (its ``devices`` table)."""
    if path is None:
        return None
    data = read_toml(path)
    devices = data.get("devices")
    if not isinstance(devices, dict):
        raise ValidationError(f"{path}: expected a [devices] table (provision detect --write)")
    return devices


def machine_from(info: MachineInfo) -> dict[str, Any]:
    data: dict[str, Any] = to_data(info)
    return data
