"""``main.py fleet serve`` as its own process on a free port (what runs at a center), and an SSE reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import ROOT
from tests.fleet.data import PASSWORD
from tests.fleet.pg import free_port
from tests.fleet.web import csrf_of


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def running_server(
    url: str, log_dir: Path, name: str = "fleet", extra: list[str] | None = None, port: int | None = None
) -> Iterator[Server]:
    """``extra``: more options of ``fleet serve`` (the MQTT ingest's, for instance)."""
    port = port or free_port()
    log = log_dir / f"{name}-{port}.log"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "main.py"),
                "fleet",
                "serve",
                "--db",
                url,
                "--listen",
                f"127.0.0.1:{port}",
                "--maintenance-every",
                "0",
                *(extra or []),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"fleet serve exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"fleet serve did not answer in 30 s: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Server(base, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> None:
    page = client.get("/login")
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf": csrf_of(page.text)}
    )
    assert response.status_code in (200, 303) and "fleet_session" in client.cookies, response.text[:300]


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Parse a text/event-stream's lines into {'id', 'event', 'data'} dicts (comments skipped)."""
    current: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in current:
                yield current
            current = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        current[field] = value[1:] if value.startswith(" ") else value


def payload(event: dict[str, str]) -> dict[str, str]:
    loaded = json.loads(event["data"])
    assert isinstance(loaded, dict)
    return loaded
