"""The center's Mosquitto: its configuration (from ``deploy/mosquitto/motcua.conf``), the ACL generated
from the registry of enrolled kiosks, and the reload that applies a changed ACL to connected clients.

- **Configuration**: the deployed file with the center's paths and ports, and on both listeners what the
  center needs whatever the file says: TLS 1.2 at least, the CRL (``crlfile`` read at start, plus the
  ``capath`` folder where a new CRL reaches the next handshake, ``center_pki``); on the services'
  listener ``use_username_as_clientid``, so a service's client id is always its certificate's CN (a
  reserved name, or ``role.N``): it can never take a kiosk's client id and so never kick a kiosk off.
- **ACL**: the deployed ACL's ``user`` blocks for the services (one block per issued identity), one
  ``provisioner`` block, and **one block per enrolled kiosk** confining it to its own center and id:
  ``topic readwrite motcua/v1/<center>/<kiosk>/#`` and ``topic read motcua/v1/<center>/_center/#``. No
  ``pattern`` lines: a pattern applies to every certificate the CA ever signed, a revoked one included.
- **Reload**: SIGHUP (pid file). Mosquitto re-reads the ACL and re-checks every connected client: a kiosk
  whose block is gone gets PUBACK 135 for its publishes and no more messages, at once (seen here with
  2.0.11), while every other client carries on.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError, NetworkError
from common.files import write_atomically

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "mosquitto"
TEMPLATE = DEPLOY / "motcua.conf"
TEMPLATE_ACL = DEPLOY / "motcua.acl"


@dataclass(frozen=True)
class BrokerPaths:
    """What the generated configuration points at."""

    acl_file: Path
    persistence_dir: Path
    ca_file: Path
    cert_file: Path
    key_file: Path
    crl_file: Path
    crl_dir: Path
    pid_file: Path
    log_file: Path | None = None


@dataclass(frozen=True)
class KioskGrant:
    kiosk_id: str
    center_id: str


def _sections(lines: list[str]) -> list[list[str]]:
    """The file cut before every ``listener`` line: [global part, listener 1, listener 2, ...]."""
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.strip().startswith("listener "):
            sections.append([])
        sections[-1].append(line)
    return sections


def _has(section: list[str], option: str) -> bool:
    return any(line.split("#", 1)[0].split()[:1] == [option] for line in section)


def _set(section: list[str], option: str, value: str) -> None:
    """Replace ``option`` in a listener section, or add it at the end of the section's settings."""
    for index, line in enumerate(section):
        if line.split("#", 1)[0].split()[:1] == [option]:
            section[index] = f"{option} {value}"
            return
    end = len(section)
    while end > 1 and (not section[end - 1].strip() or section[end - 1].lstrip().startswith("#")):
        end -= 1  # after the last setting, before the comments that introduce the next listener
    section.insert(end, f"{option} {value}")


def render_config(
    paths: BrokerPaths,
    *,
    kiosk_listen: tuple[str, int],
    service_listen: tuple[str, int],
    user: str = "mosquitto",
    template: Path = TEMPLATE,
    header: str = "",
    kiosk_tls: str = "tlsv1.2",
) -> str:
    """The center's ``mosquitto.conf`` from the deployed template (docs/provisioning.md)."""
    try:
        text = template.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{template}: {exc}") from exc
    replacements = {
        "/etc/mosquitto/motcua.acl": str(paths.acl_file),
        "/var/lib/mosquitto/": f"{paths.persistence_dir}/",
        "/etc/mosquitto/certs/ca.crt": str(paths.ca_file),
        "/etc/mosquitto/certs/broker.crt": str(paths.cert_file),
        "/etc/mosquitto/certs/broker.key": str(paths.key_file),
    }
    for old, new in replacements.items():
        if old not in text:
            raise ConfigError(f"{template} no longer contains {old!r}; update provisioning/broker.py")
        text = text.replace(old, new)
    sections = _sections(text.splitlines())
    listeners = sections[1:]
    if len(listeners) != 2:
        raise ConfigError(f"{template}: expected two listeners (kiosks, services), found {len(listeners)}")
    for section, (host, port) in zip(listeners, (kiosk_listen, service_listen), strict=True):
        section[0] = f"listener {port} {host}" if host else f"listener {port}"
        if not _has(section, "tls_version"):
            _set(section, "tls_version", "tlsv1.2")  # Mosquitto 2.0: the minimum version
        _set(section, "crlfile", str(paths.crl_file))
        _set(section, "capath", str(paths.crl_dir))
        if not _has(section, "require_certificate"):
            _set(section, "require_certificate", "true")
        _set(section, "use_identity_as_username", "true")
    kiosks, services = listeners
    if kiosk_tls == "tlsv1.3":  # the stricter wins: TLS 1.3 has no session to resume (no tickets given)
        _set(kiosks, "tls_version", "tlsv1.3")
    _set(kiosks, "use_username_as_clientid", "true")
    # A service's client id is its certificate's CN: never a kiosk's (kiosk ids cannot be reserved names
    # nor contain '.'), so no service can take over a kiosk's session.
    _set(services, "use_username_as_clientid", "true")
    body = "\n".join("\n".join(section) for section in sections)
    out = [header.rstrip() + "\n" if header else "", f"user {user}\n", f"pid_file {paths.pid_file}\n"]
    out += [body, "\n"]
    if paths.log_file is not None:
        out.append(f"\nlog_dest file {paths.log_file}\nlog_type error\nlog_type warning\nlog_type notice\n")
    return "".join(out)


