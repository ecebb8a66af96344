"""Adapter for the province's one-stop system over HTTP JSON (mapping in docs/lookup.md).

``GET {base_url}/dossiers/{code}`` with ``Accept: application/json`` and the configured auth header.
200 + a valid status -> the status; 404 with ``{"error": "not_found"}`` -> ``DossierNotFound``;
anything else (timeout, refused connection, 5xx, 429, 401/403, a bare 404, malformed or mismatched
JSON) -> ``LookupUnavailable``. Timeouts,
connection errors, 5xx and 429 are retried with exponential backoff and jitter; the others are not,
because asking again gets the same wrong answer. Found statuses are cached for ``cache_ttl_s`` so a
citizen who scans twice, or prints after looking, does not hit the province twice.

The wire is ``http.client`` (stdlib; it parses the status line, headers and chunked bodies). What this
module adds is the boundary around it: https only unless ``allow_insecure_http``; redirects followed
only within the configured origin, so the auth header never reaches another host and https never
falls back to http; one deadline per attempt from connect to the last byte, enforced on every socket
operation (connect, TLS handshake, send, each read -- headers included) with a timeout of the time
left; numbers from headers taken only when they are ASCII digits; bodies capped.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from email.message import Message
from typing import Any, TypeVar
from urllib.parse import quote, urljoin, urlsplit

from common.errors import ConfigError
from kiosk.dossier.backend import DossierNotFound, LookupUnavailable, check_base_url, origin_of, show_origin
from kiosk.dossier.code import DossierCode
from kiosk.dossier.model import DossierDataError, DossierStatus, amount_vnd
from kiosk.dossier.visit import (
    Appointment,
    AppointmentNotFound,
    AppointmentQuery,
    DeliveryReceipt,
    DeliveryRequest,
    FeedbackMessage,
    FeedbackReceipt,
    RequestRefused,
    new_request_id,
)
from kiosk.errors import KioskError

_T = TypeVar("_T")

log = logging.getLogger(__name__)

#: Largest response we read: one dossier's status is a few kB.
MAX_RESPONSE_BYTES = 256 * 1024
#: Of an error answer only the start matters (``{"error": "not_found"}``).
MAX_ERROR_BODY_BYTES = 4096
#: Same-origin redirects followed per attempt (a trailing-slash or version move); more is a loop.
MAX_REDIRECTS = 3
#: Statuses worth asking again (the server may be restarting or shedding load).
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Numbers in headers: ASCII digits only (``str.isdigit`` accepts "²", ``int`` accepts "1_0" and "+1").
_ASCII_NUMBER = re.compile(r"[0-9]{1,18}")


class LookupRedirectRefused(LookupUnavailable):
    """The province system redirected where the kiosk does not follow: another origin (the auth header
    would go with it), https to http, or in a loop. Not retried: the same redirect would come again."""

    code = "lookup_redirect_refused"


class _Retry(Exception):
    """An attempt failed in a way a later attempt may not."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _parse_auth_header(line: str | None) -> tuple[str, str] | None:
    """``lookup.auth_header`` as (name, value); ConfigError for what could not be sent as one header."""
    if not line:
        return None
    name, sep, value = line.partition(":")
    if sep and name.strip() and " " not in name.strip():
        header = name.strip(), value.strip()
    else:
        header = "Authorization", line.strip()
    if not _HEADER_NAME.fullmatch(header[0]) or not header[1].isascii() or any(
        c < " " or c == "\x7f" for c in header[1]
    ):
        # A line break in the value would start a second header (or the body) of the request.
        raise ConfigError("lookup.auth_header: expected one 'Name: value' line of printable ASCII")
    return header


def _error_body(body: bytes) -> dict[str, Any] | None:
    """An error answer's JSON object (``{"error": "not_found"}``, ``{"error": "refused", ...}``)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _is_not_found_body(body: bytes) -> bool:
    """The system's own "no such dossier" answer: ``{"error": "not_found"}``."""
    data = _error_body(body)
    return data is not None and data.get("error") == "not_found"


