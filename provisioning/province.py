"""A province's PKI and its centers' bridges (docs/province.md): ``province-init`` and ``bridge-cert``.

The province's CA is made exactly as a center's (``center_pki.CenterPki``): an offline root (its key
encrypted with the technician's passphrase, carried away after init) and an online issuing CA that signs
everything else; ``pki/ca.crt`` (issuing + root) is the province broker's ``cafile`` and what every
bridge and worker trusts. Layout of ``--dir`` (default ``/var/lib/motcua-province``)::

    province.json               the settings below (what init was asked for)
    pki/                        root (encrypted key), issuing CA, ca.crt, CRL (center_pki), and:
    pki/broker.crt|key          the province broker's server certificate (SAN = every --broker-host,
                                localhost, 127.0.0.1)
    pki/fleet-1.crt|key ...     one client certificate per fleet ingest worker (``--workers``)
    pki/crl.pem, pki/crl.d/     the issuing CA's CRL (center_pki): the revoked bridge certificates
    bridges/bridge-<center>.crt what ``bridge-cert`` issued (the record that refuses a second one)
    bridges/revoked.json        every bridge certificate revoked (serial, center, when, why): the CRL's
                                source, signed again in full at each revocation and refresh
    bridges/revoked/bridge-<center>.<serial>.crt   a revoked certificate's record, moved there
    broker/mosquitto.conf       the province broker's configuration (``provisioning.broker.render_config``
                                on ``deploy/mosquitto/motcua.conf``: the CRL on both listeners, the kiosk
                                listener on 127.0.0.1 only), broker/openssl.cnf (no TLS session tickets),
                                broker/motcua.acl (the shipped ACL without its kiosk patterns, made once:
                                the technician appends the bridges' blocks)

Names: the province broker runs the shipped ``deploy/mosquitto/motcua.acl`` (docs/province.md), whose
worker blocks are ``fleet``, ``fleet-1`` ... ``fleet-4``, and ``fleet ingest --workers N --cert
pki/fleet-{n}.crt`` numbers its workers ``fleet-1`` .. ``fleet-N``: the workers' CNs are those (the
broker makes a certificate's CN its username, ``use_identity_as_username``, and its client id). A
center's second worker is ``fleet.2`` instead because the center generates its ACL from the names it
issued (``provisioning.broker.render_acl``). A bridge is ``bridge-<center_id>``, the user of its
``deploy/province/bridge.acl`` block.

``bridge-cert`` writes into ``--out`` what the technician carries to the center: ``bridge.key`` (0600),
``bridge.crt``, ``province-ca.crt``, ``center-bridge.conf`` (``deploy/province/center-bridge.conf``
filled in: the center's id, the province's address, the three paths) and ``bridge-<center>.acl``
(``deploy/province/bridge.acl`` for that center, to append to the province broker's ACL). The bridge's
key is made here and leaves with those files: the province keeps only the certificate.

``bridge-revoke`` (and ``bridge-cert --force``, for the certificate it replaces) adds the serial to
``bridges/revoked.json`` and publishes the CRL with ``CenterPki.publish_crl`` (``crl.pem`` and the next
``crl.d`` file, which the running broker's next handshake of a bridge reads: no restart), then moves the
record out of the way. A CRL lives ``CRL_DAYS``: ``province-crl`` signs it again when less than
``CRL_REFRESH`` is left (a daily timer); an expired CRL makes the broker refuse every client.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from common.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from common.files import write_atomically
from common.identity import serial_hex, write_public
from contract.schema import parse_dataclass, to_data
from contract.wire import ID_HINT, ID_PATTERN, ID_RE, RESERVED_IDS
from provisioning.broker import TEMPLATE_ACL, BrokerPaths, render_config
from provisioning.center import OPENSSL_CONF_TEXT, BrokerHome, read_settings, settle_pki, settle_settings
from provisioning.center_pki import CRL_REFRESH, Revoked

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "province"
BRIDGE_TEMPLATE = DEPLOY / "center-bridge.conf"
BRIDGE_ACL_TEMPLATE = DEPLOY / "bridge.acl"
DEFAULT_DIR = Path("/var/lib/motcua-province")
#: where the template's three files live (the default of ``--certs-dir``: the center's Mosquitto)
TEMPLATE_CERTS_DIR = "/etc/mosquitto/certs"
TEMPLATE_ADDRESS = "PROVINCE_HOST:8884"
#: the files ``bridge-cert`` writes, by the template's names
CA_NAME, CERT_NAME, KEY_NAME = "province-ca.crt", "bridge.crt", "bridge.key"
SECTION_NAME = "center-bridge.conf"
#: X.509's upper bound for a CN (RFC 5280 ub-common-name): "bridge-" leaves 57 characters of center id
CN_MAX = 64
BRIDGE_PREFIX = "bridge-"
_ID = {"pattern": ID_PATTERN, "pattern_hint": ID_HINT}
_HOST_RE = re.compile(r"[A-Za-z0-9.:-]{1,253}")


@dataclass(frozen=True)
class ProvinceSettings:
    province_id: str = field(metadata=_ID)
    province_name: str = field(metadata={"max_len": 200, "text": True})
    #: names and addresses the centers reach the province broker by (its certificate's SANs); the first
    #: one goes into the bridge sections ``bridge-cert`` writes
    broker_hosts: list[str] = field(default_factory=lambda: ["127.0.0.1"], metadata={"max_items": 16})
    #: the province broker's services listener (the bridges and the workers connect there)
    service_port: int = field(default=8884, metadata={"min": 1, "max": 65535})
    #: fleet ingest workers, one certificate each: fleet-1 .. fleet-N (the shipped ACL has 4 blocks)
    workers: int = field(default=2, metadata={"min": 1, "max": 64})

    def __post_init__(self) -> None:
        if not self.broker_hosts:
            raise ValueError("broker_hosts: at least one name or address of the province broker")
        for host in self.broker_hosts:
            if not _HOST_RE.fullmatch(host):
                raise ValueError(f"broker_hosts: {host!r} is not a host name or an IP address")

    @property
    def address(self) -> str:
        return f"{self.broker_hosts[0]}:{self.service_port}"


def worker_names(workers: int) -> list[str]:
    """The fleet ingest workers' CNs: ``fleet-1`` .. ``fleet-N`` (``fleet ingest --cert fleet-{n}.crt``)."""
    return [f"fleet-{n}" for n in range(1, workers + 1)]


