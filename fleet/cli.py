"""``python main.py fleet ...``: the center's services.

``allocator`` runs the center allocator until SIGTERM/SIGINT; ``tickets`` prints a day's book from the
allocator's database (per service: printed, voided, offline, called, online numbers missing).
``serve`` runs the fleet monitor's web app (with ``--broker``, also the MQTT ingest of its center);
``ingest`` runs the MQTT ingest (``--workers N`` processes on the shared subscription), ``ingest-status``
prints its workers' counters; ``db upgrade`` migrates its store; ``user add``, ``center
add``, ``kiosk add`` fill it; ``config-owner`` says who pushes its kiosks' configuration (this fleet,
or each center's own: a province); ``maintain`` runs the store's housekeeping once (aggregation,
retention, partitions); ``report`` writes a report file (XLSX, CSV; docs/reports.md). The fleet's
errors end as one line and an exit code (``MotcuaError``), like the kiosk's.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.errors import ConfigError

if TYPE_CHECKING:
    from fleet.ingest.worker import IngestWorker
    from fleet.store import Store

HELP = "center services: queue-number allocator, fleet monitor (web, store, accounts, MQTT ingest)"
DEFAULT_DB = os.environ.get("MOTCUA_FLEET_DB", "sqlite:///var/fleet/fleet.sqlite")
log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="fleet_command", required=True, metavar="SERVICE")
    alloc = sub.add_parser("allocator", help="run the queue-number allocator of one center")
    alloc.add_argument("--center", required=True, help="center id (topics motcua/v1/{center}/...)")
    alloc.add_argument("--db", type=Path, required=True, help="SQLite file of the allocator's book")
    alloc.add_argument("--broker", default="127.0.0.1:8884", help="HOST:PORT of the center-services listener")
    alloc.add_argument("--ca", type=Path, help="the center's CA certificate (TLS)")
    alloc.add_argument("--cert", type=Path, help="client certificate with CN 'allocator'")
    alloc.add_argument("--key", type=Path, help="its private key")
    alloc.add_argument("--timezone", default="Asia/Ho_Chi_Minh", help="the center's time zone (its day)")
    alloc.add_argument("--offline-base", type=int, default=800, help="first number of the offline blocks")
    alloc.add_argument("--offline-block", type=int, default=20, help="offline numbers per kiosk slot")
    alloc.add_argument("--topic-root", default="motcua/v1")
    alloc.add_argument("--registry", type=Path,
                       help="the center's enrolled kiosks (registry/enrolled-kiosks.json, written by "
                            "provisioning): kiosks not enrolled, or asking with another's slot, are refused")
    alloc.add_argument("--no-registry", action="store_true",
                       help="serve every kiosk the broker lets in (a test broker; slots bound first come)")
    alloc.add_argument("--catalog", type=Path,
                       help="TOML file whose [[services]] are the catalog (until a center-wide push)")
    alloc.add_argument("--kiosk-quota", type=int,
                       help="online numbers per kiosk, service and day (default: half the online range)")
    alloc.add_argument("--rate", type=float, default=2.0, help="requests per second per kiosk (sustained)")
    alloc.add_argument("--burst", type=int, default=60, help="requests per kiosk at once")
    alloc.add_argument("--unconfirmed-ttl", type=float, default=900.0,
                       help="seconds after which an online number never printed stops counting as waiting")
    alloc.set_defaults(func=run_allocator)
    book = sub.add_parser("tickets", help="print one day of the allocator's book")
    book.add_argument("--db", type=Path, required=True)
    book.add_argument("--day", help="YYYY-MM-DD (default: today in the center's time zone)")
    book.add_argument("--timezone", default="Asia/Ho_Chi_Minh")
    book.add_argument("--json", action="store_true", help="every ticket as JSON lines")
    book.set_defaults(func=run_tickets)
    _configure_monitor(sub)


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=DEFAULT_DB,
        help="store URL: sqlite:///FILE (default; $MOTCUA_FLEET_DB) or postgresql://USER@HOST/DB",
    )


def _configure_monitor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="the fleet store's schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="migrate the store to this code's schema (creates it if new)")
    _db_option(up)
    up.set_defaults(func=run_db_upgrade)
    cur = db_sub.add_parser("current", help="print the store's schema revision")
    _db_option(cur)
    cur.set_defaults(func=run_db_current)

    serve = sub.add_parser("serve", help="run the fleet monitor's web app (migrates the store first)")
    _db_option(serve)
    serve.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT to serve on")
    serve.add_argument("--timezone", default="Asia/Ho_Chi_Minh", help="time zone of pages and exports")
    serve.add_argument(
        "--maintenance-every",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="run the store's housekeeping this often (0: never; another process does it)",
    )
    serve.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For/-Proto from 127.0.0.1 (behind a TLS reverse proxy)",
    )
    serve.add_argument(
        "--secure-cookies",
        action="store_true",
        help="always mark cookies Secure (default: when the request came over https)",
    )
    serve.add_argument(
        "--queue-audio",
        type=Path,
        default=Path("var/queue/audio"),
        help="folder of the hall's announcement WAVs (made on demand, cached)",
    )
    serve.add_argument(
        "--queue-clips",
        type=Path,
        help="the center's own clips, one WAV per word ('fleet queue clips'); else espeak-ng",
    )
    # --public-url (the center's address as phones and e-mail readers reach it) is among these
    _ingest_options(serve, in_serve=True)
    serve.set_defaults(func=run_serve)
    _configure_queue(sub)

    ingest = sub.add_parser("ingest", help="run the MQTT ingest: what kiosks publish, into the store")
    _db_option(ingest)
    _ingest_options(ingest, in_serve=False)
    ingest.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes on the shared subscription (restarted if they die)",
    )
    ingest.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    ingest.add_argument("--timezone", default="Asia/Ho_Chi_Minh", help="time zone of notification texts")
    ingest.set_defaults(func=run_ingest)

    status = sub.add_parser("ingest-status", help="print the ingest workers' counters and refusals (JSON)")
    _db_option(status)
    status.set_defaults(func=run_ingest_status)

    user = sub.add_parser("user", help="fleet monitor accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_sub.add_parser("add", help="add an account; the password is read from the terminal or stdin")
    _db_option(add)
    add.add_argument("--username", required=True)
    add.add_argument(
        "--role",
        required=True,
        choices=["province_admin", "center_manager", "technician", "officer", "viewer"],
    )
    add.add_argument("--center", help="the user's center (center roles, or a viewer of one center)")
    add.add_argument("--province", help="the user's province (province admins, province-wide viewers)")
    add.add_argument("--display-name", default="", help="full name shown in the pages and the audit log")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=run_user_add)

    center = sub.add_parser("center", help="centers of the registry")
    center_sub = center.add_subparsers(dest="center_command", required=True, metavar="ACTION")
    cadd = center_sub.add_parser("add", help="register a center (and its province if new)")
    _db_option(cadd)
    cadd.add_argument("--id", required=True, help="center id, as in the MQTT topics (motcua/v1/{center}/...)")
    cadd.add_argument("--name", required=True)
    cadd.add_argument("--province", required=True, help="province id (e.g. hcm)")
    cadd.add_argument("--province-name", help="the province's name, when it is new")
    cadd.set_defaults(func=run_center_add)

    kiosk = sub.add_parser("kiosk", help="kiosks of the registry")
    kiosk_sub = kiosk.add_subparsers(dest="kiosk_command", required=True, metavar="ACTION")
    kadd = kiosk_sub.add_parser("add", help="register a kiosk (its certificate CN) at a center")
    _db_option(kadd)
    kadd.add_argument("--id", required=True, help="kiosk id = certificate CN = MQTT username")
    kadd.add_argument("--center", required=True)
    kadd.add_argument("--slot", type=int, help="its offline-number slot at the center")
    kadd.add_argument("--label", default="", help="where it stands (e.g. 'Sảnh tầng 1')")
    kadd.set_defaults(func=run_kiosk_add)

    owner = sub.add_parser(
        "config-owner",
        help="who pushes the kiosks' configuration: 'here' (this fleet; a center) or 'centers' (each "
        "center's own fleet; a province of bridged centers, docs/province.md); prints it without OWNER",
    )
    _db_option(owner)
    owner.add_argument(
        "owner", nargs="?", choices=["here", "centers", "default"],
        help="set it (every process follows); with --center, 'default' makes the center follow the store's",
    )
    owner.add_argument(
        "--center", help="this center's own rule (a province that also hosts a center without a fleet)"
    )
    owner.set_defaults(func=run_config_owner)

    maintain = sub.add_parser("maintain", help="run the store's housekeeping once and print what it did")
    _db_option(maintain)
    maintain.add_argument("--keep-health-days", type=int, default=7, help="days of raw heartbeats kept")
    maintain.add_argument("--keep-event-months", type=int, default=13, help="months of events kept")
    maintain.set_defaults(func=run_maintain)

    from fleet.reports import cli as report_cli  # usage reports (docs/reports.md)

    report_cli.configure(sub, DEFAULT_DB)


def _ingest_options(parser: argparse.ArgumentParser, *, in_serve: bool) -> None:
    group = parser.add_argument_group(
        "MQTT ingest" + (" (in this process, for one center; only with --broker)" if in_serve else "")
    )
    group.add_argument(
        "--broker",
        required=not in_serve,
        metavar="HOST:PORT",
        help="the center-services listener of the broker (fleet certificate)",
    )
    group.add_argument("--ca", type=Path, help="the center's CA certificate (TLS)")
    group.add_argument(
        "--cert",
        type=Path,
        help="client certificate with CN 'fleet'; with --workers N, one per worker: a path with {n} "
        "(fleet-{n}.crt: fleet-1 .. fleet-N, a province's) or {.n} (fleet{.n}.crt: fleet, fleet.2 .., a "
        "center's)",
    )
    group.add_argument("--key", type=Path, help="its private key (with {n} or {.n} as in --cert)")
    group.add_argument(
        "--center", help="ingest this center only (default: every center; serve: the store's one)"
    )
    group.add_argument("--client-id", help="MQTT client id (prefix with --workers); stable across restarts")
    group.add_argument(
        "--session-expiry",
        type=int,
        default=86400,
        metavar="SECONDS",
        help="how long the broker keeps a worker's messages while it is away",
    )
    group.add_argument("--topic-root", default="motcua/v1")
    group.add_argument(
        "--no-duties",
        action="store_true",
        help="never take the duties lease (publishing, sweeps, notifications)",
    )
    group.add_argument(
        "--announce-after",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="mail and send an alarm to webhooks only once it has stayed active this long (0: at once); "
        "a broker restart's offline alarms, cleared by the kiosks' reconnection, then mail nobody",
    )
    group.add_argument(
        "--reminder-every",
        type=float,
        default=60.0,
        metavar="MINUTES",
        help="remind about an active, unacknowledged alarm this often",
    )
    group.add_argument(
        "--cert-warn-days",
        type=int,
        default=30,
        help="warn this many days before a kiosk's certificate expires",
    )
    group.add_argument(
        "--clock-skew",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="a kiosk clock further off than this is an alarm",
    )
    group.add_argument("--smtp", metavar="HOST:PORT", help="mail server for e-mail notifications")
    group.add_argument("--smtp-from", default="giamsat-kiosk@localhost", help="sender address")
    group.add_argument("--smtp-security", choices=["none", "starttls", "ssl"], default="none")
    group.add_argument("--smtp-user", help="SMTP login")
    group.add_argument("--smtp-password-file", type=Path, help="file holding the SMTP password")
    group.add_argument(
        "--webhook-secret-file",
        type=Path,
        help="file holding the key that signs webhook bodies (X-Fleet-Signature)",
    )
    group.add_argument(
        "--public-url", help="the fleet's address as people reach it (links in notifications, the ticket QR)"
    )
    group.add_argument(
        "--handlers",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE, which registers event handlers (fleet.ingest.handlers)",
    )


def _worker_settings(args: argparse.Namespace, center: str, client_id: str) -> object:
    from datetime import timedelta

    from common.mqtt import TlsConfig
    from fleet.alarms.rules import AlarmSettings
    from fleet.ingest.worker import WorkerSettings
    from fleet.notify.notifier import NotifySettings
    from fleet.notify.senders import SmtpSettings

    host, port = _broker(args.broker)
    if (args.cert is None) != (args.key is None):
        raise ConfigError("--cert and --key go together")
    if args.cert is not None and args.ca is None:
        raise ConfigError("--cert needs --ca (the center's CA)")
    cert, key = args.cert, args.key
    index = getattr(args, "worker_index", None) or 0
    if cert is not None and key is not None:
        # The broker gives a service the client id of its certificate (deploy/mosquitto/motcua.conf):
        # each worker of a shared subscription has a certificate of its own.
        cert, key = worker_path(cert, index), worker_path(key, index)
    smtp = None
    if args.smtp:
        smtp_host, smtp_port = _broker(args.smtp)
        password = _read_secret(args.smtp_password_file, "--smtp-password-file")
        smtp = SmtpSettings(
            smtp_host,
            smtp_port,
            args.smtp_from,
            args.smtp_security,
            args.smtp_user,
            password.decode() if password else None,
        )
    if args.reminder_every <= 0:
        raise ConfigError("--reminder-every: expected a number of minutes above 0")
    if not 0 <= args.announce_after <= 86400:
        raise ConfigError("--announce-after: expected a number of seconds from 0 to 86400")
    return WorkerSettings(
        host=host,
        port=port,
        tls=TlsConfig(args.ca, cert, key),
        client_id=client_id,
        center_id=center,
        root=args.topic_root,
        session_expiry_s=args.session_expiry,
        duties=not args.no_duties,
        alarms=AlarmSettings(
            reminder_every=timedelta(minutes=args.reminder_every),
            announce_after=timedelta(seconds=args.announce_after),
            cert_warn_days=args.cert_warn_days,
            clock_skew_s=args.clock_skew,
        ),
        notify=NotifySettings(
            smtp=smtp,
            webhook_secret=_read_secret(args.webhook_secret_file, "--webhook-secret-file"),
            public_url=args.public_url,
            timezone=args.timezone,
        ),
    )


def _read_secret(path: Path | None, option: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{option}: cannot read {path}: {exc.strerror}") from exc


def _default_client_id() -> str:
    import socket

    host = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname().lower())[:40]
    return f"fleet-ingest-{host or 'host'}"


def _load_handlers(args: argparse.Namespace) -> None:
    from fleet.ingest import plugins

    try:
        loaded = plugins.load(tuple(args.handlers))
    except ImportError as exc:
        raise ConfigError(f"--handlers: cannot import {exc.name}: {exc}") from exc
    if loaded:
        log.info("event handlers from %s", ", ".join(loaded))


def run_ingest(args: argparse.Namespace) -> int:
    from fleet.ingest.supervisor import Supervisor, worker_argv
    from fleet.ingest.worker import IngestWorker, WorkerSettings, freeze_heap
    from fleet.store import open_store

    _broker(args.broker)
    _check_zone(args.timezone)
    prefix = args.client_id or _default_client_id()
    if args.workers < 1:
        raise ConfigError("--workers: at least 1")
    if args.workers > 1 and args.cert is not None and worker_path(args.cert, 1) == args.cert:
        raise ConfigError(
            "--workers: each worker needs a certificate of its own (the broker makes a client's id its "
            "certificate's name): give --cert/--key with {n}, e.g. pki/fleet-{n}.crt for fleet-1 .. "
            "fleet-N (a province), or {.n}, e.g. pki/fleet{.n}.crt for fleet, fleet.2 .. (a center)"
        )
    if args.workers > 1 and args.worker_index is None:
        open_store(args.db, upgrade=True).close()  # migrate once, before the workers open it
        supervisor = Supervisor(worker_argv(sys.argv[1:]), args.workers)
        _on_stop_signals(supervisor.request_stop)
        log.info("ingest: %d workers, client ids %s-0..%d", args.workers, prefix, args.workers - 1)
        return supervisor.run()
    client_id = prefix if args.worker_index is None else f"{prefix}-{args.worker_index}"
    settings = _worker_settings(args, args.center or "+", client_id)
    assert isinstance(settings, WorkerSettings)
    _load_handlers(args)
    # no round trip per checkout: a batch on a connection a database restart killed fails with a StoreError
    # and is tried again unacknowledged (on fresh connections); the queue's hook issues a failed center's
    # tickets again one by one
    store = open_store(args.db, upgrade=args.worker_index is None, pre_ping=False)
    stop = threading.Event()
    _on_stop_signals(stop.set)
    worker = IngestWorker(store, settings)
    freeze_heap()
    worker.start()
    try:
        stop.wait()
    finally:
        worker.stop()
        store.close()
    return 0


def run_ingest_status(args: argparse.Namespace) -> int:
    from fleet.store import Scope, open_store

    store = open_store(args.db)
    try:
        now = store.db.now()
        workers = [
            {
                "id": w.id,
                "host": w.host,
                "pid": w.pid,
                "started_at": w.started_at.isoformat(),
                "updated_at": w.updated_at.isoformat(),
                "age_s": round((now - w.updated_at).total_seconds(), 1),
                "stopped": w.stopped_at is not None,
                "stats": w.stats,
            }
            for w in store.ingest.workers()
        ]
        lease = store.ingest.lease_holder("fleet-duties")
        refusals = [
            {
                "center_id": r.center_id,
                "kiosk_id": r.kiosk_id,
                "reason": r.reason,
                "count": r.count,
                "last_at": r.last_at.isoformat(),
                "detail": r.detail,
            }
            for r in store.ingest.refusals(Scope.everything())
        ]
        print(
            json.dumps(
                {
                    "workers": workers,
                    "duties": {"holder": lease[0], "until": lease[1].isoformat()} if lease else None,
                    "refusals": refusals,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    finally:
        store.close()
    return 0


def _on_stop_signals(callback: object) -> None:
    assert callable(callback)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        callback()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"--timezone: unknown time zone {name!r}") from exc


def run_db_upgrade(args: argparse.Namespace) -> int:
    from fleet.store import migrate
    from fleet.store.db import Database

    db = Database(args.db)
    try:
        before = migrate.current(db)
        migrate.upgrade(db)
        print(f"{db.safe_url()}: schema {before or 'none'} -> {migrate.current(db)}")
    finally:
        db.close()
    return 0


def run_db_current(args: argparse.Namespace) -> int:
    from fleet.store import migrate
    from fleet.store.db import Database

    db = Database(args.db)
    try:
        found = migrate.current(db)
        print(f"{found or 'none'} (this code: {migrate.head()})")
    finally:
        db.close()
    return 0 if found == migrate.head() else 1


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--listen: expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fleet.store import open_store
    from fleet.web.app import create_app
    from fleet.web.core import WebSettings

    host, port = _listen(args.listen)
    _check_zone(args.timezone)
    store = open_store(args.db, upgrade=True)
    settings = WebSettings(timezone=args.timezone, secure_cookies=True if args.secure_cookies else None)
    from fleet.queue.audio import Voice
    from fleet.web.queue_web import QueueWebSettings

    voice = Voice("clips", args.queue_clips) if args.queue_clips else Voice("espeak")
    queue_settings = QueueWebSettings(
        audio_cache=args.queue_audio, voice=voice, public_url=args.public_url or ""
    )
    stop = threading.Event()
    if args.maintenance_every > 0:
        threading.Thread(
            target=_maintenance_loop,
            args=(store, args.maintenance_every, stop),
            daemon=True,
            name="fleet-maintenance",
        ).start()
    config = uvicorn.Config(
        create_app(store, settings, queue_settings),
        host=host,
        port=port,
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips="127.0.0.1",
        timeout_graceful_shutdown=3,
        log_level="info",
        access_log=False,
    )
    config.load()  # uvicorn's protocol and lifespan modules imported now, before the heap is frozen
    worker = _serve_ingest(args, store)
    log.info("fleet monitor on http://%s:%d, store %s", host, port, store.db.safe_url())
    try:
        uvicorn.Server(config).run()
    finally:
        stop.set()
        if worker is not None:
            worker.stop()
        store.close()
    return 0


def _serve_ingest(args: argparse.Namespace, store: Store) -> IngestWorker | None:
    """``fleet serve --broker``: the ingest of one center in the web's process (one command, one center)."""
    from fleet.ingest.worker import IngestWorker, WorkerSettings, freeze_heap
    from fleet.store import Scope

    if not args.broker:
        return None
    center = args.center
    if center is None:
        centers = store.registry.centers(Scope.everything())
        if len(centers) != 1:
            store.close()
            raise ConfigError(
                f"--broker: the store has {len(centers)} centers; name the one to ingest with --center"
            )
        center = centers[0].id
    settings = _worker_settings(args, center, args.client_id or f"{_default_client_id()}-serve")
    assert isinstance(settings, WorkerSettings)
    _load_handlers(args)
    worker = IngestWorker(store, settings)
    freeze_heap()  # as `fleet ingest` does: the web's modules and the app are built by now
    worker.start()
    return worker