#: request numbers and booking codes the system returns: printed on a slip, so short and plain
_REFERENCE = re.compile(r"[0-9A-Za-z][0-9A-Za-z./-]{0,39}")
_SERVICE = re.compile(r"[A-Z0-9_]{1,32}")


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and _REFERENCE.fullmatch(value) is not None


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def _connect(host: str, port: int, deadline: float) -> socket.socket:
    """TCP connect within the deadline, over every address of ``host`` in turn (``create_connection``
    would give each address the whole timeout again). Name resolution itself is not bounded here."""
    last: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:  # TimeoutError included
            sock.close()
            last = exc
            if isinstance(exc, TimeoutError):
                raise
    raise last if last is not None else OSError(f"no address for {host}")


class _DeadlineReader(io.RawIOBase):
    """Socket reads under one deadline: each ``recv`` waits at most for the time left, so a server
    that trickles a byte at a time (status line, headers or body) cannot stretch the attempt.

    Reads go through the socket's own ``SocketIO``, which holds a reference on the socket: http.client
    closes the connection as soon as the headers are in and relies on that to keep reading the body.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self._sock.settimeout(_remaining(self._deadline))
        count = self._raw.readinto(buffer)
        if count is None:  # "would block": only in non-blocking mode, which this socket is not in
            raise TimeoutError("socket read would block")
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineSocket:
    """What ``http.client`` uses of its socket (``sendall``, ``makefile``, ``close``), under a deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_remaining(self._deadline))
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> io.BufferedReader:
        assert mode == "rb", mode  # http.client reads its responses in binary
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        self._sock.close()  # the fd stays open while a reader holds it (socket._io_refs)


class _Connection(http.client.HTTPConnection):
    """One request's connection: plain or TLS, every socket operation within ``deadline``."""

    def __init__(self, host: str, port: int, deadline: float, tls: ssl.SSLContext | None) -> None:
        super().__init__(host, port, timeout=max(0.001, deadline - time.monotonic()))
        self._deadline = deadline
        self._tls = tls

    def connect(self) -> None:
        sock = _connect(self.host, self.port, self._deadline)
        try:
            if self._tls is not None:
                sock.settimeout(_remaining(self._deadline))  # the whole handshake within the time left
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        # http.client needs only sendall/makefile/close of its socket.
        self.sock = _DeadlineSocket(sock, self._deadline)


def _content_length(headers: Message) -> int | None:
    """The announced body length, or None; LookupUnavailable when it is not one plain ASCII number."""
    values = headers.get_all("Content-Length") or []
    if not values:
        return None
    texts = {str(v).strip(" \t") for v in values}
    if len(texts) != 1:
        raise LookupUnavailable(f"province system sent {len(values)} different Content-Length headers")
    text = texts.pop()
    if not _ASCII_NUMBER.fullmatch(text):
        raise LookupUnavailable(f"province system sent a malformed Content-Length {text!r:.24}")
    return int(text)


