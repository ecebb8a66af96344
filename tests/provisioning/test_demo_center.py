"""``python main.py demo --center`` as a person starts it: its own broker, allocator, agent and kiosk.

The demo runs as a subprocess on a private Xvfb; the test talks to it only from outside: the kiosk's
control socket, the broker with the fleet's certificate, the agent's relay socket; then SIGTERM must
stop every process the demo started.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import psutil
import pytest

from common.errors import MotcuaError
from common.ipc import call
from contract.tickets import NumberPlan, TicketRequest
from edge_agent.cli import load_settings
from kiosk.config import load_config
from provisioning.demo_center import DemoLayout, prepare
from provisioning.pki import Issued
from screens.harness import xvfb
from tests.agent.peer import Peer

ROOT = Path(__file__).resolve().parents[2]
CENTER = "hcm-ben-thanh"
KIOSK = "kiosk-demo-01"


@pytest.fixture
def demo_dir() -> Iterator[Path]:
    # Short path: Unix sockets live in it (108-byte limit).
    directory = Path(tempfile.mkdtemp(prefix="dc-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def wait_until(predicate: object, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"demo exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"timed out; demo output:\n{log.read_text(errors='replace')}"
        time.sleep(0.2)


def answers(path: Path, cmd: str) -> bool:
    try:
        call(path, cmd, timeout=2)
    except (MotcuaError, ValueError):
        return False
    return True


def processes_of(demo_dir: Path) -> list[str]:
    """Every process on the machine whose command line names the demo's directory."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(demo_dir) in cmdline and process.info["pid"] != os.getpid():
            found.append(f"{process.info['pid']}: {cmdline}")
    return found