def _maintenance_loop(store: object, every: float, stop: threading.Event) -> None:
    from fleet.store import Store

    assert isinstance(store, Store)
    while not stop.is_set():
        try:
            report = store.maintenance.run()
            log.info("store housekeeping: %s", report)
        except Exception:  # a failed run is logged and tried again next time; the web keeps serving
            log.exception("store housekeeping failed")
        stop.wait(every)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to ask the password on: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise ConfigError("the two passwords differ")
    return first


def run_user_add(args: argparse.Namespace) -> int:
    from fleet.auth import hash_password
    from fleet.store import open_store

    password = _read_password(args.password_stdin)
    hashed = hash_password(password)
    store = open_store(args.db)
    try:
        user = store.accounts.add_user(
            args.username,
            hashed,
            args.role,
            center_id=args.center,
            province_id=args.province,
            display_name=args.display_name,
        )
        store.audit.record(
            "user.create",
            username=f"cli:{getpass.getuser()}",
            object_type="user",
            object_id=str(user.id),
            center_id=user.center_id,
            province_id=user.province_id,
            after={
                "username": user.username,
                "role": user.role,
                "center_id": user.center_id,
                "province_id": user.province_id,
            },
            address="cli",
        )
        print(f"user {user.username} ({user.role}) added, id {user.id}")
    finally:
        store.close()
    return 0