def _retry_after(headers: Message) -> float | None:
    """Seconds from ``Retry-After`` when it is delta-seconds in ASCII digits; an HTTP date or anything
    else is no hint (the normal backoff applies)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    text = str(value).strip(" \t")
    return float(int(text)) if _ASCII_NUMBER.fullmatch(text) else None


class HttpDossierBackend:
    """``DossierBackend`` for the province system; thread-safe, stdlib only (``http.client``)."""

    def __init__(
        self,
        base_url: str,
        auth_header: str | None = None,
        timeout_s: float = 3.0,
        retries: int = 2,
        cache_ttl_s: float = 60.0,
        *,
        allow_insecure_http: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        backoff_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.origin = check_base_url(self.base_url, allow_insecure_http)
        self.timeout_s = timeout_s
        self.retries = retries
        self.cache_ttl_s = cache_ttl_s
        self.backoff_s = backoff_s
        self._auth = _parse_auth_header(auth_header)
        self._clock = clock
        self._cache: dict[str, tuple[float, DossierStatus]] = {}
        self._lock = threading.Lock()
        # Verified TLS (system trust store unless a context is given, e.g. a province's own CA).
        # No proxies from the environment: a kiosk talks to its configured system directly.
        self._tls = (ssl_context or ssl.create_default_context()) if self.origin[0] == "https" else None
        self.requests_sent = 0

    def url_for(self, code: DossierCode) -> str:
        return f"{self.base_url}/dossiers/{quote(code.text, safe='')}"

    def lookup(self, code: DossierCode) -> DossierStatus:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(code.text)
            if cached and now - cached[0] < self.cache_ttl_s:
                return cached[1]
        status = self._fetch(code)
        if self.cache_ttl_s > 0:
            with self._lock:
                self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self.cache_ttl_s}
                self._cache[code.text] = (self._clock(), status)
        return status

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def _fetch(self, code: DossierCode) -> DossierStatus:
        return self._with_retries("dossier look-up", lambda: self._attempt(code))

    def _with_retries(self, what: str, attempt: Callable[[], _T]) -> _T:
        """``attempt()`` up to ``retries + 1`` times while it fails in a way a later attempt may not."""
        last = "no attempt"
        for index in range(self.retries + 1):
            if index:
                delay = self.backoff_s * (2 ** (index - 1)) * random.uniform(0.5, 1.5)
                time.sleep(delay)
            try:
                return attempt()
            except _Retry as exc:
                last = exc.reason
                log.info("%s attempt %d/%d failed: %s", what, index + 1, self.retries + 1, last)
                if exc.retry_after_s is not None and index < self.retries:
                    time.sleep(min(exc.retry_after_s, 2.0))
        raise LookupUnavailable(f"province system {self.base_url} unavailable after "
                                f"{self.retries + 1} attempts: {last}")

    # -- the visit's operations (docs/lookup.md, "Operations beyond the look-up") -----------------
    def request_delivery(self, request: DeliveryRequest) -> DeliveryReceipt:
        data = self._post(f"/dossiers/{quote(request.code.text, safe='')}/delivery", request.wire(),
                          request.request_id, DossierNotFound, "delivery request")
        number = data.get("request_number")
        try:
            fee = amount_vnd(data.get("fee_vnd"), "fee_vnd", optional=True)
        except DossierDataError as exc:
            raise LookupUnavailable(f"province system answered a delivery request with {exc}") from exc
        if not _is_reference(number):
            raise LookupUnavailable("province system answered a delivery request without a usable "
                                    "request_number")
        return DeliveryReceipt(str(number), fee)

    def send_feedback(self, message: FeedbackMessage) -> FeedbackReceipt:
        data = self._post("/feedback", message.wire(), message.request_id, None, "feedback")
        number = data.get("feedback_number")
        if not _is_reference(number):
            raise LookupUnavailable("province system answered feedback without a usable feedback_number")
        return FeedbackReceipt(str(number))

    def match_appointment(self, query: AppointmentQuery) -> Appointment:
        # POST, not GET: the ID hash must not sit in a URL (proxies and server logs keep URLs).
        data = self._post("/appointments/match", query.wire(), new_request_id(), AppointmentNotFound,
                          "appointment match")
        try:
            booking, service = data["booking_code"], data["service_code"]
            if not _is_reference(booking) or not isinstance(service, str) or not _SERVICE.fullmatch(service):
                raise ValueError("booking_code / service_code")
            day = date.fromisoformat(str(data["day"])[:10])
            at = datetime.strptime(str(data["time"])[:5], "%H:%M").time()
            name = data.get("procedure_name") or ""
            if not isinstance(name, str):
                raise ValueError("procedure_name")
        except (KeyError, ValueError) as exc:
            raise LookupUnavailable(f"province system sent an unusable appointment: {exc}") from exc
        if day != query.day:
            raise LookupUnavailable("province system answered with an appointment of another day")
        return Appointment(booking, service, day, at, name)

    def _post(
        self, path: str, payload: dict[str, Any], request_id: str,
        not_found: type[KioskError] | None, what: str,
    ) -> dict[str, Any]:
        """POST JSON; 200/201 -> the answer's object. The request id goes as ``Idempotency-Key``, so the
        retries after a timeout are the same request to the system, never a second one."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": request_id}
        url = self.base_url + path

        def attempt() -> dict[str, Any]:
            deadline = time.monotonic() + self.timeout_s
            status, answer_headers, raw = self._exchange(url, deadline, "POST", body, headers)
            if status in _REDIRECT_STATUSES:
                # A redirected POST may turn into a GET or resend the body elsewhere: never followed.
                raise LookupRedirectRefused(f"province system redirected a POST ({what}); set "
                                            "lookup.base_url to where the system is")
            return self._interpret_post(status, answer_headers, raw, not_found, what)

        return self._with_retries(what, attempt)

    def _interpret_post(
        self, status: int, headers: Message, body: bytes, not_found: type[KioskError] | None, what: str,
    ) -> dict[str, Any]:
        error = _error_body(body)
        if status == 404:
            if error is not None and error.get("error") == "not_found" and not_found is not None:
                raise not_found(f"province system: not found ({what})")
            raise LookupUnavailable(f"HTTP 404 for {what} from {self.base_url}: check lookup.base_url")
        if status in (409, 422) and error is not None and error.get("error") == "refused":
            reason = error.get("reason")
            raise RequestRefused(f"province system refused the {what}: {reason!r:.40}",
                                 reason if isinstance(reason, str) else "other")
        if status in _RETRY_STATUSES:
            raise _Retry(f"HTTP {status}", _retry_after(headers))
        if status not in (200, 201):
            raise LookupUnavailable(f"province system refused the {what}: HTTP {status} "
                                    "(check lookup.auth_header and lookup.base_url)")
        content_type = headers.get_content_type()
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise LookupUnavailable(f"province system sent {content_type:.60}, not application/json")
        if len(body) > MAX_RESPONSE_BYTES:
            raise LookupUnavailable(f"province system sent more than {MAX_RESPONSE_BYTES} bytes")
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise LookupUnavailable(f"province system sent unusable JSON for the {what}: {exc}") from exc
        if not isinstance(data, dict):
            raise LookupUnavailable(f"province system sent no JSON object for the {what}")
        return data

    def _attempt(self, code: DossierCode) -> DossierStatus:
        """One attempt: the request and its same-origin redirects, all within ``timeout_s``."""
        deadline = time.monotonic() + self.timeout_s
        url = self.url_for(code)
        for _ in range(MAX_REDIRECTS + 1):
            status, headers, body = self._exchange(url, deadline)
            if status not in _REDIRECT_STATUSES:
                return self._interpret(code, status, headers, body)
            url = self._redirect_target(url, headers)
        raise LookupRedirectRefused(f"province system {self.base_url} sent more than {MAX_REDIRECTS} "
                                    "redirects in a row")

    def _redirect_target(self, current: str, headers: Message) -> str:
        """Where a redirect points, if it stays within the configured origin."""
        location = str(headers.get("Location") or "").strip(" \t")
        if not location:
            raise LookupUnavailable(f"province system {self.base_url} redirected without a Location")
        try:
            target = urljoin(current, location)
            # http.client sends the path as is: only a plain ASCII URL without spaces or controls.
            if not target.isascii() or any(c <= " " or c == "\x7f" for c in target):
                raise ValueError("not a plain ASCII URL")
            origin = origin_of(target)
        except ValueError as exc:  # urljoin/urlsplit: "Invalid IPv6 URL", a bad port...
            raise LookupRedirectRefused(f"province system redirected to an unusable Location: {exc}") from exc
        if origin != self.origin:
            if self.origin[0] == "https" and origin[0] == "http":
                raise LookupRedirectRefused(f"province system {self.base_url} redirected from https to "
                                            f"http ({show_origin(origin)}): downgrade refused")
            # The auth header must not go to another host; the technician moves lookup.base_url.
            raise LookupRedirectRefused(f"province system {self.base_url} redirected to another origin "
                                        f"({show_origin(origin)}), not followed: set lookup.base_url to the "
                                        "new address if it moved")
        return target

    def _exchange(
        self, url: str, deadline: float, method: str = "GET", body: bytes | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, Message, bytes]:
        """``method`` ``url``: (status, headers, body up to its cap), every byte within ``deadline``."""
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"Accept": "application/json", **(extra_headers or {})}
        if self._auth:
            headers[self._auth[0]] = self._auth[1]
        _, host, port = self.origin
        connection = _Connection(host, port, deadline, self._tls)
        answered = False
        self.requests_sent += 1
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            answered = True
            status = response.status
            if status in _REDIRECT_STATUSES:
                return status, response.msg, b""
            announced = _content_length(response.msg)
            chunked = "chunked" in str(response.msg.get("Transfer-Encoding", "")).lower()
            limit = MAX_RESPONSE_BYTES if status == 200 else MAX_ERROR_BODY_BYTES
            if status == 200 and announced is not None and announced > MAX_RESPONSE_BYTES:
                raise LookupUnavailable(f"province system announced Content-Length {announced}, more "
                                        f"than {MAX_RESPONSE_BYTES} bytes")
            body = self._read_body(response, limit)
        except ssl.SSLCertVerificationError as exc:
            # Our trust configuration or the server's certificate: the same on every attempt.
            raise LookupUnavailable(f"TLS certificate of {show_origin(self.origin)} not accepted: "
                                    f"{exc.verify_message}") from exc
        except TimeoutError as exc:
            what = "answer not complete" if answered else "no answer"
            raise _Retry(f"{what} within {self.timeout_s:g} s") from exc
        except (ConnectionRefusedError, socket.gaierror) as exc:
            raise _Retry(f"cannot connect: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:  # reset, cut body, a reply http.client refuses
            raise _Retry(f"connection failed: {exc!r:.200}") from exc
        finally:
            connection.close()
        if status == 200 and len(body) > MAX_RESPONSE_BYTES:
            raise LookupUnavailable(f"province system sent more than {MAX_RESPONSE_BYTES} bytes")
        if announced is not None and not chunked and len(body) < min(announced, limit):
            # read(n) returns what arrived when the server closes early; a cut body is a network fault
            raise _Retry(f"connection closed after {len(body)} of {announced} bytes")
        return status, response.msg, body

    @staticmethod
    def _read_body(response: http.client.HTTPResponse, limit: int) -> bytes:
        """At most ``limit + 1`` bytes (one more tells "too large"); the deadline is in the socket."""
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = response.read(min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)

    def _interpret(self, code: DossierCode, status: int, headers: Message, body: bytes) -> DossierStatus:
        """A final (non-redirect) answer -> the status, or the error the mapping in docs/lookup.md names."""
        if status == 404:
            if _is_not_found_body(body):
                raise DossierNotFound(f"province system has no dossier {code.text}")
            # A bare 404 is a wrong route (lookup.base_url), not an answer about the dossier.
            raise LookupUnavailable(f"HTTP 404 without a not_found body from {self.base_url}: "
                                    "check lookup.base_url")
        if status in _RETRY_STATUSES:
            raise _Retry(f"HTTP {status}", _retry_after(headers))
        if status != 200:
            # 401/403/400...: our configuration or the adapter is wrong; asking again will not help.
            raise LookupUnavailable(f"province system refused the look-up: HTTP {status} "
                                    f"(check lookup.auth_header and lookup.base_url)")
        content_type = headers.get_content_type()
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise LookupUnavailable(f"province system sent {content_type:.60}, not application/json")
        try:
            data = json.loads(body.decode("utf-8"))
            status_ = DossierStatus.from_dict(data.get("dossier", data) if isinstance(data, dict) else data)
        except (UnicodeDecodeError, ValueError, RecursionError, DossierDataError) as exc:
            raise LookupUnavailable(f"province system sent an unusable status: {exc}") from exc
        if status_.code != code:
            # A different dossier than asked for: showing it would be a wrong look-up.
            raise LookupUnavailable(f"province system answered for another dossier code ({status_.code})")
        return status_

    def close(self) -> None:
        self.clear_cache()