def bridge_name(center_id: str) -> str:
    """``bridge-<center_id>``, the bridge's CN, MQTT username and client id at the province; a center id
    as the contract writes them (``contract.wire.ID_PATTERN``), not a reserved name, short enough for a CN."""
    if ID_RE.fullmatch(center_id) is None:
        raise ValidationError(f"{center_id!r} is not a center id ({ID_HINT})")
    if center_id in RESERVED_IDS:
        raise ValidationError(f"{center_id!r} is a reserved name, not a center id")
    name = BRIDGE_PREFIX + center_id
    if len(name) > CN_MAX:
        raise ValidationError(
            f"{center_id!r}: a bridge's certificate name is bridge-<center id>, at most {CN_MAX} characters "
            f"(a center id of at most {CN_MAX - len(BRIDGE_PREFIX)})"
        )
    return name


@dataclass(frozen=True)
class ProvinceLayout(BrokerHome):
    @property
    def settings_file(self) -> Path:
        return self.root / "province.json"

    @property
    def bridges(self) -> Path:
        return self.root / "bridges"

    def bridge_record(self, center_id: str) -> Path:
        return self.bridges / f"{bridge_name(center_id)}.crt"

    @property
    def revoked_file(self) -> Path:
        return self.bridges / "revoked.json"

    def revoked_record(self, center_id: str, serial: str) -> Path:
        return self.bridges / "revoked" / f"{bridge_name(center_id)}.{serial}.crt"

    def broker_paths(self) -> BrokerPaths:
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
        )


def load_settings(layout: ProvinceLayout) -> ProvinceSettings:
    return read_settings(layout.settings_file, ProvinceSettings, "province", "province-init")


@dataclass
class ProvinceReport:
    """What province-init did (made) and found (kept); ``--json`` prints it."""

    province_id: str
    root: str
    made: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    fingerprint: str = ""