def run_center_add(args: argparse.Namespace) -> int:
    from fleet.store import open_store

    store = open_store(args.db)
    try:
        store.registry.ensure_province(args.province, args.province_name or args.province)
        center = store.registry.add_center(args.id, args.province, args.name)
        print(f"center {center.id} ({center.name}) in {center.province_name}")
    finally:
        store.close()
    return 0


def run_kiosk_add(args: argparse.Namespace) -> int:
    from fleet.store import open_store

    store = open_store(args.db)
    try:
        kiosk = store.registry.add_kiosk(args.id, args.center, slot=args.slot, label=args.label)
        slot = f", slot {kiosk.slot}" if kiosk.slot is not None else ""
        print(f"kiosk {kiosk.id} at {kiosk.center_id}{slot}")
    finally:
        store.close()
    return 0


def worker_path(path: Path, index: int) -> Path:
    """The certificate or key of worker ``index`` (0-based) from a path with ``{n}`` (1, 2, ...: the
    province's ``fleet-1`` .. ``fleet-N``, provision province-init) or ``{.n}`` (nothing, .2, .3, ...:
    a center's ``fleet``, ``fleet.2`` .., provision center-init and service-cert); else the path."""
    number = index + 1
    text = str(path).replace("{n}", str(number)).replace("{.n}", "" if number == 1 else f".{number}")
    return Path(text)


