"""The center's provisioning service (``main.py provision serve``): the only holder of the issuing CA's key.

- **Enrollment** (``Authority.challenge/enroll/poll``), served over HTTPS by ``provisioning.api``: a
  request must carry a nonce the center gave out (once, within 10 minutes) and a CSR whose signature
  verifies and whose challengePassword is that nonce (proof of possession, bound to this request: a
  replayed request finds its nonce used). The token is checked in the same transaction (once, in time,
  this center), the machine serial against the allowlist when the center keeps one. Without a token the
  kiosk waits as pending; a person approves it on the dashboard, the kiosk's next poll gets its
  certificate.
- **Renewal** over MQTT (``cert-request/1`` on ``{kiosk}/cert/req``, answered on ``{kiosk}/cert/res``):
  the kiosk id comes from the topic (the ACL vouches for it), the serial it connects with must be its
  active certificate, the key must be new.
- **The broker's view** (``Authority.sync``, every half second and after every issue): the ACL (one
  block per enrolled kiosk) and the registry file when the registry's generation changed, then SIGHUP;
  the CRL (``crl.pem`` and the next ``crl.d/<hash>.rN``) when a revocation is not applied yet or the CRL
  nears its nextUpdate; and for a kiosk whose certificate was revoked (not merely renewed), its
  connection is taken over once (``common.mqtt.take_over`` with a two-minute certificate of its CN), so
  the revoked certificate must reconnect, and that handshake fails on the new CRL; then a second CRL
  lists that takeover certificate too (``CenterPki.retire_takeover``), so its key, had it leaked, could
  not connect as the kiosk for the rest of its two minutes.
- **Self-test reports** (``event/self_test``) are stored for the kiosk's page.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import ConfigError, MotcuaError, NotFoundError, ValidationError
from common.identity import cert_info
from common.mqtt import Backoff, Message, MqttLink, TlsConfig, take_over
from contract.config import PushedConfig
from contract.enrollment import (
    CertRequest,
    CertResponse,
    EnrollAnswer,
    EnrollChallenge,
    EnrollmentBundle,
    EnrollPoll,
    EnrollRequest,
)
from contract.errors import ContractError
from contract.events import Event, SelfTest
from contract.schema import parse_dataclass, read_toml, to_data
from contract.topics import CenterTopics, KioskTopics, parse_topic
from contract.wire import now_iso, parse_time, salvage_request_id
from fleet.store import Scope, Store
from fleet.store.enrollment import EnrollRequestRow, Refused
from provisioning import broker
from provisioning.center import CenterLayout, CenterSettings
from provisioning.center_pki import CRL_REFRESH, PkiError, Revoked, check_csr
from provisioning.registry import sync_files

log = logging.getLogger(__name__)

#: vi/en texts of a refusal, as the kiosk shows them
REFUSAL_TEXT: dict[str, tuple[str, str]] = {
    "token_unknown": ("Mã đăng ký không hợp lệ.", "The enrollment code is not valid."),
    "token_used": ("Mã đăng ký đã được dùng.", "The enrollment code was used already."),
    "token_expired": ("Mã đăng ký đã hết hạn.", "The enrollment code expired."),
    "token_wrong_center": (
        "Mã đăng ký thuộc trung tâm khác.",
        "The enrollment code belongs to another center.",
    ),
    "nonce_unknown": (
        "Phiên đăng ký không hợp lệ hoặc đã hết hạn.",
        "The enrollment session is unknown or expired.",
    ),
    "replayed": ("Yêu cầu đăng ký bị gửi lại: từ chối.", "The enrollment request was replayed: refused."),
    "csr_invalid": ("Yêu cầu chứng thư không hợp lệ.", "The certificate request is not valid."),
    "proof_failed": (
        "Yêu cầu chứng thư không gắn với phiên này.",
        "The certificate request is not bound to this session.",
    ),
    "key_reused": ("Khóa này đã được dùng trước đây.", "This key was used before."),
    "not_allowlisted": (
        "Số serial máy không có trong danh sách cho phép.",
        "The machine serial is not on the allowlist.",
    ),
    "rejected": ("Trung tâm đã từ chối kiosk này.", "The center rejected this kiosk."),
    "center_unknown": ("Không biết trung tâm này.", "Unknown center."),
    "kiosk_revoked": ("Kiosk đã bị thu hồi.", "The kiosk was revoked."),
    "unknown_request": ("Không có yêu cầu đăng ký này.", "No such enrollment request."),
}
POLL_AFTER_S = 3
#: a renewed kiosk's previous certificate is revoked this long after the renewal
SUPERSEDED_GRACE = dt.timedelta(hours=1)


def refused(reason: str, request_id: str = "") -> EnrollAnswer:
    vi, en = REFUSAL_TEXT.get(reason, (reason, reason))
    return EnrollAnswer("refused", request_id, reason, vi, en)  # type: ignore[arg-type]


@dataclass
class SyncResult:
    generation: int = 0
    acl_changed: bool = False
    reloaded: bool = False
    crl_published: bool = False
    revoked: list[str] = field(default_factory=list)
    kicked: list[str] = field(default_factory=list)
    #: a CRL was published with the takeover certificates used (``CenterPki.retire_takeover``)
    takeovers_revoked: bool = False
    errors: list[str] = field(default_factory=list)


def bundle_config(settings: CenterSettings) -> PushedConfig | None:
    """What the center owns, for a new kiosk's file: services, rating and citizen settings of the
    center's kiosk template (center-init ``--kiosk-template``)."""
    if not settings.kiosk_template:
        return None
    data = read_toml(Path(settings.kiosk_template))
    body = {k: data[k] for k in ("services", "rating") if k in data}
    try:
        config: PushedConfig = parse_dataclass(PushedConfig, body, "kiosk_template", lenient=True)
    except ValueError as exc:
        raise ConfigError(f"{settings.kiosk_template}: {exc}") from exc
    return config


