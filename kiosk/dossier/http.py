"""Adapter for the province's one-stop system over HTTP JSON (mapping in docs/lookup.md).

``GET {base_url}/dossiers/{code}`` with ``Accept: application/json`` and the configured auth header.
200 + a valid status -> the status; 404 with ``{"error": "not_found"}`` -> ``DossierNotFound``;
anything else (timeout, refused connection, 5xx, 429, 401/403, a bare 404, malformed or mismatched
JSON) -> ``LookupUnavailable``. Timeouts,
connection errors, 5xx and 429 are retried with exponential backoff and jitter; the others are not,
because asking again gets the same wrong answer. Found statuses are cached for ``cache_ttl_s`` so a
citizen who scans twice, or prints after looking, does not hit the province twice.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import quote

from kiosk.dossier.backend import DossierNotFound, LookupUnavailable
from kiosk.dossier.code import DossierCode
from kiosk.dossier.model import DossierDataError, DossierStatus

log = logging.getLogger(__name__)

#: Largest response we read: one dossier's status is a few kB.
MAX_RESPONSE_BYTES = 256 * 1024
#: Statuses worth asking again (the server may be restarting or shedding load).
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class _Retry(Exception):
    """An attempt failed in a way a later attempt may not."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


def _parse_auth_header(line: str | None) -> tuple[str, str] | None:
    if not line:
        return None
    name, sep, value = line.partition(":")
    if sep and name.strip() and " " not in name.strip():
        return name.strip(), value.strip()
    return "Authorization", line.strip()


def _is_not_found_body(body: bytes) -> bool:
    """The system's own "no such dossier" answer: ``{"error": "not_found"}``."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and data.get("error") == "not_found"


class HttpDossierBackend:
    """``DossierBackend`` for the province system; thread-safe, stdlib only (urllib)."""

    def __init__(
        self,
        base_url: str,
        auth_header: str | None = None,
        timeout_s: float = 3.0,
        retries: int = 2,
        cache_ttl_s: float = 60.0,
        *,
        backoff_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.cache_ttl_s = cache_ttl_s
        self.backoff_s = backoff_s
        self._auth = _parse_auth_header(auth_header)
        self._clock = clock
        self._cache: dict[str, tuple[float, DossierStatus]] = {}
        self._lock = threading.Lock()
        # No proxies from the environment: a kiosk talks to its configured system directly.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
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
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff_s * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
                time.sleep(delay)
            try:
                return self._attempt(code)
            except _Retry as exc:
                last = exc.reason
                log.info("dossier look-up attempt %d/%d failed: %s", attempt + 1, self.retries + 1, last)
                if exc.retry_after_s is not None and attempt < self.retries:
                    time.sleep(min(exc.retry_after_s, 2.0))
        raise LookupUnavailable(f"province system {self.base_url} unavailable after "
                                f"{self.retries + 1} attempts: {last}")

    def _attempt(self, code: DossierCode) -> DossierStatus:
        request = urllib.request.Request(self.url_for(code), headers={"Accept": "application/json"})
        if self._auth:
            request.add_header(*self._auth)
        self.requests_sent += 1
        try:
            started = time.monotonic()
            with self._opener.open(request, timeout=self.timeout_s) as response:
                body = self._read_body(response, started)
                content_type = response.headers.get_content_type()
                announced = response.headers.get("Content-Length", "")
        except urllib.error.HTTPError as exc:
            try:
                error_body = exc.read(4096)
            except OSError:
                error_body = b""
            finally:
                exc.close()
            if exc.code == 404:
                if _is_not_found_body(error_body):
                    raise DossierNotFound(f"province system has no dossier {code.text}") from exc
                # A bare 404 is a wrong route (lookup.base_url), not an answer about the dossier.
                raise LookupUnavailable(f"HTTP 404 without a not_found body from {self.base_url}: "
                                        "check lookup.base_url") from exc
            if exc.code in _RETRY_STATUSES:
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
                raise _Retry(f"HTTP {exc.code}", seconds) from exc
            # 401/403/400...: our configuration or the adapter is wrong; asking again will not help.
            raise LookupUnavailable(f"province system refused the look-up: HTTP {exc.code} "
                                    f"(check lookup.auth_header and lookup.base_url)") from exc
        except TimeoutError as exc:
            raise _Retry(f"no answer within {self.timeout_s:g} s") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _Retry(f"no answer within {self.timeout_s:g} s") from exc
            raise _Retry(f"cannot connect: {exc.reason}") from exc
        except (ConnectionError, OSError, http.client.HTTPException) as exc:  # reset, cut body, bad reply
            raise _Retry(f"connection failed: {exc!r}") from exc
        if announced.isdigit() and len(body) < int(announced) <= MAX_RESPONSE_BYTES:
            # read(n) returns what arrived when the server closes early; a cut body is a network fault
            raise _Retry(f"connection closed after {len(body)} of {announced} bytes")
        if len(body) > MAX_RESPONSE_BYTES:
            raise LookupUnavailable(f"province system sent more than {MAX_RESPONSE_BYTES} bytes")
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise LookupUnavailable(f"province system sent {content_type}, not application/json")
        try:
            data = json.loads(body.decode("utf-8"))
            status = DossierStatus.from_dict(data.get("dossier", data) if isinstance(data, dict) else data)
        except (UnicodeDecodeError, ValueError, DossierDataError) as exc:
            raise LookupUnavailable(f"province system sent an unusable status: {exc}") from exc
        if status.code != code:
            # A different dossier than asked for: showing it would be a wrong look-up.
            raise LookupUnavailable(f"province system answered for another dossier code ({status.code})")
        return status

    def _read_body(self, response: http.client.HTTPResponse, started: float) -> bytes:
        """Read at most MAX_RESPONSE_BYTES + 1 within ``timeout_s`` of the request in total: the socket
        timeout alone applies per read, so a server trickling a byte a second would hold us forever."""
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_RESPONSE_BYTES:
            if time.monotonic() - started > self.timeout_s:
                raise _Retry(f"answer not complete within {self.timeout_s:g} s")
            chunk = response.read1(min(16384, MAX_RESPONSE_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.clear_cache()