def province_init(root: Path, settings: ProvinceSettings, passphrase: bytes | None) -> ProvinceReport:
    """Make what is missing of the province's PKI in ``root`` (module docstring). Idempotent like
    ``center_init``: the same settings again make only what is missing; other settings are refused."""
    try:  # the fields' rules (the id's pattern, the ranges): what load_settings will check too
        parse_dataclass(ProvinceSettings, to_data(settings), "province")
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    if settings.province_id in RESERVED_IDS:
        raise ValidationError(f"{settings.province_id!r} is a reserved name, not a province id")
    layout = ProvinceLayout(root.resolve())
    report = ProvinceReport(settings.province_id, str(layout.root))
    existing = load_settings(layout) if layout.settings_file.exists() else None
    settle_settings(layout.settings_file, settings, existing, "province-init", report.made, report.kept)
    pki = layout.pki
    settle_pki(pki, f"province {settings.province_id}", settings.province_name, passphrase, report.made,
               report.kept)
    report.fingerprint = pki.fingerprint()
    hosts = tuple(dict.fromkeys([*settings.broker_hosts, "localhost", "127.0.0.1"]))
    wanted: list[tuple[str, tuple[str, ...]]] = [("broker", hosts)]
    wanted += [(name, ()) for name in worker_names(settings.workers)]
    for name, server_hosts in wanted:
        if pki.cert_file(name).exists():
            report.kept.append(f"pki/{name}.crt")
            continue
        pki.issue_files(name, pki.cert_file(name), pki.key_file(name), server_hosts=server_hosts)
        report.made.append(f"pki/{name}.crt")
    for made in write_broker_files(layout, settings):
        report.made.append(made)
    return report


#: the province broker drops to this user (the Debian package's); the technician gives it pki/broker.key
BROKER_USER = "mosquitto"


def issued_bridges(layout: ProvinceLayout) -> list[str]:
    """The centers whose bridge certificate is current (a record in ``bridges/``; revoked ones have moved
    to ``bridges/revoked/``), in id order."""
    prefix = "bridge-"
    return sorted(p.name[len(prefix) : -len(".crt")] for p in layout.bridges.glob(f"{prefix}*.crt"))


def render_province_acl(layout: ProvinceLayout, template: Path = TEMPLATE_ACL) -> str:
    """The province broker's ACL: the shipped one without its ``pattern`` lines (the kiosks' rules: no
    kiosk connects to the province, and a pattern applies to every user, a bridge included:
    docs/province.md), then ``deploy/province/bridge.acl`` once per current bridge. A revoked bridge
    loses its block, so a reload (SIGHUP) takes its rights at once, connected or not."""
    try:
        lines = template.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{template}: {exc}") from exc
    kept = [line for line in lines if not line.lstrip().startswith("pattern ")]
    header = [
        "# The province broker's ACL, generated by main.py provision (province-init, bridge-cert,",
        "# bridge-revoke) from deploy/mosquitto/motcua.acl without its kiosk patterns and one",
        "# deploy/province/bridge.acl block per current bridge: do not edit; SIGHUP the broker after a",
        "# change (docs/province.md).",
    ]
    blocks = [_bridge_block(center_id).rstrip() for center_id in issued_bridges(layout)]
    return "\n".join([*header, *kept]).rstrip() + "\n" + "".join(f"\n{block}\n" for block in blocks)


def write_province_acl(layout: ProvinceLayout) -> bool:
    """``broker/motcua.acl`` as ``render_province_acl`` says; True when it changed (reload the broker)."""
    text = render_province_acl(layout)
    try:
        if layout.acl_file.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    layout.broker.mkdir(parents=True, mode=0o755, exist_ok=True)
    write_atomically(layout.acl_file, text.encode(), 0o644)
    return True


def render_province_broker(layout: ProvinceLayout, settings: ProvinceSettings) -> str:
    """The province broker's ``mosquitto.conf``: the center's rendering (``render_config``) with the
    province's paths; the services listener on ``settings.service_port`` (every address), the kiosk
    listener kept on 127.0.0.1:8883 (the template has two; no kiosk connects here)."""
    return render_config(
        layout.broker_paths(),
        kiosk_listen=("127.0.0.1", 8883),
        service_listen=("", settings.service_port),
        user=BROKER_USER,
        header=f"# Mosquitto of province {settings.province_id}: generated by main.py provision "
        "province-init from deploy/mosquitto/motcua.conf\n# (docs/province.md); do not edit. Run it with "
        f"OPENSSL_CONF={layout.openssl_conf}\n# and `provision crl-compact --dir {layout.root}` before each "
        "start.",
    )