def run_config_owner(args: argparse.Namespace) -> int:
    from fleet.store import open_store

    store = open_store(args.db)
    try:
        if args.owner == "default" and args.center is None:
            print("'default' is for a center (--center ID): the store's rule is 'here' or 'centers'",
                  file=sys.stderr)
            return 64
        if args.owner is not None:
            store.configs.set_owner(None if args.owner == "default" else args.owner, args.center)
        if args.center is not None:
            print(f"config owner of {args.center}: {store.configs.owner(args.center)}")
            return 0
        print(f"config owner: {store.configs.owner()}")
        for center, owner in store.configs.center_owners().items():
            print(f"config owner of {center}: {owner}")
    finally:
        store.close()
    return 0


def run_maintain(args: argparse.Namespace) -> int:
    from fleet.store import RetentionPolicy, open_store

    store = open_store(args.db)
    try:
        report = store.maintenance.run(
            RetentionPolicy(health_raw_days=args.keep_health_days, events_months=args.keep_event_months)
        )
        print(json.dumps(report, indent=2, sort_keys=True))
    finally:
        store.close()
    return 0


def _broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--broker: expected HOST:PORT, got {text!r}")
    return host, int(port)


def run_allocator(args: argparse.Namespace) -> int:
    from contract.errors import ContractError
    from contract.tickets import NumberPlan
    from fleet.allocator import Allocator, AllocatorSettings, Limits

    host, port = _broker(args.broker)
    try:
        plan = NumberPlan(args.offline_base, args.offline_block)
    except ContractError as exc:
        raise ConfigError(f"--offline-base/--offline-block: {exc.message}") from exc
    if (args.cert is None) != (args.key is None):
        raise ConfigError("--cert and --key go together")
    if (args.registry is None) == (not args.no_registry):
        raise ConfigError("--registry FILE (the center's enrolled kiosks) or --no-registry: one of them")
    try:
        limits = Limits(args.kiosk_quota, args.burst, args.rate, args.unconfirmed_ttl)
    except ValueError as exc:
        raise ConfigError(f"--kiosk-quota/--burst/--rate/--unconfirmed-ttl: {exc}") from exc
    settings = AllocatorSettings(
        center_id=args.center, db_path=args.db, host=host, port=port, ca_file=args.ca,
        cert_file=args.cert, key_file=args.key, topic_root=args.topic_root, timezone=args.timezone, plan=plan,
        limits=limits, registry_file=args.registry, catalog_file=args.catalog,
    )
    try:
        allocator = Allocator(settings)
    except ContractError as exc:
        raise ConfigError(f"--catalog: {exc.message}") from exc
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    allocator.start()
    logging.getLogger(__name__).info("allocator of %s on %s:%d, book %s", args.center, host, port, args.db)
    stop.wait()
    allocator.stop()
    return 0


