"""A center's files, its settings and ``center-init``: from nothing to a PKI, a broker configuration, a
store that knows the center, and systemd units (docs/provisioning.md, "Center").

Layout of ``--dir`` (default ``/var/lib/motcua-center``)::

    center.json                 the settings below (what init was asked for)
    pki/                        center_pki: root (encrypted key), issuing CA, CRL, named certificates
    broker/mosquitto.conf       generated from deploy/mosquitto/motcua.conf (provisioning.broker)
    broker/motcua.acl           generated from the registry at every change
    broker/data/                Mosquitto's persistence
    registry/enrolled-kiosks.json   for the allocator (contract.enrollment.EnrolledKiosks)
    allocator/allocator.sqlite  the allocator's book
    fleet/fleet.sqlite          the fleet store (unless --db names another, e.g. PostgreSQL)
    systemd/*.service           motcua-broker, motcua-provision, motcua-fleet, motcua-allocator

Idempotent: run again with the same settings, it makes only what is missing and says what it kept;
with other settings it refuses (it never overwrites a key, a certificate or a setting).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from common.errors import ConfigError, ConflictError, ValidationError
from common.files import write_atomically
from contract.schema import parse_dataclass, to_data
from contract.wire import ID_PATTERN, RESERVED_IDS
from provisioning.broker import BrokerPaths, render_acl, render_config, write_acl
from provisioning.center_pki import SERVICE_ROLES, CenterPki
from provisioning.units import DEFAULT_INSTALL_DIR, check_install_dir

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = Path("/var/lib/motcua-center")
_ID = {"pattern": ID_PATTERN, "pattern_hint": "lowercase id: a-z, 0-9, - (2-63 characters)"}


@dataclass(frozen=True)
class CenterSettings:
    center_id: str = field(metadata=_ID)
    center_name: str = field(metadata={"max_len": 200, "text": True})
    province_id: str = field(metadata=_ID)
    province_name: str = field(metadata={"max_len": 200, "text": True})
    #: names and addresses kiosks reach the center by (broker and enrollment certificates; the first
    #: one goes into the kiosks' bundle and the QR code)
    addresses: list[str] = field(default_factory=lambda: ["127.0.0.1"], metadata={"max_items": 16})
    kiosk_port: int = field(default=8883, metadata={"min": 1, "max": 65535})
    service_port: int = field(default=8884, metadata={"min": 1, "max": 65535})
    enroll_port: int = field(default=8443, metadata={"min": 1, "max": 65535})
    #: interface of the kiosks' listeners (broker, enrollment): "" = every interface
    bind: str = ""
    #: the center services' listener stays on this machine
    service_bind: str = "127.0.0.1"
    fleet_listen: str = "127.0.0.1:8080"
    #: the fleet store (SQLite file or PostgreSQL URL); "" = fleet/fleet.sqlite in the center's folder
    db: str = ""
    topic_root: str = "motcua/v1"
    offline_base: int = field(default=800, metadata={"min": 2, "max": 9000})
    offline_block: int = field(default=20, metadata={"min": 1, "max": 1000})
    kiosk_cert_days: int = field(default=365, metadata={"min": 1, "max": 365})
    broker_user: str = "mosquitto"
    install_dir: str = DEFAULT_INSTALL_DIR
    #: a kiosk file (TOML) whose services, rating and citizen settings every new kiosk starts from
    kiosk_template: str = ""
    #: Mosquitto logs to broker/mosquitto.log (the demo; a center logs to the journal through systemd)
    broker_log: bool = False
    #: the kiosks' listener's TLS minimum: tlsv1.3 leaves a revoked certificate no TLS session to resume
    kiosk_tls: Literal["tlsv1.2", "tlsv1.3"] = "tlsv1.2"

    def __post_init__(self) -> None:
        if self.center_id in RESERVED_IDS:
            raise ValueError(f"center_id: {self.center_id!r} is reserved")
        if not self.addresses:
            raise ValueError("addresses: at least one name or address of this center")
        if len({self.kiosk_port, self.service_port, self.enroll_port}) != 3:
            raise ValueError("kiosk_port, service_port and enroll_port must differ")
        check_install_dir(self.install_dir)

    @property
    def public_host(self) -> str:
        return self.addresses[0]


@dataclass(frozen=True)
class BrokerHome:
    """What an init command makes under its folder for a broker (a center's, a province's): the PKI and
    the broker's configuration, ACL, OpenSSL settings and pid file."""

    root: Path

    @property
    def pki(self) -> CenterPki:
        return CenterPki(self.root / "pki")

    @property
    def broker(self) -> Path:
        return self.root / "broker"

    @property
    def broker_conf(self) -> Path:
        return self.broker / "mosquitto.conf"

    @property
    def acl_file(self) -> Path:
        return self.broker / "motcua.acl"

    @property
    def openssl_conf(self) -> Path:
        """OPENSSL_CONF of the broker: no TLS session tickets (see ``OPENSSL_CONF_TEXT``)."""
        return self.broker / "openssl.cnf"

    @property
    def pid_file(self) -> Path:
        return self.broker / "mosquitto.pid"

    @property
    def units(self) -> Path:
        """The generated systemd units (``provisioning.units``), copied to /etc/systemd/system/."""
        return self.root / "systemd"

    def broker_paths(self, with_log: bool = False) -> BrokerPaths:
        """What this folder's broker configuration points at (a center's or a province's broker, laid
        out alike); ``with_log``: Mosquitto logs to broker/mosquitto.log (a center's ``broker_log``)."""
        pki = self.pki
        return BrokerPaths(
            acl_file=self.acl_file,
            persistence_dir=self.broker / "data",
            ca_file=pki.chain_file,
            cert_file=pki.cert_file("broker"),
            key_file=pki.key_file("broker"),
            crl_file=pki.crl_file,
            crl_dir=pki.crl_dir,
            pid_file=self.pid_file,
            log_file=self.broker / "mosquitto.log" if with_log else None,
        )


