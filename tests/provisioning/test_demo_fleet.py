"""``python main.py demo --center --kiosks 3`` as a newcomer runs it: the fleet monitor comes up with the
center, its URL and demo login are printed, the three simulated kiosks (real agents, each with its own
certificate from the demo's PKI) and the demo kiosk show online on the fleet page, and the faults
``main.py simfleet fault`` injects become alarms and states on it; SIGTERM stops every process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from provisioning.demo_center import DEMO_LOGIN, DemoLayout
from screens.harness import xvfb
from tests.provisioning.test_demo_center import CENTER, ROOT, demo_dir, no_process_left  # noqa: F401

SIMS = ("kiosk-sim-01", "kiosk-sim-02", "kiosk-sim-03")


def until(what: Callable[[], Any], timeout: float, proc: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"demo exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
        value = what()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out on {what.__doc__}; demo output:\n" + log.read_text(
            errors="replace"
        )[-4000:]
        time.sleep(0.3)


def fault(demo: Path, kiosk: str, *flags: str) -> None:
    done = subprocess.run(
        [sys.executable, "main.py", "simfleet", "fault", "--dir", str(demo / "sim"), "--kiosk", kiosk,
         *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.broker
@pytest.mark.window
def test_the_demo_fleet_comes_up_online_and_shows_injected_faults(demo_dir: Path) -> None:  # noqa: F811
    log = demo_dir.parent / f"{demo_dir.name}.out"
    with xvfb() as display, log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "main.py", "demo", "--center", "--dir", str(demo_dir), "--kiosks", "3"],
            cwd=ROOT, env={**os.environ, "DISPLAY": display}, stdout=out, stderr=subprocess.STDOUT,
        )
        try:

            def printed_url() -> str | None:
                """the fleet's URL and demo login printed"""
                pattern = r"at (http://127\.0\.0\.1:\d+)/ - log in as (\S+) / (\S+)"
                found = re.search(pattern, log.read_text(errors="replace"))
                return found.group(1) if found and (found.group(2), found.group(3)) == DEMO_LOGIN else None

            base = until(printed_url, 120, proc, log)
            assert "simfleet fault --dir" in log.read_text()
            client = httpx.Client(base_url=base, timeout=10)
            page = client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            answer = client.post(
                "/login", data={"username": DEMO_LOGIN[0], "password": DEMO_LOGIN[1], "csrf": csrf.group(1)}
            )
            assert answer.status_code == 303, answer.text[:300]

            def states() -> dict[str, str]:
                data = client.get(f"/centers/{CENTER}?format=json").json()
                return {row["id"]: row["state"] for row in data["items"]}

            def all_online() -> bool:
                """the demo kiosk and the three simulated ones online"""
                return states() == {"kiosk-demo-01": "online", **dict.fromkeys(SIMS, "online")}

            until(all_online, 90, proc, log)
            html = client.get(f"/centers/{CENTER}").text
            assert all(kiosk in html for kiosk in SIMS)
            # every simulated kiosk has a certificate of its own from the demo's PKI
            from cryptography import x509

            for kiosk in SIMS:
                cert = x509.load_pem_x509_certificate((DemoLayout(demo_dir).cert(kiosk)).read_bytes())
                assert cert.subject.rfc4514_string() == f"CN={kiosk}"

            def active(kiosk: str) -> dict[str, tuple[str, Any]]:
                rows = client.get("/alarms?format=json").json()["items"]
                return {a["type"]: (a["severity"], (a["detail"] or {}).get("state"))
                        for a in rows if a["kiosk_id"] == kiosk and a["active"]}

            fault(demo_dir, "kiosk-sim-02", "--paper", "out")
            until(lambda: active("kiosk-sim-02").get("printer") == ("critical", "paper_out"), 40, proc, log)
            fault(demo_dir, "kiosk-sim-01", "--reader", "unplug")
            until(lambda: "card_reader" in active("kiosk-sim-01"), 40, proc, log)
            fault(demo_dir, "kiosk-sim-03", "--offline")
            until(lambda: states().get("kiosk-sim-03") == "offline", 40, proc, log)
            assert "offline" in active("kiosk-sim-03")
            fault(demo_dir, "kiosk-sim-02", "--paper", "ok")
            until(lambda: "printer" not in active("kiosk-sim-02"), 40, proc, log)
            fault(demo_dir, "kiosk-sim-03", "--online")
            until(lambda: states().get("kiosk-sim-03") == "online", 60, proc, log)

            children = psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, log.read_text(errors="replace")[-3000:]
            _, alive = psutil.wait_procs(children, timeout=5)
            assert not alive, f"left behind: {alive}"
            assert not no_process_left(demo_dir)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    log.unlink()
