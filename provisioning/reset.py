"""Factory reset of a kiosk (``main.py provision reset``): back to a bare PC, nothing of its past left.

1. **Flush**: the journal (``events.sqlite``, the agent's outbox) must be empty; the running agent is
   given time to send what is left. Still not empty: refused, unless ``--drop-unsent`` says so.
2. **Stop**: the app and the agent must not run while their files go (``systemctl stop`` by default;
   their control sockets must stop answering).
3. **Wipe**: everything under the data folder (keys and certificates in ``identity/``, the journal, the
   agent's state, logs, printed tickets, ratings, tallies, the pushed configuration, caches), the
   identity files wherever the configuration points, a simulator printer's output folder, and the
   configuration file enrollment wrote.
4. **Scan**: the data folder is walked again; any file left fails the reset.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import ConfigError, ConflictError, MotcuaError
from common.ipc import call
from common.journal import EventJournal
from provisioning.ui import Console, StepFailed

STOP_COMMAND = ("systemctl", "stop", "motcua-kiosk.service", "motcua-agent.service")


def systemctl_stop() -> None:
    subprocess.run(list(STOP_COMMAND), check=False, timeout=60)


@dataclass
class ResetPlan:
    config_file: Path
    data_dir: Path
    identity_files: list[Path] = field(default_factory=list)
    printer_dirs: list[Path] = field(default_factory=list)


def plan_for(config_file: Path) -> ResetPlan:
    try:
        data = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{config_file} does not exist: nothing to reset (or give --config)") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{config_file}: {exc}") from exc
    base = config_file.parent

    def resolve(value: Any) -> Path | None:
        if not isinstance(value, str) or not value:
            return None
        path = Path(value)
        return path if path.is_absolute() else (base / path).resolve()

    data_dir = resolve((data.get("kiosk") or {}).get("data_dir")) or (base / "var/kiosk").resolve()
    tls = (data.get("agent") or {}).get("tls") or {}
    identity = [
        p for p in (resolve(tls.get(k)) for k in ("key_file", "cert_file", "ca_file")) if p is not None
    ]
    printers = []
    for role in ("printer", "receipt_printer"):
        section = (data.get("devices") or {}).get(role) or {}
        if section.get("backend") == "simulator" and section.get("output_dir"):
            found = resolve(section["output_dir"])
            if found is not None:
                printers.append(found)
    return ResetPlan(config_file, data_dir, identity, printers)


def _answers(socket: Path) -> bool:
    try:
        call(socket, "app.health" if socket.name == "app.sock" else "ticket.link", {}, timeout=2)
    except (MotcuaError, ValueError):
        return False
    return True


def unsent(journal_file: Path) -> int:
    if not journal_file.exists():
        return 0
    journal = EventJournal(journal_file)
    try:
        return journal.count()
    finally:
        journal.close()


def files_under(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if not p.is_dir())


def factory_reset(
    plan: ResetPlan,
    console: Console,
    *,
    drop_unsent: bool = False,
    flush_timeout_s: float = 120.0,
    stop: Callable[[], None] | None = None,
) -> dict[str, Any]:
    journal_file = plan.data_dir / "events.sqlite"
    with console.step("reset.flush") as step:
        pending = unsent(journal_file)
        started = time.monotonic()
        while (
            pending
            and time.monotonic() - started < flush_timeout_s
            and _answers(plan.data_dir / "agent.sock")
        ):
            console.progress(time.monotonic() - started, flush_timeout_s, f"{pending} sự kiện / events")
            time.sleep(0.5)
            pending = unsent(journal_file)
        if pending and not drop_unsent:
            raise StepFailed(
                f"{pending} events are not sent to the center yet; nothing was wiped", "unsent_events"
            )
        step["note"] = f"{pending} dropped (--drop-unsent)" if pending else "all events sent"
    sockets = [plan.data_dir / "app.sock", plan.data_dir / "agent.sock"]
    if any(_answers(s) for s in sockets):
        if stop is None:
            raise ConflictError(
                "the kiosk app or its agent still runs: stop them first (systemctl stop motcua-*)"
            )
        stop()
        deadline = time.monotonic() + 20
        while any(_answers(s) for s in sockets) and time.monotonic() < deadline:
            time.sleep(0.3)
        if any(_answers(s) for s in sockets):
            raise ConflictError("the kiosk app or its agent still runs after the stop command")
    with console.step("reset.wipe") as step:
        removed = files_under(plan.data_dir)
        for path in [*plan.identity_files, plan.config_file]:
            if path.exists() and path not in removed:
                removed.append(path)
        for folder in plan.printer_dirs:
            removed += [p for p in files_under(folder) if p not in removed]
        for path in removed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if plan.data_dir.exists():
            for child in plan.data_dir.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
        for folder in plan.printer_dirs:
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
        step["note"] = f"{len(removed)} files"
    with console.step("reset.scan") as step:
        left = files_under(plan.data_dir) + [
            p for p in [*plan.identity_files, plan.config_file] if p.exists()
        ]
        if left:
            raise StepFailed(f"{len(left)} files are still there: {', '.join(map(str, left[:5]))}", "error")
        step["note"] = "empty"
    return {"removed": len(removed), "data_dir": str(plan.data_dir), "dropped_events": pending}