def run_tickets(args: argparse.Namespace) -> int:
    from contract.tickets import NumberPlan, center_day, center_zone
    from fleet.allocator import AllocatorBook

    if not args.db.exists():
        raise ConfigError(f"--db: {args.db} does not exist")
    zone = center_zone(args.timezone)
    day = args.day or center_day(datetime.now(UTC), zone)
    book = AllocatorBook(args.db, NumberPlan(), zone)
    try:
        if args.json:
            for ticket in book.tickets(day):
                print(json.dumps(ticket, ensure_ascii=False))
            return 0
        summary = book.summary(day)
        print(
            f"{day}: {'service':<12} {'printed':>7} {'voided':>6} {'open':>5} {'offline':>7} "
            f"{'called':>6} {'last':>5} {'missing':>7}"
        )
        for service, s in sorted(summary.items()):
            print(
                f"{'':12}{service:<12} {s['printed']:>7} {s['voided']:>6} {s['allocated']:>5} "
                f"{s['offline']:>7} {s['called']:>6} {s['online_last']:>5} {s['online_missing']:>7}"
            )
        for at, kiosk, request_id, reason in book.conflicts():
            print(f"conflict {at} {kiosk} {request_id}: {reason}")
    finally:
        book.close()
    return 0


# --- the queue at the counters (docs/queue.md) ---------------------------------------------------------