def write_broker_files(layout: ProvinceLayout, settings: ProvinceSettings) -> list[str]:
    """``broker/mosquitto.conf`` and ``broker/openssl.cnf`` (refused if changed by hand), and
    ``broker/motcua.acl`` (generated: ``render_province_acl``). Returns what was made."""
    made: list[str] = []
    (layout.broker / "data").mkdir(parents=True, mode=0o755, exist_ok=True)
    openssl = OPENSSL_CONF_TEXT.replace("provision center-init", "provision province-init")
    for path, text in ((layout.broker_conf, render_province_broker(layout, settings)),
                       (layout.openssl_conf, openssl)):
        try:
            if path.read_text(encoding="utf-8") == text:
                continue
        except OSError:
            pass
        if path.exists():
            raise ConflictError(f"{path} exists with other content; province-init does not overwrite it")
        write_atomically(path, text.encode(), 0o644)
        made.append(str(path.relative_to(layout.root)))
    if write_province_acl(layout):
        made.append(str(layout.acl_file.relative_to(layout.root)))
    return made


# -- revocation --------------------------------------------------------------------------------------

REASONS = ("key_compromise", "unspecified", "cessation_of_operation", "superseded")


#: how long a certificate ``bridge-cert --force`` replaced stays valid: the technician carries the new
#: files to the center meanwhile (a compromised one is revoked at once with ``bridge-revoke``)
SUPERSEDED_GRACE = dt.timedelta(hours=24)


@dataclass(frozen=True)
class RevokedBridge:
    """One entry of ``bridges/revoked.json``. ``revoked_at``: when it goes onto the CRL (later than the
    command for a superseded certificate: ``SUPERSEDED_GRACE``; ``province-crl`` publishes it then)."""

    center_id: str
    serial: str
    revoked_at: str
    reason: str
    not_after: str

    def due(self, now: dt.datetime) -> bool:
        return dt.datetime.fromisoformat(self.revoked_at) <= now


def revoked_bridges(layout: ProvinceLayout) -> list[RevokedBridge]:
    try:
        data = json.loads(layout.revoked_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{layout.revoked_file}: {exc}") from exc
    try:
        return [RevokedBridge(**item) for item in data]
    except TypeError as exc:
        raise ConfigError(f"{layout.revoked_file}: {exc}") from exc


def publish_bridge_crl(layout: ProvinceLayout, now: dt.datetime | None = None) -> Path:
    """The issuing CA's CRL with every serial of ``bridges/revoked.json`` that is due
    (``CenterPki.publish_crl``)."""
    moment = now or dt.datetime.now(dt.UTC)
    entries = [
        Revoked(item.serial, dt.datetime.fromisoformat(item.revoked_at), item.reason)
        for item in revoked_bridges(layout)
        if item.due(moment)
    ]
    return layout.pki.publish_crl(entries, now)


def _revoke_record(
    layout: ProvinceLayout,
    center_id: str,
    reason: str,
    now: dt.datetime | None,
    grace: dt.timedelta = dt.timedelta(0),
) -> RevokedBridge:
    """Revoke the certificate of ``center_id``'s record ``grace`` from now: its serial into the ledger
    (once), the CRL published (with it when no grace), then the record moved to ``bridges/revoked/`` (an
    interrupted run, done again, ends the same)."""
    record = layout.bridge_record(center_id)
    try:
        cert = x509.load_pem_x509_certificate(record.read_bytes())
    except FileNotFoundError as exc:
        raise NotFoundError(f"center {center_id} has no bridge certificate ({record})") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{record}: {exc}") from exc
    serial = serial_hex(cert.serial_number)
    ledger = revoked_bridges(layout)
    entry = next((item for item in ledger if item.serial == serial), None)
    if entry is None:
        moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0) + grace
        entry = RevokedBridge(
            center_id, serial, moment.isoformat(), reason, cert.not_valid_after_utc.isoformat()
        )
        ledger.append(entry)
        data = json.dumps([dataclasses.asdict(item) for item in ledger], indent=1).encode() + b"\n"
        write_atomically(layout.revoked_file, data, 0o644)
    publish_bridge_crl(layout, now)
    moved = layout.revoked_record(center_id, serial)
    moved.parent.mkdir(mode=0o755, exist_ok=True)
    record.replace(moved)
    write_province_acl(layout)  # its block gone: a reload takes its rights, connected or not
    return entry