class Authority:
    """Enrollment, renewal and revocation for one center."""

    def __init__(
        self,
        layout: CenterLayout,
        settings: CenterSettings,
        store: Store,
        *,
        kick: Callable[[str], str] | None = None,
        reload_broker: Callable[[], None] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        superseded_grace: dt.timedelta = SUPERSEDED_GRACE,
    ) -> None:
        self.layout = layout
        self.settings = settings
        self.store = store
        self.pki = layout.pki
        self.center_id = settings.center_id
        self.clock = clock
        self.superseded_grace = superseded_grace
        self._kick = kick or self._take_over
        self._reload = reload_broker or (lambda: broker.reload(layout.pid_file) and None)
        self._lock = threading.RLock()
        self._generation = -1
        self._bundle_config = bundle_config(settings)
        self.chain = self.pki.chain_pem()

    # -- enrollment -----------------------------------------------------------------------------------
    def challenge(self) -> EnrollChallenge:
        nonce, expires = self.store.enrollment.new_nonce(self.center_id)
        return EnrollChallenge(nonce, now_iso(expires))

    def enroll(self, body: bytes, address: str) -> EnrollAnswer:
        try:
            request = EnrollRequest.parse(body)
        except ContractError as exc:
            log.info("enrollment from %s: not a request: %s", address, exc.message)
            return refused("csr_invalid")
        if request.center_id != self.center_id:
            return refused("center_unknown")
        try:
            check = check_csr(request.csr)
        except ValidationError as exc:
            log.info("enrollment from %s: %s", address, exc.message)
            return refused("csr_invalid")
        if check.challenge != request.nonce:
            return refused("proof_failed")
        machine = to_data(request.machine)
        try:
            row = self.store.enrollment.enroll(
                self.center_id,
                nonce=request.nonce,
                token=request.token,
                key_sha256=check.key_sha256,
                csr=request.csr,
                machine=machine,
                address=address,
            )
        except Refused as exc:
            log.warning("enrollment from %s refused (%s): %s", address, exc.reason, exc.message)
            return refused(exc.reason)
        self.store.audit.record(
            "kiosk.enroll_request",
            username=f"kiosk@{address}",
            object_type="enroll_request",
            object_id=row.id,
            center_id=self.center_id,
            after={"state": row.state, "kiosk_id": row.kiosk_id, "machine": machine},
            address=address,
        )
        if row.state == "approved":
            return self._issue(row)
        return EnrollAnswer(
            "pending",
            row.id,
            None,
            "Đang chờ trung tâm duyệt kiosk này.",
            "Waiting for the center to approve this kiosk.",
            POLL_AFTER_S,
        )

    def poll(self, body: bytes) -> EnrollAnswer:
        try:
            poll = EnrollPoll.parse(body)
            row = self.store.enrollment.request(poll.request_id)
        except ContractError:
            return refused("unknown_request")
        except NotFoundError:
            return refused("unknown_request")
        if row.center_id != self.center_id:
            return refused("unknown_request")
        if row.state == "pending":
            return EnrollAnswer(
                "pending",
                row.id,
                None,
                "Đang chờ trung tâm duyệt kiosk này.",
                "Waiting for the center to approve this kiosk.",
                POLL_AFTER_S,
            )
        if row.state == "rejected":
            return refused("rejected", row.id)
        if row.state == "approved":
            return self._issue(row)
        return self._answer_issued(row)  # issued before: the same answer again (a lost reply)

    def _issue(self, row: EnrollRequestRow) -> EnrollAnswer:
        assert row.kiosk_id is not None
        with self._lock:
            cert = self.pki.issue_kiosk(
                row.csr, self.center_id, row.kiosk_id, days=self.settings.kiosk_cert_days, now=self.clock()
            )
            info = cert_info(cert)
            try:
                issued, revoked = self.store.enrollment.record_issue(
                    row.id,
                    serial=info.serial,
                    not_before=info.not_before,
                    not_after=info.not_after,
                    key_sha256=info.key_sha256,
                    pem=cert_pem(cert).decode(),
                )
            except MotcuaError:
                fresh = self.store.enrollment.request(row.id)
                if fresh.state == "issued":  # issued by a concurrent poll
                    return self._answer_issued(fresh)
                raise
            # Before the kiosk gets its certificate: its ACL block exists, and for a replacement the old
            # PC's certificates are revoked and its connection closed.
            result = self.sync()
            log.info(
                "issued %s to kiosk %s (%s); revoked %s; sync %s",
                info.serial,
                row.kiosk_id,
                row.purpose,
                revoked,
                result,
            )
        self.store.audit.record(
            "kiosk.enrolled" if row.purpose != "replace" else "kiosk.replaced",
            username=row.decided_by_name or "",
            object_type="kiosk",
            object_id=row.kiosk_id,
            center_id=self.center_id,
            after={"serial": info.serial, "not_after": info.not_after.isoformat(), "revoked": revoked},
        )
        return self._answer_issued(issued)

    def _answer_issued(self, row: EnrollRequestRow) -> EnrollAnswer:
        assert row.kiosk_id is not None and row.certificate_serial is not None
        pem = self.store.enrollment.certificate_pem(row.certificate_serial)
        center = self.store.enrollment.center(self.center_id)
        name = self.store.registry.center(_everything(), self.center_id).name
        bundle = EnrollmentBundle(
            row.kiosk_id,
            self.center_id,
            name,
            center.broker_host,
            center.broker_port,
            row.slot if row.slot is not None else 0,
            center.offline_base,
            center.offline_block,
            center.topic_root,
            self._bundle_config,
        )
        return EnrollAnswer(
            "issued", row.id, None, "Đã cấp chứng thư.", "Certificate issued.", 0, pem, self.chain, bundle
        )

    # -- renewal --------------------------------------------------------------------------------------
    def renew(self, kiosk_id: str, payload: bytes) -> CertResponse:
        try:
            request = CertRequest.parse(payload)
        except ContractError as exc:
            request_id = salvage_request_id(payload, CertRequest.MAX_BYTES) or "unknown"
            return CertResponse(request_id, "error", "bad_request", exc.message[:500])
        try:
            check = check_csr(request.csr)
        except ValidationError as exc:
            return CertResponse(request.request_id, "error", "bad_request", exc.message[:500])
        if check.challenge != request.request_id:
            return CertResponse(
                request.request_id, "error", "bad_request", "challengePassword is not the request id"
            )
        problem = self.store.enrollment.renewal_check(
            self.center_id, kiosk_id, request.current_serial, check.key_sha256
        )
        if problem is not None:
            log.warning("renewal of %s refused: %s", kiosk_id, problem)
            return CertResponse(
                request.request_id,
                "error",
                problem,  # type: ignore[arg-type]
                f"renewal refused: {problem.replace('_', ' ')}",
            )
        with self._lock:
            cert = self.pki.issue_kiosk(
                request.csr, self.center_id, kiosk_id, days=self.settings.kiosk_cert_days, now=self.clock()
            )
            info = cert_info(cert)
            self.store.enrollment.record_renewal(
                self.center_id,
                kiosk_id,
                current_serial=request.current_serial,
                serial=info.serial,
                not_before=info.not_before,
                not_after=info.not_after,
                key_sha256=info.key_sha256,
                request_id=request.request_id,
                pem=cert_pem(cert).decode(),
            )
        log.info(
            "renewed kiosk %s: %s -> %s (until %s)",
            kiosk_id,
            request.current_serial,
            info.serial,
            info.not_after.isoformat(),
        )
        self.store.audit.record(
            "kiosk.renewed",
            username=f"kiosk:{kiosk_id}",
            object_type="kiosk",
            object_id=kiosk_id,
            center_id=self.center_id,
            before={"serial": request.current_serial},
            after={"serial": info.serial, "not_after": info.not_after.isoformat()},
        )
        return CertResponse(
            request.request_id,
            "ok",
            None,
            "renewed",
            cert_pem(cert).decode(),
            self.chain,
            now_iso(info.not_after),
        )

    # -- the broker's view ------------------------------------------------------------------------------
    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One sync at a time on this machine (the service and a technician's CLI may both run it)."""
        self.layout.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.layout.lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def sync(self, *, force_crl: bool = False) -> SyncResult:
        result = SyncResult()
        with self._exclusive():
            enrollment = self.store.enrollment
            now = self.clock()
            if enrollment.revoke_superseded(self.center_id, now - self.superseded_grace):
                log.info("superseded certificates revoked after the grace time")
            unapplied = enrollment.unapplied_revocations(self.center_id)
            generation = enrollment.generation(self.center_id)
            result.generation = generation
            if generation != self._generation or unapplied:
                files = sync_files(self.layout, self.settings, self.store)
                result.acl_changed = files.acl_changed
                if files.acl_changed:
                    try:
                        self._reload()
                        result.reloaded = True
                    except MotcuaError as exc:
                        result.errors.append(exc.message)
                        log.error("broker not reloaded: %s", exc.message)
                self._generation = generation
            try:
                crl_due = self.pki.crl_next_update() - dt.datetime.now(dt.UTC) < CRL_REFRESH
            except (OSError, ValueError) as exc:
                raise PkiError(f"{self.pki.crl_file}: {exc}") from exc
            if unapplied or crl_due or force_crl:
                entries = [Revoked(s, at, reason) for s, at, reason in enrollment.crl_entries(self.center_id)]
                self.pki.publish_crl(entries)
                result.crl_published = True
            kick = sorted({c.kiosk_id for c in unapplied if c.revoke_reason != "superseded"})
            for kiosk_id in kick:
                problem = self._kick(kiosk_id)
                if problem:
                    result.errors.append(f"take over {kiosk_id}: {problem}")
                    log.error("could not close the connection of revoked kiosk %s: %s", kiosk_id, problem)
                else:
                    result.kicked.append(kiosk_id)
            result.revoked = [c.serial for c in unapplied]
            enrollment.mark_applied(result.revoked)
            # the takeover certificates just used (or left by a sync that failed here) onto the CRL: a
            # second CRL, after the takeover (the first must refuse the kiosk's reconnect before it)
            if self.pki.takeovers_unlisted():
                entries = [Revoked(s, at, reason) for s, at, reason in enrollment.crl_entries(self.center_id)]
                self.pki.publish_crl(entries)
                result.crl_published = result.takeovers_revoked = True
        return result

    def _take_over(self, kiosk_id: str) -> str:
        cert, key, _serial = self.pki.issue_takeover(kiosk_id)
        host = "127.0.0.1" if self.settings.bind in ("", "0.0.0.0", "::") else self.settings.bind
        try:
            return take_over(
                client_id=kiosk_id,
                host=host,
                port=self.settings.kiosk_port,
                ca_file=self.pki.chain_file,
                cert_pem=cert,
                key_pem=key,
            )
        finally:  # used or not, never needed again: the sync's next CRL lists it
            self.pki.retire_takeover(cert)

    # -- MQTT: renewals and self-test reports ---------------------------------------------------------
    def on_message(self, link: MqttLink, message: Message) -> None:
        try:
            ref = parse_topic(message.topic, self.settings.topic_root)
        except ContractError:
            link.ack(message.generation, message.mid, message.qos)
            return
        try:
            if ref.kiosk_id is None or ref.center_id != self.center_id:
                return
            if ref.channel == "cert/req":
                response = self.renew(ref.kiosk_id, message.payload)
                topics = KioskTopics(self.center_id, ref.kiosk_id, self.settings.topic_root)
                wanted = message.response_topic or ""
                target = wanted if wanted.startswith(topics.base + "/") else topics.cert_res
                link.publish(
                    target,
                    response.to_payload(),
                    qos=1,
                    correlation_data=message.correlation_data or response.request_id.encode(),
                )
            elif ref.channel == "event" and ref.detail == SelfTest.KIND:
                self._store_selftest(ref.kiosk_id, message.payload)
        except MotcuaError as exc:
            log.error("%s: %s", message.topic, exc.message)
        finally:
            link.ack(message.generation, message.mid, message.qos)

    def _store_selftest(self, kiosk_id: str, payload: bytes) -> None:
        try:
            event = Event.parse(payload)
        except ContractError as exc:
            log.warning("self-test report of %s refused: %s", kiosk_id, exc.message)
            return
        report = event.payload
        if not isinstance(report, SelfTest):
            return
        self.store.enrollment.record_selftest(
            self.center_id,
            kiosk_id,
            event_id=event.event_id,
            at=parse_time(event.occurred_at, "occurred_at"),
            result=report.result,
            source=report.source,
            report=report.to_data(),
        )


def cert_pem(cert: object) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    assert isinstance(cert, x509.Certificate)
    return cert.public_bytes(serialization.Encoding.PEM)


def _everything() -> Scope:
    return Scope.everything()


class Service:
    """The running service: the MQTT link (renewals, self-test reports) and the sync loop."""

    def __init__(self, authority: Authority, *, interval_s: float = 0.5) -> None:
        self.authority = authority
        self.interval_s = interval_s
        settings, pki = authority.settings, authority.pki
        self.link = MqttLink(
            client_id=f"provisioner-{settings.center_id}",
            host="127.0.0.1",
            port=settings.service_port,
            tls=TlsConfig(pki.chain_file, pki.cert_file("provisioner"), pki.key_file("provisioner")),
            backoff=Backoff(0.5, 10),
            will=None,
            session_expiry_s=3600,
        )
        center = CenterTopics(settings.center_id, settings.topic_root)
        for topic in (center.all_cert_requests, center.all_events(SelfTest.KIND)):
            self.link.subscribe(topic, 1, lambda m: authority.on_message(self.link, m))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_sync: SyncResult | None = None

    def start(self) -> None:
        self.link.start()
        self._thread = threading.Thread(target=self._loop, name="provision-sync", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.last_sync = self.authority.sync()
            except Exception:
                log.exception("sync failed")
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.link.stop()


class LocalCenter:
    """The enrollment endpoint called in-process, for the demo center (no HTTPS between two parts of one
    program): the same requests and answers as ``provisioning.api``, and the same pinning rule."""

    def __init__(self, authority: Authority, expected_fingerprint: str) -> None:
        self.authority = authority
        self.expected_fingerprint = expected_fingerprint

    def pin(self) -> str:
        if self.authority.pki.fingerprint() != self.expected_fingerprint:
            from provisioning.enroll import EnrollError

            raise EnrollError("the center's CA fingerprint does not match the code", "wrong_ca")
        return self.authority.chain

    def post(self, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if path == "/enroll/v1/challenge":
            return 200, self.authority.challenge().to_payload()
        if path == "/enroll/v1/request":
            answer = self.authority.enroll(body, "local")
        elif path == "/enroll/v1/poll":
            answer = self.authority.poll(body)
        else:
            return 404, b""
        return {"issued": 200, "pending": 202}.get(answer.status, 403), answer.to_payload()
