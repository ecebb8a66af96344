"""``python main.py provision ...``: a technician's commands, at the center and on a kiosk.

At the center (``--dir`` = the center's folder, default ``/var/lib/motcua-center``):

- ``center-init``  root and issuing CA, broker/services certificates, Mosquitto config and ACL, store,
  systemd units (idempotent; refuses to overwrite);
- ``serve``  the provisioning service: HTTPS enrollment, renewals over MQTT, ACL/CRL/registry sync;
- ``token create|list``, ``pending``, ``approve``, ``reject``, ``allow``, ``revoke``, ``decommission``,
  ``service-cert``, ``crl-compact``.

At the province (``--dir``, default ``/var/lib/motcua-province``): ``province-init`` (its CA, its broker's
and its fleet workers' certificates, its broker's configuration) and ``bridge-cert`` (a center's bridge
certificate, its bridge section and the province broker's ACL block for it), ``bridge-revoke`` (onto the
province's CRL), ``province-crl`` (sign the CRL again before it ends: daily), ``crl-compact`` (as a
center's, before the province broker starts).

On a kiosk: ``detect``, ``enroll``, ``selftest``, ``reset``.

Every command prints its steps in Vietnamese and English with what to do when one fails; ``--json``
prints one JSON document instead. docs/provisioning.md has the runbook.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import logging
import os
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from common.entry import exit_code_for
from common.errors import ConfigError, MotcuaError
from contract.errors import ContractError
from provisioning.units import DEFAULT_INSTALL_DIR

HELP = "provisioning: center PKI and broker, enrollment codes; on a kiosk: detect, enroll, selftest, reset"
DEFAULT_CENTER_DIR = Path(os.environ.get("MOTCUA_CENTER_DIR", "/var/lib/motcua-center"))
DEFAULT_PROVINCE_DIR = Path(os.environ.get("MOTCUA_PROVINCE_DIR", "/var/lib/motcua-province"))
DEFAULT_KIOSK_CONFIG = Path("/etc/motcua/kiosk.toml")
DEFAULT_KIOSK_DATA = Path("/var/lib/motcua")
log = logging.getLogger(__name__)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of steps")
    parser.add_argument("--lang", choices=("both", "vi", "en"), default="both", help="language of the steps")


def _center_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_CENTER_DIR,
        help=f"the center's folder (default {DEFAULT_CENTER_DIR}; $MOTCUA_CENTER_DIR)",
    )


def _province_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_PROVINCE_DIR,
        help=f"the province's folder (default {DEFAULT_PROVINCE_DIR}; $MOTCUA_PROVINCE_DIR)",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="provision_command", required=True, metavar="ACTION")

    init = sub.add_parser(
        "center-init", help="create the center's PKI, broker configuration, store and units"
    )
    _center_dir(init)
    init.add_argument("--center", required=True, help="center id (motcua/v1/{center}/...)")
    init.add_argument("--name", required=True, help="the center's name (Vietnamese)")
    init.add_argument("--province", required=True, help="province id")
    init.add_argument("--province-name", required=True, help="province name")
    init.add_argument(
        "--address",
        action="append",
        default=[],
        metavar="HOST",
        help="name or IP kiosks reach the center by (repeat; the first goes into QR codes)",
    )
    init.add_argument("--kiosk-port", type=int, default=8883)
    init.add_argument("--service-port", type=int, default=8884)
    init.add_argument("--enroll-port", type=int, default=8443)
    init.add_argument("--bind", default="", help="interface of the kiosks' listeners (default: all)")
    init.add_argument(
        "--db", default="", help="fleet store URL (default: a SQLite file in the center's folder)"
    )
    init.add_argument("--broker-user", default="mosquitto", help="the user Mosquitto drops to")
    init.add_argument(
        "--install-dir", default=DEFAULT_INSTALL_DIR, help="where the project is installed (units)"
    )
    init.add_argument(
        "--kiosk-template", type=Path, help="kiosk TOML whose services and rating new kiosks get"
    )
    init.add_argument("--kiosk-cert-days", type=int, default=365, help="kiosk certificate lifetime (<= 365)")
    init.add_argument(
        "--kiosk-tls",
        choices=("tlsv1.2", "tlsv1.3"),
        default="tlsv1.2",
        help="TLS minimum of the kiosks' listener (tlsv1.3: no TLS session resumption at all)",
    )
    init.add_argument(
        "--passphrase-file", type=Path, help="file with the root key's passphrase (else: asked)"
    )
    _common(init)
    init.set_defaults(func=run_center_init)

    serve = sub.add_parser("serve", help="run the provisioning service (HTTPS enrollment, renewals, sync)")
    _center_dir(serve)
    serve.add_argument("--interval", type=float, default=0.5, help="seconds between two syncs of the broker")
    serve.add_argument(
        "--superseded-grace-s",
        type=float,
        default=3600.0,
        help="a renewed certificate's predecessor is revoked this long after the renewal",
    )
    serve.set_defaults(func=run_serve)

    token = sub.add_parser("token", help="one-time enrollment codes")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_sub.add_parser("create", help="a code for a new kiosk (or --replace an enrolled one)")
    _center_dir(create)
    create.add_argument("--kiosk", required=True, help="the kiosk id the new PC gets")
    create.add_argument("--slot", type=int, help="numbering slot (default: the first free one)")
    create.add_argument("--replace", action="store_true", help="the new PC replaces this enrolled kiosk")
    create.add_argument("--hours", type=float, default=24.0, help="valid for (at most 168)")
    create.add_argument("--qr", type=Path, help="also save the QR code (.svg or .png)")
    create.add_argument(
        "--no-terminal-qr", action="store_true", help="do not draw the QR code on the terminal"
    )
    _common(create)
    create.set_defaults(func=run_token_create)
    tlist = token_sub.add_parser("list", help="recent codes and their state")
    _center_dir(tlist)
    _common(tlist)
    tlist.set_defaults(func=run_token_list)

    pending = sub.add_parser("pending", help="kiosks waiting for approval")
    _center_dir(pending)
    _common(pending)
    pending.set_defaults(func=run_pending)
    approve = sub.add_parser("approve", help="approve a pending kiosk")
    _center_dir(approve)
    approve.add_argument("--request", required=True, help="its request id (provision pending)")
    approve.add_argument("--kiosk", required=True, help="the kiosk id it gets")
    approve.add_argument("--slot", type=int)
    approve.add_argument("--replace", action="store_true", help="as the replacement of this enrolled kiosk")
    _common(approve)
    approve.set_defaults(func=run_approve)
    reject = sub.add_parser("reject", help="reject a pending kiosk")
    _center_dir(reject)
    reject.add_argument("--request", required=True)
    reject.add_argument("--reason", default="")
    _common(reject)
    reject.set_defaults(func=run_reject)
    allow = sub.add_parser("allow", help="the allowlist of machine serials")
    _center_dir(allow)
    allow.add_argument("--serial", action="append", default=[], help="add a machine serial (repeat)")
    allow.add_argument("--remove", action="append", default=[], help="remove a machine serial")
    allow.add_argument("--required", choices=("on", "off"), help="only allowlisted machines may enroll")
    allow.add_argument("--note", default="")
    _common(allow)
    allow.set_defaults(func=run_allow)

    for name, helptext in (
        ("revoke", "revoke a kiosk's certificates now (stolen, broken)"),
        ("decommission", "retire a kiosk: revoke it and free its slot (history kept)"),
    ):
        cmd = sub.add_parser(name, help=helptext)
        _center_dir(cmd)
        cmd.add_argument("--kiosk", required=True)
        cmd.add_argument(
            "--reason",
            default="key_compromise" if name == "revoke" else "cessation_of_operation",
            choices=("key_compromise", "unspecified", "cessation_of_operation"),
        )
        _common(cmd)
        cmd.set_defaults(func=run_revoke, decommission=name == "decommission")

    scert = sub.add_parser("service-cert", help="a certificate for another service worker (fleet.2, ...)")
    _center_dir(scert)
    scert.add_argument("--name", required=True, help="role or role.N: fleet, allocator, counter, provisioner")
    _common(scert)
    scert.set_defaults(func=run_service_cert)
    compact = sub.add_parser(
        "crl-compact", help="fold the CRL folder into one file (before the broker starts)"
    )
    _center_dir(compact)
    compact.set_defaults(func=run_crl_compact)

    pinit = sub.add_parser(
        "province-init", help="create the province's CA, its broker's and its fleet workers' certificates"
    )
    _province_dir(pinit)
    pinit.add_argument("--province", required=True, help="province id")
    pinit.add_argument("--name", default="", help="the province's name (default: its id)")
    pinit.add_argument(
        "--broker-host",
        action="append",
        default=[],
        metavar="NAME",
        help="name or IP the centers reach the province broker by (repeat; the first goes into the "
        "bridge sections)",
    )
    pinit.add_argument("--service-port", type=int, default=8884, help="the broker's services listener")
    pinit.add_argument(
        "--workers", type=int, default=2, help="fleet ingest workers: certificates fleet-1 .. fleet-N"
    )
    pinit.add_argument(
        "--install-dir",
        default=DEFAULT_INSTALL_DIR,
        help="where the project is installed on this server (an absolute path; the units run it there)",
    )
    pinit.add_argument(
        "--passphrase-file", type=Path, help="file with the root key's passphrase (else: asked)"
    )
    _common(pinit)
    pinit.set_defaults(func=run_province_init)

    bcert = sub.add_parser(
        "bridge-cert", help="a center's bridge certificate, its bridge section and the province's ACL block"
    )
    _province_dir(bcert)
    bcert.add_argument("--center", required=True, help="the center's id (CN bridge-<center>)")
    bcert.add_argument("--out", type=Path, required=True, help="folder for the files to take to the center")
    bcert.add_argument(
        "--address", metavar="HOST:PORT", help="the province broker, as the center dials it (default: the "
        "first --broker-host of province-init and its services port)"
    )
    bcert.add_argument(
        "--certs-dir",
        default="/etc/mosquitto/certs",
        help="where the center's Mosquitto will read the three files (the section's paths)",
    )
    bcert.add_argument(
        "--force", action="store_true", help="issue again for a center that has a bridge certificate"
    )
    bcert.add_argument(
        "--grace-hours",
        type=float,
        default=24.0,
        help="with --force: hours the replaced certificate stays valid while the new files are installed "
        "at the center (province-crl revokes it then; 0: at once; a stolen one: bridge-revoke)",
    )
    _common(bcert)
    bcert.set_defaults(func=run_bridge_cert)

    brevoke = sub.add_parser(
        "bridge-revoke", help="revoke a center's bridge certificate (the province broker's CRL, no restart)"
    )
    _province_dir(brevoke)
    brevoke.add_argument("--center", required=True, help="the center's id (CN bridge-<center>)")
    brevoke.add_argument(
        "--reason",
        default="key_compromise",
        choices=("key_compromise", "unspecified", "cessation_of_operation"),
    )
    brevoke.add_argument(
        "--broker",
        metavar="HOST:PORT",
        help="the province broker's services listener, where the connected bridge's session is taken over "
        "(default: 127.0.0.1 and the services port of province-init)",
    )
    _common(brevoke)
    brevoke.set_defaults(func=run_bridge_revoke)

    pcrl = sub.add_parser(
        "province-crl", help="sign the province's CRL again when it nears its end (run daily)"
    )
    _province_dir(pcrl)
    pcrl.add_argument("--force", action="store_true", help="sign it now, due or not")
    _common(pcrl)
    pcrl.set_defaults(func=run_province_crl)

    detect = sub.add_parser("detect", help="list this PC's devices and propose the [devices] configuration")
    detect.add_argument(
        "--printer-address",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="a network printer to try (only these addresses are contacted)",
    )
    detect.add_argument(
        "--serial-port",
        action="append",
        default=[],
        metavar="DEVICE",
        help="a serial port to list even if it has no USB ids (e.g. /dev/serial/by-id/...)",
    )
    detect.add_argument("--write", type=Path, help="write the proposal as a TOML [devices] file")
    detect.add_argument("--yes", action="store_true", help="write without asking")
    _common(detect)
    detect.set_defaults(func=run_detect)

    enroll = sub.add_parser("enroll", help="make this PC a kiosk of its center (key made here)")
    src = enroll.add_mutually_exclusive_group(required=True)
    src.add_argument("--code", help="the enrollment code, as shown under the QR code")
    src.add_argument("--scan", action="store_true", help="read the QR code with this kiosk's scanner")
    enroll.add_argument(
        "--scanner-port", help="serial scanner to read from when the kiosk app is not running"
    )
    enroll.add_argument("--config", type=Path, default=DEFAULT_KIOSK_CONFIG, help="kiosk file to write")
    enroll.add_argument("--data-dir", type=Path, default=DEFAULT_KIOSK_DATA, help="the kiosk's data folder")
    enroll.add_argument(
        "--identity-dir", type=Path, help="where key and certificate go (default DATA/identity)"
    )
    enroll.add_argument("--base", type=Path, help="kiosk TOML to start from (display, devices, look-up, PIN)")
    enroll.add_argument("--devices", type=Path, help="[devices] file from provision detect --write")
    enroll.add_argument("--machine-serial", help="override the machine serial read from DMI")
    enroll.add_argument("--wait", type=float, default=900.0, help="seconds to wait for an approval")
    enroll.add_argument("--scan-timeout", type=float, default=120.0)
    enroll.add_argument(
        "--start", action="store_true", help="then enable and start motcua-agent and motcua-kiosk"
    )
    enroll.add_argument("--no-check", action="store_true", help="skip the kiosk's own validation of the file")
    _common(enroll)
    enroll.set_defaults(func=run_enroll)

    selftest = sub.add_parser(
        "selftest", help="guided self-test: printer, card, scanner, touch; report to the center"
    )
    selftest.add_argument("--config", type=Path, default=DEFAULT_KIOSK_CONFIG)
    selftest.add_argument(
        "--skip", action="append", default=[], choices=("printer", "card", "scanner", "touch")
    )
    selftest.add_argument("--touch-timeout", type=float, default=60.0)
    selftest.add_argument("--scan-timeout", type=float, default=60.0)
    _common(selftest)
    selftest.set_defaults(func=run_selftest)

    reset = sub.add_parser(
        "reset", help="factory reset: wipe keys, events (after a final flush), logs, tickets"
    )
    reset.add_argument("--config", type=Path, default=DEFAULT_KIOSK_CONFIG)
    reset.add_argument(
        "--drop-unsent", action="store_true", help="wipe even events not sent to the center yet"
    )
    reset.add_argument("--flush-timeout", type=float, default=120.0)
    reset.add_argument(
        "--no-stop", action="store_true", help="do not run systemctl stop (the kiosk is stopped)"
    )
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _common(reset)
    reset.set_defaults(func=run_reset)


# -- helpers -----------------------------------------------------------------------------------------


def _console(args: argparse.Namespace, total: int = 0) -> Any:
    from provisioning.ui import Console

    return Console(
        f"provision {args.provision_command}",
        as_json=args.json,
        total=total,
        language=getattr(args, "lang", "both"),
    )


def _guarded(console: Any, work: Any) -> int:
    """Run ``work``; a known failure ends with its message, the hint in both languages and an exit code."""
    from provisioning.enroll import EnrollError
    from provisioning.ui import StepFailed

    try:
        result = work()
    except StepFailed as exc:
        console.fail(exc.message, exc.code)
        console.finish()
        return 1
    except EnrollError as exc:
        console.fail(exc.message, exc.code)
        console.finish()
        return 77
    except (MotcuaError, ContractError) as exc:
        console.fail(exc.message, getattr(exc, "code", "error"))
        console.finish()
        return exit_code_for(exc)
    console.finish(**(result or {}))
    return 0


def _open_center(root: Path) -> tuple[Any, Any, Any]:
    from fleet.store import open_store
    from provisioning.center import CenterLayout, load_settings

    layout = CenterLayout(root.resolve())
    settings = load_settings(layout)
    return layout, settings, open_store(layout.store_url(settings))


def _passphrase(path: Path | None) -> bytes:
    if path is not None:
        try:
            return path.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ConfigError(f"--passphrase-file {path}: {exc.strerror}") from exc
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to ask the root key's passphrase on: use --passphrase-file")
    first = getpass.getpass("Mật khẩu khóa CA gốc / root key passphrase (>= 12): ")
    if getpass.getpass("Nhập lại / again: ") != first:
        raise ConfigError("the two passphrases differ")
    return first.encode()


# -- center ----------------------------------------------------------------------------------------


def run_center_init(args: argparse.Namespace) -> int:
    from provisioning.center import CenterLayout, CenterSettings, center_init

    console = _console(args, total=6)

    def work() -> dict[str, Any]:
        try:
            settings = CenterSettings(
                center_id=args.center,
                center_name=args.name,
                province_id=args.province,
                province_name=args.province_name,
                addresses=args.address or ["127.0.0.1"],
                kiosk_port=args.kiosk_port,
                service_port=args.service_port,
                enroll_port=args.enroll_port,
                bind=args.bind,
                db=args.db,
                broker_user=args.broker_user,
                install_dir=args.install_dir,
                kiosk_template=str(args.kiosk_template.resolve()) if args.kiosk_template else "",
                kiosk_cert_days=args.kiosk_cert_days,
                kiosk_tls=args.kiosk_tls,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        layout = CenterLayout(args.dir.resolve())
        needs_passphrase = not layout.pki.exists()
        passphrase = _passphrase(args.passphrase_file) if needs_passphrase else None
        steps = {
            "pki": "center.pki",
            "certificates": "center.certificates",
            "store": "center.store",
            "broker": "center.broker",
            "units": "center.units",
        }
        open_step: list[Any] = []

        def on_step(key: str, values: dict[str, Any]) -> None:
            if open_step:
                open_step.pop().__exit__(None, None, None)
            ctx = console.step(steps[key])
            ctx.__enter__()
            open_step.append(ctx)

        with console.step("center.settings"):
            pass
        try:
            report = center_init(args.dir, settings, passphrase, on_step=on_step)
        except BaseException as exc:
            if open_step:
                open_step.pop().__exit__(type(exc), exc, exc.__traceback__)
            raise
        if open_step:
            open_step.pop().__exit__(None, None, None)
        console.line("")
        console.line(f"Dấu vân tay CA gốc / root CA fingerprint (SHA-256): {report.fingerprint}")
        console.line(f"Cổng đăng ký / enrollment endpoint: {report.enroll_url}")
        console.line(
            "Tiếp theo / next: cp systemd/*.service /etc/systemd/system/ && systemctl daemon-reload && "
            "systemctl enable --now motcua-broker motcua-provision motcua-fleet motcua-allocator"
        )
        console.line(
            "Cất khóa CA gốc / carry the root key away: pki/root-ca.key (encrypted) → USB, then delete it"
        )
        return {
            "center_id": report.center_id,
            "dir": report.root,
            "made": report.made,
            "kept": report.kept,
            "fingerprint": report.fingerprint,
            "enroll_url": report.enroll_url,
        }

    return _guarded(console, work)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from provisioning.api import create_api
    from provisioning.service import Authority, Service

    layout, settings, store = _open_center(args.dir)
    authority = Authority(
        layout, settings, store, superseded_grace=timedelta(seconds=args.superseded_grace_s)
    )
    service = Service(authority, interval_s=args.interval)
    pki = layout.pki
    host = settings.bind or "0.0.0.0"
    config = uvicorn.Config(
        create_api(authority),
        host=host,
        port=settings.enroll_port,
        log_level="warning",
        access_log=False,
        ssl_certfile=str(pki.directory / "enroll-fullchain.crt"),
        ssl_keyfile=str(pki.key_file("enroll")),
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        server.should_exit = True

    service.start()
    log.info(
        "provisioning service of %s: enrollment on https://%s:%d, broker sync every %.1f s",
        settings.center_id,
        host,
        settings.enroll_port,
        args.interval,
    )
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        service.stop()
        store.close()
    return 0


def run_token_create(args: argparse.Namespace) -> int:
    console = _console(args, total=1)

    def work() -> dict[str, Any]:
        import segno

        from contract.enrollment import EnrollmentCode
        from fleet.store import Scope

        _layout, settings, store = _open_center(args.dir)
        try:
            with console.step("token.create") as step:
                text, token = store.enrollment.create_token(
                    Scope.everything(),
                    settings.center_id,
                    args.kiosk,
                    slot=args.slot,
                    purpose="replace" if args.replace else "new",
                    username=f"cli:{getpass.getuser()}",
                    lifetime=timedelta(hours=args.hours),
                )
                center = store.enrollment.center(settings.center_id)
                store.audit.record(
                    "enroll.token_create",
                    username=f"cli:{getpass.getuser()}",
                    object_type="kiosk",
                    object_id=args.kiosk,
                    center_id=settings.center_id,
                    after={
                        "slot": token.slot,
                        "purpose": token.purpose,
                        "expires_at": token.expires_at.isoformat(),
                    },
                )
                step["note"] = (
                    f"{token.kiosk_id}, slot {token.slot}, until {token.expires_at:%Y-%m-%d %H:%M} UTC"
                )
        finally:
            store.close()
        code = EnrollmentCode(
            center.enroll_host, center.enroll_port, settings.center_id, center.ca_fingerprint, text
        )
        qr = segno.make(code.to_text(), error="m")
        if args.qr is not None:
            qr.save(str(args.qr), scale=6, border=4)
        if not args.json:
            if not args.no_terminal_qr:
                qr.terminal(out=sys.stderr, compact=True)
            print(f"Mã / token: {text}", file=sys.stderr)
            print(code.to_text(), flush=True)
        return {
            "kiosk_id": token.kiosk_id,
            "slot": token.slot,
            "purpose": token.purpose,
            "token": text,
            "code": code.to_text(),
            "expires_at": token.expires_at.isoformat(),
            "qr_file": str(args.qr) if args.qr else None,
        }

    return _guarded(console, work)


def run_token_list(args: argparse.Namespace) -> int:
    console = _console(args)

    def work() -> dict[str, Any]:
        from fleet.store import Scope

        _layout, settings, store = _open_center(args.dir)
        try:
            now = store.db.now()
            tokens = store.enrollment.tokens(Scope.everything(), settings.center_id)
        finally:
            store.close()
        rows = [
            {
                "id": t.id,
                "kiosk_id": t.kiosk_id,
                "slot": t.slot,
                "purpose": t.purpose,
                "state": t.state(now),
                "expires_at": t.expires_at.isoformat(),
                "by": t.created_by_name,
            }
            for t in tokens
        ]
        for row in rows:
            console.line(
                f"{row['id']:>5} {row['kiosk_id']:<24} slot {row['slot']!s:<4} {row['purpose']:<8} "
                f"{row['state']:<9} {row['expires_at']}"
            )
        return {"tokens": rows}

    return _guarded(console, work)


def run_pending(args: argparse.Namespace) -> int:
    console = _console(args)

    def work() -> dict[str, Any]:
        from fleet.store import Scope

        _layout, settings, store = _open_center(args.dir)
        try:
            rows = store.enrollment.pending(Scope.everything(), settings.center_id)
        finally:
            store.close()
        out = [
            {
                "request_id": r.id,
                "created_at": r.created_at.isoformat(),
                "address": r.address,
                "machine": r.machine,
            }
            for r in rows
        ]
        for r in out:
            machine = r["machine"]
            console.line(
                f"{r['request_id']}  {r['created_at']}  {r['address']:<15} serial {machine.get('serial')!r} "
                f"{machine.get('vendor', '')} {machine.get('product', '')}"
            )
        return {"pending": out}

    return _guarded(console, work)


def _sync_now(layout: Any, settings: Any, store: Any) -> Any:
    from provisioning.service import Authority

    return Authority(layout, settings, store).sync()


def run_approve(args: argparse.Namespace) -> int:
    console = _console(args)

    def work() -> dict[str, Any]:
        from fleet.store import Scope

        _layout, _settings, store = _open_center(args.dir)
        try:
            row = store.enrollment.approve(
                Scope.everything(),
                args.request,
                kiosk_id=args.kiosk,
                slot=args.slot,
                purpose="replace" if args.replace else "new",
                username=f"cli:{getpass.getuser()}",
            )
            store.audit.record(
                "enroll.approve",
                username=f"cli:{getpass.getuser()}",
                object_type="enroll_request",
                object_id=row.id,
                center_id=row.center_id,
                after={"kiosk_id": row.kiosk_id, "slot": row.slot, "purpose": row.purpose},
            )
        finally:
            store.close()
        console.line(
            f"approved {row.id} as {row.kiosk_id} (slot {row.slot}); the kiosk gets its certificate "
            "at its next poll"
        )
        return {"request_id": row.id, "kiosk_id": row.kiosk_id, "slot": row.slot}

    return _guarded(console, work)


def run_reject(args: argparse.Namespace) -> int:
    console = _console(args)

    def work() -> dict[str, Any]:
        from fleet.store import Scope

        _layout, _settings, store = _open_center(args.dir)
        try:
            row = store.enrollment.reject(
                Scope.everything(), args.request, username=f"cli:{getpass.getuser()}", reason=args.reason
            )
        finally:
            store.close()
        return {"request_id": row.id, "state": row.state}

    return _guarded(console, work)


def run_allow(args: argparse.Namespace) -> int:
    console = _console(args)

    def work() -> dict[str, Any]:
        from fleet.store import Scope

        _layout, settings, store = _open_center(args.dir)
        scope, center = Scope.everything(), settings.center_id
        try:
            for serial in args.serial:
                store.enrollment.allow(
                    scope, center, serial, note=args.note, username=f"cli:{getpass.getuser()}"
                )
            for serial in args.remove:
                store.enrollment.disallow(scope, center, serial)
            if args.required is not None:
                store.enrollment.set_allowlist_required(scope, center, args.required == "on")
            listed = [e.machine_serial for e in store.enrollment.allowlist(scope, center)]
            required = store.enrollment.center(center).allowlist_required
        finally:
            store.close()
        console.line(
            f"allowlist ({'required' if required else 'not required'}): {', '.join(listed) or '(empty)'}"
        )
        return {"allowlist": listed, "required": required}

    return _guarded(console, work)


def run_revoke(args: argparse.Namespace) -> int:
    console = _console(args, total=1)

    def work() -> dict[str, Any]:
        from fleet.store import Scope

        layout, settings, store = _open_center(args.dir)
        try:
            serials = store.enrollment.request_revocation(
                Scope.everything(), args.kiosk, reason=args.reason, decommission=args.decommission
            )
            store.audit.record(
                "kiosk.decommission" if args.decommission else "kiosk.revoke",
                username=f"cli:{getpass.getuser()}",
                object_type="kiosk",
                object_id=args.kiosk,
                center_id=settings.center_id,
                after={"serials": serials, "reason": args.reason},
            )
            with console.step("revoke.apply") as step:
                result = _sync_now(layout, settings, store)
                certificates = store.enrollment.certificates(Scope.everything(), args.kiosk)
                applied = all(c.applied_at for c in certificates if c.serial in serials)
                by = "here" if result.revoked else "by the running provisioning service"
                step["note"] = (
                    f"{len(serials)} certificates revoked, applied {by}" if applied else "not applied"
                )
                if result.kicked:
                    step["note"] += f"; connection closed: {', '.join(result.kicked)}"
                if result.errors:
                    step["note"] += f"; {'; '.join(result.errors)}"
                if not applied or result.errors:
                    from provisioning.ui import StepFailed

                    raise StepFailed(
                        f"revocation recorded, not fully applied: {'; '.join(result.errors)}", "network"
                    )
        finally:
            store.close()
        return {"kiosk_id": args.kiosk, "serials": serials, "kicked": result.kicked, "errors": result.errors}

    return _guarded(console, work)


def run_service_cert(args: argparse.Namespace) -> int:
    console = _console(args)

    def work() -> dict[str, Any]:
        layout, settings, store = _open_center(args.dir)
        try:
            cert, key = layout.pki.issue_named(args.name)
            _sync_now(layout, settings, store)  # its ACL block
        finally:
            store.close()
        return {"cert": str(cert), "key": str(key)}

    return _guarded(console, work)


def run_crl_compact(args: argparse.Namespace) -> int:
    from provisioning.center import CenterLayout

    CenterLayout(args.dir.resolve()).pki.compact()
    return 0


# -- province --------------------------------------------------------------------------------------


def run_province_init(args: argparse.Namespace) -> int:
    from provisioning.province import ProvinceLayout, ProvinceSettings, province_init

    console = _console(args, total=1)

    def work() -> dict[str, Any]:
        try:
            settings = ProvinceSettings(
                province_id=args.province,
                province_name=args.name or args.province,
                broker_hosts=args.broker_host or ["127.0.0.1"],
                service_port=args.service_port,
                workers=args.workers,
                install_dir=args.install_dir,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        layout = ProvinceLayout(args.dir.resolve())
        passphrase = None if layout.pki.exists() else _passphrase(args.passphrase_file)
        with console.step("province.pki") as step:
            report = province_init(args.dir, settings, passphrase)
            step["note"] = f"made {', '.join(report.made) or '-'}; kept {', '.join(report.kept) or '-'}"
        console.line(f"Dấu vân tay CA gốc / root CA fingerprint (SHA-256): {report.fingerprint}")
        console.line(
            "Cất khóa CA gốc / carry the root key away: pki/root-ca.key (encrypted) → USB, then delete it"
        )
        if report.access_commands:
            console.line(
                "Quyền của broker (chạy bằng root) / the broker user's access (run as root): "
                + " && ".join(report.access_commands)
            )
        else:
            console.line("Quyền của broker đã cấp / the broker user's access: granted")
        console.line(
            "Tiếp theo / next: cp systemd/* /etc/systemd/system/ && systemctl daemon-reload && "
            "systemctl enable --now motcua-province-broker.service motcua-province-crl.timer"
        )
        return {
            "province_id": report.province_id,
            "access_commands": report.access_commands,
            "dir": report.root,
            "made": report.made,
            "kept": report.kept,
            "fingerprint": report.fingerprint,
        }

    return _guarded(console, work)


def run_bridge_cert(args: argparse.Namespace) -> int:
    from provisioning.province import issue_bridge

    console = _console(args, total=1)

    def work() -> dict[str, Any]:
        with console.step("province.bridge") as step:
            made = issue_bridge(
                args.dir, args.center, args.out, address=args.address, certs_dir=args.certs_dir,
                force=args.force, grace=timedelta(hours=max(0.0, args.grace_hours)),
            )
            step["note"] = f"{made.name}, serial {made.serial}, until {made.not_after[:10]}"
        console.line(
            f"Trung tâm / center: {made.section_file.name} → cuối mosquitto.conf (append), "
            f"{made.key_file.name} {made.cert_file.name} {made.ca_file.name} → {args.certs_dir} "
            "(chown mosquitto)"
        )
        console.line(
            "Tỉnh / province: broker/motcua.acl đã có khối ACL của trung tâm / has the center's block: "
            "SIGHUP broker tỉnh / the province broker"
        )
        if made.replaced:
            console.line(
                f"Chứng chỉ cũ {made.replaced} bị thu hồi sau {args.grace_hours:g} giờ (province-crl) / the "
                f"previous certificate is revoked {args.grace_hours:g} h from now (by province-crl)"
            )
        return {
            "center_id": made.center_id,
            "name": made.name,
            "serial": made.serial,
            "not_after": made.not_after,
            "replaced": made.replaced,
            "files": {
                "key": str(made.key_file),
                "cert": str(made.cert_file),
                "ca": str(made.ca_file),
                "section": str(made.section_file),
                "acl": str(made.acl_file),
            },
        }

    return _guarded(console, work)


def run_bridge_revoke(args: argparse.Namespace) -> int:
    from provisioning.province import cut_bridge, revoke_bridge
    from provisioning.ui import StepFailed

    console = _console(args, total=2)

    def work() -> dict[str, Any]:
        host, port = "127.0.0.1", None
        if args.broker:
            host, sep, text = args.broker.rpartition(":")
            if not sep or not host or not text.isdigit() or not 0 < int(text) < 65536:
                raise ConfigError(f"--broker {args.broker!r}: expected HOST:PORT")
            port = int(text)
        with console.step("province.revoke") as step:
            revoked, new = revoke_bridge(args.dir, args.center, reason=args.reason)
            step["note"] = f"bridge-{revoked.center_id}, serial {revoked.serial}" + (
                "" if new else f" (đã thu hồi / revoked already, {revoked.revoked_at})"
            )
        with console.step("province.cut") as step:
            cut = cut_bridge(args.dir, args.center, host=host, port=port)
            step["note"] = cut.note or "-"
            if cut.problem:
                raise StepFailed(f"certificate revoked, connection maybe still open: {cut.problem}",
                                 "bridge_cut")
        return {**dataclasses.asdict(revoked), "new": new, "reloaded": cut.reloaded,
                "taken_over": cut.taken_over, "note": cut.note}

    return _guarded(console, work)


def run_province_crl(args: argparse.Namespace) -> int:
    from provisioning.province import ProvinceLayout, refresh_crl

    console = _console(args, total=1)

    def work() -> dict[str, Any]:
        with console.step("province.crl") as step:
            published = refresh_crl(args.dir, force=args.force)
            next_update = ProvinceLayout(args.dir.resolve()).pki.crl_next_update()
            step["note"] = f"{'signed' if published else 'not due'}, valid until {next_update:%Y-%m-%d}"
        return {"published": published, "next_update": next_update.isoformat()}

    return _guarded(console, work)


# -- kiosk -----------------------------------------------------------------------------------------


def run_detect(args: argparse.Namespace) -> int:
    console = _console(args, total=5)

    def work() -> dict[str, Any]:
        from dataclasses import asdict

        from provisioning import detect, tomlw

        found: list[Any] = []
        notes: dict[str, str] = {}
        for key, name, probe in (
            ("detect.readers", "readers", detect.pcsc_readers),
            ("detect.serial", "serial", lambda: detect.serial_ports(args.serial_port)),
            ("detect.usb", "usb", detect.usb_printers),
            ("detect.cameras", "cameras", detect.cameras),
            ("detect.network", "network", lambda: (detect.network_printers(args.printer_address), "")),
        ):
            with console.step(key) as step:
                items, note = probe()
                found += items
                if note:
                    notes[name] = note
                step["note"] = "; ".join(f"{f.name} → {f.role} ({f.why})" for f in items) or (note or "-")
        result = detect.Detection(found, notes)
        proposal = {"devices": result.proposal()}
        text = tomlw.dumps(
            proposal,
            "Proposed by main.py provision detect: check it, edit it, then enroll with\n--devices FILE.",
        )
        console.line("")
        console.line(text)
        written = None
        if args.write is not None:
            confirmed = args.yes
            if not confirmed and sys.stdin.isatty() and not args.json:
                confirmed = input(f"Ghi vào / write to {args.write}? [y/N] ").strip().lower() in (
                    "y",
                    "yes",
                    "c",
                    "có",
                )
            if confirmed:
                args.write.parent.mkdir(parents=True, exist_ok=True)
                args.write.write_text(text, encoding="utf-8")
                written = str(args.write)
            else:
                console.line("không ghi / not written (use --yes)")
        return {"found": [asdict(f) for f in found], "notes": notes, "proposal": proposal, "written": written}

    return _guarded(console, work)


def _read_code_from_scan(args: argparse.Namespace, console: Any) -> str:
    from common.ipc import call

    app_socket = args.data_dir / "app.sock"
    with console.step("enroll.scan") as step:
        if app_socket.exists():
            answer = call(
                app_socket,
                "app.await_input",
                {"kind": "scan", "timeout_s": args.scan_timeout},
                timeout=args.scan_timeout + 5,
            )
            if answer.get("seen"):
                step["note"] = f"read by the kiosk's scanner ({answer.get('source')})"
                return str(answer["text"])
        if args.scanner_port:
            from provisioning.scan import read_serial_line

            text = read_serial_line(args.scanner_port, timeout_s=args.scan_timeout)
            if text:
                step["note"] = f"read on {args.scanner_port}"
                return text
        from provisioning.ui import StepFailed

        raise StepFailed("no code was scanned in time", "scanner")


def run_enroll(args: argparse.Namespace) -> int:
    console = _console(args, total=5 + (1 if args.scan else 0) + (1 if args.start else 0))

    def work() -> dict[str, Any]:
        import subprocess

        from contract.enrollment import EnrollmentCode
        from provisioning.enroll import Enroller, KioskLayout, devices_from, read_base
        from provisioning.machine import machine_info

        raw = _read_code_from_scan(args, console) if args.scan else args.code
        code = EnrollmentCode.from_text(raw)
        layout = KioskLayout.standard(
            args.config.resolve(),
            args.data_dir.resolve(),
            args.identity_dir.resolve() if args.identity_dir else None,
        )
        enroller = Enroller(
            code,
            layout,
            console,
            machine=machine_info(args.machine_serial),
            base=read_base(args.base),
            devices=devices_from(args.devices),
            wait_s=args.wait,
            validate=not args.no_check,
        )
        outcome = enroller.run()
        if args.start:
            with console.step("enroll.start"):
                subprocess.run(
                    ["systemctl", "enable", "--now", "motcua-agent.service", "motcua-kiosk.service"],
                    check=True,
                    timeout=120,
                )
        console.line(f"Kiosk {outcome.kiosk_id} của / of {outcome.center_id}: {outcome.config_file}")
        return {
            "kiosk_id": outcome.kiosk_id,
            "center_id": outcome.center_id,
            "serial": outcome.serial,
            "not_after": outcome.not_after,
            "slot": outcome.slot,
            "config": outcome.config_file,
            "request_id": outcome.request_id,
        }

    return _guarded(console, work)


def _kiosk_paths(config: Path) -> tuple[str, Path, bool]:
    import tomllib

    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{config}: {exc}") from exc
    kiosk = data.get("kiosk") or {}
    data_dir = Path(str(kiosk.get("data_dir", "var/kiosk")))
    if not data_dir.is_absolute():
        data_dir = (config.parent / data_dir).resolve()
    devices = data.get("devices") or {}
    simulated = any((devices.get(d) or {}).get("backend") == "simulator" for d in ("printer", "scanner"))
    return str(kiosk.get("id", "")), data_dir, simulated


def run_selftest(args: argparse.Namespace) -> int:
    steps = 2 + sum(1 for s in ("printer", "card", "scanner", "touch") if s not in args.skip)
    console = _console(args, total=steps)

    def work() -> dict[str, Any]:
        from provisioning.selftest import run_selftest as run
        from provisioning.selftest import socket_caller

        kiosk_id, data_dir, simulated = _kiosk_paths(args.config)
        report = run(
            console,
            socket_caller(data_dir / "app.sock"),
            kiosk_id=kiosk_id,
            journal_path=data_dir / "events.sqlite",
            simulated=simulated,
            printer_dir=data_dir / "printer",
            touch_timeout_s=args.touch_timeout,
            scan_timeout_s=args.scan_timeout,
            skip=tuple(args.skip),
        )
        if report.result != "pass":
            failed = [s.step for s in report.steps if not s.ok]
            console.report.result.update(ok=False)
            console.fail(f"self-test failed: {', '.join(failed)}", failed[0] if failed else "error")
        return {"kiosk_id": kiosk_id, "result": report.result, "report": report.to_data()}

    code = _guarded(console, work)
    return code if code else (0 if console.report.result.get("result") == "pass" else 1)


def run_reset(args: argparse.Namespace) -> int:
    console = _console(args, total=3)

    def work() -> dict[str, Any]:
        from provisioning.reset import factory_reset, plan_for, systemctl_stop
        from provisioning.ui import StepFailed

        plan = plan_for(args.config.resolve())
        if not args.yes:
            if not sys.stdin.isatty() or args.json:
                raise StepFailed("a factory reset needs --yes (no terminal to ask on)", "config")
            answer = input(
                f"Xóa toàn bộ dữ liệu kiosk trong {plan.data_dir}? / Wipe the kiosk in {plan.data_dir}? "
                "[y/N] "
            )
            if answer.strip().lower() not in ("y", "yes", "c", "có"):
                raise StepFailed("not confirmed", "config")
        return factory_reset(
            plan,
            console,
            drop_unsent=args.drop_unsent,
            flush_timeout_s=args.flush_timeout,
            stop=None if args.no_stop else systemctl_stop,
        )

    return _guarded(console, work)