def revoke_bridge(
    root: Path, center_id: str, *, reason: str = "key_compromise", now: dt.datetime | None = None
) -> RevokedBridge:
    """Revoke the bridge certificate of ``center_id`` (its record in ``bridges/``): its serial on the
    province's CRL from the next handshake on, and the center free for a new ``bridge-cert``."""
    if reason not in REASONS:
        raise ValidationError(f"--reason {reason!r}: one of {', '.join(REASONS)}")
    layout = ProvinceLayout(root.resolve())
    bridge_name(center_id)
    load_settings(layout)
    if not layout.pki.issuing_key_file.exists():
        raise ConfigError(f"{layout.pki.issuing_key_file} is missing: run main.py provision province-init")
    return _revoke_record(layout, center_id, reason, now)


def refresh_crl(root: Path, *, force: bool = False, now: dt.datetime | None = None) -> bool:
    """Sign the CRL again when less than ``CRL_REFRESH`` of it is left, when a superseded certificate's
    grace has passed (its serial joins), or ``force``; True when published. Run daily
    (docs/province.md): an expired CRL fails every handshake."""
    layout = ProvinceLayout(root.resolve())
    load_settings(layout)
    moment = now or dt.datetime.now(dt.UTC)
    try:
        due = layout.pki.crl_next_update() - moment < CRL_REFRESH
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{layout.pki.crl_file}: {exc}") from exc
    listed = layout.pki.revoked_serials()
    fell_due = any(item.due(moment) and item.serial not in listed for item in revoked_bridges(layout))
    if not (due or force or fell_due):
        return False
    publish_bridge_crl(layout, now)
    return True


@dataclass(frozen=True)
class BridgeFiles:
    """What ``bridge-cert`` wrote for one center."""

    center_id: str
    name: str
    key_file: Path
    cert_file: Path
    ca_file: Path
    section_file: Path
    acl_file: Path
    record: Path
    serial: str
    not_after: str
    #: the serial of the certificate ``--force`` revoked (superseded), if any
    replaced: str | None = None


def _fill(template: Path, replacements: dict[str, str], placeholders: tuple[str, ...]) -> str:
    """The template's settings (its leading comment block left out: it tells what to replace) with
    every placeholder replaced; a ConfigError if the template no longer has one, or one is left."""
    try:
        lines = template.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{template}: {exc}") from exc
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
        lines.pop(0)
    text = "\n".join(lines) + "\n"
    for old, new in replacements.items():
        if old not in text:
            raise ConfigError(f"{template} no longer contains {old!r}; update provisioning/province.py")
        text = text.replace(old, new)
    left = [p for p in placeholders if p in text]
    if left:
        raise ConfigError(
            f"{template}: {', '.join(left)} left after filling it in; update provisioning/province.py"
        )
    return text


def render_bridge_section(center_id: str, address: str, ca_file: str, cert_file: str, key_file: str) -> str:
    """``deploy/province/center-bridge.conf`` for ``center_id``, dialling ``address`` (HOST:PORT)."""
    body = _fill(
        BRIDGE_TEMPLATE,
        {
            "CENTER_ID": center_id,
            TEMPLATE_ADDRESS: address,
            f"{TEMPLATE_CERTS_DIR}/{CA_NAME}": ca_file,
            f"{TEMPLATE_CERTS_DIR}/{CERT_NAME}": cert_file,
            f"{TEMPLATE_CERTS_DIR}/{KEY_NAME}": key_file,
        },
        ("CENTER_ID", "PROVINCE_HOST"),
    )
    header = (
        f"# Bridge of center {center_id} to the province broker {address}.\n"
        "# Generated by main.py provision bridge-cert from deploy/province/center-bridge.conf\n"
        "# (docs/province.md): append it to the center's mosquitto.conf, after its listeners.\n"
    )
    return header + body


