"""A real Mosquitto for the agent's tests: deploy/mosquitto/motcua.conf with test paths and free ports.

Never the system broker on 1883: each instance has its own directory, ports, certificates and
persistence file, and is started and stopped by the test session.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from provisioning.pki import CertificateAuthority, Issued, is_service_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "mosquitto"


class _PortTaken(RuntimeError):
    """Mosquitto could not bind a listener: another process took the port ``free_port`` found free."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pki:
    directory: Path
    ca: CertificateAuthority
    server: Issued
    clients: dict[str, Issued]

    @classmethod
    def create(cls, directory: Path, names: tuple[str, ...]) -> Pki:
        ca = CertificateAuthority.create(directory)
        server = ca.issue(directory, "broker", server=True, hosts=("127.0.0.1", "localhost"))
        made = cls(directory, ca, server, {})
        for name in names:
            made.client(name)
        return made

    def client(self, name: str) -> Issued:
        """The certificate of ``name``: a center service's (``fleet``, ``fleet-2``, ``allocator``...) or
        a kiosk's."""
        if name not in self.clients:
            self.clients[name] = self.ca.issue(self.directory, name, service=is_service_name(name))
        return self.clients[name]


class Broker:
    def __init__(self, directory: Path, pki: Pki) -> None:
        self.directory = directory
        self.pki = pki
        self.kiosk_port = free_port()
        self.service_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._started = False  # once started, a restart keeps the ports
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "data").mkdir(exist_ok=True)
        self.conf = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        self.conf.write_text(self.render())

    def render(self) -> str:
        text = (DEPLOY / "motcua.conf").read_text()
        replacements = {
            "/etc/mosquitto/motcua.acl": str(DEPLOY / "motcua.acl"),
            "/var/lib/mosquitto/": f"{self.directory / 'data'}/",
            "/etc/mosquitto/certs/ca.crt": str(self.pki.ca.cert_file),
            "/etc/mosquitto/certs/broker.crt": str(self.pki.server.cert_file),
            "/etc/mosquitto/certs/broker.key": str(self.pki.server.key_file),
            "listener 8883": f"listener {self.kiosk_port} 127.0.0.1",
            "listener 8884": f"listener {self.service_port} 127.0.0.1",
        }
        for old, new in replacements.items():
            assert old in text, f"deploy config no longer contains {old!r}"
            text = text.replace(old, new)
        # Started as root, mosquitto would drop to the "mosquitto" user and not read our files.
        user = f"user {getpass.getuser()}\n"
        return (
            user + text + f"\nlog_dest file {self.log}\nlog_type error\nlog_type warning\nlog_type notice\n"
        )

    def start(self) -> None:
        """Start and wait until both listeners accept. The first start takes new ports if another
        process took one of ours between ``free_port`` and the bind (seen with three test sessions on
        one machine); a restart keeps its ports, which its clients reconnect to."""
        for attempt in range(5):
            try:
                self._start_once()
                self._started = True
                return
            except _PortTaken:
                if self._started or attempt == 4:
                    raise
                self._new_ports()

    def _new_ports(self) -> None:
        text = self.conf.read_text()
        for old in (self.kiosk_port, self.service_port):
            assert f"listener {old} 127.0.0.1" in text
        kiosk, service = free_port(), free_port()
        text = text.replace(f"listener {self.kiosk_port} 127.0.0.1", f"listener {kiosk} 127.0.0.1")
        text = text.replace(f"listener {self.service_port} 127.0.0.1", f"listener {service} 127.0.0.1")
        self.kiosk_port, self.service_port = kiosk, service
        self.conf.write_text(text)

    def _start_once(self) -> None:
        assert self.process is None
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                err += self.log.read_text() if self.log.exists() else ""  # its log file, once it is read
                self.process = None
                if "Address already in use" in err:
                    raise _PortTaken(err)
                raise RuntimeError(f"mosquitto exited: {err}")
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.kiosk_port), timeout=0.2),
                    socket.create_connection(("127.0.0.1", self.service_port), timeout=0.2),
                ):
                    pass
            except OSError:
                time.sleep(0.02)
                continue
            # both ports answer; if the last listener's port was another process's, mosquitto is about
            # to exit (it binds its listeners in order, and the first one answering means it is past it)
            time.sleep(0.05)
            if self.process.poll() is None:
                return
        raise RuntimeError("mosquitto did not start listening within 10 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a graceful stop that writes the persistence file (a crash would lose acked data)."""
        if self.process is None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        if down_s:
            time.sleep(down_s)
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if os.environ.get("KEEP_BROKER_DIR") is None:
            shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def temporary_pki(names: tuple[str, ...], prefix: str) -> Iterator[Pki]:
    """A test CA with a certificate per name, in a temporary folder removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield Pki.create(directory, names)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def running_broker(pki: Pki, prefix: str) -> Iterator[Broker]:
    """A started Mosquitto on its own ports and folder, stopped and cleaned afterwards."""
    instance = Broker(Path(tempfile.mkdtemp(prefix=prefix)), pki)
    instance.start()
    try:
        yield instance
    finally:
        instance.cleanup()