@dataclass(frozen=True)
class CenterLayout(BrokerHome):
    @property
    def settings_file(self) -> Path:
        return self.root / "center.json"

    @property
    def registry_file(self) -> Path:
        return self.root / "registry" / "enrolled-kiosks.json"

    @property
    def allocator_db(self) -> Path:
        return self.root / "allocator" / "allocator.sqlite"

    @property
    def lock_file(self) -> Path:
        return self.root / "provision.lock"

    def store_url(self, settings: CenterSettings) -> str:
        return settings.db or f"sqlite:///{self.root / 'fleet' / 'fleet.sqlite'}"

    def service_names(self) -> list[str]:
        """Service identities issued here: ``fleet``, ``allocator``, ..., ``fleet.2`` for a second worker."""
        names = []
        for cert in sorted(self.pki.directory.glob("*.crt")):
            if cert.stem.split(".", 1)[0] in SERVICE_ROLES:
                names.append(cert.stem)
        return names


S = TypeVar("S")


def read_settings(path: Path, cls: type[S], what: str, command: str) -> S:
    """An init command's settings file read back by the contract's rules (``what``: center, province)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path.parent} is not a {what} folder (run main.py provision {command})") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        return parse_dataclass(cls, data, what)
    except ValueError as exc:  # SchemaError is a ValueError
        raise ConfigError(str(exc)) from exc


def load_settings(layout: CenterLayout) -> CenterSettings:
    return read_settings(layout.settings_file, CenterSettings, "center", "center-init")


@dataclass
class InitReport:
    """What center-init did (made) and found (kept); ``--json`` prints it."""

    center_id: str
    root: str
    made: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    fingerprint: str = ""
    enroll_url: str = ""


Step = Callable[[str, dict[str, Any]], None]


def _noop(key: str, values: dict[str, Any]) -> None:
    return None


def settle_settings(
    path: Path, settings: Any, existing: Any | None, command: str, made: list[str], kept: list[str]
) -> None:
    """An init command's settings file (``existing``: what it holds, None when missing): kept when it
    says the same, written when missing, refused when it differs (an init never overwrites)."""
    if existing is not None:
        if existing != settings:
            fields = dataclasses.fields(settings)
            changed = sorted(f.name for f in fields if getattr(existing, f.name) != getattr(settings, f.name))
            raise ConflictError(
                f"{path} exists with other settings ({', '.join(changed)}): {command} never overwrites; use "
                "another --dir or edit the file deliberately"
            )
        kept.append(path.name)
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    write_atomically(path, json.dumps(to_data(settings), indent=2).encode() + b"\n", 0o640)
    made.append(path.name)


def settle_pki(
    pki: CenterPki, label: str, name: str, passphrase: bytes | None, made: list[str], kept: list[str]
) -> None:
    """An init command's root and issuing CA: kept when they exist, else made (the root's key encrypted
    with ``passphrase``)."""
    if pki.exists():
        kept.append("pki/root-ca.crt")
        return
    if passphrase is None:
        raise ValidationError("the new root CA needs a passphrase (--passphrase-file FILE, or type it)")
    CenterPki.create(pki.directory, label, name, passphrase)
    made.extend(["pki/root-ca.crt", "pki/root-ca.key (encrypted)", "pki/issuing-ca.crt", "pki/ca.crt",
                 "pki/crl.pem"])


def center_init(
    root: Path,
    settings: CenterSettings,
    passphrase: bytes | None,
    *,
    on_step: Step = _noop,
) -> InitReport:
    """Make what is missing of the center in ``root`` (see the module docstring)."""
    layout = CenterLayout(root.resolve())
    report = InitReport(settings.center_id, str(layout.root))
    existing = load_settings(layout) if layout.settings_file.exists() else None
    settle_settings(layout.settings_file, settings, existing, "center-init", report.made, report.kept)
    on_step("pki", {})
    pki = layout.pki
    settle_pki(pki, settings.center_id, settings.center_name, passphrase, report.made, report.kept)
    report.fingerprint = pki.fingerprint()
    on_step("certificates", {})
    hosts = tuple(dict.fromkeys([*settings.addresses, "localhost", "127.0.0.1"]))
    for name, server_hosts in (("broker", hosts), ("enroll", hosts), *((role, ()) for role in SERVICE_ROLES)):
        if pki.cert_file(name).exists():
            report.kept.append(f"pki/{name}.crt")
            continue
        pki.issue_named(name, server_hosts=server_hosts)
        report.made.append(f"pki/{name}.crt")
    fullchain = pki.directory / "enroll-fullchain.crt"
    if not fullchain.exists():
        write_atomically(
            fullchain, pki.cert_file("enroll").read_bytes() + pki.issuing_cert_file.read_bytes(), 0o644
        )
    _broker_user_can_read(layout, settings)
    layout.allocator_db.parent.mkdir(parents=True, exist_ok=True)
    on_step("store", {})
    from fleet.store import open_store

    store = open_store(layout.store_url(settings), upgrade=True)
    try:
        from fleet.store import Scope

        store.registry.ensure_province(settings.province_id, settings.province_name)
        if settings.center_id not in {c.id for c in store.registry.centers(Scope.everything())}:
            store.registry.add_center(settings.center_id, settings.province_id, settings.center_name)
            report.made.append(f"store: center {settings.center_id}")
        store.enrollment.configure_center(
            settings.center_id,
            enroll_host=settings.public_host,
            enroll_port=settings.enroll_port,
            ca_fingerprint=report.fingerprint,
            broker_host=settings.public_host,
            broker_port=settings.kiosk_port,
            topic_root=settings.topic_root,
            offline_base=settings.offline_base,
            offline_block=settings.offline_block,
        )
        on_step("broker", {})
        made_conf = write_broker_config(layout, settings, with_log=settings.broker_log)
        (report.made if made_conf else report.kept).append("broker/mosquitto.conf")
        from provisioning.registry import sync_files

        synced = sync_files(layout, settings, store)
        (report.made if synced.acl_changed else report.kept).append("broker/motcua.acl (from the registry)")
    finally:
        store.close()
    _services_user_owns(layout)
    on_step("units", {})
    from provisioning.units import write_units

    for name in write_units(layout, settings):
        report.made.append(f"systemd/{name}")
    report.enroll_url = f"https://{settings.public_host}:{settings.enroll_port}"
    return report


#: The broker's OpenSSL settings. A resumed TLS session skips the certificate check, CRL included: a
#: revoked certificate that saved a session ticket could come back. No tickets (TLS 1.2 and 1.3): TLS 1.3
#: cannot resume at all then; TLS 1.2 can still resume a session id from the broker's cache, for at
#: most OpenSSL's session timeout after that client's last full handshake (docs/provisioning.md).
OPENSSL_CONF_TEXT = """# Generated by main.py provision center-init: the broker's OPENSSL_CONF.
openssl_conf = openssl_init