def _bridge_block(center_id: str) -> str:
    """``deploy/province/bridge.acl`` for ``center_id``: the block the province broker's ACL gets."""
    return _fill(BRIDGE_ACL_TEMPLATE, {"CENTER_ID": center_id}, ("CENTER_ID",))


def render_bridge_acl(center_id: str) -> str:
    """The bridge's block with a header: the copy bridge-cert leaves beside the bridge's files (the
    province broker's ACL has it already: ``write_province_acl``)."""
    header = (
        f"# The bridge of center {center_id} at the province broker: a copy of its block in the\n"
        "# province broker's ACL (broker/motcua.acl, generated by main.py provision bridge-cert).\n"
    )
    return header + _bridge_block(center_id)


def _address(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not _HOST_RE.fullmatch(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValidationError(
            f"--address {text!r}: expected HOST:PORT (the province broker's services listener)"
        )
    return text


def issue_bridge(
    root: Path,
    center_id: str,
    out_dir: Path,
    *,
    address: str | None = None,
    certs_dir: str = TEMPLATE_CERTS_DIR,
    force: bool = False,
    grace: dt.timedelta = SUPERSEDED_GRACE,
) -> BridgeFiles:
    """The bridge certificate of ``center_id`` (CN ``bridge-<center_id>``, clientAuth, signed by the
    province's issuing CA) and the two files to copy, in ``out_dir``. Refuses a center that has one
    already (its record in ``bridges/``) or an ``out_dir`` holding these files, unless ``force``: then
    the certificate it replaces is revoked ``grace`` later (superseded: the center keeps its bridge
    until the new files are installed there)."""
    layout = ProvinceLayout(root.resolve())
    name = bridge_name(center_id)
    settings = load_settings(layout)
    pki = layout.pki
    if not pki.issuing_key_file.exists():
        raise ConfigError(f"{pki.issuing_key_file} is missing: run main.py provision province-init")
    target = _address(address) if address else settings.address
    record = layout.bridge_record(center_id)
    if record.exists() and not force:
        issued = x509.load_pem_x509_certificate(record.read_bytes())
        raise ConflictError(
            f"center {center_id} has a bridge certificate already ({record}, serial "
            f"{issued.serial_number:x}, valid until {issued.not_valid_after_utc:%Y-%m-%d}): --force issues "
            "a new one and revokes that one (superseded), bridge-revoke revokes it"
        )
    out = out_dir.resolve()
    files = BridgeFiles(
        center_id,
        name,
        key_file=out / KEY_NAME,
        cert_file=out / CERT_NAME,
        ca_file=out / CA_NAME,
        section_file=out / SECTION_NAME,
        acl_file=out / f"{name}.acl",
        record=record,
        serial="",
        not_after="",
    )
    written = (files.key_file, files.cert_file, files.section_file, files.acl_file)
    present = [p.name for p in written if p.exists()]
    if present and not force:
        raise ConflictError(f"{out} holds {', '.join(present)} already: use another --out, or --force")
    section = render_bridge_section(
        center_id, target, f"{certs_dir}/{CA_NAME}", f"{certs_dir}/{CERT_NAME}", f"{certs_dir}/{KEY_NAME}"
    )
    acl = render_bridge_acl(center_id)
    replaced = None
    if record.exists():  # --force: the certificate it replaces goes onto the CRL first
        replaced = _revoke_record(layout, center_id, "superseded", None, grace).serial
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert = pki.issue_files(name, files.cert_file, files.key_file, overwrite=True)
    write_public(files.ca_file, pki.chain_file.read_bytes())
    write_public(files.section_file, section.encode())
    write_public(files.acl_file, acl.encode())
    write_public(record, files.cert_file.read_bytes())
    write_province_acl(layout)
    return dataclasses.replace(
        files,
        serial=f"{cert.serial_number:x}",
        not_after=cert.not_valid_after_utc.isoformat(),
        replaced=replaced,
    )
