"""At rest (security review item 12): everything the app and the agent write is their user's alone.

Both run as their own processes, started with the usual umask 022 (what a shell or a unit without
``UMask=`` gives them): journal, books, state, health file, logs, screenshots and printer output must
come out 0600 in 0700 folders anyway.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.ipc import call

ROOT = Path(__file__).resolve().parents[2]


def loose_modes(root: Path) -> list[str]:
    """Every file or folder under ``root`` that its group or others may read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        if stat.S_IMODE(mode) & 0o077:
            found.append(f"{path.relative_to(root)}: {stat.filemode(mode)}")
    return found


def umask_022() -> None:
    os.umask(0o022)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Short path: Unix sockets live in the data dir (108-byte limit).
    directory = Path(tempfile.mkdtemp(prefix="fm-"))
    os.chmod(directory, 0o755)
    yield directory
    import shutil

    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.broker
def test_the_agent_writes_private_files(short_dir: Path) -> None:
    from edge_agent.config import AgentConfig, TlsConfig
    from tests.agent.broker import free_port, temporary_pki
    from tests.agent.conftest import write_kiosk_toml

    data_dir = short_dir / "data"
    with temporary_pki(("kiosk-a",), "fmpki-") as pki:
        identity = pki.client("kiosk-a")
        cfg = AgentConfig(
            broker_host="127.0.0.1",
            broker_port=free_port(),  # no broker: the agent keeps reporting locally
            tls=TlsConfig(ca_file=pki.ca.cert_file, cert_file=identity.cert_file, key_file=identity.key_file),
            heartbeat_s=1.0,
        )
        conf = write_kiosk_toml(short_dir / "kiosk.toml", "kiosk-a", data_dir, cfg)
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "--config", str(conf)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=umask_022,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while not (data_dir / "agent-health.json").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert (data_dir / "agent-health.json").exists(), "the agent wrote no health file"
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    names = {p.name for p in data_dir.rglob("*")}
    assert {"agent-health.json", "agent-state.sqlite", "events.sqlite", "agent.log"} <= names, names
    loose = loose_modes(data_dir)
    assert loose == [], "\n".join(loose)


@pytest.mark.window
def test_the_kiosk_writes_private_files(short_dir: Path) -> None:
    from screens.cli import FIRST_FRAME_MESSAGE
    from screens.harness import xvfb

    data_dir = short_dir / "data"
    text = (ROOT / "config" / "simulate.toml").read_text(encoding="utf-8")
    config = short_dir / "kiosk.toml"
    config.write_text(text.replace('data_dir = "../var/kiosk-demo-01"', f'data_dir = "{data_dir}"'))
    with xvfb() as display:
        proc = subprocess.Popen(
            [sys.executable, "main.py", "kiosk", "--simulate", "--config", str(config)],
            cwd=ROOT, env={**os.environ, "DISPLAY": display}, preexec_fn=umask_022,
            stderr=subprocess.PIPE, text=True,
        )
        try:
            assert proc.stderr is not None
            deadline = time.monotonic() + 60
            for line in proc.stderr:
                if FIRST_FRAME_MESSAGE in line or time.monotonic() > deadline:
                    break
            sock = data_dir / "app.sock"
            shot = Path(call(sock, "app.screenshot")["png_path"])  # the attract screen: allowed
            call(sock, "app.print_test_ticket")
            call(sock, "app.restart")
            assert proc.wait(30) == 75
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    assert shot.exists() and shot.parent.name == "screenshots"
    assert list((data_dir / "printer").glob("*.png")), "no printer output"
    assert (data_dir / "logs" / "kiosk.log").exists() and (data_dir / "events.sqlite").exists()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    # Kivy copies its own icons into KIVY_HOME with the package's modes: public pictures, not ours,
    # inside the 0700 data dir.
    loose = [entry for entry in loose_modes(data_dir) if not entry.startswith("kivy/icon")]
    assert loose == [], "\n".join(loose)
