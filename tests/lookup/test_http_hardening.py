"""The HTTP adapter against hostile or broken servers (security review): redirects, plain http, slow
headers, non-ASCII numbers in headers, oversized answers. Real local servers, real sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from common.errors import ConfigError
from contract.schema import parse_dataclass
from kiosk.dossier import HttpDossierBackend, LookupConfig, LookupUnavailable, parse_dossier_code
from kiosk.dossier.http import MAX_RESPONSE_BYTES, LookupRedirectRefused
from kiosk.error_screens import screen_key

from .conftest import ProvinceServer, Reply, Tls
from .test_http_backend import STATUS

CODE = parse_dossier_code(str(STATUS["code"]))
TOKEN = "Authorization: Bearer s3cret-t0ken"


def adapter(base_url: str, **kwargs: object) -> HttpDossierBackend:
    options: dict[str, object] = {"timeout_s": 1.0, "retries": 0, "cache_ttl_s": 0, "backoff_s": 0.01,
                                  "auth_header": TOKEN}
    if base_url.startswith("http://"):
        options["allow_insecure_http"] = True  # local test servers
    options.update(kwargs)
    return HttpDossierBackend(base_url, **options)  # type: ignore[arg-type]


@pytest.fixture
def other() -> Iterator[ProvinceServer]:
    """A second server: another origin (another port)."""
    server = ProvinceServer()
    yield server
    server.close()


# --- redirects ---------------------------------------------------------------------------------------


def test_redirect_to_another_origin_is_not_followed(province: ProvinceServer, other: ProvinceServer) -> None:
    other.on(CODE.text, Reply(body=STATUS))
    elsewhere = f"{other.base_url}/dossiers/{CODE}"
    province.on(CODE.text, Reply(status=302, body="", headers={"Location": elsewhere}))
    with pytest.raises(LookupRedirectRefused, match="another origin") as info:
        adapter(province.base_url).lookup(CODE)
    assert info.value.code == "lookup_redirect_refused"
    assert screen_key(info.value) == "lookup.unavailable"  # a LookupUnavailable for the citizen
    assert other.requests == []  # the token never left the configured origin
    assert len(province.requests) == 1  # not retried: the same redirect would come again


def test_same_origin_redirect_is_followed_with_the_credential(province: ProvinceServer) -> None:
    province.script[f"/api/v2/dossiers/{CODE}"] = [Reply(body=STATUS)]
    province.on(CODE.text, Reply(status=308, body="", headers={"Location": f"/api/v2/dossiers/{CODE}"}))
    assert adapter(province.base_url).lookup(CODE).code == CODE
    assert [r.path for r in province.requests] == [f"/api/v1/dossiers/{CODE}", f"/api/v2/dossiers/{CODE}"]
    assert all(r.headers["authorization"] == "Bearer s3cret-t0ken" for r in province.requests)


def test_redirect_loop_ends(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(status=302, body="", headers={"Location": f"/api/v1/dossiers/{CODE}"}))
    with pytest.raises(LookupRedirectRefused, match="redirects"):
        adapter(province.base_url).lookup(CODE)
    assert len(province.requests) == 4  # the request and three redirects, then stop


@pytest.mark.parametrize("location", ["http://[", "Fhttps://elsewh0.H12-[x", "/\u00e9", "/a b", "//"])
def test_malformed_location_is_refused(province: ProvinceServer, location: str) -> None:
    """Found by fuzzing (text.http_response): urljoin raised ValueError for a Location with '['."""
    province.on(CODE.text, Reply(status=302, body="", headers={"Location": location}))
    with pytest.raises(LookupUnavailable):
        adapter(province.base_url).lookup(CODE)


def test_https_to_http_downgrade_is_refused(
    province_tls: ProvinceServer, other: ProvinceServer, tls: Tls
) -> None:
    other.on(CODE.text, Reply(body=STATUS))
    downgrade = f"{other.base_url}/dossiers/{CODE}"  # plain http: the token would cross in clear
    province_tls.on(CODE.text, Reply(status=301, body="", headers={"Location": downgrade}))
    with pytest.raises(LookupRedirectRefused, match="downgrade"):
        adapter(province_tls.base_url, ssl_context=tls.client).lookup(CODE)
    assert len(province_tls.requests) == 1 and other.requests == []


def test_https_look_up_verifies_the_certificate(province_tls: ProvinceServer, tls: Tls) -> None:
    province_tls.on(CODE.text, Reply(body=STATUS))
    assert adapter(province_tls.base_url, ssl_context=tls.client).lookup(CODE).code == CODE
    assert province_tls.requests[0].headers["authorization"] == "Bearer s3cret-t0ken"
    # The system trust store does not know the test CA: refused, token not sent, not retried (asking
    # again meets the same certificate).
    with pytest.raises(LookupUnavailable, match="certificate"):
        adapter(province_tls.base_url, retries=2).lookup(CODE)
    assert len(province_tls.requests) == 1
    assert province_tls.connections == 2


# --- plain http ---------------------------------------------------------------------------------------


def test_plain_http_needs_the_explicit_flag(province: ProvinceServer) -> None:
    with pytest.raises(ConfigError, match="allow_insecure_http"):
        HttpDossierBackend(province.base_url)
    with pytest.raises(ConfigError, match="allow_insecure_http"):
        parse_dataclass(LookupConfig, {"backend": "http", "base_url": province.base_url})
    config = parse_dataclass(
        LookupConfig, {"backend": "http", "base_url": province.base_url, "allow_insecure_http": True}
    )
    assert config.allow_insecure_http
    for bad in ("ftp://example.vn/api", "https://user:pw@example.vn/api", "https:///api", "https://[::1/api"):
        with pytest.raises(ConfigError, match="base_url"):
            HttpDossierBackend(bad)


# --- the time budget covers the headers ---------------------------------------------------------------


def test_trickled_headers_are_cut_off_at_the_budget(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(body=STATUS, head_drip_s=0.05))  # ~150 header bytes: ~7.5 s
    started = time.monotonic()
    with pytest.raises(LookupUnavailable, match=r"within 0\.5 s"):
        adapter(province.base_url, timeout_s=0.5).lookup(CODE)
    assert time.monotonic() - started < 1.0  # 3.9 s before the deadline covered the headers


class SilentAfterAccept:
    """A TCP listener that accepts and never answers (no HTTP at all), like a hung TLS terminator."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