def no_process_left(demo_dir: Path, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while processes_of(demo_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    return processes_of(demo_dir)


def start_demo(demo_dir: Path, display: str, out: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "main.py", "demo", "--center", "--dir", str(demo_dir)],
        cwd=ROOT,
        env={**os.environ, "DISPLAY": display},
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def service_port(layout: DemoLayout) -> int:
    ports = re.findall(r"^listener (\d+) 127\.0\.0\.1$", (layout.broker / "mosquitto.conf").read_text(), re.M)
    assert len(ports) == 2, ports
    return int(ports[1])  # the second listener: center services (motcua.conf order)


def test_prepare_writes_a_center_mode_kiosk_and_a_private_broker(demo_dir: Path) -> None:
    plan = prepare(demo_dir)
    config = load_config(plan.layout.kiosk_config)
    kiosk = config.kiosk
    assert (kiosk.id, kiosk.center_id, kiosk.data_dir) == (KIOSK, CENTER, demo_dir / "kiosk")
    assert config.numbering.mode == "center"
    agent = load_settings(plan.layout.kiosk_config).agent  # the agent's own reading of the same file
    assert (agent.broker_host, agent.broker_port) == ("127.0.0.1", plan.kiosk_port)
    assert agent.tls.cert_file == demo_dir / "pki" / f"{KIOSK}.crt"
    settings = [
        line for line in (demo_dir / "broker" / "mosquitto.conf").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    listeners = [line for line in settings if line.startswith("listener")]
    assert listeners == [f"listener {plan.kiosk_port} 127.0.0.1", f"listener {plan.service_port} 127.0.0.1"]
    assert not [line for line in settings if "/etc/" in line or "/var/lib" in line]
    assert f"acl_file {demo_dir / 'broker' / 'motcua.acl'}" in settings
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((demo_dir / "pki" / f"{KIOSK}.crt").read_bytes())
    assert cert.subject.rfc4514_string() == f"CN={KIOSK}"


@pytest.mark.broker
@pytest.mark.window
def test_demo_center_runs_answers_and_stops_every_child(demo_dir: Path) -> None:
    layout = DemoLayout(demo_dir)
    log = demo_dir.parent / f"{demo_dir.name}.out"
    peer: Peer | None = None
    with xvfb() as display, log.open("wb") as out:
        proc = start_demo(demo_dir, display, out)
        try:
            wait_until(lambda: answers(layout.kiosk_data / "app.sock", "app.health"), 90, proc, log)
            health = call(layout.kiosk_data / "app.sock", "app.health")
            assert health["screen"] == "attract"

            fleet = Issued(layout.cert("fleet"), layout.key("fleet"))
            peer = Peer(service_port(layout), str(layout.ca), fleet)
            peer.connect(f"motcua/v1/{CENTER}/#")
            status = peer.wait_for(f"motcua/v1/{CENTER}/{KIOSK}/status", lambda d: d["state"] == "online", 20)
            assert status["schema"] == "status/1"
            allocator = peer.wait_for(f"motcua/v1/{CENTER}/_center/allocator/status")
            assert allocator["state"] == "online"

            request = TicketRequest(
                f"{KIOSK}-test-1", "allocate", 0, NumberPlan(800, 20), service="HO_TICH", prefix="A",
                day=time.strftime("%Y-%m-%d"),
            )
            answer = call(
                layout.kiosk_data / "agent.sock", "ticket.allocate",
                {"request": request.to_data(), "timeout_ms": 3000}, timeout=5,
            )
            assert answer["status"] == "ok", answer
            assert (answer["request_id"], answer["service"]) == (request.request_id, "HO_TICH")
            assert answer["number"] == "A001" and answer["seq"] == 1  # a fresh book: the first online number

            children = psutil.Process(proc.pid).children(recursive=True)
            names = sorted(" ".join(c.cmdline()[:4]) for c in children)
            # mosquitto, allocator, fleet monitor, agent, kiosk (and pcscd when the kiosk had to start it)
            assert len(children) >= 5, names
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(40) == 0, log.read_text(errors="replace")
            _, alive = psutil.wait_procs(children, timeout=5)
            assert not alive, f"left behind: {alive}"
            assert not processes_of(demo_dir)
            # The agent stopped before the broker: the kiosk's retained status says so.
            assert peer.wait(
                lambda: any(
                    m.payload and m.json().get("state") == "offline"
                    for m in peer.on(f"motcua/v1/{CENTER}/{KIOSK}/status")
                ),
                5,
            )
        finally:
            if peer is not None:
                peer.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    text = log.read_text()
    assert "mosquitto_sub" in text and "demo-center: stopped" in text
    log.unlink()


@pytest.mark.broker
def test_a_part_that_fails_to_start_stops_the_others_and_is_named(demo_dir: Path) -> None:
    (demo_dir / "allocator" / "allocator.sqlite").mkdir(parents=True)  # the allocator cannot open its book
    result = subprocess.run(
        [sys.executable, "main.py", "demo", "--center", "--dir", str(demo_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "error: allocator exited with status 74 while the demo was starting" in result.stderr
    assert "unable to open database file" in result.stderr  # the end of its log is shown
    assert not no_process_left(demo_dir)  # the broker and the agent were stopped


@pytest.mark.broker
@pytest.mark.window
def test_a_part_that_dies_ends_the_demo_and_a_killed_demo_leaves_nothing(demo_dir: Path) -> None:
    layout = DemoLayout(demo_dir)
    log = demo_dir.parent / f"{demo_dir.name}.out"
    with xvfb() as display, log.open("wb") as out:
        # 1. The allocator dies while the demo runs: the demo stops the rest and says so.
        proc = start_demo(demo_dir, display, out)
        try:
            # Running, not starting: the demo has printed what runs where (after its own checks).
            wait_until(lambda: "is running" in log.read_text(), 90, proc, log)
            (allocator,) = [
                c for c in psutil.Process(proc.pid).children() if "allocator" in " ".join(c.cmdline())
            ]
            allocator.kill()
            assert proc.wait(40) == 1
            assert "error: allocator stopped on its own with status -9" in log.read_text()
            assert not no_process_left(demo_dir)
        finally:
            if proc.poll() is None:
                proc.kill()
        # 2. The supervisor itself is SIGKILLed: its children still go (PR_SET_PDEATHSIG).
        proc = start_demo(demo_dir, display, out)
        try:
            wait_until(lambda: answers(layout.kiosk_data / "app.sock", "app.health"), 90, proc, log)
            # broker, allocator, fleet monitor, agent, kiosk
            assert len(psutil.Process(proc.pid).children()) == 5
            proc.kill()
            proc.wait(10)
            assert not no_process_left(demo_dir), log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    log.unlink()
