"""``python main.py demo --center``: a complete little center on this machine, beside the kiosk.

Five processes (six with ``--kiosks N``), started in this order and stopped in the reverse one:

1. **Mosquitto**, its own instance (never the system broker on 1883), with the configuration and ACL
   ``provision center-init`` generates for a center (``provisioning.center``: the deployed
   ``motcua.conf`` with the demo's paths and two free local ports, TLS 1.2, the CRL, one ACL block per
   enrolled kiosk) and a real center PKI (root and issuing CA; the broker's, ``allocator``'s and
   ``fleet``'s certificates); the kiosk is enrolled in it with a one-time code, its key made for it
   (``provisioning.enroll``, the enrollment endpoint called in-process);
2. the queue-number **allocator** (``main.py fleet allocator``);
3. the **fleet monitor** (``main.py fleet serve --broker``: web pages and the MQTT ingest in one process,
   on the center's store, which holds the enrollment), with a demo login (``DEMO_LOGIN``);
4. the **edge agent** (``main.py agent --config``);
5. the **kiosk** (``main.py kiosk --simulate --config``) with ``[numbering] mode = "center"`` and an
   ``[agent]`` section pointing at that broker;
6. with ``--kiosks N``, the **simulated kiosks** (``main.py simfleet run``): N more kiosks enrolled the
   same way (slots 1..N, ``kiosk-sim-01``...), each the real agent with a simulated app, whose faults
   ``main.py simfleet fault`` switches (``simfleet/``).

Everything lives under one directory (default ``var/demo-center/``): ``pki/``, ``broker/``,
``allocator/``, ``kiosk/`` (the kiosk's data dir), ``kiosk.toml`` and ``logs/<part>.log`` (each
process's stdout and stderr). The center's identity (PKI, settings, broker configuration, the fleet
store that holds the enrollment) is made anew at every start and the CA keys are deleted once the
kiosk is enrolled; the books (allocator, kiosk) and the broker's persistence are kept between runs.

Children run in their own process groups (Ctrl-C in the terminal reaches only this supervisor, which
stops them in order) and get SIGTERM if the supervisor dies (``PR_SET_PDEATHSIG``); a part that does
not stop within its grace time is killed with its whole group.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import getpass
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

from common.errors import ConfigError, MotcuaError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "var" / "demo-center"
DEPLOY = ROOT / "deploy" / "mosquitto"
BASE_CONFIG = ROOT / "config" / "simulate.toml"
#: the kiosk asks to be started again (center command ``restart_app``), as in scripts/demo
EXIT_RESTART = 75
#: the kiosk's offline slot in the demo center (one kiosk)
DEMO_SLOT = 0


class DemoError(MotcuaError):
    """A part of the demo center could not be prepared, did not start, or stopped on its own."""

    exit_code = 1


class _Interrupted(Exception):
    """SIGINT/SIGTERM arrived while the demo was starting."""


@dataclass(frozen=True)
class DemoLayout:
    """Where the demo keeps its files."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def broker(self) -> Path:
        return self.root / "broker"

    @property
    def allocator_db(self) -> Path:
        return self.root / "allocator" / "allocator.sqlite"

    @property
    def kiosk_data(self) -> Path:
        return self.root / "kiosk"

    @property
    def kiosk_config(self) -> Path:
        return self.root / "kiosk.toml"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def sim(self) -> Path:
        """The simulated kiosks (``main.py simfleet``): ``sim/<nn>/kiosk.toml`` and data, ``faults.json``."""
        return self.root / "sim"

    def cert(self, name: str) -> Path:
        return self.pki / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.pki / f"{name}.key"

    @property
    def ca(self) -> Path:
        return self.pki / "ca.crt"


