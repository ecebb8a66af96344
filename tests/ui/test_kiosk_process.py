"""``main.py kiosk --simulate`` as a technician starts it: its own process, window, log file, socket."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.ipc import call
from screens.cli import FIRST_FRAME_MESSAGE
from screens.harness import xvfb

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.window]


def test_kiosk_process_starts_logs_and_answers_its_control_socket(tmp_path: Path) -> None:
    text = (ROOT / "config" / "simulate.toml").read_text(encoding="utf-8")
    config = tmp_path / "kiosk.toml"
    config.write_text(text.replace('data_dir = "../var/kiosk-demo-01"', f'data_dir = "{tmp_path / "data"}"'))
    with xvfb() as display:
        proc = subprocess.Popen(
            [sys.executable, "main.py", "kiosk", "--simulate", "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, "DISPLAY": display},
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            deadline = time.monotonic() + 60
            for line in proc.stderr:
                if FIRST_FRAME_MESSAGE in line or time.monotonic() > deadline:
                    break
            health = call(tmp_path / "data" / "app.sock", "app.health")
            assert health["screen"] == "attract" and health["devices"]["printer"]["state"] in (
                "ok",
                "unknown",
            )
            call(tmp_path / "data" / "app.sock", "app.restart")  # the center's restart command
            assert proc.wait(30) == 75  # "start me again" for systemd / scripts/demo
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    log = (tmp_path / "data" / "logs" / "kiosk.log").read_text(encoding="utf-8")
    assert FIRST_FRAME_MESSAGE in log and "control socket" in log