[openssl_init]
ssl_conf = ssl_sect

[ssl_sect]
system_default = system_default_sect

[system_default_sect]
MinProtocol = TLSv1.2
CipherString = DEFAULT:@SECLEVEL=2
Options = -SessionTicket
NumTickets = 0
"""


def write_broker_config(layout: CenterLayout, settings: CenterSettings, *, with_log: bool = False) -> bool:
    (layout.broker / "data").mkdir(parents=True, exist_ok=True)
    text = render_config(
        layout.broker_paths(with_log),
        kiosk_listen=(settings.bind, settings.kiosk_port),
        service_listen=(settings.service_bind, settings.service_port),
        user=settings.broker_user,
        kiosk_tls=settings.kiosk_tls,
        header=f"# Mosquitto of center {settings.center_id}: generated by main.py provision center-init "
        "from deploy/mosquitto/motcua.conf; do not edit (docs/provisioning.md).",
    )
    try:
        if layout.broker_conf.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    if layout.broker_conf.exists():
        raise ConflictError(
            f"{layout.broker_conf} exists with other content; center-init does not overwrite it"
        )
    write_atomically(layout.broker_conf, text.encode(), 0o644)
    write_atomically(layout.openssl_conf, OPENSSL_CONF_TEXT.encode(), 0o644)
    if not layout.acl_file.exists():
        write_acl(
            layout.acl_file,
            render_acl(settings.center_id, [], layout.service_names(), topic_root=settings.topic_root),
        )
    return True


def _broker_user_can_read(layout: CenterLayout, settings: CenterSettings) -> None:
    """The broker drops to its own user: its key must be readable by it, the rest of pki/ by nobody else."""
    if os.geteuid() != 0 or settings.broker_user == "root":
        return
    try:
        user = pwd.getpwnam(settings.broker_user)
    except KeyError:
        return  # not installed yet: the runbook's chown step says what to do
    pki = layout.pki
    for path in (pki.key_file("broker"), pki.cert_file("broker")):
        os.chown(path, user.pw_uid, user.pw_gid)
    for folder in (pki.directory, layout.broker):
        os.chmod(folder, 0o755)
    for folder in (layout.broker, layout.broker / "data"):
        os.chown(folder, user.pw_uid, user.pw_gid)


#: the user the fleet and allocator units run as (provisioning/units.py)
SERVICE_USER = "motcua"


def _services_user_owns(layout: CenterLayout) -> None:
    """The fleet's store, the allocator's book and their keys belong to the services' user, if it exists."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return
    paths = [layout.root / "fleet", layout.allocator_db.parent]
    for folder in list(paths):
        paths += list(folder.rglob("*")) if folder.exists() else []
    for name in ("fleet", "allocator", "counter"):
        paths += [layout.pki.cert_file(name), layout.pki.key_file(name)]
    for path in paths:
        if path.exists():
            os.chown(path, user.pw_uid, user.pw_gid)
