"""The one interface between the look-up flow and whatever holds the dossiers.

``lookup`` either returns a status or raises one of two honest errors: ``DossierNotFound`` (the system
answered and has no such dossier) and ``LookupUnavailable`` (we could not get a trustworthy answer:
down, slow, refusing us, or talking nonsense). The citizen sees different messages for the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

from common.errors import ConfigError, NetworkError
from kiosk.dossier.code import DossierCode
from kiosk.dossier.model import DossierStatus
from kiosk.errors import KioskError


class DossierNotFound(KioskError):
    """The back end answered: no dossier with this code ("Không tìm thấy hồ sơ")."""

    code = "dossier_not_found"


class LookupUnavailable(NetworkError):
    """No trustworthy answer from the back end ("Hệ thống tra cứu đang tạm gián đoạn...")."""

    code = "lookup_unavailable"


_DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin:
    """(scheme, host, port) of an absolute URL; ValueError when it has none or a bad port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port  # ValueError for a port out of range or not a number
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError(f"not an absolute http(s) URL: {url!r:.80}")
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def show_origin(origin: Origin) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}:{port}"


def check_base_url(base_url: str, allow_insecure_http: bool = False) -> Origin:
    """The origin of ``lookup.base_url``, or ConfigError naming the key and the fix."""
    try:
        origin = origin_of(base_url)
    except ValueError as exc:
        raise ConfigError(f"lookup.base_url = {base_url!r:.80}: expected https://host[:port]/path "
                          f"({exc})") from exc
    parts = urlsplit(base_url)
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ConfigError("lookup.base_url: no user:password@, query or fragment; credentials go in "
                          "lookup.auth_header")
    if not base_url.isascii() or any(c <= " " or c == "\x7f" for c in base_url):
        raise ConfigError("lookup.base_url: use the ASCII (punycode, percent-encoded) form of the URL")
    if origin[0] == "http" and not allow_insecure_http:
        raise ConfigError(f"lookup.base_url = {base_url!r:.80}: plain http would send lookup.auth_header "
                          "and the answers unencrypted; use https://, or set lookup.allow_insecure_http "
                          "= true for a local demo or test server")
    return origin


@runtime_checkable
class DossierBackend(Protocol):
    """Anything that can answer "where is dossier X?"; must be safe to call from a worker thread."""

    def lookup(self, code: DossierCode) -> DossierStatus: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LookupConfig:
    """The ``[lookup]`` section of the kiosk configuration."""

    backend: Literal["demo", "http"] = "demo"
    #: demo store file (simulate mode); seeded on every open
    demo_path: Path = Path("var/dossiers-demo.sqlite")
    #: province one-stop system, e.g. ``https://motcua.example.gov.vn/api/kiosk/v1``
    base_url: str = ""
    #: full header line, e.g. ``Authorization: Bearer <token>``; a value without ``Name:`` is sent
    #: as ``Authorization``
    auth_header: str | None = None
    timeout_s: float = field(default=3.0, metadata={"min": 0.1, "max": 30})
    retries: int = field(default=2, metadata={"min": 0, "max": 5})
    cache_ttl_s: float = field(default=60.0, metadata={"min": 0, "max": 3600})
    #: accept an ``http://`` base_url (a local demo or test server); never for a real province system
    allow_insecure_http: bool = False

    def __post_init__(self) -> None:
        if self.backend == "http":
            check_base_url(self.base_url, self.allow_insecure_http)


def open_backend(config: LookupConfig) -> DossierBackend:
    """The configured back end. The demo store is (re)seeded on every open, dated from today, so
    simulate mode always shows a fresh mix (one overdue, one ready to collect, ...)."""
    # Imported here: the HTTP adapter and SQLite are not needed to build the CLI parser.
    if config.backend == "http":
        from kiosk.dossier.http import HttpDossierBackend

        return HttpDossierBackend(
            config.base_url,
            auth_header=config.auth_header,
            timeout_s=config.timeout_s,
            retries=config.retries,
            cache_ttl_s=config.cache_ttl_s,
            allow_insecure_http=config.allow_insecure_http,
        )
    if config.backend == "demo":
        from kiosk.dossier.demo import DemoDossierStore

        store = DemoDossierStore(config.demo_path)
        store.seed()
        return store
    raise ConfigError(f"lookup.backend: expected 'demo' or 'http', got {config.backend!r}")
