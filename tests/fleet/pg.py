"""A throwaway PostgreSQL 15 cluster for the fleet tests: initdb + pg_ctl as the ``postgres`` user
(initdb refuses root), own port, socket and data in a temp folder, stopped and deleted afterwards.
Never the system service on 5432."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    port: int
    directory: Path
    start_s: float

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


def _as_postgres(*argv: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    started = time.perf_counter()
    directory = Path(tempfile.mkdtemp(prefix="fleetpg-"))
    data = directory / "data"
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    port = free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    try:
        subprocess.run(
            _as_postgres(
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            env=env,
            timeout=60,
        )
        # fsync off: a test cluster is thrown away; it is what makes a CREATE DATABASE take 10 ms
        options = (
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            _as_postgres(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(directory / "postgres.log"),
                "-w",
                "start",
            ),
            check=True,
            capture_output=True,
            env=env,
            timeout=60,
        )
        yield Cluster(port, directory, time.perf_counter() - started)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"),
                capture_output=True,
                env=env,
                timeout=60,
            )
        shutil.rmtree(directory, ignore_errors=True)
