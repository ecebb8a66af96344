"""The agent renews the kiosk's certificate itself, before it expires, with a key made on the kiosk.

When the certificate has less than ``renew_before_days`` left (or less than a third of its life), the
agent makes a new key, sends ``cert-request/1`` (a CSR whose challengePassword is the request id) on
``{kiosk}/cert/req`` with the response topic ``{kiosk}/cert/res``, checks the answer (the new
certificate is for the new key, names this kiosk and center, and is signed by the CA the kiosk
trusts), puts key and certificate in place (each file atomically, the key first) and reconnects: the
next connection uses them. Events wait in the journal meanwhile and are sent after the reconnect, so
none is lost (duplicates keep their event id). The pending key is kept (0600) until the answer comes,
so an answer delivered after an agent restart is still installed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from common.errors import ConfigError
from common.identity import (
    cert_info,
    install_identity,
    key_pem,
    load_cert,
    load_key,
    make_csr,
    new_key,
    spki_sha256,
    write_private,
)
from common.mqtt import Message, MqttLink, TlsConfig
from contract.enrollment import CertRequest, CertResponse
from contract.errors import ContractError
from contract.topics import KioskTopics

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]


class Renewal:
    def __init__(
        self,
        link: MqttLink,
        topics: KioskTopics,
        tls: TlsConfig,
        *,
        renew_before: dt.timedelta,
        retry_after: dt.timedelta = dt.timedelta(minutes=10),
        clock: Clock | None = None,
        min_interval_s: float = 3600.0,
    ) -> None:
        self.link = link
        self.topics = topics
        self.tls = tls
        self.renew_before = renew_before
        self.retry_after = retry_after
        self.clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.Lock()
        self._sent_at: dt.datetime | None = None
        #: a kiosk whose clock runs far ahead would find every new certificate near its end: at most one
        #: renewal per ``min_interval_s`` (monotonic time, which a wrong wall clock does not move)
        self.min_interval_s = min_interval_s
        self._renewed_mono: float | None = None
        self.renewed = 0
        self.last_error = ""
        self.enabled = tls.cert_file is not None and tls.key_file is not None and tls.ca_file is not None

    @property
    def _pending_file(self) -> Path:
        assert self.tls.key_file is not None
        return self.tls.key_file.with_name(self.tls.key_file.name + ".renewal.json")

    @property
    def _pending_key(self) -> Path:
        assert self.tls.key_file is not None
        return self.tls.key_file.with_name(self.tls.key_file.name + ".next")

    def start(self) -> None:
        if self.enabled:
            self.link.subscribe(self.topics.cert_res, 1, self._on_response)

    def due(self) -> bool:
        assert self.tls.cert_file is not None
        info = cert_info(load_cert(self.tls.cert_file))
        left = info.not_after - self.clock()
        return left <= self.renew_before or left <= info.lifetime() / 3

    def tick(self) -> None:
        """Called by the session loop: send a request when due and none is waiting (or it timed out)."""
        if not self.enabled or not self.link.connected:
            return
        with self._lock:
            now = self.clock()
            if self._sent_at is not None and now - self._sent_at < self.retry_after:
                return
            if self._renewed_mono is not None and time.monotonic() - self._renewed_mono < self.min_interval_s:
                return
            try:
                if not self.due():
                    return
                assert self.tls.cert_file is not None
                current = cert_info(load_cert(self.tls.cert_file))
            except ConfigError as exc:
                self.last_error = exc.message
                log.error("certificate renewal: %s", exc.message)
                return
            key = new_key()
            request_id = f"{self.topics.kiosk_id}-cert-{uuid.uuid4().hex[:16]}"
            write_private(self._pending_key, key_pem(key))
            write_private(self._pending_file, json.dumps({"request_id": request_id}).encode())
            request = CertRequest(request_id, make_csr(key, self.topics.kiosk_id, request_id), current.serial)
            sent = self.link.publish(
                self.topics.cert_req,
                request.to_payload(),
                qos=1,
                response_topic=self.topics.cert_res,
                correlation_data=request_id.encode(),
            )
            if sent is not None:
                self._sent_at = now
                log.info(
                    "certificate %s ends %s: renewal %s sent",
                    current.serial,
                    current.not_after.isoformat(),
                    request_id,
                )

    def _on_response(self, message: Message) -> None:
        try:
            self._handle(message)
        finally:
            self.link.ack(message.generation, message.mid, message.qos)

    def _handle(self, message: Message) -> None:
        try:
            response = CertResponse.parse(message.payload)
        except ContractError as exc:
            log.warning("certificate answer refused: %s", exc.message)
            return
        try:
            pending = json.loads(self._pending_file.read_text())
        except (OSError, ValueError):
            pending = {}
        if response.request_id != pending.get("request_id"):
            log.info("certificate answer %s is not for the pending request", response.request_id)
            return
        with self._lock:
            if response.status != "ok":
                self.last_error = f"{response.error}: {response.reason}"
                log.error("certificate renewal refused by the center: %s", self.last_error)
                self._sent_at = self.clock()  # try again after retry_after
                return
            try:
                self._install(response)
            except (ConfigError, ValueError, TypeError, InvalidSignature) as exc:
                self.last_error = str(getattr(exc, "message", exc))
                log.error("renewed certificate not installed: %s", self.last_error)
                self._sent_at = self.clock()
                return
            self._sent_at = None
            self._renewed_mono = time.monotonic()
            self.renewed += 1
        self.link.reconnect()  # the next connection presents the new certificate

    def _install(self, response: CertResponse) -> None:
        assert (
            self.tls.cert_file is not None and self.tls.key_file is not None and self.tls.ca_file is not None
        )
        key = load_key(self._pending_key)
        cert = x509.load_pem_x509_certificate(response.certificate.encode())
        info = cert_info(cert)
        if info.key_sha256 != spki_sha256(key.public_key()):
            raise ConfigError("the renewed certificate is not for the new key")
        if info.kiosk_id != self.topics.kiosk_id or info.center_id != self.topics.center_id:
            raise ConfigError(f"the renewed certificate names {info.kiosk_id}@{info.center_id}")
        trusted = {c.subject: c for c in x509.load_pem_x509_certificates(self.tls.ca_file.read_bytes())}
        issuer = trusted.get(cert.issuer)
        if issuer is None:
            raise ConfigError("the renewed certificate's issuer is not a CA this kiosk trusts")
        cert.verify_directly_issued_by(issuer)
        install_identity(self.tls.key_file, self.tls.cert_file, key, response.certificate.encode())
        for path in (self._pending_key, self._pending_file):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        log.info("certificate renewed: serial %s until %s", info.serial, info.not_after.isoformat())
