"""``main.py fleet ingest --workers N``: N worker processes, each its own ``main.py fleet ingest
--worker-index I`` (own MQTT session on the shared subscription, own store connections), restarted
when one dies (with a backoff that grows while it keeps dying), stopped together on SIGTERM.

Processes rather than threads: one worker's Python is bound to one core by the GIL, and a crash (or a
stuck C library) takes only its share down; the broker delivers that share to it again when it is
back, since its session (client id ``PREFIX-I``) persists.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class _Child:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    delay: float = 1.0
    next_start: float = field(default=0.0)


class Supervisor:
    def __init__(self, argv: Sequence[str], workers: int) -> None:
        """``argv``: the worker's command line without ``--worker-index``."""
        self.argv = list(argv)
        self.children = [_Child(i) for i in range(workers)]
        self._stop = threading.Event()

    def _spawn(self, child: _Child) -> None:
        command = [*self.argv, "--worker-index", str(child.index)]
        child.process = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        child.started = time.monotonic()
        log.info("ingest worker %d started (pid %d)", child.index, child.process.pid)

    def request_stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        for child in self.children:
            self._spawn(child)
        while not self._stop.wait(0.5):
            now = time.monotonic()
            for child in self.children:
                if child.process is not None:
                    code = child.process.poll()
                    if code is None:
                        if now - child.started > 60:
                            child.delay = 1.0  # it ran a minute: a later death starts the backoff anew
                        continue
                    child.restarts += 1
                    child.next_start = now + child.delay
                    log.error(
                        "ingest worker %d (pid %d) exited with %s; restart %d in %.0f s",
                        child.index,
                        child.process.pid,
                        code,
                        child.restarts,
                        child.delay,
                    )
                    child.delay = min(60.0, child.delay * 2)
                    child.process = None
                elif now >= child.next_start:
                    self._spawn(child)
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in self.children:
            if child.process is not None:
                try:
                    child.process.wait(20)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
        return 0


def worker_argv(raw: Sequence[str]) -> list[str]:
    """This process's own command line for a child: ``--workers N`` dropped (each child is one)."""
    out: list[str] = [sys.executable, os.path.abspath(sys.argv[0])]
    skip = False
    for arg in raw:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return out