def service_blocks(template: Path = TEMPLATE_ACL) -> dict[str, list[str]]:
    """The deployed ACL's ``user`` blocks: role -> its topic lines (the patterns for kiosks are left out)."""
    try:
        lines = template.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{template}: {exc}") from exc
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in lines:
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith("topic") else raw.strip()
        if not line:
            continue
        words = line.split()
        if words[0] == "user":
            current = blocks.setdefault(words[1], [])
        elif words[0] == "pattern":
            current = None  # kiosks get their own generated blocks instead
        elif words[0] == "topic" and current is not None:
            current.append(line)
    return blocks


def provisioner_block(center_id: str, topic_root: str = "motcua/v1") -> list[str]:
    base = f"{topic_root}/{center_id}"
    return [
        f"topic read {base}/+/cert/req",
        f"topic write {base}/+/cert/res",
        f"topic read {base}/+/event/self_test",
    ]


def render_acl(
    center_id: str,
    kiosks: Iterable[KioskGrant],
    service_names: Sequence[str],
    *,
    topic_root: str = "motcua/v1",
    template: Path = TEMPLATE_ACL,
    generation: int = 0,
) -> str:
    blocks = service_blocks(template)
    blocks["provisioner"] = provisioner_block(center_id, topic_root)
    out = [
        f"# Mosquitto ACL of center {center_id}: generated by main.py provision (generation {generation});",
        "# do not edit: regenerated at every enrollment, replacement and revocation (docs/provisioning.md).",
        "",
    ]
    for name in sorted(set(service_names)):
        role = name.split(".", 1)[0]
        if role not in blocks:
            continue
        out.append(f"user {name}")
        out.extend(blocks[role])
        out.append("")
    for grant in sorted(kiosks, key=lambda g: g.kiosk_id):
        if grant.center_id != center_id:
            continue
        base = f"{topic_root}/{center_id}"
        out += [
            f"user {grant.kiosk_id}",
            f"topic readwrite {base}/{grant.kiosk_id}/#",
            f"topic read {base}/_center/#",
            "",
        ]
    return "\n".join(out)


def write_acl(path: Path, text: str) -> bool:
    """Write the ACL if it changed (0644: the broker drops to its own user). True when written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    write_atomically(path, text.encode(), 0o644)
    return True


def reload(pid_file: Path) -> int:
    """SIGHUP to the broker named by its pid file (the ACL is re-read and re-applied to every client)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError) as exc:
        raise NetworkError(f"broker pid file {pid_file}: {exc} (is the broker running?)") from exc
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError as exc:
        raise NetworkError(f"broker pid {pid} from {pid_file} is not running") from exc
    return pid


LISTENER_RE = re.compile(r"^listener (\d+)(?: (\S+))?$", re.M)


def listeners_of(conf_text: str) -> list[tuple[str, int]]:
    return [(m.group(2) or "", int(m.group(1))) for m in LISTENER_RE.finditer(conf_text)]