def test_tls_handshake_that_never_comes_is_cut_off_at_the_budget(tls: Tls) -> None:
    silent = SilentAfterAccept()
    try:
        started = time.monotonic()
        with pytest.raises(LookupUnavailable, match=r"within 0\.4 s"):
            hung = adapter(f"https://127.0.0.1:{silent.port}/api", timeout_s=0.4, ssl_context=tls.client)
            hung.lookup(CODE)
        assert time.monotonic() - started < 1.0
    finally:
        silent.close()


# --- numbers in headers: ASCII digits only ------------------------------------------------------------


def test_retry_after_with_a_unicode_digit_is_no_hint(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(status=429, body="", headers={"Retry-After": "²"}), Reply(body=STATUS))
    assert adapter(province.base_url, retries=1).lookup(CODE).code == CODE
    assert len(province.requests) == 2


@pytest.mark.parametrize("value", ["²", "1_0", "+10", "0x10", "10, 10", "99999999999999999999"])
def test_malformed_content_length_is_refused(province: ProvinceServer, value: str) -> None:
    province.on(CODE.text, Reply(body=STATUS, content_length=value))
    with pytest.raises(LookupUnavailable, match="Content-Length"):
        adapter(province.base_url).lookup(CODE)
    assert len(province.requests) == 1


def test_conflicting_content_lengths_are_refused(province: ProvinceServer) -> None:
    body_length = len(str(STATUS).encode())  # any second value that differs
    province.on(CODE.text, Reply(body=STATUS, headers={"Content-Length": str(body_length + 1)}))
    with pytest.raises(LookupUnavailable, match="Content-Length"):
        adapter(province.base_url).lookup(CODE)


# --- size cap -----------------------------------------------------------------------------------------


def test_announced_oversized_answer_is_refused_before_reading(province: ProvinceServer) -> None:
    province.on(CODE.text, Reply(body="x" * 10, content_length=str(50 * 1024 * 1024)))
    started = time.monotonic()
    with pytest.raises(LookupUnavailable, match=f"more than {MAX_RESPONSE_BYTES}"):
        adapter(province.base_url, timeout_s=2).lookup(CODE)
    assert time.monotonic() - started < 1.0  # did not wait for 50 MB that never come


def test_unannounced_oversized_answer_is_cut_at_the_cap(province: ProvinceServer) -> None:
    huge = b'{"code": "' + b"x" * (2 * MAX_RESPONSE_BYTES) + b'"}'
    province.on(CODE.text, Reply(body=huge, content_length=""))  # no length: read to the close
    with pytest.raises(LookupUnavailable, match=f"more than {MAX_RESPONSE_BYTES}"):
        adapter(province.base_url).lookup(CODE)
