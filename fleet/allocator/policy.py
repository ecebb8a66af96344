"""What one kiosk may ask of the allocator: enrollment, the center's catalog, quotas and rates.

Each guard exists because one kiosk (a hostile certificate, or a broken one) could otherwise break
numbering for every other kiosk of the center (issue 10, item 2; docs/numbering.md "Guards"):

- ``Registry``: the kiosks the center enrolled and the slot of each (issue 12). The source of truth is
  the file the provisioning service rewrites atomically at every change (``enrolled-kiosks/1``), not the
  fleet's store: the allocator is its own unit with its own user and no database credentials, it must
  answer in milliseconds while the store may be busy or down, and the same file is what the broker's
  ACL is generated from, so the allocator and the broker can never disagree about who is enrolled.
- ``Catalog``: the services of the center and their prefixes (the center-wide configuration push,
  or a file given to the allocator); without one, the book pins a service's prefix per day instead.
- ``Limits``: a per-kiosk quota of online numbers per service and day, and a token bucket of requests
  per kiosk (``common.ratelimit.RateLimiter``).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from contract.config import ConfigPush, ServiceArea
from contract.enrollment import EnrolledKiosks
from contract.errors import ContractError
from contract.schema import parse_dataclass, read_toml

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Per-kiosk limits; the defaults leave a legitimate kiosk far below them (a citizen needs seconds
    per ticket) while one kiosk can no longer take a service's whole online range."""

    #: online numbers one kiosk may take per service and day; None: half of the online range. Over it
    #: the kiosk is answered ``exhausted`` and prints from its own offline block.
    kiosk_quota: int | None = None
    #: requests per kiosk: a bucket of ``burst`` requests, refilled at ``rate_per_s``
    burst: int = 60
    rate_per_s: float = 2.0
    #: an online number neither printed nor voided after this long stops counting as waiting (voided
    #: ``unconfirmed``; a late "printed" report brings it back)
    unconfirmed_ttl_s: float = 900.0
    #: offline numbers reported for a day further than this from the allocator's day are refused
    report_days: int = 31

    def __post_init__(self) -> None:
        if self.kiosk_quota is not None and self.kiosk_quota < 1:
            raise ValueError("kiosk_quota: at least 1")
        if self.burst < 1 or self.rate_per_s <= 0:
            raise ValueError("burst: at least 1; rate_per_s: more than 0")
        if self.unconfirmed_ttl_s < 10:
            raise ValueError("unconfirmed_ttl_s: at least 10 s")

    def quota(self, online_max: int) -> int:
        return self.kiosk_quota if self.kiosk_quota is not None else max(1, online_max // 2)


class Catalog:
    """The center's services (code -> prefix). Two sources, the push winning: the center-wide
    configuration push (``_center/config/set``, retained: what every kiosk applies) and a file given at
    start (``--catalog``: a TOML file with ``[[services]]`` as in a kiosk's configuration)."""

    def __init__(self, file_services: dict[str, str] | None = None) -> None:
        self._file = file_services
        self._pushed: dict[str, str] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def from_file(path: Path) -> Catalog:
        """ContractError naming the file when it cannot be read or a service is invalid."""
        data = read_toml(path)
        raw = data.get("services")
        if not isinstance(raw, list) or not raw:
            raise ContractError(f"{path}: no [[services]] (the center's catalog: code and prefix of each)")
        services = [parse_dataclass(ServiceArea, item, f"{path}: services[{i}]", lenient=True)
                    for i, item in enumerate(raw)]
        return Catalog(_services(services, str(path)))

    def on_push(self, payload: bytes) -> None:
        """A retained center-wide push: its services become the catalog (an empty payload clears the
        retained push; a push without services leaves the catalog as it was)."""
        if not payload:
            with self._lock:
                self._pushed = None
            return
        push = ConfigPush.parse(payload)  # ContractError: the caller logs it, the catalog stays
        if push.config.services is not None:
            services = _services(push.config.services, "center push")
            with self._lock:
                self._pushed = services
            log.info("catalog from the center's push (version %d): %d services", push.version, len(services))

    def services(self) -> dict[str, str] | None:
        """code -> prefix, or None when no catalog is known."""
        with self._lock:
            return self._pushed if self._pushed is not None else self._file


def _services(services: list[ServiceArea], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    prefixes: set[str] = set()
    for service in services:
        if service.code in out or service.prefix in prefixes:
            raise ContractError(f"{what}: service {service.code} or prefix {service.prefix} twice")
        out[service.code] = service.prefix
        prefixes.add(service.prefix)
    return out


class RegistryUnavailable(Exception):
    """No enrolled-kiosks registry could be read yet: nobody can be checked."""


class Registry:
    """``enrolled-kiosks/1`` as the provisioning service last wrote it, re-read when the file changes.

    A file that cannot be read (missing, half-written by hand, invalid) keeps the last good registry in
    use; with none ever read, every kiosk is refused (``problem`` says why, in the allocator's health)."""

    def __init__(self, path: Path, center_id: str) -> None:
        self.path = path
        self.center_id = center_id
        self._stamp: tuple[int, int, int] | None = None
        self._current: EnrolledKiosks | None = None
        self.problem = "not read yet"
        self._lock = threading.Lock()

    def current(self) -> EnrolledKiosks | None:
        """The registry to check against (a stat per call; re-read only when the file changed)."""
        with self._lock:
            try:
                info = os.stat(self.path)
            except OSError as exc:
                self._note(f"{self.path}: {exc.strerror or exc}")
                return self._current
            stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    registry = EnrolledKiosks.load(self.path)
                except ContractError as exc:
                    self._note(exc.message)
                else:
                    if self._current is None or registry.generation != self._current.generation:
                        log.info("enrolled kiosks: generation %d, %d kiosks", registry.generation,
                                 len(registry.kiosks))
                    self._current, self.problem = registry, ""
            return self._current

    def refusal(self, kiosk: str, slot: int) -> str | None:
        """Why ``kiosk`` asking with ``slot`` may not be served (None: it may). Raises
        ``RegistryUnavailable`` when no registry could ever be read."""
        registry = self.current()
        if registry is None:
            raise RegistryUnavailable(self.problem)
        return registry.refusal(self.center_id, kiosk, slot)

    @property
    def generation(self) -> int | None:
        with self._lock:
            return None if self._current is None else self._current.generation

    def _note(self, problem: str) -> None:
        if problem != self.problem:
            log.error("enrolled-kiosks registry not usable (%s); %s", problem,
                      "keeping the last one read" if self._current else "refusing every kiosk")
        self.problem = problem[:300]