def _configure_queue(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    queue = sub.add_parser("queue", help="the queue at the counters: services, counters, displays, publisher")
    q_sub = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    service = q_sub.add_parser("service", help="add or change a service area of a center")
    _db_option(service)
    service.add_argument("--center", required=True)
    service.add_argument("--code", required=True, help="as the kiosks know it (e.g. HOTICH)")
    service.add_argument("--prefix", required=True, help="the letter of its numbers (e.g. A)")
    service.add_argument("--name-vi", required=True)
    service.add_argument("--name-en", default="")
    service.add_argument("--position", type=int, default=0)
    service.set_defaults(func=run_queue_service)
    counter = q_sub.add_parser("counter", help="add or change a counter of a center")
    _db_option(counter)
    counter.add_argument("--center", required=True)
    counter.add_argument("--code", required=True, help="its number on the wall (e.g. 3)")
    counter.add_argument("--name", default="", help="e.g. 'Quầy số 3'")
    counter.add_argument("--services", default="", help="service codes it calls by default, comma-separated")
    counter.add_argument("--position", type=int, default=0)
    counter.set_defaults(func=run_queue_counter)
    display = q_sub.add_parser("display", help="a new hall display token (printed once)")
    _db_option(display)
    display.add_argument("--center", required=True)
    display.add_argument("--label", default="", help="where the TV hangs")
    display.set_defaults(func=run_queue_display)
    key = q_sub.add_parser("phone-key", help="print the center's phone key (kiosks derive the QR's token)")
    _db_option(key)
    key.add_argument("--center", required=True)
    key.set_defaults(func=run_queue_phone_key)
    clips = q_sub.add_parser("clips", help="write the announcement clips spoken by espeak-ng (to replace)")
    clips.add_argument("--out", type=Path, required=True)
    clips.add_argument("--overwrite", action="store_true")
    clips.set_defaults(func=run_queue_clips)
    publish = q_sub.add_parser("publish", help="publish the queue's events and stats (MQTT)")
    _db_option(publish)
    publish.add_argument("--center", required=True)
    publish.add_argument("--broker", default="127.0.0.1:8884", help="HOST:PORT of the services listener")
    publish.add_argument("--ca", type=Path)
    publish.add_argument("--cert", type=Path, help="client certificate with CN 'counter'")
    publish.add_argument("--key", type=Path)
    publish.add_argument("--topic-root", default="motcua/v1")
    publish.set_defaults(func=run_queue_publish)


def run_queue_service(args: argparse.Namespace) -> int:
    import re

    from contract.errors import ContractError
    from contract.tickets import SERVICE_PATTERN
    from fleet.queue.engine import Queue
    from fleet.store import open_store

    if not re.fullmatch(SERVICE_PATTERN, args.code) or not re.fullmatch("[A-Z]", args.prefix):
        raise ContractError("--code: 1-16 of A-Z 0-9 _; --prefix: one capital letter")
    store = open_store(args.db)
    try:
        service = Queue(store).set_service(
            args.center, args.code, args.prefix, args.name_vi, args.name_en, args.position
        )
        print(f"service {service.code} ({service.prefix}, {service.name_vi}) at {args.center}")
    finally:
        store.close()
    return 0


def run_queue_counter(args: argparse.Namespace) -> int:
    import re

    from fleet.queue.engine import Queue
    from fleet.store import open_store

    if not re.fullmatch(r"[A-Za-z0-9_-]{1,8}", args.code):
        raise ConfigError("--code: 1-8 of A-Z a-z 0-9 _ -")
    services = [s.strip() for s in args.services.split(",") if s.strip()]
    store = open_store(args.db)
    try:
        name = args.name or f"Quầy số {args.code}"
        counter = Queue(store).set_counter(args.center, args.code, name, services, args.position)
        print(f"counter {counter.code} ({counter.name}) at {args.center}: {', '.join(services) or '-'}")
    finally:
        store.close()
    return 0


def run_queue_display(args: argparse.Namespace) -> int:
    from fleet.queue.engine import Queue
    from fleet.store import Scope, open_store

    store = open_store(args.db)
    try:
        store.registry.center(Scope.everything(), args.center)
        token = Queue(store).create_display(args.center, args.label, None)
        store.audit.record(
            "queue.display_add",
            username=f"cli:{getpass.getuser()}",
            object_type="center",
            object_id=args.center,
            center_id=args.center,
            after={"label": args.label},
            address="cli",
        )
        print(f"/display/{token}")
    finally:
        store.close()
    return 0


def run_queue_phone_key(args: argparse.Namespace) -> int:
    from fleet.queue.engine import Queue
    from fleet.store import Scope, open_store

    store = open_store(args.db)
    try:
        store.registry.center(Scope.everything(), args.center)
        print(Queue(store).settings(args.center).phone_key.hex())
    finally:
        store.close()
    return 0


def run_queue_clips(args: argparse.Namespace) -> int:
    from fleet.queue.audio import write_default_clips

    written = write_default_clips(args.out, overwrite=args.overwrite)
    print(f"{len(written)} clips written to {args.out}")
    return 0


def run_queue_publish(args: argparse.Namespace) -> int:
    from fleet.queue.engine import Queue
    from fleet.queue.publisher import PublisherSettings, QueuePublisher
    from fleet.store import open_store

    host, port = _broker(args.broker)
    if (args.cert is None) != (args.key is None):
        raise ConfigError("--cert and --key go together")
    store = open_store(args.db)
    publisher = QueuePublisher(
        Queue(store),
        PublisherSettings(
            args.center,
            host,
            port,
            args.ca,
            args.cert,
            args.key,
            args.topic_root,
            client_id=f"queue-publisher-{args.center}",
        ),
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    publisher.start()
    log.info("queue publisher of %s on %s:%d", args.center, host, port)
    stop.wait()
    publisher.stop()
    store.close()
    return 0