@dataclass(frozen=True)
class DemoPlan:
    """The generated demo: files written, ports chosen."""

    layout: DemoLayout
    kiosk_id: str
    center_id: str
    kiosk_port: int
    service_port: int
    #: the fleet monitor: its store (the center's, which holds the enrollment) and web port
    fleet_url: str = ""
    fleet_port: int = 0
    #: the simulated kiosks' ids (``main.py simfleet``), slots 1..N
    sim_kiosks: tuple[str, ...] = ()
    python: str = sys.executable

    @property
    def fleet_address(self) -> str:
        return f"http://127.0.0.1:{self.fleet_port}"

    def watch_command(self) -> str:
        """How to watch the center's traffic: with a certificate of its own (``fleet.2``), since the
        broker makes a service's client id its certificate's name and the fleet monitor holds ``fleet``."""
        lay = self.layout
        return shlex.join(
            [
                "mosquitto_sub", "-h", "localhost", "-p", str(self.service_port),
                "--cafile", str(lay.ca), "--cert", str(lay.cert(WATCH_IDENTITY)),
                "--key", str(lay.key(WATCH_IDENTITY)),
                "-t", f"motcua/v1/{self.center_id}/#", "-v",
            ]
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kiosk_identity(base_config: Path) -> tuple[str, str]:
    from contract.schema import read_toml

    data = read_toml(base_config)
    kiosk = data.get("kiosk")
    if not isinstance(kiosk, dict) or not isinstance(kiosk.get("id"), str) or not isinstance(
        kiosk.get("center_id"), str
    ):
        raise ConfigError(f"{base_config}: [kiosk] id and center_id are needed")
    for section in ("agent", "numbering"):
        if section in data:
            raise ConfigError(f"{base_config}: has an [{section}] section; the center demo writes its own")
    return kiosk["id"], kiosk["center_id"]


DEMO_PROVINCE = ("demo", "Tỉnh thử nghiệm")
#: the fleet monitor's demo login (printed at start; the store is made anew at every start)
DEMO_LOGIN = ("demo.admin", "demo-giamsat-2026")
#: the identity ``watch_command`` uses (the fleet monitor's ingest holds ``fleet``)
WATCH_IDENTITY = "fleet.2"
SIM_PREFIX = "kiosk-sim-"
MAX_SIM_KIOSKS = 99
#: the demo kiosk's agent reports often and reconnects fast (a person is watching)
DEMO_AGENT = {"heartbeat_s": 10, "reconnect_min_s": 0.5, "reconnect_max_s": 5}


def _wipe_center_identity(layout: DemoLayout) -> None:
    """A new center identity at every start: PKI, settings, broker configuration, the fleet store that
    holds enrollment (the allocator's book, the broker's persistence and the kiosk's data are kept)."""
    for folder in (layout.pki, layout.root / "fleet", layout.root / "registry", layout.root / "systemd",
                   layout.sim):
        shutil.rmtree(folder, ignore_errors=True)
    for stale in (layout.root / "center.json", layout.broker / "mosquitto.conf", layout.broker / "motcua.acl",
                  layout.root / "provision.lock"):
        stale.unlink(missing_ok=True)


def prepare(root: Path, base_config: Path = BASE_CONFIG, sim_kiosks: int = 0) -> DemoPlan:
    """A real center in ``root`` (``provision center-init``: root and issuing CA, broker configuration and
    ACL generated from the registry) and the kiosk enrolled in it as a technician would (a one-time code,
    a key made for the kiosk, its CSR bound to the center's nonce), the enrollment endpoint called
    in-process. ``sim_kiosks`` more are enrolled the same way (slots 1..N, each its own key and
    certificate) for ``main.py simfleet``; the fleet monitor gets a demo login. The CA keys are deleted
    afterwards: nothing issues after start."""
    import secrets

    from contract.enrollment import EnrollmentCode
    from contract.schema import read_toml
    from fleet.auth import hash_password
    from fleet.store import Scope, open_store
    from provisioning.center import CenterLayout, CenterSettings, center_init
    from provisioning.enroll import Enroller, KioskLayout
    from provisioning.machine import machine_info
    from provisioning.registry import sync_files
    from provisioning.service import Authority, LocalCenter
    from provisioning.ui import Console

    layout = DemoLayout(root.resolve())
    if not 0 <= sim_kiosks <= MAX_SIM_KIOSKS:
        raise ConfigError(f"--kiosks: from 0 to {MAX_SIM_KIOSKS} simulated kiosks, not {sim_kiosks}")
    kiosk_id, center_id = _kiosk_identity(base_config)
    base = read_toml(base_config)
    for directory in (layout.broker / "data", layout.allocator_db.parent, layout.kiosk_data, layout.logs):
        directory.mkdir(parents=True, exist_ok=True)
    _wipe_center_identity(layout)
    kiosk_port, service_port, enroll_port, fleet_port = free_port(), free_port(), free_port(), free_port()
    while len({kiosk_port, service_port, enroll_port, fleet_port}) < 4:
        service_port, enroll_port, fleet_port = free_port(), free_port(), free_port()
    settings = CenterSettings(
        center_id=center_id, center_name=str(base["kiosk"].get("center_name", center_id)),
        province_id=DEMO_PROVINCE[0], province_name=DEMO_PROVINCE[1], addresses=["127.0.0.1"],
        kiosk_port=kiosk_port, service_port=service_port, enroll_port=enroll_port, bind="127.0.0.1",
        broker_user=getpass.getuser(), kiosk_template=str(base_config.resolve()), broker_log=True,
    )
    center_init(layout.root, settings, secrets.token_urlsafe(24).encode())  # a throw-away root passphrase
    center = CenterLayout(layout.root)
    store = open_store(center.store_url(settings))
    try:
        token, _ = store.enrollment.create_token(Scope.everything(), center_id, kiosk_id, slot=DEMO_SLOT,
                                                 username="demo-center")
        authority = Authority(center, settings, store, reload_broker=lambda: None, kick=lambda kiosk: "")
        fingerprint = center.pki.fingerprint()
        code = EnrollmentCode("127.0.0.1", enroll_port, center_id, fingerprint, token)
        kiosk = KioskLayout(
            layout.kiosk_config, layout.kiosk_data, layout.key(kiosk_id), layout.cert(kiosk_id), layout.ca
        )
        demo_base = {k: v for k, v in base.items() if k not in ("agent", "numbering")}
        demo_base["agent"] = dict(DEMO_AGENT)
        Enroller(code, kiosk, Console("demo", as_json=True), machine=machine_info(), base=demo_base,
                 validate=False, client=LocalCenter(authority, fingerprint)).run()
        sims = []
        for number in range(1, sim_kiosks + 1):
            sim_id = f"{SIM_PREFIX}{number:02d}"
            token, _ = store.enrollment.create_token(Scope.everything(), center_id, sim_id, slot=number,
                                                     username="demo-center")
            code = EnrollmentCode("127.0.0.1", enroll_port, center_id, fingerprint, token)
            folder = layout.sim / f"{number:02d}"  # short: the simulated app's socket lives in it
            sim = KioskLayout(folder / "kiosk.toml", folder / "d", layout.key(sim_id), layout.cert(sim_id),
                              layout.ca)
            Enroller(code, sim, Console("demo", as_json=True), machine=machine_info(serial=f"sim-{sim_id}"),
                     base=demo_base, validate=False, client=LocalCenter(authority, fingerprint)).run()
            sims.append(sim_id)
        center.pki.issue_named(WATCH_IDENTITY)
        sync_files(center, settings, store)  # the ACL knows every kiosk and the watching identity
        store.accounts.add_user(DEMO_LOGIN[0], hash_password(DEMO_LOGIN[1]), "province_admin",
                                province_id=DEMO_PROVINCE[0], display_name="Quản trị thử nghiệm")
        fleet_url = center.store_url(settings)
    finally:
        store.close()
    for key in (center.pki.root_key_file, center.pki.issuing_key_file):
        key.unlink()  # nothing issues after start: the demo keeps no CA key
    _check_kiosk_config(layout.kiosk_config)
    return DemoPlan(layout, kiosk_id, center_id, kiosk_port, service_port, fleet_url, fleet_port, tuple(sims))


def _check_kiosk_config(path: Path) -> None:
    """The kiosk's own validator, through its CLI (the center side does not import the kiosk)."""
    check = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "kiosk", "--check-config", "--config", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    if check.returncode != 0:
        lines = check.stderr.strip().splitlines()
        raise ConfigError(f"{path}: {lines[-1] if lines else 'invalid configuration'}")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies, whatever kills it (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Part:
    """One child process: its command, log file and how to stop it."""

    def __init__(self, name: str, argv: list[str], log_file: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.log_file = log_file
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self._log = self.log_file.open("ab")
        self._log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(self.argv)}\n".encode())
        self._log.flush()
        try:
            self.process = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=self._log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise DemoError(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, grace_s: float) -> None:
        """SIGTERM to its process group, SIGKILL after ``grace_s``; leftovers of the group killed."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)  # a grandchild left in the group (none expected)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + line for line in text.splitlines()[-lines:])


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class DemoCenter:
    """Starts the parts in order, waits until each one is ready, supervises them, stops them all."""

    def __init__(
        self,
        plan: DemoPlan,
        stop: threading.Event,
        *,
        start_timeout_s: float = 60.0,
        out: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True),
    ) -> None:
        self.plan = plan
        self.stop_event = stop
        self.start_timeout_s = start_timeout_s
        self.out = out
        lay = plan.layout
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        py = plan.python
        self.broker = Part(
            "broker", ["mosquitto", "-c", str(lay.broker / "mosquitto.conf")], lay.logs / "broker.log",
            {**env, "OPENSSL_CONF": str(lay.broker / "openssl.cnf")},  # no TLS session tickets
        )
        from provisioning.center import CenterLayout

        self.allocator = Part(
            "allocator",
            [
                py, "main.py", "fleet", "allocator", "--center", plan.center_id,
                "--db", str(lay.allocator_db),
                "--broker", f"127.0.0.1:{plan.service_port}", "--ca", str(lay.ca),
                "--cert", str(lay.cert("allocator")), "--key", str(lay.key("allocator")),
                "--registry", str(CenterLayout(lay.root).registry_file), "--catalog", str(lay.kiosk_config),
            ],
            lay.logs / "allocator.log",
            env,
        )
        self.fleet = Part(
            "fleet",
            [
                py, "main.py", "fleet", "serve", "--db", plan.fleet_url,
                "--listen", f"127.0.0.1:{plan.fleet_port}", "--center", plan.center_id,
                "--broker", f"127.0.0.1:{plan.service_port}", "--ca", str(lay.ca),
                "--cert", str(lay.cert("fleet")), "--key", str(lay.key("fleet")), "--client-id", "fleet",
                "--public-url", plan.fleet_address,
            ],
            lay.logs / "fleet.log",
            env,
        )
        self.agent = Part(
            "agent", [py, "main.py", "agent", "--config", str(lay.kiosk_config)], lay.logs / "agent.log", env
        )
        self.simfleet = Part(
            "simfleet", [py, "main.py", "simfleet", "run", "--dir", str(lay.sim)], lay.logs / "simfleet.log",
            env,
        )
        self.kiosk = Part(
            "kiosk",
            [py, "main.py", "kiosk", "--simulate", "--config", str(lay.kiosk_config)],
            lay.logs / "kiosk.log",
            env,
        )
        self.parts = [self.broker, self.allocator, self.fleet, self.agent, self.kiosk]
        if plan.sim_kiosks:
            self.parts.append(self.simfleet)

    # -- start ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every part and wait until it is ready; raises DemoError (parts already stopped)."""
        try:
            if shutil.which("mosquitto") is None:
                raise DemoError("mosquitto is not installed (scripts/setup.sh installs the Debian package)")
            self.broker.start()
            self._wait(self.broker, self._broker_ready, "its listeners did not accept connections")
            self.allocator.start()
            self.fleet.start()
            self.agent.start()
            self._wait(self.agent, lambda: self._relay().get("connected") is True,
                       "the agent did not connect to the broker", also=(self.allocator,))
            self._wait(self.allocator, lambda: self._relay().get("allocator") == "online",
                       "the allocator did not announce itself online on the broker", also=(self.agent,))
            self._wait(self.fleet, self._fleet_ready, "the fleet monitor did not answer /healthz",
                       also=(self.agent, self.allocator))
            self.kiosk.start()
            self._wait(self.kiosk, self._kiosk_ready, "the kiosk's control socket did not answer app.health",
                       also=(self.agent, self.allocator, self.fleet))
            if self.plan.sim_kiosks:
                self.simfleet.start()
        except BaseException:
            self.shutdown()
            raise

    def _wait(
        self, part: Part, ready: Callable[[], bool], what: str, also: tuple[Part, ...] = ()
    ) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self.stop_event.is_set():
                raise _Interrupted
            for watched in (part, *also, self.broker):
                code = watched.exited()
                if code is not None:
                    raise DemoError(
                        f"{watched.name} exited with status {code} while the demo was starting; "
                        f"the end of {watched.log_file}:\n{watched.tail()}"
                    )
            if ready():
                return
            if time.monotonic() > deadline:
                raise DemoError(
                    f"{part.name}: {what} within {self.start_timeout_s:.0f} s; "
                    f"the end of {part.log_file}:\n{part.tail()}"
                )
            self.stop_event.wait(0.1)

    def _broker_ready(self) -> bool:
        try:
            for port in (self.plan.kiosk_port, self.plan.service_port):
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
        except OSError:
            return False
        return True

    def _fleet_ready(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.plan.fleet_address}/healthz", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def _relay(self) -> dict[str, object]:
        from common.ipc import call

        try:
            return call(self.plan.layout.kiosk_data / "agent.sock", "ticket.link", timeout=2)
        except (MotcuaError, ValueError):
            return {}

    def _kiosk_ready(self) -> bool:
        from common.ipc import call

        try:
            call(self.plan.layout.kiosk_data / "app.sock", "app.health", timeout=2)
        except (MotcuaError, ValueError):
            return False
        return True

    # -- run ------------------------------------------------------------------------------------------

    def describe(self) -> str:
        plan, lay = self.plan, self.plan.layout
        rel = "python main.py"
        return "\n".join(
            [
                f"demo-center: a local center for kiosk {plan.kiosk_id} of {plan.center_id} is running "
                "(Ctrl-C or SIGTERM stops it all)",
                f"  broker     pid {self.broker.pid}: kiosks on 127.0.0.1:{plan.kiosk_port} (TLS, client "
                f"certificate CN = kiosk id), center services on 127.0.0.1:{plan.service_port}; "
                f"config {lay.broker / 'mosquitto.conf'}",
                f"  allocator  pid {self.allocator.pid}: book {lay.allocator_db}",
                f"  fleet      pid {self.fleet.pid}: the fleet monitor (web and ingest) at "
                f"{plan.fleet_address}/ - log in as {DEMO_LOGIN[0]} / {DEMO_LOGIN[1]}",
                f"  agent      pid {self.agent.pid}: data dir {lay.kiosk_data}, "
                f"relay {lay.kiosk_data / 'agent.sock'}",
                f"  kiosk      pid {self.kiosk.pid}: config {lay.kiosk_config} "
                f"([numbering] mode = \"center\", slot {DEMO_SLOT}), "
                f"printed tickets in {lay.kiosk_data / 'printer'}",
                f"  certificates {lay.pki}, logs {lay.logs}",
                f"watch the center's traffic (certificate {WATCH_IDENTITY}):",
                f"  {plan.watch_command()}",
                "the allocator's book of today:",
                f"  {rel} fleet tickets --db {lay.allocator_db}",
                "drive the kiosk's simulated devices:",
                f"  {rel} sim --config {lay.kiosk_config} citizen --profile elderly",
                *self._describe_sims(rel),
            ]
        )

    def _describe_sims(self, rel: str) -> list[str]:
        plan = self.plan
        if not plan.sim_kiosks:
            return ["more kiosks on the fleet page: scripts/demo --center --kiosks 20"]
        first, where = plan.sim_kiosks[0], f"--dir {plan.layout.sim}"
        return [
            f"  simfleet   pid {self.simfleet.pid}: {len(plan.sim_kiosks)} simulated kiosks "
            f"({plan.sim_kiosks[0]} .. {plan.sim_kiosks[-1]}: real agents, simulated apps)",
            "inject faults into a simulated kiosk (take them back: --paper ok, --reader plug, --online):",
            f"  {rel} simfleet fault {where} --kiosk {first} --paper out",
            f"  {rel} simfleet fault {where} --kiosk {first} --reader unplug",
            f"  {rel} simfleet fault {where} --kiosk {first} --offline",
        ]

    def supervise(self) -> None:
        """Until SIGINT/SIGTERM; a part that stops on its own ends the demo (DemoError)."""
        while not self.stop_event.wait(0.2):
            for part in self.parts:
                code = part.exited()
                if code is None:
                    continue
                if part is self.kiosk and code == EXIT_RESTART:
                    self.out("demo-center: the kiosk asked for a restart")
                    part.stop(5)
                    part.start()
                    continue
                raise DemoError(
                    f"{part.name} stopped on its own with status {code}; the end of {part.log_file}:\n"
                    f"{part.tail()}"
                )

    def shutdown(self) -> None:
        """Stop the parts in reverse order: the agent reports the kiosk offline before the broker goes."""
        for part in reversed(self.parts):
            part.stop(grace_s=10)


def run_demo(
    root: Path, base_config: Path = BASE_CONFIG, start_timeout_s: float = 60.0, sim_kiosks: int = 0
) -> int:
    """The CLI's body: prepare, start, supervise until a signal, stop everything."""
    root.mkdir(parents=True, exist_ok=True)
    lock = (root / "demo.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise DemoError(f"another center demo is running from {root}") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        plan = prepare(root, base_config, sim_kiosks)
        center = DemoCenter(plan, stop, start_timeout_s=start_timeout_s)
        center.out(f"demo-center: starting in {plan.layout.root}")
        try:
            center.start()
        except _Interrupted:
            center.out("demo-center: interrupted while starting; everything stopped")
            return 130
        print(center.describe(), flush=True)
        try:
            center.supervise()
        finally:
            center.out("demo-center: stopping")
            center.shutdown()
        center.out("demo-center: stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.close()
